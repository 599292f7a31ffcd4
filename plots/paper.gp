# plots/paper.gp: the paper's figure. Bars: the seed paper's wall time for
# 2000 steps on one node and across two sites (grey), and this run's median
# wall time with min-max whiskers (blue); the value is printed over each bar.
# The y axis turns logarithmic when the bars differ by more than 100x.
# Reads outdir/fig-paper.csv (dmzbench report writes it from summary.csv and
# results/reference/paper.csv); writes outdir/paper.{png,svg}.
# By hand: gnuplot -e "rundir='results/RUN'" plots/paper.gp
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

data = outdir.'/fig-paper.csv'
note = ''
stats data using (strcol("source") eq "dmzbench" ? (note = strcol("note"), 0) : 0) nooutput
# smallest and largest value drawn, whiskers included
lo = 1e300; hi = 0; n_bars = 0
low_of(m, a) = (a == a && a < m) ? a : m
stats data using (n_bars = n_bars + 1, m = column("median_s"), a = column("min_s"), b = column("max_s"), \
                  lo = (m == m && m > 0) ? low_of(low_of(lo, m), a) : lo, \
                  hi = (m == m && m > hi) ? m : hi, hi = (b == b && b > hi) ? b : hi, 0) nooutput
if (hi <= 0) { lo = 1; hi = 10 }
logy = (hi / lo > 100)

# the note is "ours | the paper's": one line each, or it runs off the page
cut = strstrt(note, "|")
note_ours = cut ? note[1:cut - 1] : note
note_paper = cut ? note[cut + 1:] : ''

bar_colour(s) = (s eq "paper") ? 0x8C8C8C : 0x0072B2
seconds(v) = (v >= 100) ? sprintf("%.0f s", v) : sprintf("%.3g s", v)
label_y(m, b) = (b == b && b > m) ? b : m

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 620)
  set output fig_output('paper', ext)
  set label 1 "Training time: the paper (Hong et al., 2021) and dmzbench" at screen 0.5, screen 0.955 center font ",14"
  set label 2 note_ours at screen 0.5, screen 0.912 center font ",10" tc rgb "#444444"
  set label 3 note_paper at screen 0.5, screen 0.882 center font ",10" tc rgb "#444444"
  set tmargin at screen 0.84
  set bmargin 4.5
  set style fill solid 0.9 border rgb "#333333"
  set boxwidth 0.55
  set xrange [-0.6:n_bars - 0.4]
  set xtics scale 0 font ",10"
  unset xlabel
  if (logy) {
    set logscale y 10
    set yrange [10**floor(log10(lo / 1.5)):10**ceil(log10(hi * 3))]
    set format y "%g"
    set ylabel "wall time (s), log scale: the values differ by more than 100x"
  } else {
    unset logscale y
    set yrange [0:hi * 1.18]
    set ylabel "wall time (s)"
  }
  plot data using 0:"median_s":(bar_colour(strcol("source"))):xtic(strcol("label")."\n".strcol("detail")) \
         with boxes lc rgb variable notitle, \
       data using 0:"min_s":(0):(column("max_s") - column("min_s")) \
         with vectors heads size screen 0.008,90 lc rgb "#222222" lw 1.5 notitle, \
       data using 0:(label_y(column("median_s"), column("max_s"))):(seconds(column("median_s"))) \
         with labels offset 0,0.9 font ",11" notitle
  set output
}
