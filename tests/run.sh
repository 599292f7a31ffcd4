#!/usr/bin/env bash
# Runs every test program in DIR (cmocka binaries named test_*), one after the
# other, and ends with one line: "N passed, N failed, N skipped" (test cases).
set -u
dir=${1:?usage: tests/run.sh BUILD/tests}
passed=0 failed=0 skipped=0 failed_names=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  start=$(date +%s.%N)
  "$t" >"$log" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END{print s+0}')
  f=$(grep -Eo '^\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$NF} END{print s+0}')
  k=$(grep -Eo '^\[  SKIPPED \] [0-9]+' "$log" | awk '{s+=$NF} END{print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before cmocka could count
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
  if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
    note=""
    [ "$k" -gt 0 ] && note=" ($k skipped: $(grep -m1 -iE 'skip|no CUDA device' "$log" | cut -c1-120))"
    printf '  ok    %-24s %3d cases  %6ss%s\n' "$name" "$p" "$secs" "$note"
  else
    printf '  FAIL  %-24s %3d failed %6ss (exit %d)\n' "$name" "$f" "$secs" "$rc"
    sed 's/^/        | /' "$log" | tail -n 60
    failed_names+=("$name")
  fi
done
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
