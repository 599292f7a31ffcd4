/* bench/report.h — `dmzbench report RUNDIR... [--out DIR]`: figures (gnuplot)
 * and a self-contained HTML page for one run or a comparison of several.
 *
 * Reads what the runner wrote into each run directory: summary.csv (required),
 * steps.csv, stats.csv, meta.json and log.txt (optional: the page says what is
 * missing), and the paper's reference numbers (results/reference/paper.csv).
 *
 * One run:  OUT (default RUNDIR/plots) gets learning, breakdown and paper
 *           figures (.png and .svg), the data behind them (fig-*.csv) and
 *           report.html.
 * Several:  OUT (required) gets compare.{png,svg}, fig-compare.csv and a
 *           report.html with one row per run; each run's own page and figures
 *           go to OUT/<run name>/.
 *
 * Figures are drawn by gnuplot, run without a shell, with the scripts in
 * $DMZBENCH_PLOTS_DIR (default DMZ_SOURCE_DIR/plots); the paper's numbers come
 * from $DMZBENCH_REFERENCE_DIR/paper.csv (default DMZ_SOURCE_DIR/results/reference).
 * Without gnuplot on PATH the page is still written, says that the figures
 * were skipped, and the call succeeds. Every file is written under a
 * temporary name and renamed into place.
 *
 * Returns DMZ_OK, DMZ_EXIT_USAGE (missing directory or file, malformed CSV or
 * JSON: err names file, line and column; a path holding a single quote) or
 * DMZ_EXIT_FAIL (cannot write, gnuplot failed: err holds its stderr). Unless
 * quiet, prints the paths of the page and figures on stdout. */
#ifndef DMZ_BENCH_REPORT_H
#define DMZ_BENCH_REPORT_H

#include <stdbool.h>

int dmz_report(const char *const *run_dirs, int n_runs, const char *out_dir, bool quiet,
               char *err /* DMZ_ERR_LEN */);

/* `dmzbench report RUNDIR... [--out DIR]` (argv[0] is "report"): any number of
 * run directories; returns the exit code, the error on stderr. */
int dmz_report_main(int argc, char **argv);

#endif
