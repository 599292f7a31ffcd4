# plots/kernels.gp: where the GPU time goes, per kernel and memcpy (kernels.csv):
# total time over the run, longest first (at most 20), share of the timed total.
# Reads outdir/fig-kernels.csv; writes outdir/kernels.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

data = outdir.'/fig-kernels.csv'
stats data using "total_ms" nooutput
top = (STATS_max > 0) ? STATS_max * 1.2 : 1

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 600)
  set output fig_output('kernels', ext)
  set title "GPU time per kernel and memcpy (whole run)"
  set style fill solid 0.9 border rgb "white"
  set boxwidth 0.7
  set yrange [0:top]
  set ylabel "total time (ms)"
  set xtics rotate by -40 left font ",9"
  set bmargin 12
  set key off
  plot data using 0:"total_ms":xtic(1) with boxes lc rgb ours, \
       data using 0:"total_ms":(sprintf("%.1f%%", column("share_pct"))) with labels offset 0,0.7 font ",9"
  set output
}
