#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (run from anywhere).

Seeds are hand-made inputs that reach each parser's interesting paths; the
fuzzer mutates them. Client frames are masked with the key 0, so that the
fuzzer's mutations of a payload stay readable by the hub.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, seeds):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for i, seed in enumerate(seeds):
        if isinstance(seed, str):
            seed = seed.encode()
        with open(os.path.join(folder, "seed-%02d" % i), "wb") as f:
            f.write(seed)


def frame(opcode, payload, fin=True, rsv=0, masked=True):
    if isinstance(payload, str):
        payload = payload.encode()
    out = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        out += bytes([mask | n])
    elif n < 65536:
        out += bytes([mask | 126]) + struct.pack(">H", n)
    else:
        out += bytes([mask | 127]) + struct.pack(">Q", n)
    if masked:
        out += b"\0\0\0\0"
    return out + payload


def env(ty, id_, payload=None):
    return json.dumps({"type": ty, "id": id_, "payload": payload}, separators=(",", ":"))


envelopes = [
    env("chat.message", "room-1", {"text": "hi"}),
    '{"type":"tick","id":""}',
    '{"type":"t","id":"x","payload":{"n":12345678901234567890123,"f":0.1000000000000000055511151231257827}}',
    '{"type":"t","id":"x","payload":"\\u00e9\\ud83d\\ude00\\n","extra":[1,{"a":null}]}',
    '{"type":"hub.subscribe","id":"chat.message:*"}',
    '["t","x"]',
    '{"type":"","id":"x"}',
    '{"type":5,"id":"x"}',
    '{"type":"t","id":"x"',
    '{"type":"t","id":"x","payload":' + "[" * 130 + "]" * 130 + "}",
    "   {\"id\":\"a\",\"type\":\"b\"}  ",
    b"\xff\xfe",
]
write("envelope", envelopes)

write("pattern", [
    "*", "chat.message:*", "chat.message:room-1", "a:b:*\0a:b\0x", "a:*\0a\0", "a*\0a\0b",
    "*:*", ":*", "", "a:b\0a\0b", "x:*y\0x\0*y",
])

subscribe = env("hub.subscribe", "chat:*")
frames_seeds = [
    b"\0" + frame(0x1, env("chat", "1", {"a": 1})),
    b"\1" + frame(0x1, subscribe) + frame(0x1, env("chat", "2", [1, 2])),
    b"\2" + frame(0x2, env("bin", "", "x")) + frame(0x9, "ping") + frame(0xA, ""),
    b"\0" + frame(0x1, '{"type":"t"', fin=False) + frame(0x9, "p") + frame(0x0, ',"id":"x"}'),
    b"\0" + frame(0x8, struct.pack(">H", 1000) + b"bye"),
    b"\0" + frame(0x1, "{not json") + frame(0x1, env("hub.other", "")),
    b"\0" + frame(0x1, b"\xff\xfe"),
    b"\0" + frame(0x2, b"\xff\xfe"),
    b"\0" + frame(0x1, "x" * 600),
    b"\0" + frame(0x9, "p" * 126),
    b"\0" + frame(0x1, "{}", masked=False),
    b"\0" + frame(0x1, "{}", rsv=4),
    b"\0" + frame(0x3, "{}"),
    b"\3" + b"".join(frame(0x1, env("flood", str(i))) for i in range(12)),
    b"\0" + b"".join(frame(0x1, env("hub.subscribe", "p%d:*" % i)) for i in range(6))
    + frame(0x1, env("hub.unsubscribe", "p0:*")),
    b"\0" + frame(0x1, env("big", "", "y" * 200))[:40],
]
write("frames", frames_seeds)
