# plots/compare-time.gp: two runs (A, B) side by side: median wall time and
# throughput, whiskers min and max over repetitions; the title says B's speedup.
# Reads outdir/fig-compare-time.csv and outdir/fig-compare-info.csv (written by
# dmzbench compare); writes outdir/compare-time.{png,svg}.
# By hand: gnuplot -e "outdir='DIR'" plots/compare-time.gp
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
if (!exists("outdir")) outdir = '.'
load here.'style.gp'

data = outdir.'/fig-compare-time.csv'
info = outdir.'/fig-compare-info.csv'
title = ''; warning = ''
stats info every ::0::0 using (title = strcol("title"), warning = strcol("warning"), 0) nooutput
high_of(m, a) = (a == a && a > m) ? a : m
hi = 0; s_hi = 0
stats data using (hi = high_of(high_of(hi, column("wall_median_s")), column("wall_max_s")), \
                  s_hi = high_of(high_of(s_hi, column("sps_median")), column("sps_max")), 0) nooutput
if (hi <= 0) { hi = 1 }
if (s_hi <= 0) { s_hi = 1 }
num_text(v, unit) = (v >= 100) ? sprintf("%.0f%s", v, unit) : sprintf("%.3g%s", v, unit)
row(i) = 1 - i
pal(i) = (int(i) == 0) ? 0x0072B2 : 0xE69F00   # A blue, B orange (style.gp C[1], C[2])
half = 0.3

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1100, 380)
  set output fig_output('compare-time', ext)
  set multiplot title "dmzbench compare: ".title.(warning ne 'none' && warning ne '' ? "\n".warning : '') font ",13"
  set yrange [-0.6:1.6]
  set ytics scale 0 font ",10"
  set grid noytics xtics lc rgb "#E0E0E0"
  set style fill solid 0.9 border rgb "#333333"
  set tmargin at screen 0.80
  set bmargin at screen 0.16
  set lmargin at screen 0.30
  set rmargin at screen 0.62
  set xrange [0:hi * 1.3]
  set xlabel "wall time (s), median of repetitions"
  plot data using (0):(row($0)):(0):"wall_median_s":(row($0) - half):(row($0) + half):(pal($0)):ytic(strcol("label")) \
         with boxxyerror lc rgb variable notitle, \
       data using "wall_min_s":(row($0)):(column("wall_max_s") - column("wall_min_s")):(0) \
         with vectors heads size screen 0.006,90 lc rgb "#222222" lw 1.5 notitle, \
       data using (m = column("wall_median_s"), b = column("wall_max_s"), b == b && b > m ? b : m):(row($0)):(num_text(column("wall_median_s"), " s")) \
         with labels left offset 0.8,0 font ",10" notitle
  set lmargin at screen 0.66
  set rmargin at screen 0.97
  set format y ""
  set xrange [0:s_hi * 1.35]
  set xlabel "throughput (samples/s, all ranks)"
  plot data using (0):(row($0)):(0):"sps_median":(row($0) - half):(row($0) + half):(pal($0)) \
         with boxxyerror lc rgb variable notitle, \
       data using "sps_min":(row($0)):(column("sps_max") - column("sps_min")):(0) \
         with vectors heads size screen 0.006,90 lc rgb "#222222" lw 1.5 notitle, \
       data using (m = column("sps_median"), b = column("sps_max"), b == b && b > m ? b : m):(row($0)):(num_text(column("sps_median"), "")) \
         with labels left offset 0.8,0 font ",10" notitle
  unset multiplot
  set format y "%g"
  set output
}
