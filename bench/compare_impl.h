/* bench/compare_impl.h — internals of `dmzbench compare` and `dmzbench project`.
 * Not a public interface: other folders use bench/compare.h.
 *
 *   compare_run.c   one run as compare sees it: the report's view (rpt_run) plus
 *                   meta.json, kernels.csv, gpu.csv, energy and its device
 *   compare.c       the comparison: numbers, differences, stdout, compare.csv, figures
 *   compare_html.c  compare.html
 *   project.c       the roofline projection onto a device of bench/devices.csv
 *   report_ranks.c  each rank's device, speed and waiting (cross-site runs) */
#ifndef DMZ_BENCH_COMPARE_IMPL_H
#define DMZ_BENCH_COMPARE_IMPL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "bench/devices.h"
#include "bench/report_impl.h"

/* ------------------------------------------------------------ one run */
typedef struct cmp_kernel {
    char kind[16];      /* kernel | memcpy */
    char name[160];
    double calls, total_ms, flops, bytes; /* rank 0, summed over rows of one name; NAN: NA */
    double peak_fraction;
    char source[16];    /* cupti | events */
    int rows;           /* kernels.csv rows summed into this one */
} cmp_kernel;

typedef struct cmp_run {
    rpt_run r;
    cJSON *meta;                 /* NULL without meta.json */
    char label[16];              /* "A" or "B" */
    char device[300];            /* "NVIDIA TITAN Xp" or "cpu: AMD EPYC, 2 threads" */
    bool on_gpu;                 /* the backend ran on a GPU */
    const dmz_device *row;       /* its row of the device table; NULL: none */
    char match[320];             /* the row's name, or "unmatched: ..." */
    int threads;                 /* cpu backend threads; -1 unknown */
    int nkernels;
    cmp_kernel *kernels;         /* NULL without kernels.csv */
    bool has_kernels, has_gpu_csv;
    double kernel_reps;          /* repetitions kernels.csv is taken to cover */
    rpt_spread step_ms;          /* wall_s / steps, over repetitions */
    rpt_spread phase_ms[RPT_NPHASES]; /* per step, rank 0 */
    rpt_spread energy_step_j, samples_per_j, power_w;
    char energy_source[200];     /* where the energy came from, or why there is none */
} cmp_run;

/* Loads run_dir; table is the device table (may be empty, never NULL). */
int cmp_run_load(const char *run_dir, const dmz_device_table *table, cmp_run *run, char *err);
void cmp_run_free(cmp_run *run);
/* A string from meta.json by a dotted path ("build.git_revision", "gpus.0.name");
 * numbers and booleans as text; "" when absent. */
void cmp_meta_text(const cmp_run *run, const char *path, char *out, size_t len);
/* Per-step device time of kernels.csv (ms, rank 0, kind kernel or memcpy). */
double cmp_kernel_step_ms(const cmp_run *run, const cmp_kernel *k);

/* ------------------------------------------------------------ projection */
typedef struct prj_options {
    double launch_us;    /* per kernel call: the part of its time that does not scale */
    double efficiency;   /* for a source without a device row: fraction of the roofline */
    bool efficiency_set; /* --efficiency given */
} prj_options;
void prj_options_default(prj_options *o);

typedef struct prj_kernel {
    char name[160], kind[16];
    double calls;            /* per step */
    double measured_ms;      /* per step on the source; NAN in a coarse projection */
    double flops, bytes;     /* per step */
    char bound_from[8], bound_to[8]; /* "compute" | "memory" | "copy" */
    double efficiency;       /* measured (or assumed) fraction of the roofline */
    double projected_ms;     /* per step on the target */
} prj_kernel;

typedef struct prj_result {
    bool coarse;             /* from the model's counts, not kernels.csv */
    char method[400];        /* one line: how it was projected */
    char from_name[340], to_name[64];
    const dmz_device *from, *to;
    double measured_step_ms; /* median over repetitions */
    double host_ms;          /* carried over unchanged */
    double device_ms;        /* the source's part that is projected */
    double projected_step_ms, projected_2000_s;
    int n;
    prj_kernel *k;
    int nassume;
    char assume[12][400];    /* the assumptions, one line each */
} prj_result;

/* Projects run onto `to`; `from` overrides the run's own device row (NULL:
 * the run's). DMZ_EXIT_USAGE when the run has no steps or no model. */
int prj_project(const cmp_run *run, const dmz_device *from, const dmz_device *to,
                const prj_options *opt, prj_result *out, char *err);
void prj_free(prj_result *res);
/* The text block (every line says PROJECTION) and project.csv. */
void prj_print(FILE *f, const cmp_run *run, const prj_result *res);
int prj_write_csv(const cmp_run *run, const prj_result *res, const char *path, char *err);

/* The model's own FLOP and byte counts per training step (coarse projection). */
int prj_model_ops(const char *model, long batch, int classes, prj_kernel **out, int *n,
                  char *err);

/* ------------------------------------------------------------ comparison */
typedef struct cmp_diff {
    char what[96];
    char a[300], b[300];
} cmp_diff;

/* One row of the comparison: A and B with their spread over repetitions. */
enum { CMP_RATIO, CMP_TIME, CMP_RATE };  /* how "B vs A" reads: B/A, A/B (speedup), B/A (speedup) */
typedef struct cmp_metric {
    char section[16];            /* time, phase, energy, accuracy, kernel */
    char item[170], unit[16];
    rpt_spread a, b;
    int kind;
    double ratio, ratio_lo, ratio_hi; /* B vs A */
} cmp_metric;

typedef struct cmp_result {
    cmp_run *a, *b;
    int nmetrics;
    cmp_metric *metrics;
    int ndiffs, nsame;
    cmp_diff *diffs;
    int nwarn;
    char warn[8][400];           /* "not comparable: ..." */
    bool have_projection[2];     /* [0]: A onto B's device, [1]: B onto A's */
    prj_result proj[2];
    char no_projection[400];     /* why there is none */
} cmp_result;

int cmp_compute(cmp_run *a, cmp_run *b, cmp_result *res, char *err);
void cmp_result_free(cmp_result *res);
void cmp_print_table(FILE *f, const cmp_result *res);
int cmp_write_csv(const cmp_result *res, const char *out_dir, char *err);

enum { CMP_FIG_TIME, CMP_FIG_BREAKDOWN, CMP_FIG_KERNELS, CMP_FIG_ENERGY, CMP_NFIGS };
int cmp_html(const cmp_result *res, const rpt_figure *figs, int nfigs, const char *out_dir,
             char *err);

/* `dmzbench report` with several runs: each run whose device or backend
 * differs from the first run's is compared with it into OUT/compare-N/
 * (N: its position), and *html gets a section linking those pages (NULL when
 * all ran on the same kind of device). */
int cmp_report_links(const rpt_run *runs, int n_runs, const char *out_dir, bool quiet,
                     char **html, char *err);

/* ------------------------------------------------------------ helpers */
/* median of a / median of b, with min a / max b .. max a / min b */
void cmp_ratio(const rpt_spread *a, const rpt_spread *b, double *ratio, double *lo, double *hi);
void cmp_html_escape(FILE *f, const char *s);
/* A cross-site run's ranks: device, speed, batch, wall, wait (HTML or text). */
void rpt_ranks_html(FILE *f, const rpt_run *run);
void rpt_ranks_text(FILE *f, const rpt_run *run, const char *prefix);

#endif
