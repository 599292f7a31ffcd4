#!/usr/bin/env bash
# make bench: the paper's experiment end to end (Hong et al., KISTI 2021):
# the mlp on EMNIST Balanced, 2000 steps of batch 100, Adam 0.01, repeated,
# then its figures beside the paper's 2993 s (1 node) and 2179 s (2 sites).
#   bench/paper.sh BUILD/dmzbench [train options...]
set -uo pipefail
bin=${1:?usage: bench/paper.sh path/to/dmzbench [train options]}
shift

echo "== dmzbench bench: the paper's experiment (mlp, EMNIST Balanced, 2000 steps, batch 100, Adam 0.01)"
echo "== step 1/2: data"
if ! "$bin" fetch --dataset emnist-balanced; then
  echo "   EMNIST Balanced could not be fetched (see above): training falls back to"
  echo "   Fashion-MNIST from the Debian package and says so in every result."
fi

echo "== step 2/2: train and draw"
out=${DMZBENCH_RESULTS:-results}
"$bin" train --out "$out" "$@"
rc=$?
latest=$(ls -1dt "$out"/*/ 2>/dev/null | head -1)
if [ "$rc" -ne 0 ]; then
  echo "== bench FAILED (exit $rc); see ${latest:-$out}status"
  exit "$rc"
fi
echo "== done: results in ${latest}, figures in ${latest}plots/ (open ${latest}plots/report.html)"
