# plots/gpu.gp: the GPU timeline of one run (NVML samples, gpu.csv): power, SM
# clock, GPU/memory utilisation and memory used over time, one line per rank
# and device; dashed lines where each repetition's measured steps begin and end.
# Reads outdir/fig-gpu.csv, fig-gpu-series.csv, fig-gpu-reps.csv (written by
# dmzbench report); writes outdir/gpu.{png,svg}.
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
load here.'style.gp'

data = outdir.'/fig-gpu.csv'
series = outdir.'/fig-gpu-series.csv'
reps = outdir.'/fig-gpu-reps.csv'
labels = ''
stats series using (labels = labels.strcol("label")." ", 0) nooutput
n_series = STATS_records
label(i) = word(labels, int(i) + 1)
stats reps using 1 nooutput
n_reps = STATS_records

array panel_col[4] = ["power_w", "sm_clock_mhz", "gpu_util_pct", "mem_used_gib"]
array panel_title[4] = ["power (W)", "SM clock (MHz)", "GPU utilisation (%)", "memory used (GiB)"]

do for [ext in "png svg"] {
  eval fig_terminal(ext, 1000, 900)
  set output fig_output('gpu', ext)
  set rmargin 24
  set lmargin 10
  set multiplot layout 4,1 title "GPU timeline (NVML samples; dashed: measured steps of each repetition)"
  do for [p = 1:4] {
    set yrange [*:*]
    stats data using (v = column(panel_col[p]), v == v ? v : 0) nooutput
    top = (STATS_max > 0) ? STATS_max * 1.15 : 1
    set yrange [0:top]
    set ylabel panel_title[p]
    set xlabel (p == 4) ? "time since the sampler started (s)" : ""
    if (p == 1 || p == 3) { set key outside right top } else { set key off }
    if (p == 3) {
      plot for [i = 0:n_series - 1] data using 2:($1 == i ? column("gpu_util_pct") : NaN) with lines lw 1.5 lc rgb colour(i) title label(i), \
           for [i = 0:n_series - 1] data using 2:($1 == i ? column("mem_util_pct") : NaN) with lines lw 1 dt 3 lc rgb colour(i) title label(i)." memory", \
           reps using 2:(0):(0):(top) with vectors nohead dt 2 lc rgb "#555555" notitle, \
           reps using 3:(0):(0):(top) with vectors nohead dt 2 lc rgb "#555555" notitle
    } else {
      plot for [i = 0:n_series - 1] data using 2:($1 == i ? column(panel_col[p]) : NaN) with lines lw 1.5 lc rgb colour(i) title label(i), \
           reps using 2:(0):(0):(top) with vectors nohead dt 2 lc rgb "#555555" notitle, \
           reps using 3:(0):(0):(top) with vectors nohead dt 2 lc rgb "#555555" notitle
    }
  }
  unset multiplot
  set output
}
