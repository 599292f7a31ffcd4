#!/usr/bin/env bash
# tests/gpu_check.sh — the GPU bundle's run.sh (make gpu-bundle copies it there):
# validates dmzbench on this machine's GPU in one call, with nothing but the
# bundle and an NVIDIA driver, and writes one verdict file.
#
#   run.sh [OUTDIR]          (default: out/ beside this script)
#
# Checks, each pass / fail / skipped with its reason:
#   device        nvidia-smi names a GPU, its driver and compute capability
#   kernels       every cuda kernel against the cpu reference (bin/test_cuda_gpu)
#   step          the device-resident step, graph replay, two models on two threads,
#                 and every op of the cublas and cudnn backends against cpu
#                 (bin/test_cuda_step_gpu; the cublas/cudnn tests skip, saying why,
#                 where NVIDIA's libraries are not installed)
#   memcheck, racecheck, synccheck
#                 the same tests under compute-sanitizer, when the toolkit is here
#   bench-kernels every op at the models' shapes: ours vs cuBLAS/cuDNN vs cpu
#                 (bin/bench_kernels; the table is bench-kernels.txt)
#   training      the paper's mlp, 2000 steps, on cuda and on cpu from the same
#                 seed: test accuracy within 0.02, test loss within 10%; then cuda
#                 with --graph --log-every 100 (its wall time beside the plain run's)
#   cnn           the cnn, 300 steps, on cpu, cuda and cudnn from the same seed:
#                 each GPU backend's test accuracy within 0.03 of cpu's, test loss
#                 within 15% (cudnn skips, saying why, without NVIDIA's libraries)
#   peer-pytorch  PyTorch eager on the same GPU beside dmzbench (peers/pytorch_peer.py):
#                 the mlp's 2000 steps (dmzbench plain and --graph) and the cnn's
#                 step; skipped where python3 has no torch with CUDA
# plus the timings of both runs. OUTDIR/verdict.txt says it all ("verdict: PASS",
# "FAIL" or "NO-GPU"); the logs and run directories lie beside it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
verdict="$out/verdict.txt"
tmp="$verdict.tmp"
: >"$tmp"
fails=0
say() { echo "$*" | tee -a "$tmp"; }
check() { # name pass|fail|skipped detail
  say "check $1: $2${3:+ ($3)}"
  [ "$2" = fail ] && fails=$((fails + 1))
  return 0
}

say "# dmzbench GPU check"
say "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "host: $(hostname)"
say "bundle: $(cat "$here/VERSION" 2>/dev/null || echo unknown)"

# ---------------------------------------------------------------- device
gpu=0
if command -v nvidia-smi >/dev/null 2>&1 &&
   nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader >"$out/nvidia-smi.txt" 2>&1 &&
   [ -s "$out/nvidia-smi.txt" ]; then
  gpu=1
  while IFS= read -r line; do say "device: $line"; done <"$out/nvidia-smi.txt"
  check device pass "$(wc -l <"$out/nvidia-smi.txt") GPU(s)"
else
  say "device: none"
  check device skipped "nvidia-smi found no GPU: $(head -c 200 "$out/nvidia-smi.txt" 2>/dev/null || echo 'not installed')"
fi

# ---------------------------------------------------------------- kernels against the cpu reference
cmocka_counts() { # log -> "P passed, F failed, S skipped"
  local p f s
  p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$1" | awk '{s+=$NF} END{print s+0}')
  f=$(grep -Eo '^\[  FAILED  \] [0-9]+' "$1" | awk '{s+=$NF} END{print s+0}')
  s=$(grep -Eo '^\[  SKIPPED \] [0-9]+' "$1" | awk '{s+=$NF} END{print s+0}')
  echo "$p passed, $f failed, $s skipped"
}
"$here/bin/test_cuda_gpu" >"$out/kernels.log" 2>&1
rc=$?
counts=$(cmocka_counts "$out/kernels.log")
if [ $rc -ne 0 ]; then check kernels fail "exit $rc; $counts; see kernels.log"
elif grep -q "no CUDA device" "$out/kernels.log"; then
  check kernels skipped "$(grep -m1 'no CUDA device' "$out/kernels.log" | cut -c1-200)"
else check kernels pass "$counts"; fi

# ---------------------------------------------------------------- the device step and the comparison backends
if [ -x "$here/bin/test_cuda_step_gpu" ]; then
  "$here/bin/test_cuda_step_gpu" >"$out/step.log" 2>&1
  rc=$?
  counts=$(cmocka_counts "$out/step.log")
  if [ $rc -ne 0 ]; then check step fail "exit $rc; $counts; see step.log"
  elif grep -q "no CUDA device" "$out/step.log"; then
    check step skipped "$(grep -m1 'no CUDA device' "$out/step.log" | cut -c1-200)"
  else check step pass "$counts"; fi
  grep "cannot run here" "$out/step.log" | sort -u | while IFS= read -r line; do say "note: ${line:0:300}"; done
else
  check step skipped "bin/test_cuda_step_gpu not in the bundle"
fi

# ---------------------------------------------------------------- kernel benchmark
if [ ! -x "$here/bin/bench_kernels" ]; then check bench-kernels skipped "bin/bench_kernels not in this bundle"
elif [ $gpu = 0 ]; then check bench-kernels skipped "no GPU"
else
  "$here/bin/bench_kernels" --seconds 0.2 >"$out/bench-kernels.txt" 2>&1
  rc=$?
  rows=$(grep -c '^  ' "$out/bench-kernels.txt")
  if [ $rc -ne 0 ]; then check bench-kernels fail "exit $rc; see bench-kernels.txt"
  elif grep -q "need a device" "$out/bench-kernels.txt"; then
    check bench-kernels fail "GPU columns missing: $(grep -m1 'need a device' "$out/bench-kernels.txt" | cut -c1-200)"
  else check bench-kernels pass "$rows rows in bench-kernels.txt"; fi
fi

# ---------------------------------------------------------------- compute-sanitizer
cs=$(command -v compute-sanitizer 2>/dev/null || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in memcheck racecheck synccheck; do
  if [ $gpu = 0 ]; then check $tool skipped "no GPU"; continue; fi
  if [ -z "$cs" ]; then check $tool skipped "compute-sanitizer not installed (it comes with the CUDA toolkit)"; continue; fi
  "$cs" --tool $tool --error-exitcode 9 "$here/bin/test_cuda_gpu" >"$out/$tool.log" 2>&1
  rc=$?
  summary=$(grep -m1 "ERROR SUMMARY\|RACECHECK SUMMARY" "$out/$tool.log" | sed 's/^=* *//')
  if [ $rc -eq 0 ]; then check $tool pass "${summary:-no errors}"; else check $tool fail "exit $rc: ${summary:-see $tool.log}"; fi
done

# ---------------------------------------------------------------- training on cuda beside cpu
col() { # summary.csv column -> value of the first data row
  awk -F, -v c="$2" 'NR==1 { for (i = 1; i <= NF; i++) if ($i == c) k = i } NR==2 && k { print $k }' "$1"
}
data=$(ls -d "$here"/data/* 2>/dev/null | head -1)
if [ $gpu = 0 ]; then check training skipped "no GPU"
elif [ -z "$data" ]; then check training fail "no data set in the bundle"
else
  ok=1
  for be in cpu cuda; do
    "$here/bin/dmzbench" train --backend $be --data "$data" --steps 2000 --repeat 1 --seed 1 \
      --out "$out/runs" --name "gpucheck-$be" --quiet --no-plots >"$out/train-$be.log" 2>&1 || ok=0
  done
  c_sum=$(ls -d "$out"/runs/*gpucheck-cpu* 2>/dev/null | tail -1)/summary.csv
  g_sum=$(ls -d "$out"/runs/*gpucheck-cuda* 2>/dev/null | tail -1)/summary.csv
  if [ $ok = 0 ] || [ ! -s "$c_sum" ] || [ ! -s "$g_sum" ]; then
    check training fail "a run failed: see train-cpu.log, train-cuda.log"
  else
    for k in wall_s samples_per_s fwd_s bwd_s update_s final_loss test_loss test_accuracy; do
      say "number: $k cpu=$(col "$c_sum" $k) cuda=$(col "$g_sum" $k)"
    done
    verdict_line=$(awk -v ca="$(col "$c_sum" test_accuracy)" -v ga="$(col "$g_sum" test_accuracy)" \
                       -v cl="$(col "$c_sum" test_loss)" -v gl="$(col "$g_sum" test_loss)" 'BEGIN {
      da = ga - ca; if (da < 0) da = -da; dl = (gl - cl) / cl; if (dl < 0) dl = -dl
      printf "%s |accuracy diff| %.4f (<= 0.02), |test loss diff| %.1f%% (<= 10%%)", (da <= 0.02 && dl <= 0.10) ? "pass" : "fail", da, 100 * dl }')
    check training "${verdict_line%% *}" "${verdict_line#* }"
    if "$here/bin/dmzbench" train --backend cuda --graph --log-every 100 --data "$data" --steps 2000 --repeat 1 \
         --seed 1 --out "$out/runs" --name gpucheck-graph --quiet --no-plots >"$out/train-graph.log" 2>&1; then
      x_sum=$(ls -d "$out"/runs/*gpucheck-graph* 2>/dev/null | tail -1)/summary.csv
      say "number: graph wall_s=$(col "$x_sum" wall_s) test_accuracy=$(col "$x_sum" test_accuracy) (plain cuda wall_s=$(col "$g_sum" wall_s))"
      check graph pass "2000 steps replayed from one captured step"
    else
      check graph fail "see train-graph.log"
    fi
  fi
fi

# ---------------------------------------------------------------- the cnn on cuda and cudnn beside cpu
step_ms() { awk -v w="$(col "$1" wall_s)" -v s="$(col "$1" steps)" 'BEGIN { if (s > 0) printf "%.3f", 1e3 * w / s }'; }
if [ $gpu = 0 ]; then check cnn skipped "no GPU"
elif [ -z "$data" ]; then check cnn fail "no data set in the bundle"
else
  cnn_train() { # backend -> its summary.csv, or nothing when the run failed
    "$here/bin/dmzbench" train --model cnn --backend "$1" --data "$data" --steps 300 --repeat 1 --seed 1 \
      --log-every 50 --out "$out/runs" --name "gpucheck-cnn-$1" --quiet --no-plots >"$out/train-cnn-$1.log" 2>&1 &&
      echo "$(ls -d "$out"/runs/*gpucheck-cnn-$1-* 2>/dev/null | tail -1)/summary.csv"
  }
  c_sum=$(cnn_train cpu)
  if [ -z "$c_sum" ] || [ ! -s "$c_sum" ]; then check cnn fail "the cpu run failed: see train-cnn-cpu.log"
  else
    for be in cuda cudnn; do
      g_sum=$(cnn_train $be)
      if [ -z "$g_sum" ] || [ ! -s "$g_sum" ]; then
        if [ $be = cudnn ] && grep -q "cannot run here" "$out/train-cnn-$be.log"; then
          check cnn-$be skipped "$(grep -m1 'cannot run here' "$out/train-cnn-$be.log" | cut -c1-200)"
        else check cnn-$be fail "see train-cnn-$be.log"; fi
        continue
      fi
      say "number: cnn step_ms cpu=$(step_ms "$c_sum") $be=$(step_ms "$g_sum"); test_accuracy cpu=$(col "$c_sum" test_accuracy) $be=$(col "$g_sum" test_accuracy)"
      line=$(awk -v ca="$(col "$c_sum" test_accuracy)" -v ga="$(col "$g_sum" test_accuracy)" \
                 -v cl="$(col "$c_sum" test_loss)" -v gl="$(col "$g_sum" test_loss)" 'BEGIN {
        da = ga - ca; if (da < 0) da = -da; dl = (gl - cl) / cl; if (dl < 0) dl = -dl
        printf "%s |accuracy diff| %.4f (<= 0.03), |test loss diff| %.1f%% (<= 15%%)", (da <= 0.03 && dl <= 0.15) ? "pass" : "fail", da, 100 * dl }')
      check cnn-$be "${line%% *}" "${line#* }"
    done
  fi
fi

# ---------------------------------------------------------------- PyTorch on the same GPU
torch_python() { # the first python that has torch with CUDA; each one's reason why not in peer-pytorch.log
  local cand why
  : >"$out/peer-pytorch.log"
  for cand in python3 /usr/bin/python3 python; do
    command -v $cand >/dev/null 2>&1 || continue
    if why=$($cand -c 'import numpy, torch; assert torch.cuda.is_available(), "torch " + torch.__version__ + " sees no CUDA device"' 2>&1); then
      echo $cand; return 0
    fi
    echo "$cand: $(echo "$why" | tail -1)" >>"$out/peer-pytorch.log"
  done
  return 1
}
if [ $gpu = 0 ]; then check peer-pytorch skipped "no GPU"
elif [ -z "$data" ]; then check peer-pytorch fail "no data set in the bundle"
elif ! py=$(torch_python); then
  check peer-pytorch skipped "no python here has PyTorch with CUDA: $(paste -sd';' "$out/peer-pytorch.log" | cut -c1-300)"
else
  ok=1
  peer() { # label, then pytorch_peer.py options
    local label=$1; shift
    $py "$here/peers/pytorch_peer.py" --dmzbench "$here/bin/dmzbench" --device cuda --data "$data" --repeat 2 \
      --out "$out/runs" "$@" >"$out/peer-$label.txt" 2>&1 || { ok=0; return; }
    say "number: $label: $(grep -m1 '^ratio:' "$out/peer-$label.txt" | cut -d' ' -f2-)"
  }
  peer mlp --model mlp --steps 2000 --dmzbench-args "--log-every 100"
  peer mlp-graph --model mlp --steps 2000 --dmzbench-args "--graph --log-every 100"
  peer cnn --model cnn --steps 200 --dmzbench-args "--log-every 50"
  if [ $ok = 1 ]; then check peer-pytorch pass "tables in peer-*.txt"; else check peer-pytorch fail "see peer-*.txt"; fi
fi

# ---------------------------------------------------------------- verdict
if [ $fails -gt 0 ]; then v=FAIL; elif [ $gpu = 0 ]; then v=NO-GPU; else v=PASS; fi
say "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "verdict: $v ($fails failed)"
mv "$tmp" "$verdict"
echo "gpu-check: verdict in $verdict"
[ $v != FAIL ]
