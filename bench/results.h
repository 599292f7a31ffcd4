/* bench/results.h — the result directory and its CSV files. Internal to bench/.
 *
 * A run writes into results/.<name>.partial/ and renames it to results/<name>/
 * when it ends, successful or not; `status` says which (and the error). */
#ifndef DMZ_RESULTS_H
#define DMZ_RESULTS_H

#include <stdbool.h>
#include <stdio.h>

#include "bench.h"
#include "common/csvio.h"
#include "train.h"

typedef struct dmz_rundir {
    char name[512];        /* <utc-stamp>-<experiment>-<host> */
    char root[4096];       /* results/ */
    char path[4096];       /* final results/<name> */
    char work[4096];       /* results/.<name>.partial while the run goes on */
    char started_utc[32];
} dmz_rundir;

typedef struct dmz_run_info {
    const char *run, *site, *model, *backend, *mode, *dataset;
    int ranks, steps, batch, threads;
} dmz_run_info;

int dmz_rundir_create(dmz_rundir *rd, const char *out_dir, const char *experiment, char *err);
/* fopen of a file inside the run directory being written. */
FILE *dmz_rundir_fopen(const dmz_rundir *rd, const char *file, char *err);
/* Writes `status` and moves the directory to its final name. */
int dmz_rundir_finish(dmz_rundir *rd, bool ok, const char *error, char *err);

/* "%.9g", or NA for NaN/inf (an unavailable or not-applicable value). */
void dmz_csv_number(FILE *f, double v);

/* The rows of one rank: its repetitions (gathered at rank 0 in cross-site runs). */
typedef struct dmz_rank_rows {
    int rank;
    const char *site, *host;
    const char *role;       /* "single", "sync", "server", "worker" */
    int batch;              /* samples this rank computed per step (0: the server) */
    double speed;           /* --rank-speed factor; NAN where it does not apply */
    const dmz_rep_result *reps;
    int n_reps;
} dmz_rank_rows;

/* summary.csv: one row per rank x repetition. bytes_sent counts what the
 * collective sends, busbw_factor x size for the all-reduce (0: point to point). */
int dmz_write_summary_csv(const dmz_rundir *rd, const dmz_run_info *info, const dmz_rank_rows *ranks, int n_ranks,
                          const char *const *statuses, double busbw_factor, char *err);
int dmz_write_steps_csv(const dmz_rundir *rd, const dmz_rank_rows *ranks, int n_ranks, int log_every, char *err);
/* net.csv: one row per exchange (every log_every-th step): size, seconds, algbw, busbw. */
int dmz_write_net_csv(const dmz_rundir *rd, const dmz_rank_rows *ranks, int n_ranks, const char *op,
                      double size_bytes, double busbw_factor, int log_every, char *err);

/* Median, min, max, mean and sample stddev of one metric over repetitions. */
typedef struct dmz_stat {
    const char *metric;
    int n;
    double median, min, max, mean, stddev;
} dmz_stat;
void dmz_stat_compute(dmz_stat *st, const char *metric, const double *values, int n);
int dmz_write_stats_csv(const dmz_rundir *rd, const dmz_stat *stats, int n_stats, char *err);

/* Appends one row to <root>/index.csv (header when new), under a lock, atomically. */
int dmz_index_append(const dmz_rundir *rd, const dmz_run_info *info, const char *status, int reps,
                     const dmz_stat *wall, const dmz_stat *rate, const dmz_stat *acc, char *err);

#endif
