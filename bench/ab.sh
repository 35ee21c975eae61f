#!/usr/bin/env bash
# Old against new: runs the same load against two `wshub` server binaries in
# turn, ROUNDS times, each server pinned to one core and the load generator
# to the other, on 127.0.0.1 only; prints the server's CPU µs per delivery,
# deliveries/s and p99 of each run, and, where `perf` can count syscalls,
# the server's `send`s and `writev`s per delivery. Alternating in one sitting is what
# makes the two comparable on a shared, noisy machine.
#
#   git worktree add /tmp/old HEAD~1 && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release --bin wshub)
#   cargo build --release --bin wshub --example loadgen
#   bash bench/ab.sh /tmp/old-target/release/wshub target/release/wshub --subscribers 1000 --size 64 --duration 5
#   ROUNDS=2 bash bench/ab.sh OLD NEW --subscribers 1000 --size 64 --rate 200 --duration 5
#
# Arguments after the two binaries go to examples/loadgen.rs. Either binary
# may be `bun`, for the Bun relay of bench/peers (bench/compare.sh installs
# it): its `send`s per delivery are counted the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2
shift 2
LOAD_ARGS=("$@")
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-9300}
LOADGEN=target/release/examples/loadgen
[ -x "$LOADGEN" ] || cargo build --release --quiet --example loadgen
ulimit -n "$(ulimit -Hn)"
COUNT_SENDS=0
perf stat -e syscalls:sys_enter_sendto true >/dev/null 2>&1 && COUNT_SENDS=1

one() { # label binary
  PORT=$((PORT + 1))
  local log
  log=$(mktemp)
  if [ "$2" = bun ]; then
    (cd bench/peers && exec taskset -c 0 node_modules/.bin/bun bun-relay.js "$PORT") >"$log" 2>&1 &
  else
    taskset -c 0 "$2" --listen "127.0.0.1:$PORT" --log warn >"$log" 2>&1 &
  fi
  local server=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  if ! kill -0 "$server" 2>/dev/null; then
    echo "$2 did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  local out sends=""
  out=$(mktemp)
  taskset -c 1 "$LOADGEN" --url "ws://127.0.0.1:$PORT/ws" --server-pid "$server" "${LOAD_ARGS[@]}" >"$out" 2>/dev/null &
  local load=$!
  if [ "$COUNT_SENDS" = 1 ]; then
    # Two seconds in the middle of the run.
    sleep 1.5
    # perf may not find the threads of a process that is starting one:
    # then it says so, and the count is left out.
    sends=$(perf stat -x, -e syscalls:sys_enter_sendto,syscalls:sys_enter_writev -p "$server" -- sleep 2 2>&1 >/dev/null \
      | awk -F, '/sys_enter/ && $1 ~ /^[0-9]+$/ { n += $1; seen = 1 } END { if (seen) print n }' || true)
  fi
  wait "$load"
  kill "$server"; wait "$server" 2>/dev/null || true
  python3 - "$1" "$out" "$sends" <<'PY'
import json, sys
label, path, sends = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(path))
line = f"{label:4} {d['deliveries_per_s']:>12,.0f}/s  cpu {d['server_cpu_s'] * 1e6 / d['received']:.3f} us/delivery  p99 {d['p99_us']:,.0f} us"
if sends.isdigit():
    line += f"  writes/delivery {int(sends) / (2 * d['deliveries_per_s']):.3f}"
print(line)
PY
  rm -f "$out" "$log"
}

for _ in $(seq "$ROUNDS"); do
  one old "$OLD"
  one new "$NEW"
done
