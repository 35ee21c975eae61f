// A spoke written with the `ws` package, driven by tests/interop_node.rs.
//
//   node spoke.mjs ws://127.0.0.1:PORT/
//
// It sends a text and a binary envelope, two messages the hub must refuse
// (a reserved type, a binary frame that is not UTF-8) and a hub.subscribe;
// once the hub has answered all three it prints READY. The test then
// dispatches `other:x` (which must not arrive: the spoke's subscription
// filters on the hub) and `greeting:node`, which must arrive as a text frame
// with its payload. The spoke answers `spoke.done:ok` and closes with 1000.
// Exit code 0 means every check passed; otherwise stderr says which failed.
import WebSocket from 'ws';

const url = process.argv[2];
const fail = (why) => {
  console.error(`node spoke: ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 10_000).unref();

const ws = new WebSocket(url);
const expected = new Set(['error:reserved_type', 'error:invalid_json', 'subscribed:greeting:*']);
let ready = false;

ws.on('open', () => {
  // Raw JSON text: a number longer than a JS double must reach the hub intact.
  ws.send('{"type":"spoke.text","id":"1","payload":{"big":12345678901234567890123}}');
  ws.send(Buffer.from('{"type":"spoke.binary","id":"2","payload":[1,"two"]}'), { binary: true });
  ws.send(JSON.stringify({ type: 'hub.nope', id: 'x' }));
  ws.send(Buffer.from([0xff, 0xfe, 0x00]), { binary: true });
  ws.send(JSON.stringify({ type: 'hub.subscribe', id: 'greeting:*' }));
});

ws.on('message', (data, isBinary) => {
  let envelope;
  try {
    envelope = JSON.parse(data.toString('utf8'));
  } catch (e) {
    fail(`not JSON: ${data}`);
  }
  if (!ready) {
    const key =
      envelope.type === 'hub.error' ? `error:${envelope.id}` :
      envelope.type === 'hub.subscribed' ? `subscribed:${envelope.id}` :
      `unexpected:${envelope.type}:${envelope.id}`;
    if (!expected.delete(key)) fail(`unexpected before READY: ${data}`);
    if (envelope.type === 'hub.error' && typeof envelope.payload?.message !== 'string') {
      fail(`hub.error without a message: ${data}`);
    }
    if (expected.size === 0) {
      ready = true;
      console.log('READY');
    }
    return;
  }
  if (isBinary) fail('the hub sent a binary frame; text is the default');
  if (envelope.type !== 'greeting' || envelope.id !== 'node') fail(`expected greeting:node first, got ${data}`);
  if (envelope.payload?.text !== 'hello node') fail(`wrong payload: ${data}`);
  ws.send(JSON.stringify({ type: 'spoke.done', id: 'ok' }), () => ws.close(1000, 'done'));
});

ws.on('close', (code) => {
  if (!ready) fail(`closed early with ${code}`);
  process.exit(0);
});
ws.on('error', (e) => fail(`error: ${e.message}`));
