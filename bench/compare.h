/* bench/compare.h — `dmzbench compare RUNDIR_A RUNDIR_B [--out DIR]` and
 * `dmzbench project RUNDIR --device NAME [--from NAME]`.
 *
 * compare: two runs side by side (wall time and speedup with spread, the
 * step-time breakdown, per-kernel time from kernels.csv, energy where power was
 * recorded, accuracy, what differs between them, and a warning when they are
 * not comparable: different data, model, steps or batch). Prints an aligned
 * table ('#' header lines) on stdout and writes OUT/compare.csv,
 * OUT/compare.html, OUT/fig-compare-*.csv and the figures
 * OUT/compare-{time,breakdown,kernels,energy}.{png,svg} (plots/compare-*.gp),
 * each drawn when its data exists and otherwise listed as skipped with the
 * reason. OUT defaults to compare-<A>-vs-<B> in the current directory. When
 * both runs ran on devices of the table, each run is also projected onto the
 * other's device and the projection shown beside the measurement.
 *
 * project: a roofline projection (bench/project.c) onto a device of
 * bench/devices.csv; prints it (every line labelled PROJECTION) and writes
 * OUT/project-<device>.csv (OUT defaults to RUNDIR/plots). An unknown device
 * exits 2 and lists the known ones.
 *
 * Both return DMZ_OK, DMZ_EXIT_USAGE (bad arguments or input files: err names
 * file, line and field) or DMZ_EXIT_FAIL (cannot write, gnuplot failed). */
#ifndef DMZ_BENCH_COMPARE_H
#define DMZ_BENCH_COMPARE_H

#include <stdbool.h>

typedef struct prj_options prj_options;

int dmz_compare(const char *run_a, const char *run_b, const char *out_dir, bool quiet,
                char *err /* DMZ_ERR_LEN */);
int dmz_compare_main(int argc, char **argv);

/* opt NULL: the defaults (3 us a kernel call fixed, efficiency 0.5 where assumed). */
int dmz_project(const char *run_dir, const char *device, const char *from, const char *out_dir,
                const prj_options *opt, bool quiet, char *err);
int dmz_project_main(int argc, char **argv);

#endif
