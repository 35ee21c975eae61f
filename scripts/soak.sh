#!/usr/bin/env bash
# A soak of several minutes with churn, on demand (release build):
#
#   bash scripts/soak.sh            # 5 minutes
#   bash scripts/soak.sh 30         # 30 minutes
#   SOAK_STEADY=500 SOAK_CHURNERS=128 SOAK_RATE=1000 bash scripts/soak.sh 10
#
# Prints one `reliability:` line (what was tried, how much, what held, what
# was lost); exits non-zero if a well-behaved spoke lost anything.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec cargo run --release --quiet --example soak -- "${1:-5}"
