/* `dmzbench train`: the whole run, from data to figures. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "common/dmz.h"
#include "meta.h"
#include "mllog.h"
#include "progress.h"
#include "report.h"
#include "results.h"
#include "train.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

typedef struct run_state {
    const dmz_train_config *cfg;
    dmz_rundir rd;
    dmz_mllog log;
    dmz_progress progress;
    cJSON *meta;
    dmz_dataset ds;
    bool have_data;
    dmz_model *model;
    dmz_rep_result *reps;
    int n_reps;
    char site[256];
    char experiment[256];
} run_state;

static void observe_step(void *ctx, const dmz_rep_result *r, const dmz_step_record *s) {
    run_state *st = ctx;
    dmz_progress_step(&st->progress, r->rep, s->step, s->loss, s->elapsed_s);
}

static void observe_eval(void *ctx, const dmz_rep_result *r, const dmz_step_record *s) {
    run_state *st = ctx;
    dmz_progress_eval(&st->progress, s->test_accuracy);
    MLLOG_NUM(&st->log, "train_loss", s->loss, r->rep, s->step);
    MLLOG_NUM(&st->log, "eval_loss", s->test_loss, r->rep, s->step);
    MLLOG_NUM(&st->log, "eval_accuracy", s->test_accuracy, r->rep, s->step);
}

/* Usage problems that need no run directory: say them before creating one. */
static int check_supported(const dmz_train_config *cfg, const dmz_backend **be, char *err) {
    if (strcmp(cfg->mode, "single") != 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "--mode %s: not built yet (cross-site modes land with the MPI/NCCL issue); use --mode single",
                          cfg->mode);
    if (strcmp(cfg->model, "mlp") != 0 && strcmp(cfg->model, "cnn") != 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--model %s: unknown model (known: mlp, cnn)", cfg->model);
    *be = dmz_backend_get(cfg->backend, err);
    return *be ? DMZ_OK : DMZ_EXIT_USAGE;
}

static int load_data(run_state *st, char *err) {
    const dmz_train_config *cfg = st->cfg;
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.data_dir = cfg->data_dir;
    opt.allow_fallback = !cfg->no_fallback;
    opt.synthetic_seed = cfg->seed;
    MLLOG_START(&st->log, "data_load", -1);
    int rc = dmz_dataset_load(cfg->data, &opt, &st->ds, err);
    if (rc) return rc;
    st->have_data = true;
    MLLOG_END(&st->log, "data_load", -1, "success");
    dmz_meta_set_dataset(st->meta, &st->ds);
    if (st->ds.fallback)
        fprintf(stderr,
                "\n*** WARNING: using %s INSTEAD OF %s ***\n*** %s ***\n*** results are recorded as %s "
                "(meta.json: dataset.fallback = true) ***\n\n",
                st->ds.name, cfg->data, st->ds.fallback_reason, st->ds.name);
    if (!cfg->quiet)
        printf("# data: %s (%s, %zu train / %zu test, %d classes, sha256 %.16s..., %s in %.2f s)\n", st->ds.name,
               st->ds.format, st->ds.train.count, st->ds.test.count, st->ds.num_classes, st->ds.sha256,
               st->ds.from_cache ? "cache" : "parsed", st->ds.load_s);
    MLLOG_STR(&st->log, "dataset", st->ds.name);
    MLLOG_STR(&st->log, "dataset_sha256", st->ds.sha256);
    MLLOG_NUM(&st->log, "train_samples", (double)st->ds.train.count, -1, -1);
    MLLOG_NUM(&st->log, "eval_samples", (double)st->ds.test.count, -1, -1);
    return DMZ_OK;
}

static void print_table_header(const run_state *st) {
    if (st->cfg->quiet) return;
    printf("# %5s %7s %9s %9s %11s %8s %8s %8s %8s %8s %8s %10s\n", "rep", "steps", "warmup_s", "wall_s",
           "samples/s", "data_s", "fwd_s", "bwd_s", "comm_s", "update_s", "test_acc", "final_loss");
}

static void print_rep(const run_state *st, const dmz_rep_result *r) {
    if (st->cfg->quiet) return;
    printf("  %5d %7d %9.3f %9.3f %11.1f %8.3f %8.3f %8.3f %8.3f %8.3f %8.4f %10.4f\n", r->rep, r->n_steps,
           r->warmup_s, r->wall_s, r->samples_per_s, r->data_s, r->fwd_s, r->bwd_s, r->comm_s, r->update_s,
           r->test_accuracy, r->final_loss);
    fflush(stdout);
}

static int train_all(run_state *st, const dmz_backend *be, char *err) {
    const dmz_train_config *cfg = st->cfg;
    dmz_model_config mc;
    dmz_model_config_default(&mc, cfg->model, st->ds.num_classes, cfg->batch);
    if (strcmp(be->name, "cpu") == 0) dmz_cpu_set_threads(cfg->threads);
    int rc = dmz_model_create(be, &mc, cfg->seed, &st->model, err);
    if (rc) return rc;
    char desc[256];
    be->describe(desc, sizeof desc);
    dmz_meta_set_backend(st->meta, desc, dmz_cpu_threads());
    MLLOG_NUM(&st->log, "global_batch_size", cfg->batch, -1, -1);
    MLLOG_STR(&st->log, "opt_name", "adam");
    MLLOG_NUM(&st->log, "opt_base_learning_rate", cfg->lr, -1, -1);
    MLLOG_NUM(&st->log, "seed", (double)cfg->seed, -1, -1);
    st->reps = calloc((size_t)cfg->repeat, sizeof *st->reps);
    if (!st->reps) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    dmz_train_observer obs = {.on_step = observe_step, .on_eval = observe_eval, .ctx = st};
    dmz_progress_init(&st->progress, cfg->quiet, cfg->repeat, cfg->steps);
    print_table_header(st);
    for (int rep = 0; rep < cfg->repeat; rep++) {
        MLLOG_START(&st->log, "run", rep);
        rc = dmz_train_repetition(st->model, dmz_comm_single(), &st->ds, cfg, rep, &obs, &stop_requested,
                                  &st->reps[rep], err);
        st->n_reps = rep + 1;
        dmz_progress_done(&st->progress);
        MLLOG_END(&st->log, "run", rep, rc ? "aborted" : "success");
        if (rc) return rc;
        MLLOG_NUM(&st->log, "wall_s", st->reps[rep].wall_s, rep, -1);
        MLLOG_NUM(&st->log, "time_to_target_s", st->reps[rep].time_to_target_s, rep, -1);
        print_rep(st, &st->reps[rep]);
    }
    return DMZ_OK;
}

enum { STAT_WALL, STAT_RATE, STAT_ACC, STAT_LOSS, STAT_WARMUP, STAT_TTT, N_STATS };

static void compute_stats(const run_state *st, dmz_stat *stats) {
    static const char *const names[N_STATS] = {"wall_s", "samples_per_s", "test_accuracy", "final_loss",
                                               "warmup_s", "time_to_target_s"};
    double *v = calloc((size_t)(st->n_reps ? st->n_reps : 1), sizeof(double));
    for (int k = 0; k < N_STATS; k++) {
        for (int i = 0; i < st->n_reps; i++) {
            const dmz_rep_result *r = &st->reps[i];
            double x[N_STATS] = {r->wall_s, r->samples_per_s, r->test_accuracy, r->final_loss, r->warmup_s,
                                 r->time_to_target_s};
            v[i] = x[k];
        }
        dmz_stat_compute(&stats[k], names[k], v, st->n_reps);
    }
    free(v);
}

static void print_stats(const run_state *st, const dmz_stat *stats) {
    if (st->cfg->quiet || st->n_reps == 0) return;
    for (int k = 0; k < N_STATS; k++) {
        if (stats[k].n == 0) continue;
        char stddev[32] = "NA"; /* one repetition has no spread */
        if (stats[k].n > 1) snprintf(stddev, sizeof stddev, "%.3g", stats[k].stddev);
        printf("# %-16s median %12.6g  min %12.6g  max %12.6g  stddev %10s  (n=%d)\n", stats[k].metric,
               stats[k].median, stats[k].min, stats[k].max, stddev, stats[k].n);
    }
}

static dmz_run_info run_info(const run_state *st) {
    const dmz_train_config *cfg = st->cfg;
    return (dmz_run_info){.run = st->rd.name, .site = st->site, .model = cfg->model, .backend = cfg->backend,
                          .mode = cfg->mode, .dataset = st->have_data ? st->ds.name : "none", .ranks = 1,
                          .rank = 0, .steps = cfg->steps, .batch = cfg->batch, .threads = dmz_cpu_threads()};
}

static int write_tables(run_state *st, const dmz_stat *stats, bool ok, char *err) {
    dmz_run_info info = run_info(st);
    const char **statuses = calloc((size_t)(st->n_reps ? st->n_reps : 1), sizeof(char *));
    for (int i = 0; i < st->n_reps; i++)
        statuses[i] = (ok || i < st->n_reps - 1) ? "ok" : "failed";
    int rc = dmz_write_summary_csv(&st->rd, &info, st->reps, st->n_reps, statuses, err);
    free(statuses);
    if (!rc) rc = dmz_write_steps_csv(&st->rd, st->reps, st->n_reps, st->cfg->batch, st->cfg->log_every, err);
    if (!rc) rc = dmz_write_stats_csv(&st->rd, stats, N_STATS, err);
    return rc;
}

static void draw_figures(run_state *st) {
    if (st->cfg->no_plots || st->n_reps == 0) return;
    char err[DMZ_ERR_LEN];
    const char *dirs[1] = {st->rd.work};
    char plots[4200];
    snprintf(plots, sizeof plots, "%s/plots", st->rd.work);
    if (dmz_report(dirs, 1, plots, true, err) != DMZ_OK)
        fprintf(stderr, "dmzbench: figures not drawn: %s\n", err);
}

/* Writes everything the run has, marks it ok or failed, moves it into place. */
static int finish_run(run_state *st, int rc, const char *error) {
    char err[DMZ_ERR_LEN];
    bool ok = rc == DMZ_OK;
    dmz_stat stats[N_STATS];
    compute_stats(st, stats);
    MLLOG_END(&st->log, "run_stop", -1, ok ? "success" : "aborted");
    if (st->log.f) fclose(st->log.f), st->log.f = NULL;
    int wrc = write_tables(st, stats, ok, err);
    if (!wrc) wrc = dmz_meta_finish(st->meta, &st->rd, ok ? "ok" : "failed", ok ? NULL : error, err);
    if (!wrc && ok) draw_figures(st);
    if (!wrc) wrc = dmz_rundir_finish(&st->rd, ok && !wrc, error, err);
    if (!wrc) {
        dmz_run_info info = run_info(st);
        wrc = dmz_index_append(&st->rd, &info, ok ? "ok" : "failed", st->n_reps, &stats[STAT_WALL],
                               &stats[STAT_RATE], &stats[STAT_ACC], err);
    }
    print_stats(st, stats);
    if (wrc) {
        fprintf(stderr, "dmzbench: cannot write results: %s\n", err);
        return rc ? rc : wrc;
    }
    if (!ok) fprintf(stderr, "dmzbench: run FAILED: %s\n  (recorded in %s/status)\n", error, st->rd.path);
    if (!st->cfg->quiet || !ok) printf("results: %s/\n", st->rd.path);
    if (ok && !st->cfg->quiet && !st->cfg->no_plots) printf("figures: %s/plots/ (report: %s/plots/report.html)\n",
                                                            st->rd.path, st->rd.path);
    return rc;
}

static void free_run(run_state *st) {
    for (int i = 0; i < st->n_reps; i++) dmz_rep_result_free(&st->reps[i]);
    free(st->reps);
    if (st->model) dmz_model_destroy(st->model);
    if (st->have_data) dmz_dataset_free(&st->ds);
    cJSON_Delete(st->meta);
}

int dmz_train_main(const dmz_train_config *cfg, int argc, char **argv) {
    char err[DMZ_ERR_LEN];
    const dmz_backend *be = NULL;
    int rc = check_supported(cfg, &be, err);
    if (rc) {
        fprintf(stderr, "dmzbench train: %s\n", err);
        return rc;
    }
    run_state st = {.cfg = cfg};
    const char *site = getenv("DMZBENCH_SITE");
    if (site && *site) snprintf(st.site, sizeof st.site, "%s", site);
    else gethostname(st.site, sizeof st.site - 1);
    if (cfg->name) snprintf(st.experiment, sizeof st.experiment, "%s", cfg->name);
    else snprintf(st.experiment, sizeof st.experiment, "%s-%s-%s", cfg->model, cfg->backend, cfg->mode);
    if ((rc = dmz_rundir_create(&st.rd, cfg->out_dir, st.experiment, err))) {
        fprintf(stderr, "dmzbench train: %s\n", err);
        return rc;
    }
    st.log.f = dmz_rundir_fopen(&st.rd, "log.txt", err);
    st.meta = dmz_meta_begin(cfg, argc, argv, &st.rd, st.site);
    MLLOG_STR(&st.log, "submission_benchmark", "dmzbench-emnist-mlp");
    MLLOG_START(&st.log, "init", -1);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = load_data(&st, err);
    MLLOG_END(&st.log, "init", -1, rc ? "aborted" : "success");
    if (!rc) rc = train_all(&st, be, err);
    rc = finish_run(&st, rc, rc ? err : NULL);
    free_run(&st);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return rc;
}
