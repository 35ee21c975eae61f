#!/usr/bin/env bash
# Runs every reliability test and script and writes the table in
# docs/reliability.md from what they print (`reliability:` lines).
#
#   bash scripts/reliability.sh            # fuzz 60 s per target, soak 5 min
#   bash scripts/reliability.sh 300 30     # fuzz 300 s per target, soak 30 min
#   bash scripts/reliability.sh 0 0        # tests only (no fuzzing, no soak)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${1:-60}"
SOAK_MINUTES="${2:-5}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

echo "== reliability tests"
status=0
cargo nextest run --all-features --no-capture \
  --test properties --test bad_input --test faults --test load --test soak --test limits --test upgrade_check --test server_security \
  >"$out.tests" 2>&1 || status=$?
grep '^reliability:' "$out.tests" >>"$out" || true
if [ "$status" != 0 ]; then
  grep -E '^\s+FAIL |^error' "$out.tests" || tail -20 "$out.tests"
  echo "reliability tests failed (exit $status): the table is left as it was"
  exit 1
fi

# What the suites hold, counted from their sources and nextest's list.
python3 - "$out" <<'PY' >>"$out"
import re, subprocess, sys
src = open("tests/properties.rs").read()
cases = 0
props = 0
for block in re.split(r"proptest! \{", src)[1:]:
    n = int(re.search(r"with_cases\((\d+)\)", block).group(1))
    tests = len(re.findall(r"#\[test\]", block.split("\n}\n")[0]))
    props += tests
    cases += n * tests
def listed(test):
    run = subprocess.run(["cargo", "nextest", "list", "--all-features", "--test", test, "--message-format", "oneline"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"cargo nextest list --test {test} failed:\n{run.stderr}")
    return [l for l in run.stdout.splitlines() if l.strip()]
bad = listed("bad_input")
limits = listed("limits")
checks = listed("upgrade_check") + listed("server_security")
print(f"reliability: proptest (decoder, patterns vs a reference matcher, random frames into a connection) | {props} properties, {cases} random cases per run | no panic, every input classified as the protocol says, every connection ended cleanly | -")
print(f"reliability: malformed input over real sockets (tests/bad_input.rs) | {len(bad)} tests, each rejection beside a bystander spoke | the protocol's close code or hub.error each time, the bystander served after it, the close or error counted | 0 (each bystander got the event sent after the rejection)")
print(f"reliability: limits and security (tests/limits.rs, tests/upgrade_check.rs, tests/server_security.rs) | {len(limits) + len(checks)} tests: rate limit, subscription cap, pattern length, revoke, token and origin on Hub::serve and on every server route | rate_limited then 1008, forbidden, invalid_pattern, 1008 on revoke, 401/403, only /ws upgrades, token in no log line, counter or /metrics | -")
PY
rm -f "$out.tests"

if [ "$FUZZ_SECONDS" != 0 ]; then
  bash scripts/fuzz.sh "$FUZZ_SECONDS" | tee -a /dev/stderr | grep '^reliability:' >>"$out"
fi
if [ "$SOAK_MINUTES" != 0 ]; then
  bash scripts/soak.sh "$SOAK_MINUTES" | tee -a /dev/stderr | grep '^reliability:' >>"$out"
fi

python3 - "$out" "$FUZZ_SECONDS" "$SOAK_MINUTES" <<'PY'
import datetime, re, sys
rows = []
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line[len("reliability:"):].split("|")]
    rows.append("| " + " | ".join(cells) + " |")
table = "\n".join([
    f"Produced by `bash scripts/reliability.sh {sys.argv[2]} {sys.argv[3]}` on {datetime.date.today()} (2 cores, debug build for the tests, release for fuzzing and the soak).",
    "",
    "| what was tried | how much | what held | lost (well-behaved spokes) |",
    "|---|---|---|---|",
    *rows,
])
doc = open("docs/reliability.md").read()
doc = re.sub(r"(<!-- table:start -->\n).*?(\n<!-- table:end -->)", lambda m: m.group(1) + table + m.group(2), doc, flags=re.S)
open("docs/reliability.md", "w").write(doc)
print(table)
PY
