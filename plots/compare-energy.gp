# plots/compare-energy.gp: energy per training step and samples per joule of A
# and B, where power was recorded (summary.csv energy_j, else gpu.csv);
# whiskers: min and max over repetitions.
# Reads outdir/fig-compare-energy.csv and fig-compare-info.csv (dmzbench
# compare); writes outdir/compare-energy.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
if (!exists("outdir")) outdir = '.'
load here.'style.gp'

data = outdir.'/fig-compare-energy.csv'
high_of(m, a) = (a == a && a > m) ? a : m
hi = 0; s_hi = 0
stats data using (hi = high_of(high_of(hi, column("energy_median_j")), column("energy_max_j")), \
                  s_hi = high_of(high_of(s_hi, column("spj_median")), column("spj_max")), 0) nooutput
if (hi <= 0) { hi = 1 }
if (s_hi <= 0) { s_hi = 1 }
row(i) = 1 - i
pal(i) = (int(i) == 0) ? 0x0072B2 : 0xE69F00
half = 0.3

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1100, 360)
  set output fig_output('compare-energy', ext)
  set multiplot title "Energy: A vs B (median over repetitions; whiskers min-max)" font ",13"
  set yrange [-0.6:1.6]
  set ytics scale 0 font ",10"
  set grid noytics xtics lc rgb "#E0E0E0"
  set style fill solid 0.9 border rgb "#333333"
  set tmargin at screen 0.82
  set bmargin at screen 0.17
  set lmargin at screen 0.30
  set rmargin at screen 0.62
  set xrange [0:hi * 1.3]
  set xlabel "energy per step (J)"
  plot data using (0):(row($0)):(0):"energy_median_j":(row($0) - half):(row($0) + half):(pal($0)):ytic(strcol("label")) \
         with boxxyerror lc rgb variable notitle, \
       data using "energy_min_j":(row($0)):(column("energy_max_j") - column("energy_min_j")):(0) \
         with vectors heads size screen 0.006,90 lc rgb "#222222" lw 1.5 notitle, \
       data using (m = column("energy_median_j"), b = column("energy_max_j"), b == b && b > m ? b : m):(row($0)):(sprintf("%.3g J", column("energy_median_j"))) \
         with labels left offset 0.8,0 font ",10" notitle
  set lmargin at screen 0.66
  set rmargin at screen 0.97
  set format y ""
  set xrange [0:s_hi * 1.35]
  set xlabel "samples per joule"
  plot data using (0):(row($0)):(0):"spj_median":(row($0) - half):(row($0) + half):(pal($0)) \
         with boxxyerror lc rgb variable notitle, \
       data using "spj_min":(row($0)):(column("spj_max") - column("spj_min")):(0) \
         with vectors heads size screen 0.006,90 lc rgb "#222222" lw 1.5 notitle, \
       data using (m = column("spj_median"), b = column("spj_max"), b == b && b > m ? b : m):(row($0)):(sprintf("%.3g", column("spj_median"))) \
         with labels left offset 0.8,0 font ",10" notitle
  unset multiplot
  set format y "%g"
  set output
}
