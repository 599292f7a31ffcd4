/* bench/report.c — dmz_report: check the arguments, load every run, then draw
 * and write one run's report, or each run's and a comparison. */
#include "bench/report.h"

#include "bench/report_impl.h"
#include "bench/compare_impl.h"
#include "bench/results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */
void rpt_copy(char *out, size_t len, const char *src) {
    if (len > 0) snprintf(out, len, "%s", src ? src : "");
}

void rpt_csv_field(char *out, size_t len, const char *src) {
    size_t n = 0;
    for (; src && *src && n + 1 < len; src++, n++) {
        unsigned char c = (unsigned char)*src;
        out[n] = (c < 0x20 || c == 0x7f || c == ',' || c == '"') ? ' ' : (char)c;
    }
    if (src && ((unsigned char)*src & 0xC0) == 0x80) { /* cut inside a UTF-8 character */
        while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80) n--;
        if (n > 0 && (unsigned char)out[n - 1] >= 0xC0) n--;
    }
    if (len > 0) out[n] = '\0';
}

/* The same statistics the runner writes into stats.csv (results.h). */
void rpt_spread_of(const double *values, int n, rpt_spread *out) {
    dmz_stat st;
    dmz_stat_compute(&st, "", values, n);
    *out = (rpt_spread){st.n, st.median, st.min, st.max};
}

int rpt_relpath(const char *from_dir, const char *to, char *out, size_t len, char *err) {
    char a[PATH_MAX + 1], b[PATH_MAX];
    if (!realpath(from_dir, a) || !realpath(to, b))
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s or %s: %s", from_dir, to, strerror(errno));
    if (strcmp(a, "/") != 0) strcat(a, "/");
    size_t last = 0; /* a[0..last] is the common prefix, ending at a '/' */
    for (size_t i = 0; a[i] && a[i] == b[i]; i++)
        if (a[i] == '/') last = i;
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = a + last + 1; *p; p++)
        if (*p == '/' && used + 3 < len) used += (size_t)snprintf(out + used, len - used, "../");
    if ((size_t)snprintf(out + used, len - used, "%s", b + last + 1) >= len - used)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: path too long", to);
    return DMZ_OK;
}

int rpt_write_stream(const char *path, char *buf, size_t len, char *err) {
    int rc = dmz_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ checks */
static int check_path(const char *what, const char *path, char *err) {
    if (!path || !*path) return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: empty path", what);
    if (strlen(path) >= RPT_PATH_LEN - 64)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: path too long: %.80s...", what, path);
    for (const char *p = path; *p; p++) {
        if (*p == '\'')
            return dmz_errorf(err, DMZ_EXIT_USAGE,
                              "%s '%s': a path with a single quote (') cannot be passed to "
                              "gnuplot; rename or link it", what, path);
        if ((unsigned char)*p < 0x20)
            return dmz_errorf(err, DMZ_EXIT_USAGE,
                              "%s: a path with a control character cannot be passed to gnuplot",
                              what);
    }
    return DMZ_OK;
}

static int check_args(const char *const *run_dirs, int n_runs, const char *out_dir, char *err) {
    if (n_runs < 1) return dmz_errorf(err, DMZ_EXIT_USAGE, "report: no run directory given");
    if (n_runs > 1 && !out_dir)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "report: %d runs given: say where the comparison goes with --out DIR",
                          n_runs);
    for (int i = 0; i < n_runs; i++) {
        int rc = check_path("run directory", run_dirs[i], err);
        if (rc != DMZ_OK) return rc;
    }
    return out_dir ? check_path("--out", out_dir, err) : DMZ_OK;
}

static int ctx_init(rpt_ctx *ctx, bool quiet, char *err) {
    memset(ctx, 0, sizeof *ctx);
    ctx->quiet = quiet;
    const char *dir = getenv("DMZBENCH_PLOTS_DIR");
    rpt_copy(ctx->plots_dir, sizeof ctx->plots_dir, dir && *dir ? dir : DMZ_SOURCE_DIR "/plots");
    return rpt_paper_load(&ctx->paper, err);
}

/* ------------------------------------------------------------ one run */
enum { FIG_LEARNING, FIG_BREAKDOWN, FIG_PAPER, FIG_GPU, FIG_KERNELS, FIG_ROOFLINE, FIG_PAPI, N_RUN_FIGS };

static void run_figures(rpt_figure *figs) {
    memset(figs, 0, N_RUN_FIGS * sizeof *figs);
    figs[FIG_LEARNING] = (rpt_figure){
        "learning", "Learning curves: training loss (cross-entropy summed over the batch; thin: "
        "every step, thick: moving average) and test accuracy at the evaluation steps, against "
        "the step and against training time (evaluation excluded). One colour per repetition.",
        RPT_FIG_FAILED, ""};
    figs[FIG_BREAKDOWN] = (rpt_figure){
        "breakdown", "Where the time goes: seconds spent in each phase per repetition on rank 0, "
        "stacked; 'other' is wall time outside the measured phases. The black line and the "
        "number over each bar are the wall time (overlapping phases can stack above it).",
        RPT_FIG_FAILED, ""};
    figs[FIG_PAPER] = (rpt_figure){
        "paper", "The paper's measurement (2000 steps on one node and across two sites) beside "
        "this run's median wall time; whiskers: min and max over repetitions. The y axis is "
        "logarithmic when the values differ by more than 100x.", RPT_FIG_FAILED, ""};
    figs[FIG_GPU] = (rpt_figure){
        "gpu", "GPU timeline (gpu.csv, NVML): power, SM clock, GPU and memory utilisation and memory used of "
        "each rank's devices over time; dashed lines mark where each repetition's measured steps begin and end.",
        RPT_FIG_FAILED, ""};
    figs[FIG_KERNELS] = (rpt_figure){
        "kernels", "Where the GPU time goes (kernels.csv): total time of each kernel and memcpy over the run, "
        "longest first, with its share of the timed total (CUPTI activity records, or CUDA events per op).",
        RPT_FIG_FAILED, ""};
    figs[FIG_ROOFLINE] = (rpt_figure){
        "roofline", "Roofline per device: achieved GFLOP/s of each kernel against its arithmetic intensity "
        "(FLOP per byte of unavoidable traffic, from the op's shapes), under min(peak FP32, intensity x peak "
        "memory bandwidth); peaks computed from NVML clocks.", RPT_FIG_FAILED, ""};
    figs[FIG_PAPI] = (rpt_figure){
        "papi", "CPU counters per phase (papi.csv, PAPI): each event per training sample in the data, forward, "
        "backward and update phases on rank 0, mean over repetitions (log scale).", RPT_FIG_FAILED, ""};
}

static void print_outputs(const char *out_dir, const rpt_figure *figs, int n) {
    printf("report: %s/report.html\n", out_dir);
    for (int i = 0; i < n && figs; i++)
        if (figs[i].state == RPT_FIG_OK)
            printf("figure: %s/%s.png %s/%s.svg\n", out_dir, figs[i].name, out_dir, figs[i].name);
}

static int draw_all(rpt_ctx *ctx, const rpt_run *run, rpt_figure *figs, const char *out_dir,
                    char *err) {
    int first = DMZ_OK;
    char fig_err[DMZ_ERR_LEN];
    for (int i = 0; i < N_RUN_FIGS; i++) {
        if (i == FIG_LEARNING && !run->has_steps) {
            figs[i].state = RPT_FIG_SKIPPED;
            rpt_copy(figs[i].note, sizeof figs[i].note, "steps.csv not found");
            continue;
        }
        if (i >= FIG_GPU) {
            char why[DMZ_ERR_LEN];
            int drc = rpt_counter_data(run, figs[i].name, out_dir, why, sizeof why, fig_err);
            if (drc == DMZ_OK && why[0]) {
                figs[i].state = RPT_FIG_SKIPPED;
                rpt_copy(figs[i].note, sizeof figs[i].note, why);
                continue;
            }
            if (drc != DMZ_OK) {
                figs[i].state = RPT_FIG_FAILED;
                rpt_copy(figs[i].note, sizeof figs[i].note, fig_err);
                if (first == DMZ_OK) first = drc, rpt_copy(err, DMZ_ERR_LEN, fig_err);
                continue;
            }
        }
        int rc = rpt_draw(ctx, &figs[i], run->dir, out_dir, fig_err);
        if (rc != DMZ_OK && first == DMZ_OK) {
            first = rc;
            rpt_copy(err, DMZ_ERR_LEN, fig_err);
        }
    }
    return first;
}

static int report_run(rpt_ctx *ctx, const rpt_run *run, const char *out_dir, char *err) {
    int rc = dmz_mkdirs(out_dir, err);
    if (rc == DMZ_OK) rc = rpt_write_info_data(run, out_dir, err);
    if (rc == DMZ_OK) rc = rpt_write_breakdown_data(run, out_dir, err);
    if (rc == DMZ_OK) rc = rpt_write_paper_data(run, &ctx->paper, out_dir, err);
    if (rc != DMZ_OK) return rc;
    rpt_figure figs[N_RUN_FIGS];
    run_figures(figs);
    int drawn = draw_all(ctx, run, figs, out_dir, err);
    char page_err[DMZ_ERR_LEN];
    rc = rpt_html_run(ctx, run, figs, N_RUN_FIGS, out_dir, page_err);
    if (rc != DMZ_OK) return dmz_errorf(err, rc, "%s", page_err);
    if (!ctx->quiet) print_outputs(out_dir, ctx->brief ? NULL : figs, N_RUN_FIGS);
    return drawn;
}

/* ------------------------------------------------------------ several runs */
/* The run's name with anything but [A-Za-z0-9._-] made '_'. */
static void safe_name(const char *name, char *out, size_t len) {
    rpt_copy(out, len, name);
    for (char *p = out; *p; p++)
        if (!strchr("-_.", *p) && !(*p >= '0' && *p <= '9') && !((*p | 32) >= 'a' && (*p | 32) <= 'z'))
            *p = '_';
    if (out[0] == '.' || out[0] == '\0') out[0] = '_';
}

/* OUT/<safe name>, with -2, -3... when two runs get the same one. */
static void sub_dir_name(const rpt_run *runs, int i, char *out, size_t len) {
    char base[200], other[200];
    safe_name(runs[i].name, base, sizeof base);
    int same = 0;
    for (int j = 0; j < i; j++) {
        safe_name(runs[j].name, other, sizeof other);
        same += strcmp(base, other) == 0;
    }
    if (same) snprintf(out, len, "%s-%d", base, same + 1);
    else snprintf(out, len, "%s", base);
}

static int keep_first(int *first, char *err, int rc, const char *msg) {
    if (rc != DMZ_OK && *first == DMZ_OK) *first = dmz_errorf(err, rc, "%s", msg);
    return rc;
}

static int report_many(rpt_ctx *ctx, const rpt_run *runs, int n_runs, const char *out_dir,
                       char *err) {
    int rc = dmz_mkdirs(out_dir, err);
    rpt_subpage *pages = rc == DMZ_OK ? calloc((size_t)n_runs, sizeof *pages) : NULL;
    if (rc != DMZ_OK || !pages) return rc != DMZ_OK ? rc : dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    int first = DMZ_OK;
    char why[DMZ_ERR_LEN], sub[RPT_PATH_LEN + 256];
    ctx->brief = true; /* one line per run, then the comparison */
    for (int i = 0; i < n_runs && first != DMZ_EXIT_USAGE; i++) {
        char name[220];
        sub_dir_name(runs, i, name, sizeof name);
        pages[i].run = &runs[i];
        snprintf(pages[i].href, sizeof pages[i].href, "%s/report.html", name);
        snprintf(sub, sizeof sub, "%s/%s", out_dir, name);
        keep_first(&first, err, report_run(ctx, &runs[i], sub, why), why);
    }
    rpt_figure fig = {"compare", "Median wall time and throughput of each run (whiskers: min "
                      "and max over repetitions), with the paper's two measurements. Wall time "
                      "is on a log scale when the values differ by more than 100x.",
                      RPT_FIG_FAILED, ""};
    if (first != DMZ_EXIT_USAGE &&
        keep_first(&first, err, rpt_write_compare_data(runs, n_runs, &ctx->paper, out_dir, why),
                   why) == DMZ_OK) {
        keep_first(&first, err, rpt_draw(ctx, &fig, out_dir, out_dir, why), why);
        keep_first(&first, err, cmp_report_links(runs, n_runs, out_dir, ctx->quiet, &ctx->extra_html, why), why);
        keep_first(&first, err, rpt_html_compare(ctx, pages, n_runs, &fig, out_dir, why), why);
        if (!ctx->quiet) print_outputs(out_dir, &fig, 1);
    }
    free(pages);
    free(ctx->extra_html);
    ctx->extra_html = NULL;
    return first;
}

/* ------------------------------------------------------------ entry */
int dmz_report(const char *const *run_dirs, int n_runs, const char *out_dir, bool quiet,
               char *err) {
    int rc = check_args(run_dirs, n_runs, out_dir, err);
    rpt_ctx *ctx = rc == DMZ_OK ? malloc(sizeof *ctx) : NULL;
    if (rc == DMZ_OK && !ctx) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    if (rc == DMZ_OK) rc = ctx_init(ctx, quiet, err);
    rpt_run *runs = rc == DMZ_OK ? calloc((size_t)n_runs, sizeof *runs) : NULL;
    if (rc == DMZ_OK && !runs) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    int loaded = 0;
    for (; rc == DMZ_OK && loaded < n_runs; loaded++) {
        rc = rpt_run_load(run_dirs[loaded], &runs[loaded], err);
        if (rc != DMZ_OK) break;
    }
    if (rc == DMZ_OK && n_runs == 1) {
        char plots[RPT_PATH_LEN + 16];
        snprintf(plots, sizeof plots, "%s/plots", runs[0].dir);
        rc = report_run(ctx, &runs[0], out_dir ? out_dir : plots, err);
    } else if (rc == DMZ_OK) {
        rc = report_many(ctx, runs, n_runs, out_dir, err);
    }
    for (int i = 0; i < loaded; i++) rpt_run_free(&runs[i]);
    free(runs);
    free(ctx);
    return rc;
}

int dmz_report_main(int argc, char **argv) {
    const char *out = NULL;
    const char **dirs = calloc((size_t)(argc > 0 ? argc : 1), sizeof *dirs); /* no fixed limit */
    if (!dirs) {
        fprintf(stderr, "dmzbench report: out of memory\n");
        return DMZ_EXIT_FAIL;
    }
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "dmzbench report: bad option '%s'\n", argv[i]);
            free(dirs);
            return DMZ_EXIT_USAGE;
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (n == 0) {
        fprintf(stderr, "dmzbench report: name at least one run directory\n");
        free(dirs);
        return DMZ_EXIT_USAGE;
    }
    char err[DMZ_ERR_LEN];
    int rc = dmz_report(dirs, n, out, false, err);
    if (rc) fprintf(stderr, "dmzbench report: %s\n", err);
    free(dirs);
    return rc;
}
