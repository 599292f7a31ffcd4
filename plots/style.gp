# plots/style.gp: the look shared by every dmzbench figure; each NAME.gp loads it.
# Parameters (gnuplot -e "rundir='...'; outdir='...'"), with defaults for running by hand:
#   rundir  the run directory (steps.csv, summary.csv)      default: .
#   outdir  where fig-*.csv are read and figures written   default: rundir/plots
#   suffix  inserted before the extension: dmzbench passes '.tmp' and renames afterwards
if (!exists("rundir")) rundir = '.'
if (!exists("outdir")) outdir = rundir.'/plots'
if (!exists("suffix")) suffix = ''

set datafile separator ','
set datafile missing 'NA'
set datafile columnheaders

# Okabe & Ito's colour-blind-safe palette; the paper's bars are grey.
array C[8] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
paper_grey = "#8C8C8C"
ours = C[1]
colour(i) = C[(int(i) % 8) + 1]
# the same colour, mostly transparent ("#AARRGGBB", AA = transparency)
faint(i) = "#A0".colour(i)[2:7]

# fig_terminal(ext, width, height): a command for eval; PNG through cairo, and SVG.
fig_font = "DejaVu Sans"
fig_terminal(ext, w, h) = (ext eq "png") \
  ? sprintf('set terminal pngcairo size %d,%d font "%s,11" linewidth 1.2 noenhanced background "white"', w, h, fig_font) \
  : sprintf('set terminal svg size %d,%d dynamic font "%s,11" linewidth 1.2 noenhanced background "white"', w, h, fig_font)
fig_output(name, ext) = outdir.'/'.name.suffix.'.'.ext

set border 3 lw 1 lc rgb "#333333"
set tics nomirror out scale 0.6
set grid ytics lc rgb "#E0E0E0" lw 1 dt 1
set key noenhanced samplen 2.5 spacing 1.15
set title font ",13"

