# plots/papi.gp: CPU counters per phase (papi.csv): each PAPI event per training
# sample in the data, forward, backward and update phases, rank 0, mean over
# repetitions; log scale (instructions and misses differ by orders of magnitude).
# Reads outdir/fig-papi.csv; writes outdir/papi.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

data = outdir.'/fig-papi.csv'

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 600)
  set output fig_output('papi', ext)
  set title "CPU counters per sample, by phase (PAPI, rank 0)"
  set style data histograms
  set style histogram clustered gap 1
  set style fill solid 0.9 border rgb "white"
  set logscale y
  set ylabel "count per sample"
  set key outside right top
  plot for [i = 2:*] data using i:xtic(1) title columnhead(i) lc rgb colour(i - 2)
  set output
}
