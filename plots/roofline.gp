# plots/roofline.gp: each kernel's achieved GFLOP/s against its FLOP per byte,
# under each device's roofline min(peak FP32, intensity x peak bandwidth).
# Reads outdir/fig-roofline.csv and fig-roofline-devices.csv; writes outdir/roofline.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

data = outdir.'/fig-roofline.csv'
devs = outdir.'/fig-roofline-devices.csv'
stats devs using "peak_gflops" nooutput
n_dev = STATS_records
array pf[n_dev]
array pb[n_dev]
array dn[n_dev]
stats devs using (pf[int($0) + 1] = column("peak_gflops"), pb[int($0) + 1] = column("peak_gbps"), dn[int($0) + 1] = strcol("device"), 0) nooutput
roof(x, i) = (x * pb[i] < pf[i]) ? x * pb[i] : pf[i]

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 650)
  set output fig_output('roofline', ext)
  set title "Roofline: kernels placed under each device's peaks"
  set logscale xy
  set xrange [0.01:1000]
  set yrange [0.01:pf[1] * 3]
  set xlabel "arithmetic intensity (FLOP per byte)"
  set ylabel "achieved GFLOP/s"
  set grid xtics ytics
  set key outside right top
  set samples 400
  plot for [i = 1:n_dev] roof(x, i) with lines lw 2.5 lc rgb colour(i - 1) title dn[i], \
       data using "flop_per_byte":"gflops" with points pt 7 ps 1.2 lc rgb "#D55E00" title "kernels", \
       data using "flop_per_byte":"gflops":1 with labels offset 0.8,0.6 left font ",8" notitle
  set output
}
