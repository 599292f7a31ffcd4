#!/usr/bin/env bash
# make bench: the paper's experiment end to end (Hong et al., KISTI 2021):
# the mlp on EMNIST Balanced, 2000 global steps of batch 100, Adam 0.01,
# repeated, as the paper's table has it:
#   1 site    async-ps, one worker + the parameter server (the paper's single node)
#   2 sites   async-ps, two workers + the server (the paper's cross-site run)
#   2 sites   sync, two ranks all-reducing gradients every step
# then the figures beside the paper's 2993 s (1 node) and 2179 s (2 sites).
#
# On one machine the "sites" are processes talking TCP through the kernel
# (--mca btl tcp,self: the bytes cross a network stack, not shared memory).
# As root with ip and tc, they run in two emulated sites (dmzbench wan: network
# namespaces, htb rate, the user-space delay relay), by default 10 Gbit/s and
# 1 ms RTT (PAPER_WAN_RATE=10gbit PAPER_WAN_RTT=1ms; PAPER_WAN=0: plain loopback);
# otherwise over plain loopback, and the table says which and why.
# Each worker gets its own core and one thread; the server gets a core of its
# own when the machine has one, else it shares the last worker's (it sleeps
# between pushes instead of busy-polling).
#
#   bench/paper.sh BUILD/dmzbench [train options...]
#   PAPER_SERIES="single ps1 ps2 sync2" picks series (single: --mode single, no MPI).
set -uo pipefail
bin=${1:?usage: bench/paper.sh path/to/dmzbench [train options]}
shift
out=${DMZBENCH_RESULTS:-results}
series=${PAPER_SERIES:-ps1 ps2 sync2}

echo "== dmzbench bench: the paper's experiment, in its three configurations; train options: $*"
echo "== step 1/3: data"
if ! "$bin" fetch --dataset emnist-balanced; then
  echo "   EMNIST Balanced could not be fetched (see above): training falls back to"
  echo "   Fashion-MNIST from the Debian package and says so in every result."
fi

if ! command -v mpirun >/dev/null 2>&1; then
  echo "== no mpirun (apt-get install openmpi-bin): only the single-process series runs"
  series=single
fi
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# the cross-site series across two emulated sites, when this machine can make them
wan_note="plain loopback TCP"
wan_rate=${PAPER_WAN_RATE:-10gbit} wan_rtt=${PAPER_WAN_RTT:-1ms}
ns_a="" ns_b=""
if [ "${PAPER_WAN:-1}" = 0 ]; then wan_note="plain loopback TCP (PAPER_WAN=0)"
elif [ "$(id -u)" != 0 ]; then wan_note="plain loopback TCP (not root: no emulated sites)"
elif ! command -v ip >/dev/null || ! command -v tc >/dev/null; then wan_note="plain loopback TCP (no ip/tc: apt-get install iproute2)"
elif [ "$series" = single ]; then wan_note="no cross-site series"
elif "$bin" wan up --prefix dmzp --rtt "$wan_rtt" --rate "$wan_rate"; then
  trap '"$bin" wan down --prefix dmzp --quiet' EXIT
  eval "$("$bin" wan env --prefix dmzp)"
  ns_a="ip netns exec $WAN_NS_siteA" ns_b="ip netns exec $WAN_NS_siteB"
  relay=$(sed -n 's/.*"max_gbps":[[:space:]]*\([0-9.]*\).*/\1/p' "$DMZBENCH_WAN_FILE" | head -1)
  wan_note="two emulated sites (dmzbench wan): $wan_rate, RTT $wan_rtt; delay relay measured at ${relay:-?} Gbit/s on its own"
else
  wan_note="plain loopback TCP (dmzbench wan up failed: see above)"
fi
echo "== cross-site series: $wan_note"

cores=$(nproc)
core() { echo $(( $1 % cores )); }
# the server: its own core when there is one beyond the two workers
server_core=$(( cores >= 3 ? 2 : cores - 1 ))
# over plain loopback, loopback only: another interface of this machine must not take part
loopback_only=(--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
if [ -n "${WAN_MPI_X:-}" ]; then loopback_only=(); fi
MPIRUN=(mpirun --oversubscribe --bind-to none --mca btl tcp,self "${loopback_only[@]}" ${WAN_MPI_X:-})
# one MPMD block per rank: its site name and its core (and, across emulated sites,
# its namespace: site-b in the second site, the server and site-a in the first)
rank() { # rank SITE CORE -> "-np 1 [ip netns exec NS] env DMZBENCH_SITE=SITE taskset -c CORE BIN train"
  local ns=$ns_a
  [ "$1" = site-b ] && ns=$ns_b
  printf -- '-np 1 %s env DMZBENCH_SITE=%s taskset -c %s %s train' "$ns" "$1" "$2" "$bin"
}

runs=()
run_series() { # run_series NAME DESCRIPTION COMMAND...
  local name=$1 what=$2
  shift 2
  echo "== $name: $what"
  local before
  before=$(ls -1d "$out"/*/ 2>/dev/null | sort)
  "$@"
  local rc=$?
  local dir
  dir=$(comm -13 <(echo "$before") <(ls -1d "$out"/*/ 2>/dev/null | sort) | tail -1)
  if [ "$rc" -ne 0 ] || [ -z "$dir" ]; then
    echo "== bench FAILED in $name (exit $rc); see ${dir:-$out/}status"
    exit "${rc/#0/1}"
  fi
  runs+=("${dir%/}")
}

train_args=(--out "$out" --threads 1 "$@")
echo "== step 2/3: train ($cores cores here: each worker 1 core and 1 thread; server on core $server_core)"
for s in $series; do
  case $s in
  single)
    run_series single "one process, no MPI (core 0)" \
      taskset -c 0 "$bin" train --mode single --name paper-single "${train_args[@]}" ;;
  ps1)
    run_series ps1 "1 site: async-ps, 1 worker (core 0) + server (core $server_core)" \
      "${MPIRUN[@]}" $(rank ps "$server_core") --mode async-ps --name paper-1site-async-ps "${train_args[@]}" \
      : $(rank site-a 0) --mode async-ps --name paper-1site-async-ps "${train_args[@]}" ;;
  ps2)
    run_series ps2 "2 sites: async-ps, 2 workers (cores 0, $(core 1)) + server (core $server_core)" \
      "${MPIRUN[@]}" $(rank ps "$server_core") --mode async-ps --name paper-2sites-async-ps "${train_args[@]}" \
      : $(rank site-a 0) --mode async-ps --name paper-2sites-async-ps "${train_args[@]}" \
      : $(rank site-b "$(core 1)") --mode async-ps --name paper-2sites-async-ps "${train_args[@]}" ;;
  sync2)
    run_series sync2 "2 sites: sync all-reduce, 2 ranks (cores 0, $(core 1)), batch 100 each" \
      "${MPIRUN[@]}" $(rank site-a 0) --mode sync --name paper-2sites-sync "${train_args[@]}" \
      : $(rank site-b "$(core 1)") --mode sync --name paper-2sites-sync "${train_args[@]}" ;;
  *) echo "unknown series '$s' in PAPER_SERIES"; exit 2 ;;
  esac
done

echo "== step 3/3: the paper figure and the comparison"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report="$out/bench-$stamp"
"$bin" report "${runs[@]}" --out "$report" || { echo "== report FAILED"; exit 1; }

# the table: our wall times and speedups beside the paper's
median_of() { awk -F, '$1 == "wall_s" { print $3 }' "$1/stats.csv"; }
rate_of() { awk -F, '$1 == "samples_per_s" { print $3 }' "$1/stats.csv"; }
{
  printf '# %-24s %12s %14s %10s %10s\n' series wall_s samples_per_s speedup paper
  base_wall="" base_rate=""
  for i in "${!runs[@]}"; do
    d=${runs[$i]}
    w=$(median_of "$d") r=$(rate_of "$d")
    name=$(basename "$d" | sed 's/^[0-9TZ]*-//')
    [ -z "$base_wall" ] && base_wall=$w base_rate=$r
    speed=$(awk -v a="$base_wall" -v b="$w" 'BEGIN { printf "%.2fx", a / b }')
    paper="-"
    case $name in *2sites-async-ps*) paper="1.37x (2993 s -> 2179 s)" ;; *1site*) paper="2993 s" ;; esac
    printf '  %-24s %12.3f %14.0f %10s %s\n' "${name%%-$(hostname -s)*}" "$w" "$r" "$speed" "$paper"
  done
  echo "# cross-site series: $wan_note"
  echo "# speedup: the first series' wall time over this one's (2000 global steps each; sync does"
  echo "# 2000 steps on every rank, so it trains on twice the samples: compare samples_per_s)"
} | tee "$report/paper-table.txt"
echo "== done: runs ${runs[*]}"
echo "== figures: $report/ (open $report/report.html)"
