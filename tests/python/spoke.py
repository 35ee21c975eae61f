"""A spoke written with the `websockets` package, driven by tests/interop_python.rs.

    tests/python/.venv/bin/python tests/python/spoke.py ws://127.0.0.1:PORT/

The same script as tests/node/spoke.mjs: it sends a text and a binary
envelope, two messages the hub must refuse and a hub.subscribe; prints READY
once the hub has answered all three; then expects `greeting:node` (and not
`other:x`) as a text frame, answers `spoke.done:ok` and closes with 1000.
Exit code 0 means every check passed.
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect


def fail(why):
    print(f"python spoke: {why}", file=sys.stderr, flush=True)
    sys.exit(1)


async def main(url):
    async with connect(url, compression=None) as ws:
        await ws.send('{"type":"spoke.text","id":"1","payload":{"big":12345678901234567890123}}')
        await ws.send(b'{"type":"spoke.binary","id":"2","payload":[1,"two"]}')
        await ws.send(json.dumps({"type": "hub.nope", "id": "x"}))
        await ws.send(bytes([0xFF, 0xFE, 0x00]))
        await ws.send(json.dumps({"type": "hub.subscribe", "id": "greeting:*"}))

        expected = {"error:reserved_type", "error:invalid_json", "subscribed:greeting:*"}
        while expected:
            envelope = json.loads(await ws.recv())
            kind = {"hub.error": "error", "hub.subscribed": "subscribed"}.get(envelope["type"], "unexpected")
            key = f"{kind}:{envelope['id']}"
            if key not in expected:
                fail(f"unexpected before READY: {envelope}")
            if kind == "error" and not isinstance(envelope.get("payload", {}).get("message"), str):
                fail(f"hub.error without a message: {envelope}")
            expected.discard(key)
        print("READY", flush=True)

        message = await ws.recv()
        if not isinstance(message, str):
            fail("the hub sent a binary frame; text is the default")
        envelope = json.loads(message)
        if (envelope["type"], envelope["id"]) != ("greeting", "node"):
            fail(f"expected greeting:node first, got {envelope}")
        if envelope.get("payload", {}).get("text") != "hello node":
            fail(f"wrong payload: {envelope}")
        await ws.send(json.dumps({"type": "spoke.done", "id": "ok"}))
        await ws.close(1000, "done")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1]), timeout=10))
    except asyncio.TimeoutError:
        fail("timed out")
