# plots/compare-breakdown.gp: where a step's time goes in A and in B (rank 0,
# median over repetitions, ms per step), stacked: data, forward, backward,
# communication, update and the rest of the step.
# Reads outdir/fig-compare-breakdown.csv and fig-compare-info.csv (dmzbench
# compare); writes outdir/compare-breakdown.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
if (!exists("outdir")) outdir = '.'
load here.'style.gp'

data = outdir.'/fig-compare-breakdown.csv'
info = outdir.'/fig-compare-info.csv'
a_label = 'A'; b_label = 'B'; title = ''
stats info every ::0::0 using (a_label = strcol("a"), b_label = strcol("b"), title = strcol("title"), 0) nooutput
stats data using "step_ms" nooutput
top = (STATS_max > 0) ? STATS_max : 1

array phase[6] = ["data_ms", "fwd_ms", "bwd_ms", "comm_ms", "update_ms", "other_ms"]
array phase_title[6] = ["data loading", "forward", "backward", "communication", "optimizer update", "other (step - phases)"]
array phase_colour[6] = ["#56B4E9", "#0072B2", "#009E73", "#D55E00", "#E69F00", "#BDBDBD"]
ms(v) = (v >= 100) ? sprintf("%.0f ms", v) : sprintf("%.3g ms", v)

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 560)
  set output fig_output('compare-breakdown', ext)
  set title sprintf("Step time, rank 0 (median over repetitions)\n%s   |   %s\n%s", a_label, b_label, title)
  set style data histograms
  set style histogram rowstacked gap 1
  set style fill solid 0.95 border rgb "white"
  set boxwidth 0.5
  set yrange [0:top * 1.15]
  set xrange [-0.7:1.7]
  set ylabel "time per step (ms)"
  set key outside right center vertical reverse Left
  set rmargin 26
  plot for [i = 1:6] data using (column(phase[i])):xtic(strcol("label")) title phase_title[i] lc rgb phase_colour[i], \
       data using 0:"step_ms":(ms(column("step_ms"))) with labels offset 0,0.8 font ",10" notitle
  set output
}
