// A wshub spoke on the `ws` package, driven by the Rust tests over JSON lines.
//   node driven_spoke.mjs URL [HEADERS_JSON]
// stdin:  {"send": "<text>", "binary": false} | {"close": 1000}
// stdout: {"event":"open"} | {"event":"message","binary":b,"data":"<text>"}
//         | {"event":"close","code":n,"reason":"…"} | {"event":"http","status":n}
//         | {"event":"error","message":"…"}
import readline from "node:readline";
import WebSocket from "ws";

const [url, headers = "{}"] = process.argv.slice(2);
const out = (report) => process.stdout.write(JSON.stringify(report) + "\n");
const ws = new WebSocket(url, { headers: JSON.parse(headers), perMessageDeflate: false });

ws.on("open", () => out({ event: "open" }));
ws.on("message", (data, binary) => out({ event: "message", binary, data: data.toString("utf8") }));
ws.on("close", (code, reason) => {
  out({ event: "close", code, reason: reason.toString("utf8") });
  process.exit(0);
});
ws.on("unexpected-response", (_request, response) => {
  out({ event: "http", status: response.statusCode });
  process.exit(0);
});
ws.on("error", (error) => out({ event: "error", message: error.message }));

const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.send !== undefined) ws.send(command.send, { binary: Boolean(command.binary) });
  if (command.close !== undefined) ws.close(command.close);
});
// The test is gone: so is this spoke.
input.on("close", () => ws.terminate());
