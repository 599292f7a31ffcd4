#!/usr/bin/env bash
# make bench-wan: mlp and cnn, sync and async-ps, across two emulated sites
# (dmzbench wan: network namespaces, htb rate, the user-space delay relay),
# over RTT x rate, with the alpha-beta model beside every point.
#
#   bench/wan_sweep.sh BUILD/dmzbench
#   WAN_FULL=1            the night's sweep: RTT {0.1,1,5,20,50} ms x rate {1,10} Gbit/s, mlp 2000 / cnn 200 steps
#   default (short)       RTT {0.1,5,20} ms x 10 Gbit/s, mlp 60 / cnn 6 steps: a few minutes
#   WAN_RTTS="0.1 1 5"    RTTs in ms       WAN_RATES="1 10"  rates in Gbit/s
#   WAN_MODELS="mlp cnn"  WAN_MODES="sync async-ps"
#   WAN_STEPS_MLP=N WAN_STEPS_CNN=N WAN_DATA=fashion-mnist|emnist-balanced|... WAN_PREFIX=dmzs
# One result directory per sweep: $DMZBENCH_RESULTS/wan-sweep-<stamp>/ with runs/ (every training
# run, its meta.json holding the emulated link under "wan"), probes/, points.csv, and what
# `dmzbench wan model` writes: sweep.csv, model_error.csv, table.txt, wan-sweep.png/svg.
# Layout: sync = rank 0 at siteA, rank 1 at siteB; async-ps = server and worker 1 at siteA,
# worker 2 at siteB (the paper's two nodes, the server beside one worker).
set -uo pipefail
bin=${1:?usage: bench/wan_sweep.sh path/to/dmzbench}
bin=$(readlink -f "$bin")
if [ "${WAN_FULL:-0}" = 1 ]; then
  rtts=${WAN_RTTS:-0.1 1 5 20 50} rates=${WAN_RATES:-1 10}
  steps_mlp=${WAN_STEPS_MLP:-2000} steps_cnn=${WAN_STEPS_CNN:-200}
else
  rtts=${WAN_RTTS:-0.1 5 20} rates=${WAN_RATES:-10}
  steps_mlp=${WAN_STEPS_MLP:-60} steps_cnn=${WAN_STEPS_CNN:-6}
fi
models=${WAN_MODELS:-mlp cnn} modes=${WAN_MODES:-sync async-ps}
data=${WAN_DATA:-fashion-mnist} prefix=${WAN_PREFIX:-dmzs}

why=""
[ "$(id -u)" = 0 ] || why="not root (network namespaces need it)"
command -v ip >/dev/null || why="no ip(8) (apt-get install iproute2)"
command -v tc >/dev/null || why="no tc(8) (apt-get install iproute2)"
command -v mpirun >/dev/null || why="no mpirun (apt-get install openmpi-bin)"
if [ -n "$why" ]; then echo "== bench-wan: cannot emulate sites: $why"; exit 2; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

stamp=$(date -u +%Y%m%dT%H%M%SZ)
sweep=$(readlink -f "${DMZBENCH_RESULTS:-results}")/wan-sweep-$stamp
mkdir -p "$sweep/runs" "$sweep/probes"
trap '"$bin" wan down --prefix "$prefix" --quiet' EXIT
trap 'echo "== bench-wan: interrupted"; exit 130' INT TERM
echo "model,mode,rtt_ms,rate_gbps,loss_pct,run_dir,probe_csv,single_dir,wan_json" >"$sweep/points.csv"
{
  echo "# dmzbench wan sweep $stamp: rtts(ms)=[$rtts] rates(Gbit/s)=[$rates] models=[$models] modes=[$modes]"
  echo "# steps: mlp $steps_mlp, cnn $steps_cnn; data $data; $(nproc) CPUs shared with other work (timings noisy)"
} | tee "$sweep/README.txt"

train_common=(--data "$data" --threads 1 --repeat 1 --warmup 2 --quiet --no-plots --no-probe --out "$sweep/runs")
steps_of() { [ "$1" = cnn ] && echo "$steps_cnn" || echo "$steps_mlp"; }
newest() { ls -1d "$sweep"/runs/*-"$1"-*/ 2>/dev/null | tail -1 | sed 's:/$::'; }

declare -A single
for m in $models; do
  echo "== single-rank compute time: $m, $(steps_of "$m") steps"
  "$bin" train --mode single --model "$m" --steps "$(steps_of "$m")" --name "wan-single-$m" "${train_common[@]}" ||
    { echo "== bench-wan FAILED: the single $m run"; exit 1; }
  single[$m]=$(newest "wan-single-$m")
done

n_points=0
for _ in $rates; do for _ in $rtts; do for _ in $models; do for _ in $modes; do n_points=$((n_points + 1)); done; done; done; done
k=0 t0=$(date +%s)
for rate in $rates; do
  for rtt in $rtts; do
    "$bin" wan up --prefix "$prefix" --rtt "${rtt}ms" --rate "${rate}gbit" --quiet ||
      { echo "== bench-wan FAILED: wan up rtt ${rtt} ms rate ${rate} Gbit/s"; exit 1; }
    eval "$("$bin" wan env --prefix "$prefix")"
    cp "$DMZBENCH_WAN_FILE" "$sweep/probes/wan-${rtt}ms-${rate}g.json"
    wanjson=$sweep/probes/wan-${rtt}ms-${rate}g.json
    A=(ip netns exec "$WAN_NS_siteA" env DMZBENCH_SITE=siteA "$bin")
    B=(ip netns exec "$WAN_NS_siteB" env DMZBENCH_SITE=siteB "$bin")
    MPI=(mpirun --oversubscribe --bind-to none $WAN_MPI_X)
    probe=$sweep/probes/probe-${rtt}ms-${rate}g.csv
    popt=(probe --max-bytes 16777216 --every-other-size --allreduce-floats 0 --csv "$probe")
    "${MPI[@]}" -np 1 "${A[@]}" "${popt[@]}" : -np 1 "${A[@]}" "${popt[@]}" : -np 1 "${B[@]}" "${popt[@]}" >"$probe.txt" 2>&1 ||
      { echo "== bench-wan FAILED: the probe at rtt ${rtt} ms (see $probe.txt)"; exit 1; }
    for m in $models; do
      for mode in $modes; do
        k=$((k + 1))
        name=wan-$m-$mode-${rtt}ms-${rate}g
        t=(train --mode "$mode" --model "$m" --steps "$(steps_of "$m")" --name "$name" "${train_common[@]}")
        if [ "$mode" = sync ]; then
          "${MPI[@]}" -np 1 "${A[@]}" "${t[@]}" : -np 1 "${B[@]}" "${t[@]}" >"$sweep/runs/$name.log" 2>&1
        else
          "${MPI[@]}" -np 1 "${A[@]}" "${t[@]}" : -np 1 "${A[@]}" "${t[@]}" : -np 1 "${B[@]}" "${t[@]}" >"$sweep/runs/$name.log" 2>&1
        fi
        rc=$?
        dir=$(newest "$name")
        if [ "$rc" -ne 0 ] || [ -z "$dir" ]; then
          echo "== bench-wan FAILED at $name (exit $rc); see $sweep/runs/$name.log"; tail -5 "$sweep/runs/$name.log"; exit 1
        fi
        echo "$m,$mode,$rtt,$rate,0,$dir,$probe,${single[$m]},$wanjson" >>"$sweep/points.csv"
        step=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} NR==2{printf "%.1f", 1000*$c["wall_s"]/$c["steps"]}' "$dir/summary.csv")
        el=$(( $(date +%s) - t0 ))
        printf '[%d/%d] %-4s %-8s rtt %5s ms  rate %3s Gbit/s  %8s ms/step   (%d s elapsed, about %d s left)\n' \
          "$k" "$n_points" "$m" "$mode" "$rtt" "$rate" "$step" "$el" $(( el * (n_points - k) / k ))
      done
    done
  done
done
"$bin" wan down --prefix "$prefix" --quiet
echo "== the alpha-beta model beside the measurements"
"$bin" wan model "$sweep" || { echo "== bench-wan: the model failed"; exit 1; }
echo "== done: $sweep/ (table.txt, sweep.csv, model_error.csv, wan-sweep.png)"
