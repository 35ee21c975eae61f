#!/usr/bin/env bash
# Measures wshub against Node's `ws` and Bun's built-in pub/sub, in one run,
# the same way: each server in turn pinned to one core, the load generator
# (examples/loadgen.rs) pinned to the other, load on 127.0.0.1 only. Prints
# one table (deliveries/s, server CPU µs per delivery from the server's own
# CPU time, p50/p99 latency, lost, server RSS, idle KiB per connection) with
# wshub's ratio to each peer.
#
#   bash bench/compare.sh                       # everything, about 5 minutes
#   SERVERS="wshub bun" SCENARIOS="fanout-1000" bash bench/compare.sh
#   DURATION=3 bash bench/compare.sh            # seconds of publishing per run
#
# A benchmark, not a test: CI does not run it. Needs `taskset` (util-linux),
# node and npm; the peers come from the npm registry, pinned in
# bench/peers/package-lock.json (Bun's binary is its @oven/bun-<platform>
# optional dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SERVERS=${SERVERS:-"wshub bun node"}
SCENARIOS=${SCENARIOS:-"fanout-100 fanout-1000 fanout-1000-4k rate-200 idle-5000 stall-baseline stall"}
DURATION=${DURATION:-5}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
PORT=${PORT:-9100}
OUT=${OUT:-$ROOT/target/compare/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl}

mkdir -p "$(dirname "$OUT")"
: >"$OUT"

echo "== building (release)"
cargo build --release --quiet --bin wshub --example loadgen
LOADGEN=$ROOT/target/release/examples/loadgen
WSHUB=$ROOT/target/release/wshub

echo "== peers (npm ci in bench/peers)"
if [ ! -x bench/peers/node_modules/.bin/bun ] || [ bench/peers/package-lock.json -nt bench/peers/node_modules ]; then
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
fi
BUN=$ROOT/bench/peers/node_modules/.bin/bun

# 5,000 idle connections: one descriptor each on both sides, and then some.
ulimit -n "$(ulimit -Hn)"

SERVER_PID=""
LOADGEN_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  [ -n "$LOADGEN_PID" ] && kill "$LOADGEN_PID" 2>/dev/null || true
  stop_server
}
trap cleanup EXIT INT TERM

start_server() { # name
  PORT=$((PORT + 1))
  local log=$ROOT/target/compare/$1.log
  case $1 in
    wshub) taskset -c "$SERVER_CORE" "$WSHUB" --listen "127.0.0.1:$PORT" >"$log" 2>&1 & ;;
    bun) (cd bench/peers && exec taskset -c "$SERVER_CORE" "$BUN" bun-relay.js "$PORT") >"$log" 2>&1 & ;;
    node) (cd bench/peers && exec taskset -c "$SERVER_CORE" node node-relay.mjs "$PORT") >"$log" 2>&1 & ;;
    *) echo "unknown server $1" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
  # Ready when the port accepts a connection: 10 s at most.
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$1 did not start; its log:" >&2
  cat "$log" >&2
  exit 1
}

scenario_args() { # scenario -> loadgen arguments
  case $1 in
    fanout-100) echo "--subscribers 100 --size 64 --duration $DURATION" ;;
    fanout-1000) echo "--subscribers 1000 --size 64 --duration $DURATION" ;;
    fanout-1000-4k) echo "--subscribers 1000 --size 4096 --duration $DURATION" ;;
    rate-200) echo "--subscribers 1000 --size 64 --rate 200 --duration $DURATION" ;;
    idle-5000) echo "--idle 5000" ;;
    # The baseline of the stall: the same load with no stalled spoke.
    stall-baseline) echo "--subscribers 100 --size 4096 --duration 12" ;;
    # One spoke that stops reading after the upgrade while 100 others receive:
    # 12 s, longer than wshub's default write timeout (10 s).
    stall) echo "--subscribers 100 --stalled 1 --size 4096 --duration 12" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

machine() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
  echo "server on core $SERVER_CORE, load generator on core $LOAD_CORE; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wshub $(git rev-parse --short HEAD) ($(rustc --version | cut -d' ' -f1-2)), bun $("$BUN" --version), node $(node --version), ws $(node -p "require('./bench/peers/node_modules/ws/package.json').version")"
}

INFO=$(machine)
echo "$INFO"
for scenario in $SCENARIOS; do
  # The servers take turns within each scenario, so that a change in the
  # machine's load weighs on all of them alike.
  for server in $SERVERS; do
    echo "== $scenario: $server"
    start_server "$server"
    # shellcheck disable=SC2046
    path=/
    [ "$server" = wshub ] && path=/ws
    taskset -c "$LOAD_CORE" "$LOADGEN" --url "ws://127.0.0.1:$PORT$path" $(scenario_args "$scenario") \
      --server-pid "$SERVER_PID" --label "server=$server" --label "scenario=$scenario" >>"$OUT" &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID" || echo "   (the load generator failed)"
    LOADGEN_PID=""
    tail -n1 "$OUT"
    stop_server
    sleep 1
  done
done

echo
echo "$INFO"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $OUT"
echo
"$LOADGEN" table "$OUT"
