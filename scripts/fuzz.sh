#!/usr/bin/env bash
# Fuzzes everything that parses what a spoke sends, each target for a bounded
# time, and prints how many inputs each one ran.
#
#   bash scripts/fuzz.sh            # 60 s per target
#   bash scripts/fuzz.sh 10         # 10 s per target
#
# Targets (fuzz/fuzz_targets/): envelope (Event::from_json), pattern
# (Pattern::new + matches), frames (raw client bytes into Hub::accept over an
# in-memory pipe). Seeds: fuzz/corpus/<target>/ (made by fuzz/seeds.py); what
# the fuzzer finds goes to a scratch corpus, not into the repository.
#
# The toolchain is stable Rust: cargo-fuzz needs nightly flags, which
# RUSTC_BOOTSTRAP=1 unlocks; with --sanitizer none no sanitizer runtime is
# needed (wshub forbids unsafe code, so AddressSanitizer would add little).
# libFuzzer's coverage instrumentation is on as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
TARGETS="${WSHUB_FUZZ_TARGETS:-envelope pattern frames}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install)"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

echo "== building fuzz targets"
(cd fuzz && cargo fuzz build --sanitizer none)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
for target in $TARGETS; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
  if (cd fuzz && cargo fuzz run --sanitizer none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
    result="no crash, no hang, every assertion held"
  else
    result=FAILED
    status=1
    tail -40 "$log"
  fi
  runs="$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1 || true)"
  [ -n "$runs" ] || runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || echo 0)"
  cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)"
  corpus="$(find "$scratch/$target" -type f | wc -l)"
  echo "reliability: fuzz $target | ${runs} executions in ${SECONDS_PER_TARGET} s, ${cov} coverage points, ${corpus} new corpus entries | $result | -"
done
exit $status
