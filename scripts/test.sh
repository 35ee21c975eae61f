#!/usr/bin/env bash
# The test command. On a fresh machine it installs and starts what the tests
# need (each scripts/setup.d/*.sh, in name order), then runs the checks and
# the whole test suite. Safe to run again: every step skips what is there.
#
#   bash scripts/test.sh            # set up, lint, test
#   WSHUB_SKIP_LINT=1 bash scripts/test.sh   # set up and test only
set -euo pipefail
cd "$(dirname "$0")/.."

for setup in scripts/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  echo "== setup: $setup"
  # shellcheck source=/dev/null
  source "$setup"
done

if [ -z "${WSHUB_SKIP_LINT:-}" ]; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy"
  cargo clippy --all-targets --all-features -- -D warnings
  echo "== cargo doc"
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
fi

echo "== tests"
# tests/load.rs holds 10,000 spokes: room for their sockets, as far as the
# hard limit allows (the test raises its own soft limit too).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --all-features --no-fail-fast
  # nextest does not run doc tests.
  cargo test --doc --all-features
else
  cargo test --all-features --no-fail-fast
fi
