#!/usr/bin/env bash
# Runs the whole test suite N times in a row (default 10) while a CPU-heavy process runs
# beside it (the pipeline bench in a loop), to shake out tests that only fail under load.
# Usage: scripts/stress-tests.sh [runs]      (after npm install; logs in .stress/)
set -u
cd "$(dirname "$0")/.."
runs=${1:-10}
mkdir -p .stress
npm run build >/dev/null || exit 1
( while :; do node dist/bench/run.js pipeline >/dev/null 2>&1; done ) &
hog=$!
trap 'kill $hog 2>/dev/null; pkill -P $hog 2>/dev/null' EXIT
passed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if node scripts/run-tests.mjs >".stress/run-$i.log" 2>&1; then
    passed=$((passed + 1)); verdict=pass
  else
    verdict=FAIL
  fi
  summary=$(grep -E '^# (pass|fail) ' ".stress/run-$i.log" | tr '\n' ' ')
  echo "run $i/$runs: $verdict in $(( $(date +%s) - start )) s  $summary"
  [ "$verdict" = FAIL ] && grep -E '^not ok|^\s+not ok|error:' ".stress/run-$i.log" | head -8
done
echo "$passed of $runs runs passed"
[ "$passed" -eq "$runs" ]
