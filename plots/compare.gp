# plots/compare.gp: several runs side by side (horizontal bars, one row per run).
# Left: median wall time with min-max whiskers, and the paper's two measurements
# (grey); log scale when the values differ by more than 100x.
# Right: median throughput (samples/s, sum over ranks) with min-max whiskers.
# Reads outdir/fig-compare.csv (written by dmzbench report); writes
# outdir/compare.{png,svg}.   By hand: gnuplot -e "outdir='DIR'" plots/compare.gp
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
if (!exists("outdir")) outdir = '.'
load here.'style.gp'

data = outdir.'/fig-compare.csv'
n = 0; name_len = 10
lo = 1e300; hi = 0; s_hi = 0
low_of(m, a) = (a == a && a < m) ? a : m
high_of(m, a) = (a == a && a > m) ? a : m
stats data using (n = n + 1, \
                  name_len = high_of(name_len, strlen(strcol("name"))), \
                  name_len = high_of(name_len, strlen(strcol("config"))), \
                  m = column("wall_median_s"), lo = (m == m && m > 0) ? low_of(low_of(lo, m), column("wall_min_s")) : lo, \
                  hi = high_of(high_of(hi, m), column("wall_max_s")), \
                  s_hi = high_of(high_of(s_hi, column("sps_median")), column("sps_max")), 0) nooutput
if (hi <= 0) { lo = 1; hi = 10 }
if (s_hi <= 0) { s_hi = 1 }
logx = (hi / lo > 100)
x0 = logx ? 10**floor(log10(lo / 1.5)) : 0

bar_colour(s) = (s eq "paper") ? 0x8C8C8C : 0x0072B2
num_text(v, unit) = (v >= 100) ? sprintf("%.0f%s", v, unit) : sprintf("%.3g%s", v, unit)
row(i) = n - 1 - i          # first run at the top
half = 0.32
width = 1200
height = 150 + 70 * n
left = (name_len * 7.0 + 30) / width
left = (left > 0.40) ? 0.40 : left

do for [ext in "png svg"] {
  eval fig_terminal(ext, width, height)
  set output fig_output('compare', ext)
  set multiplot title "dmzbench runs compared (median, whiskers: min-max over repetitions)" font ",14"
  set yrange [-0.6:n - 0.4]
  set ytics scale 0 font ",10"
  set grid noytics xtics lc rgb "#E0E0E0"
  set tmargin at screen 1 - 60.0 / height
  set bmargin at screen 55.0 / height
  set style fill solid 0.9 border rgb "#333333"

  set lmargin at screen left
  set rmargin at screen left + (0.95 - left) * 0.55
  if (logx) {
    set logscale x 10
    set xrange [x0:10**ceil(log10(hi * 4))]
    set format x "%g"
    set xlabel "wall time (s), log scale"
  } else {
    unset logscale x
    set xrange [0:hi * 1.25]
    set xlabel "wall time (s)"
  }
  plot data using (x0):(row($0)):(x0):"wall_median_s":(row($0) - half):(row($0) + half):(bar_colour(strcol("source"))):ytic(strcol("name")."\n".strcol("config")) \
         with boxxyerror lc rgb variable notitle, \
       data using "wall_min_s":(row($0)):(column("wall_max_s") - column("wall_min_s")):(0) \
         with vectors heads size screen 0.006,90 lc rgb "#222222" lw 1.5 notitle, \
       data using (m = column("wall_median_s"), b = column("wall_max_s"), b == b && b > m ? b : m):(row($0)):(num_text(column("wall_median_s"), " s")) \
         with labels left offset 0.8,0 font ",10" notitle

  unset logscale x
  set lmargin at screen left + (0.95 - left) * 0.55 + 0.04
  set rmargin at screen 0.97
  set xrange [0:s_hi * 1.3]
  set format x "%g"
  set format y ""
  set xlabel "throughput (samples/s, all ranks)"
  plot data using (0):(row($0)):(0):"sps_median":(row($0) - half):(row($0) + half):(bar_colour(strcol("source"))) \
         with boxxyerror lc rgb variable notitle, \
       data using "sps_min":(row($0)):(column("sps_max") - column("sps_min")):(0) \
         with vectors heads size screen 0.006,90 lc rgb "#222222" lw 1.5 notitle, \
       data using (m = column("sps_median"), b = column("sps_max"), b == b && b > m ? b : m):(row($0)):(num_text(column("sps_median"), "")) \
         with labels left offset 0.8,0 font ",10" notitle
  unset multiplot
  set format y "%g"
  set output
}
