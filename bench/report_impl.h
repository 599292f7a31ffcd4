/* bench/report_impl.h — internals of the report module (bench/report*.c).
 * Not a public interface: other folders use bench/report.h only.
 *
 *   report_csv.c   CSV tables (libcsv) with file/line/column errors
 *   report_run.c   one run directory: meta.json, summary aggregates, paper.csv
 *   report_plot.c  data files for gnuplot, running gnuplot, renaming outputs
 *   report_html.c  report.html for one run and for several
 *   report.c       dmz_report: checks, directories, order of work */
#ifndef DMZ_BENCH_REPORT_IMPL_H
#define DMZ_BENCH_REPORT_IMPL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/dmz.h"

#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif

#define RPT_PATH_LEN 4096

/* ------------------------------------------------------------ CSV tables */
typedef struct rpt_table {
    char path[RPT_PATH_LEN];
    int ncols;
    char **header;  /* ncols names */
    size_t nrows;
    char **cells;   /* nrows x ncols, row-major */
    long *line;     /* physical line (1-based) where each row ended */
} rpt_table;

/* Reads a CSV file with a header row; every row must have as many fields as
 * the header. DMZ_EXIT_USAGE names the file (and line) when it is missing or
 * malformed. */
int rpt_table_read(const char *path, rpt_table *t, char *err);
void rpt_table_free(rpt_table *t);
int rpt_table_col(const rpt_table *t, const char *name); /* -1 when absent */
/* The cell's text; "NA" when col < 0. */
const char *rpt_table_cell(const rpt_table *t, size_t row, int col);
/* The cell as a number: NAN for NA, an empty cell or an absent column;
 * DMZ_EXIT_USAGE naming file, line and column when it is not a number. */
int rpt_table_num(const rpt_table *t, size_t row, int col, double *out, char *err);
/* Every listed column must be in the header (DMZ_EXIT_USAGE otherwise). */
int rpt_table_require(const rpt_table *t, const char *const *names, char *err);
/* Every cell of the listed columns that exist must be a number or NA. */
int rpt_table_check_numeric(const rpt_table *t, const char *const *names, char *err);

/* ------------------------------------------------------------ one run */
enum { RPT_PHASE_DATA, RPT_PHASE_FWD, RPT_PHASE_BWD, RPT_PHASE_COMM, RPT_PHASE_UPDATE,
       RPT_NPHASES };
extern const char *const rpt_phase_cols[RPT_NPHASES]; /* "data_s", ... */

typedef struct rpt_spread {
    int n;  /* values that were not NA */
    double median, min, max;  /* NAN when n == 0 */
} rpt_spread;

/* One repetition, over all its ranks. */
typedef struct rpt_rep {
    double rep;
    double wall_s;         /* slowest rank's wall_s */
    double samples_per_s;  /* sum over ranks */
    double test_accuracy;  /* rank 0 */
    double phase_s[RPT_NPHASES]; /* rank 0; NAN when NA */
} rpt_rep;

typedef struct rpt_run {
    char dir[RPT_PATH_LEN];
    char name[256];
    char status[64];
    char model[64], backend[64], mode[64];
    long ranks, steps, batch; /* -1: unknown */
    char dataset[128], dataset_sha256[80], fallback_reason[512];
    bool dataset_fallback;
    char hostname[256], cpu_model[256];
    bool has_meta, has_steps, has_stats, has_log;
    rpt_table summary_csv, steps_csv, stats_csv;
    int nreps;
    rpt_rep *reps;
    rpt_spread wall, samples_per_s, test_accuracy;
} rpt_run;

/* Reads and checks everything the report needs from run_dir. */
int rpt_run_load(const char *run_dir, rpt_run *run, char *err);
void rpt_run_free(rpt_run *run);
/* "cpu single 1 rank" */
void rpt_run_config_label(const rpt_run *run, char *out, size_t len);

/* ------------------------------------------------------------ the paper */
#define RPT_PAPER_MAX 8
typedef struct rpt_paper_row {
    char label[128], gpus[128], source[160];
    long ranks, steps;
    double wall_s;
} rpt_paper_row;

typedef struct rpt_paper {
    char path[RPT_PATH_LEN];
    int n;
    rpt_paper_row rows[RPT_PAPER_MAX];
} rpt_paper;

int rpt_paper_load(rpt_paper *paper, char *err);

/* ------------------------------------------------------------ figures */
enum { RPT_FIG_OK, RPT_FIG_SKIPPED, RPT_FIG_FAILED };

typedef struct rpt_figure {
    const char *name;    /* "learning": script NAME.gp, files NAME.png/.svg */
    const char *caption;
    int state;
    char note[DMZ_ERR_LEN]; /* why skipped or failed */
} rpt_figure;

typedef struct rpt_ctx {
    char plots_dir[RPT_PATH_LEN];
    rpt_paper paper;
    bool quiet;
    bool brief;             /* print each run's page, not its figures */
    bool no_gnuplot;        /* posix_spawnp said ENOENT once: skip the rest */
    char *extra_html;       /* several runs: a section for the page (compare links), malloc'd */
} rpt_ctx;

#define RPT_NO_GNUPLOT_NOTE "figures skipped: gnuplot not found (apt-get install gnuplot-nox)"

int rpt_write_info_data(const rpt_run *run, const char *out_dir, char *err);
int rpt_write_breakdown_data(const rpt_run *run, const char *out_dir, char *err);
int rpt_write_paper_data(const rpt_run *run, const rpt_paper *paper, const char *out_dir,
                         char *err);
int rpt_write_compare_data(const rpt_run *runs, int n_runs, const rpt_paper *paper,
                           const char *out_dir, char *err);
/* The data of a counter figure ("gpu", "kernels", "roofline", "papi": report_counters.c)
 * into out_dir; why[0] != 0 (the reason) when the run has none to draw. */
int rpt_counter_data(const rpt_run *run, const char *figure, const char *out_dir, char *why, size_t len,
                     char *err);
/* Runs NAME.gp; sets fig->state and fig->note. Returns DMZ_OK also when
 * gnuplot is missing (state SKIPPED); DMZ_EXIT_FAIL when it failed. */
int rpt_draw(rpt_ctx *ctx, rpt_figure *fig, const char *run_dir, const char *out_dir,
             char *err);

/* ------------------------------------------------------------ HTML */
typedef struct rpt_subpage {
    const rpt_run *run;
    char href[RPT_PATH_LEN]; /* its report.html, relative to the comparison page */
} rpt_subpage;

int rpt_html_run(const rpt_ctx *ctx, const rpt_run *run, const rpt_figure *figs, int n_figs,
                 const char *out_dir, char *err);
int rpt_html_compare(const rpt_ctx *ctx, const rpt_subpage *pages, int n_runs,
                     const rpt_figure *fig, const char *out_dir, char *err);

/* ------------------------------------------------------------ helpers */
void rpt_spread_of(const double *values, int n, rpt_spread *out);
/* A relative path from directory `from_dir` to `to` (both must exist). */
int rpt_relpath(const char *from_dir, const char *to, char *out, size_t len, char *err);
/* Writes text that a stream built up (open_memstream) atomically to path. */
int rpt_write_stream(const char *path, char *buf, size_t len, char *err);
/* Copies src into a field for gnuplot's CSV: commas, quotes and control
 * characters become spaces, at most len-1 bytes. */
void rpt_csv_field(char *out, size_t len, const char *src);
void rpt_copy(char *out, size_t len, const char *src);

#endif
