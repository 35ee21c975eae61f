// A hub built with the `ws` package the way the original TypeScript hub
// works: every envelope any client sends goes to every client, the sender
// included. It knows no control envelopes: `hub.subscribe` is fanned out
// like any other message, nothing is filtered, nothing is acknowledged.
//
//   node ts-hub.mjs        # prints "PORT <n>" once listening on 127.0.0.1
//
// It exits when its standard input closes (the test ends).
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`PORT ${wss.address().port}`));
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    let envelope;
    try {
      envelope = JSON.parse(data.toString('utf8'));
    } catch {
      return;
    }
    if (typeof envelope?.type !== 'string') return;
    const out = JSON.stringify({ type: envelope.type, id: envelope.id ?? '', payload: envelope.payload ?? null });
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(out);
    }
  });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
