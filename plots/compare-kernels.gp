# plots/compare-kernels.gp: per-kernel device time per step (kernels.csv, rank 0)
# of A beside B (grouped horizontal bars, log scale when the times differ by
# more than 100x), and each kernel's speedup A/B (> 1: faster on B).
# Reads outdir/fig-compare-kernels.csv and fig-compare-info.csv (dmzbench
# compare); writes outdir/compare-kernels.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
if (!exists("outdir")) outdir = '.'
load here.'style.gp'

data = outdir.'/fig-compare-kernels.csv'
info = outdir.'/fig-compare-info.csv'
a_label = 'A'; b_label = 'B'
stats info every ::0::0 using (a_label = strcol("a"), b_label = strcol("b"), 0) nooutput
n = 0; lo = 1e300; hi = 0; s_hi = 0; name_len = 10
low_of(m, a) = (a == a && a > 0 && a < m) ? a : m
high_of(m, a) = (a == a && a > m) ? a : m
stats data using (n = n + 1, name_len = high_of(name_len, strlen(strcol("kernel"))), \
                  lo = low_of(low_of(lo, column("a_ms")), column("b_ms")), \
                  hi = high_of(high_of(hi, column("a_ms")), column("b_ms")), \
                  s_hi = high_of(s_hi, column("speedup")), 0) nooutput
if (hi <= 0) { lo = 0.001; hi = 1 }
if (s_hi <= 0) { s_hi = 1 }
logx = (hi / lo > 100)
x0 = logx ? 10**floor(log10(lo / 1.5)) : 0
row(i) = n - 1 - i
h = 0.2
height = 160 + 46 * n
left = (name_len * 6.5 + 30) / 1200.0
left = (left > 0.38) ? 0.38 : left

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1200, height)
  set output fig_output('compare-kernels', ext)
  set multiplot title "Kernels per step (rank 0): ".a_label." vs ".b_label font ",13"
  set yrange [-0.7:n - 0.3]
  set ytics scale 0 font ",9"
  set grid noytics xtics lc rgb "#E0E0E0"
  set style fill solid 0.9 border rgb "#333333"
  set tmargin at screen 1 - 70.0 / height
  set bmargin at screen 55.0 / height
  set lmargin at screen left
  set rmargin at screen left + (0.95 - left) * 0.62
  set key top right font ",9"
  if (logx) {
    set logscale x 10
    set xrange [x0:10**ceil(log10(hi * 3))]
    set xlabel "ms per step, log scale"
  } else {
    unset logscale x
    set xrange [0:hi * 1.25]
    set xlabel "ms per step"
  }
  plot data using (x0):(row($0) + h):(x0):"a_ms":(row($0)):(row($0) + 2 * h):ytic(strcol("kernel")) \
         with boxxyerror lc rgb "#0072B2" title "A", \
       data using (x0):(row($0) - h):(x0):"b_ms":(row($0) - 2 * h):(row($0)) \
         with boxxyerror lc rgb "#E69F00" title "B"
  unset logscale x
  set lmargin at screen left + (0.95 - left) * 0.62 + 0.04
  set rmargin at screen 0.97
  set xrange [0:s_hi * 1.3]
  set format y ""
  set xlabel "speedup A/B (> 1: B faster)"
  set arrow 1 from 1, graph 0 to 1, graph 1 nohead lc rgb "#888888" dt 2
  plot data using (0):(row($0)):(0):"speedup":(row($0) - 0.3):(row($0) + 0.3) \
         with boxxyerror lc rgb "#009E73" notitle, \
       data using "speedup":(row($0)):(sprintf("%.2fx", column("speedup"))) with labels left offset 0.6,0 font ",9" notitle
  unset arrow 1
  unset multiplot
  set format y "%g"
  set output
}
