#!/usr/bin/env bash
# Where an idle connection's memory goes: runs a `wshub` server binary under
# valgrind's dhat while examples/loadgen.rs holds N idle connections to it
# (127.0.0.1 only), then prints the heap at its peak, per connection, and
# the largest allocation sites.
#
#   cargo build --release --bin wshub --example loadgen
#   bash bench/idle-heap.sh target/release/wshub [N]     # N defaults to 1000
#
# Needs valgrind (Debian's package). Slow: the server runs under valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1
N=${2:-1000}
PORT=${PORT:-9601}
LOADGEN=target/release/examples/loadgen
[ -x "$LOADGEN" ] || cargo build --release --quiet --example loadgen
ulimit -n "$(ulimit -Hn)"
out=$(mktemp -d)
valgrind --tool=dhat --dhat-out-file="$out/dhat.json" "$BIN" --listen "127.0.0.1:$PORT" --log warn >"$out/valgrind.log" 2>&1 &
server=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$LOADGEN" --url "ws://127.0.0.1:$PORT/ws" --idle "$N" >/dev/null
kill -INT "$server"; wait "$server" 2>/dev/null || true
python3 - "$out/dhat.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
frames, sites = d["ftbl"], sorted(d["pps"], key=lambda p: -p.get("gb", 0))
conns = sites[0]["gbk"]  # the largest site is the connection tasks, one block each
total = sum(p.get("gb", 0) for p in sites)
print(f"heap at its peak: {total:,} bytes; {conns:,} connections; {total / conns:,.0f} bytes per connection")
for p in sites[:10]:
    names = [frames[i] for i in p["fs"]]
    where = next((n for n in names if "wshub::" in n or "tokio::" in n or "tungstenite" in n), names[-1])
    print(f"{p['gb']:>10,} bytes in {p['gbk']:>6,} blocks ({p['gb'] / max(p['gbk'], 1):>6,.0f} each)  {where.split(': ', 1)[-1][:100]}")
PY
rm -rf "$out"
