# plots/breakdown.gp: where the time of each repetition goes, on rank 0.
# Stacked bars: data loading, forward, backward, communication, optimizer update,
# and "other" (wall time outside those phases). A black line marks the wall time,
# printed on top: phases that overlap (communication hidden behind compute) can
# stack higher than it.
# Reads outdir/fig-breakdown.csv (written by dmzbench report from summary.csv)
# and outdir/fig-info.csv; writes outdir/breakdown.{png,svg}.
# By hand: gnuplot -e "rundir='results/RUN'" plots/breakdown.gp
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

data = outdir.'/fig-breakdown.csv'
info = outdir.'/fig-info.csv'
run_name = 'run'; run_config = ''
stats info every ::0::0 using (run_name = strcol("run"), run_config = strcol("config"), 0) nooutput
stats data using "top_s" nooutput
top = (STATS_max > 0) ? STATS_max : 1
n_reps = STATS_records

array phase[6] = ["data_s", "fwd_s", "bwd_s", "comm_s", "update_s", "other_s"]
array phase_title[6] = ["data loading", "forward", "backward", "communication", "optimizer update", "other (wall - phases)"]
array phase_colour[6] = ["#56B4E9", "#0072B2", "#009E73", "#D55E00", "#E69F00", "#BDBDBD"]
seconds(v) = (v >= 100) ? sprintf("%.0f s", v) : sprintf("%.3g s", v)

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 600)
  set output fig_output('breakdown', ext)
  set title sprintf("Where the time goes: %s\n%s, rank 0", run_name, run_config)
  set style data histograms
  set style histogram rowstacked gap 1
  set style fill solid 0.95 border rgb "white"
  bw = (n_reps > 1 ? 0.6 : 0.35)
  set boxwidth bw
  set yrange [0:top * 1.12]
  set xrange [-0.7:n_reps - 0.3]
  set ylabel "time per repetition (s)"
  set xlabel "repetition"
  set key outside right center vertical reverse Left
  set rmargin 26
  plot for [i = 1:6] data using (column(phase[i])):xtic(strcol("rep")) title phase_title[i] lc rgb phase_colour[i], \
       data using ($0 - bw / 2 - 0.03):"wall_s":(bw + 0.06):(0) with vectors nohead lw 2.5 lc rgb "#000000" title "wall time", \
       data using 0:"top_s":(w = column("wall_s"), w == w ? "wall ".seconds(w) : "wall NA") with labels offset 0,0.8 font ",10" notitle
  set output
}
