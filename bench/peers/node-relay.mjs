// A Node relay on the `ws` package doing what `wshub` does on /ws: parse each
// envelope once, serialize it once (one Buffer), send it to every other
// spoke. Run: node node-relay.mjs PORT
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 8080);

function relayed(data) {
  let env;
  try {
    env = JSON.parse(data.toString());
  } catch {
    return null;
  }
  if (env === null || typeof env !== "object" || typeof env.type !== "string" || env.type === "" ||
      typeof env.id !== "string" || env.type.startsWith("hub.")) {
    return null;
  }
  return Buffer.from(JSON.stringify({ type: env.type, id: env.id, payload: env.payload === undefined ? null : env.payload }));
}

const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const bytes = relayed(data);
    if (bytes === null) return;
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === 1) client.send(bytes, { binary: false });
    }
  });
  ws.on("error", () => {});
});
wss.on("listening", () => console.log(`relaying on ws://127.0.0.1:${port}/`));
