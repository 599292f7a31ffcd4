# plots/learning.gp: learning curves of one run (2 x 2 panels).
#   top:    training loss and test accuracy against the step
#   bottom: the same against training time (elapsed_s: evaluation excluded)
# One colour per repetition. Loss: thin = every logged step, thick = moving
# average (exponential, over about 1/40 of the points). Accuracy: the
# evaluation steps only.
# Reads rundir/steps.csv and outdir/fig-info.csv; writes outdir/learning.{png,svg}.
# By hand: gnuplot -e "rundir='results/RUN'" plots/learning.gp
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

steps = rundir.'/steps.csv'
info = outdir.'/fig-info.csv'
run_name = 'run'; run_config = ''
stats info every ::0::0 using (run_name = strcol("run"), run_config = strcol("config"), 0) nooutput

# repetitions, points per repetition
stats steps using "rep" nooutput
rep_lo = int(STATS_min); rep_hi = int(STATS_max); n_points = STATS_records / (rep_hi - rep_lo + 1)
# the evaluation rows alone (rows with NA are left out), as rep step elapsed_s accuracy
set table $eval
plot steps using "rep":"step":"elapsed_s":"test_accuracy" with table
unset table
acc_max = -1
stats steps using (v = column("test_accuracy"), acc_max = (v == v && v > acc_max) ? v : acc_max, 0) nooutput
acc_scale = (acc_max <= 1) ? 100 : 1    # fractions are drawn as per cent

window = (n_points / 40 > 5) ? n_points / 40 : 5
alpha = 2.0 / (window + 1)
ema_rep = -1; ema_val = 0
ema(r, y) = (ema_rep != r ? (ema_rep = r, ema_val = y) : (ema_val = ema_val + alpha * (y - ema_val)), ema_val)

loss_label = "training loss (cross-entropy, sum over batch)"
acc_label = "test accuracy (%)"

# loss_panel(x column): raw per rep (faint), then its moving average
loss_panel = 'ema_rep = -1; \
  plot for [r = rep_lo:rep_hi] steps using x_col:(column("rep") == r ? column("loss") : NaN) \
         with lines lw 0.8 lc rgb faint(r - rep_lo) notitle, \
       for [r = rep_lo:rep_hi] steps using x_col:(column("rep") == r ? ema(r, column("loss")) : NaN) \
         with lines lw 2.2 lc rgb colour(r - rep_lo) title sprintf("rep %d", r)'
# acc_panel(x_field: 2 = step, 3 = elapsed_s in $eval)
acc_panel = 'set datafile separator whitespace; set datafile nocolumnheaders; \
  if (acc_max >= 0) { \
    plot for [r = rep_lo:rep_hi] $eval using x_field:($1 == r ? acc_scale * $4 : NaN) \
      with linespoints lw 1.8 pt 7 ps 0.7 lc rgb colour(r - rep_lo) title sprintf("rep %d", r) \
  } else { \
    set label 9 "no evaluation in this run" at graph 0.5, graph 0.5 center; \
    set xrange [0:1]; set yrange [0:100]; plot 1/0 notitle; unset label 9; set xrange [0:*] \
  }; \
  set datafile separator ","; set datafile columnheaders'

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1200, 820)
  set output fig_output('learning', ext)
  set multiplot layout 2,2 title sprintf("Learning curves: %s  (%s)", run_name, run_config) font ",14" \
      margins 0.08, 0.98, 0.08, 0.90 spacing 0.09, 0.12
  set xrange [0:*]
  set xlabel "step"
  set key top right
  set ylabel loss_label
  set yrange [0:*]
  x_col = "step"
  eval loss_panel
  set key bottom right
  set ylabel acc_label
  set yrange [0:*]
  x_field = 2
  eval acc_panel
  set xlabel "training time (s, evaluation excluded)"
  set key top right
  set ylabel loss_label
  set yrange [0:*]
  x_col = "elapsed_s"
  eval loss_panel
  set key bottom right
  set ylabel acc_label
  set yrange [0:*]
  x_field = 3
  eval acc_panel
  unset multiplot
  set output
}
