#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD SECONDS NAME... — `make fuzz`: runs BUILD/fuzz_NAME
# for SECONDS / (number of names) each (at least 10 s), one after the other,
# on BUILD/corpus/NAME (seeded from tests/fuzz/corpus/NAME, which it never
# changes). Crashes, hangs and out-of-memory inputs are written to
# tests/fuzz/regressions/NAME-{crash,timeout,oom,...}-<sha1>; any new one fails
# the run. Ends with one line per harness: runs, speed, coverage, findings.
set -u
build=${1:?usage: tests/fuzz/run.sh BUILD SECONDS NAME...}
total=${2:?seconds}
shift 2
names=("$@")
here=$(cd "$(dirname "$0")" && pwd)
each=$(( total / ${#names[@]} ))
[ "$each" -lt 10 ] && each=10
mkdir -p "$here/regressions"
summary=() found=0
for n in "${names[@]}"; do
  work="$build/corpus/$n" log="$build/fuzz_$n.log"
  mkdir -p "$work"
  before=$(ls "$here/regressions" | grep -c "^$n-" || true)
  echo "fuzz: $n for ${each}s (log $log)"
  "$build/fuzz_$n" -max_total_time="$each" -timeout=20 -rss_limit_mb=2560 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$here/regressions/$n-" \
      "$work" "$here/corpus/$n" >"$log" 2>&1
  rc=$?
  after=$(ls "$here/regressions" | grep -c "^$n-" || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  new=$((after - before))
  if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    found=1
    grep -E '^==[0-9]+==ERROR|^SUMMARY|deadly signal|Test unit written' "$log" | head -5 | sed 's/^/    /'
  fi
  summary+=("$(printf '  %-10s %10s runs %8s/s  cov %6s  %d new finding(s)%s' "$n" "${runs:-?}" "${speed:-?}" \
               "${cov:-?}" "$new" "$([ "$rc" -ne 0 ] && echo " (exit $rc)")")")
done
printf '%s\n' "${summary[@]}"
if [ "$found" -ne 0 ]; then
  echo "fuzz: findings saved in tests/fuzz/regressions/: fix them, commit the inputs (make test replays them)"
  exit 1
fi
echo "fuzz: nothing found in ${total}s"
