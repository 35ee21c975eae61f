// A Bun relay doing what `wshub` does on /ws: parse each envelope once,
// serialize it once, send it to every other spoke (uWebSockets' publish,
// which skips the sender). Run: bun bun-relay.js PORT
const port = Number(process.argv[2] ?? 8080);

function relayed(data) {
  let env;
  try {
    env = JSON.parse(typeof data === "string" ? data : data.toString());
  } catch {
    return null;
  }
  if (env === null || typeof env !== "object" || typeof env.type !== "string" || env.type === "" ||
      typeof env.id !== "string" || env.type.startsWith("hub.")) {
    return null;
  }
  return JSON.stringify({ type: env.type, id: env.id, payload: env.payload === undefined ? null : env.payload });
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response("a WebSocket relay", { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024,
    open(ws) {
      ws.subscribe("all");
    },
    message(ws, data) {
      const text = relayed(data);
      if (text !== null) ws.publish("all", text);
    },
  },
});
console.log(`relaying on ws://127.0.0.1:${server.port}/`);
