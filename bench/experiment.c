/* `dmzbench train`: the whole run, from data to figures, on one rank or on
 * every rank of an MPI job (rank 0 writes the one result directory). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "common/dmz.h"
#include "common/interrupt.h"
#include "counters_run.h"
#include "meta.h"
#include "guardian.h"
#include "mllog.h"
#include "net/probe.h"
#include "net/wanem/wanem.h"
#include "progress.h"
#include "ranks.h"
#include "rank_devices.h"
#include "report.h"
#include "results.h"
#include "train.h"

/* Set by SIGINT/SIGTERM (common/interrupt.h): every loop and wait polls it. */
static volatile sig_atomic_t *stop_flag;

typedef struct run_state {
    const dmz_train_config *cfg;
    dmz_comm *comm;
    dmz_comm *grad_comm;  /* the gradient all-reduce: comm, or nccl on device buffers */
    bool root;            /* rank 0: writes the result directory */
    bool cross;           /* sync or async-ps */
    dmz_train_role role;
    dmz_rundir rd;
    dmz_mllog log;
    dmz_progress progress;
    cJSON *meta;
    dmz_dataset ds;
    bool have_data;
    dmz_model *model;
    dmz_rep_result **all; /* [rank][rep]; only [comm->rank] on ranks other than 0 */
    int n_reps;           /* repetitions this rank finished or started */
    dmz_probe_result probe;
    bool have_probe;
    dmz_guardian guardian; /* rank 0: finishes the directory if this process vanishes */
    char site[256];
    char experiment[256];
} run_state;

static dmz_rep_result *my_reps(const run_state *st) { return st->all[st->comm->rank]; }

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

static bool is_mode(const dmz_train_config *cfg, const char *mode) { return strcmp(cfg->mode, mode) == 0; }

/* Usage problems that need no run directory and no MPI: say them first. */
static int check_supported(const dmz_train_config *cfg, const dmz_backend **be, char *err) {
    if (!is_mode(cfg, "single")) {
        char why[512];
        if (!dmz_comm_mpi_built(why, sizeof why))
            return dmz_errorf(err, DMZ_EXIT_USAGE, "--mode %s: %s", cfg->mode, why);
        if (!dmz_comm_under_launcher())
            return dmz_errorf(err, DMZ_EXIT_USAGE,
                              "--mode %s runs one process per rank under an MPI launcher: "
                              "mpirun -np %s dmzbench train --mode %s ... (or srun, or a Kubeflow MPIJob)",
                              cfg->mode, is_mode(cfg, "async-ps") ? "3" : "2", cfg->mode);
    } else if (cfg->rank_speed || cfg->global_batch || cfg->check_consistency) {
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--rank-speed, --global-batch and --check-consistency need "
                                               "--mode sync or async-ps");
    }
    int rc = dmz_bind_check_cpus(cfg->bind, err);
    if (rc) return rc;
    struct stat out_st;
    if (stat(cfg->out_dir, &out_st) == 0 && !S_ISDIR(out_st.st_mode))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--out %s: not a directory", cfg->out_dir);
    if (cfg->name && (strchr(cfg->name, '/') || !cfg->name[0] || strlen(cfg->name) > 128 ||
                      strcmp(cfg->name, ".") == 0 || strcmp(cfg->name, "..") == 0))
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "--name '%.40s%s': a run directory name needs 1 to 128 characters and no '/'", cfg->name,
                          strlen(cfg->name) > 40 ? "..." : "");
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
    opt.use_cache = !cfg->no_cache;
    opt.synthetic_seed = cfg->seed;
    MLLOG_START(&st->log, "data_load", -1);
    dmz_phase_set("the data load");
    dmz_counters_load_begin();
    int rc = dmz_dataset_load(cfg->data, &opt, &st->ds, err);
    dmz_counters_load_end();
    if (rc == DMZ_OK) st->have_data = true;
    dmz_phase_set("");
    if (*stop_flag) return dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by a signal during the data load");
    if (rc) return rc;
    MLLOG_END(&st->log, "data_load", -1, "success");
    if (st->root) dmz_meta_set_dataset(st->meta, &st->ds);
    if (st->ds.fallback && st->root)
        fprintf(stderr,
                "\n*** WARNING: using %s INSTEAD OF %s ***\n*** %s ***\n*** results are recorded as %s "
                "(meta.json: dataset.fallback = true) ***\n\n",
                st->ds.name, cfg->data, st->ds.fallback_reason, st->ds.name);
    if (!cfg->quiet && st->root)
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
    if (st->cfg->quiet || !st->root) return;
    printf("# %3s %4s %-12s %7s %9s %9s %11s %8s %8s %8s %8s %8s %8s %8s %10s\n", "rep", "rank", "site", "steps",
           "warmup_s", "wall_s", "samples/s", "data_s", "fwd_s", "bwd_s", "comm_s", "wait_s", "update_s",
           "test_acc", "final_loss");
}

static void print_rep(const run_state *st, int rep) {
    if (st->cfg->quiet || !st->root) return;
    for (int k = 0; k < st->comm->size; k++) {
        const dmz_rep_result *r = &st->all[k][rep];
        printf("  %3d %4d %-12.12s %7d %9.3f %9.3f %11.1f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.4f %10.4f\n",
               r->rep, k, dmz_comm_site(st->comm, k), r->steps_done, r->warmup_s, r->wall_s, r->samples_per_s,
               r->data_s, r->fwd_s, r->bwd_s, r->comm_s, r->wait_s, r->update_s, r->test_accuracy, r->final_loss);
    }
    fflush(stdout);
}

static int create_model(run_state *st, const dmz_backend *be, char *err) {
    const dmz_train_config *cfg = st->cfg;
    dmz_model_config mc;
    dmz_model_config_default(&mc, cfg->model, st->ds.num_classes, cfg->batch > 0 ? cfg->batch : 1);
    bool server = is_mode(cfg, "async-ps") && st->comm->rank == 0;
    if (server) be = &dmz_backend_cpu; /* the server holds the parameters on the CPU */
    if (strcmp(be->name, "cpu") == 0) dmz_cpu_set_threads(cfg->threads);
    if (cfg->global_batch && st->role.local_batch > mc.max_batch) mc.max_batch = st->role.local_batch;
    int rc = dmz_model_create(be, &mc, cfg->seed, &st->model, err);
    if (rc || !st->root) return rc;
    char desc[256];
    be->describe(desc, sizeof desc);
    dmz_meta_set_backend(st->meta, desc, dmz_cpu_threads());
    MLLOG_NUM(&st->log, "global_batch_size",
              cfg->global_batch ? cfg->global_batch : (double)cfg->batch * (st->comm->size - is_mode(cfg, "async-ps")),
              -1, -1);
    MLLOG_STR(&st->log, "opt_name", "adam");
    MLLOG_NUM(&st->log, "opt_base_learning_rate", cfg->lr, -1, -1);
    MLLOG_NUM(&st->log, "seed", (double)cfg->seed, -1, -1);
    return DMZ_OK;
}

static int run_one_rep(run_state *st, int rep, char *err) {
    const dmz_train_config *cfg = st->cfg;
    dmz_train_observer obs = {.on_step = observe_step, .on_eval = observe_eval, .ctx = st};
    const dmz_train_observer *o = st->root ? &obs : NULL;
    dmz_rep_result *out = &my_reps(st)[rep];
    if (!is_mode(cfg, "async-ps"))
        return dmz_train_repetition(st->model, st->grad_comm, &st->ds, cfg, &st->role, rep, o, stop_flag, out,
                                    err);
    if (st->comm->rank == 0) return dmz_train_ps_server(st->model, st->comm, &st->ds, cfg, rep, out, err);
    return dmz_train_ps_worker(st->model, st->comm, &st->ds, cfg, &st->role, rep, NULL, stop_flag, out, err);
}

static int train_all(run_state *st, char *err) {
    const dmz_train_config *cfg = st->cfg;
    dmz_progress_init(&st->progress, cfg->quiet || !st->root || st->cross, cfg->repeat, cfg->steps);
    print_table_header(st);
    for (int rep = 0; rep < cfg->repeat; rep++) {
        char phase[64];
        snprintf(phase, sizeof phase, "training, repetition %d", rep);
        dmz_guardian_phase(&st->guardian, phase);
        if (st->root) MLLOG_START(&st->log, "run", rep);
        int rc = run_one_rep(st, rep, err);
        st->n_reps = rep + 1;
        dmz_progress_done(&st->progress);
        if (!rc && st->cross) rc = dmz_gather_rep(st->comm, &my_reps(st)[rep], st->all, rep, err);
        if (st->root) MLLOG_END(&st->log, "run", rep, rc ? "aborted" : "success");
        if (rc) return rc;
        if (st->root) {
            MLLOG_NUM(&st->log, "wall_s", my_reps(st)[rep].wall_s, rep, -1);
            MLLOG_NUM(&st->log, "time_to_target_s", my_reps(st)[rep].time_to_target_s, rep, -1);
        }
        print_rep(st, rep);
    }
    return DMZ_OK;
}

enum { STAT_WALL, STAT_RATE, STAT_ACC, STAT_LOSS, STAT_WARMUP, STAT_TTT, N_JOB_STATS };
enum { RANK_WALL = N_JOB_STATS, RANK_RATE, RANK_COMM, RANK_WAIT, N_STATS };

/* Rank 0's rows, then every other rank's that reached rank 0. */
static int rank_rows(const run_state *st, dmz_rank_rows *rows, int n_gathered) {
    const dmz_train_config *cfg = st->cfg;
    const dmz_comm *c = st->comm;
    for (int r = 0; r < c->size; r++) {
        const char *role = is_mode(cfg, "async-ps") ? (r == 0 ? "server" : "worker") : cfg->mode;
        rows[r] = (dmz_rank_rows){.rank = r, .site = dmz_comm_site(c, r), .host = c->host_of[r], .role = role,
                                  .batch = dmz_role_batch_of(cfg, c, r), .speed = dmz_role_speed_of(cfg, c, r),
                                  .reps = st->all[r], .n_reps = r == 0 ? st->n_reps : n_gathered};
        if (!st->cross) rows[r].speed = NAN;
    }
    return c->size;
}

static double job_value(const dmz_rank_rows *rows, int n, int rep, int k) {
    double best = NAN;
    for (int r = 0; r < n; r++) {
        if (rep >= rows[r].n_reps) continue;
        const dmz_rep_result *x = &rows[r].reps[rep];
        double v[N_JOB_STATS] = {x->wall_s, x->samples_per_s, x->test_accuracy, x->final_loss, x->warmup_s,
                                 x->time_to_target_s};
        if (isnan(v[k])) continue;
        if (k == STAT_WALL) best = isnan(best) || v[k] > best ? v[k] : best;       /* the slowest rank ends the job */
        else if (k == STAT_RATE) best = isnan(best) ? v[k] : best + v[k];          /* samples over all ranks */
        else if (isnan(best)) best = v[k];                                          /* the lowest rank that has it */
    }
    return best;
}

static double rank_median(const dmz_rank_rows *row, int k) {
    double v[1024];
    int n = 0;
    for (int i = 0; i < row->n_reps && n < 1024; i++) {
        const dmz_rep_result *x = &row->reps[i];
        double m[] = {x->wall_s, x->samples_per_s, x->comm_s, x->wait_s};
        v[n++] = m[k - RANK_WALL];
    }
    dmz_stat s;
    dmz_stat_compute(&s, "", v, n);
    return s.median;
}

static void compute_stats(const dmz_rank_rows *rows, int n_rows, int n_reps, dmz_stat *stats) {
    static const char *const names[N_STATS] = {"wall_s", "samples_per_s", "test_accuracy", "final_loss", "warmup_s",
                                               "time_to_target_s", "rank_wall_s", "rank_samples_per_s",
                                               "rank_comm_s", "rank_wait_s"};
    int cap = n_reps > n_rows ? n_reps : n_rows;
    double *v = calloc((size_t)(cap ? cap : 1), sizeof(double));
    for (int k = 0; k < N_JOB_STATS; k++) {
        for (int i = 0; i < n_reps; i++) v[i] = job_value(rows, n_rows, i, k);
        dmz_stat_compute(&stats[k], names[k], v, n_reps);
    }
    /* over ranks: each rank's median over repetitions */
    for (int k = RANK_WALL; k < N_STATS; k++) {
        for (int r = 0; r < n_rows; r++) v[r] = rank_median(&rows[r], k);
        dmz_stat_compute(&stats[k], names[k], v, n_rows);
    }
    free(v);
}

static void print_stats(const run_state *st, const dmz_stat *stats, const dmz_rank_rows *rows, int n_rows) {
    if (st->cfg->quiet || st->n_reps == 0) return;
    int n = st->cross ? N_STATS : N_JOB_STATS;
    for (int k = 0; k < n; k++) {
        if (stats[k].n == 0) continue;
        char stddev[32] = "NA"; /* one repetition has no spread */
        if (stats[k].n > 1) snprintf(stddev, sizeof stddev, "%.3g", stats[k].stddev);
        printf("# %-18s median %12.6g  min %12.6g  max %12.6g  stddev %10s  (n=%d%s)\n", stats[k].metric,
               stats[k].median, stats[k].min, stats[k].max, stddev, stats[k].n, k >= N_JOB_STATS ? " ranks" : "");
    }
    dmz_straggler sg;
    if (dmz_find_straggler(rows, n_rows, &sg))
        printf("# straggler: rank %d (site %s) took %.3f s, %.1f%% longer than the fastest, rank %d (site %s, %.3f s)\n",
               sg.slowest, dmz_comm_site(st->comm, sg.slowest), sg.slowest_s, sg.slower_pct, sg.fastest,
               dmz_comm_site(st->comm, sg.fastest), sg.fastest_s);
}

static dmz_run_info run_info(const run_state *st) {
    const dmz_train_config *cfg = st->cfg;
    return (dmz_run_info){.run = st->rd.name, .site = st->site, .model = cfg->model, .backend = cfg->backend,
                          .mode = cfg->mode, .dataset = st->have_data ? st->ds.name : "none",
                          .ranks = st->comm->size, .steps = cfg->steps,
                          .batch = cfg->global_batch ? cfg->global_batch : cfg->batch, .threads = dmz_cpu_threads()};
}

static int write_net_and_probe(run_state *st, const dmz_rank_rows *rows, int n_rows, char *err) {
    if (!st->cross || !st->model) return DMZ_OK;
    double size = (double)dmz_model_num_params(st->model) * sizeof(float);
    int rc = is_mode(st->cfg, "async-ps")
                 ? dmz_write_net_csv(&st->rd, rows, n_rows, "push+pull", 2 * size, 1.0, st->cfg->log_every, err)
                 : dmz_write_net_csv(&st->rd, rows, n_rows, "allreduce", size, st->comm->busbw_factor(st->comm),
                                     st->cfg->log_every, err);
    if (rc || !st->have_probe) return rc;
    FILE *f = dmz_rundir_fopen(&st->rd, "probe.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    dmz_probe_write_csv(f, st->comm, &st->probe);
    if (fclose(f) != 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s/probe.csv: write failed", st->rd.work);
    return DMZ_OK;
}

static int write_tables(run_state *st, const dmz_stat *stats, const dmz_rank_rows *rows, int n_rows, bool ok,
                        char *err) {
    dmz_run_info info = run_info(st);
    const char **statuses = calloc((size_t)(st->n_reps ? st->n_reps : 1), sizeof(char *));
    for (int i = 0; i < st->n_reps; i++)
        statuses[i] = (ok || i < st->n_reps - 1) ? "ok" : "failed";
    double factor = is_mode(st->cfg, "sync") ? st->comm->busbw_factor(st->comm) : 0;
    int rc = dmz_write_summary_csv(&st->rd, &info, rows, n_rows, statuses, factor, err);
    free(statuses);
    if (!rc) rc = dmz_write_steps_csv(&st->rd, rows, n_rows, st->cfg->log_every, err);
    if (!rc) rc = dmz_write_stats_csv(&st->rd, stats, st->cross ? N_STATS : N_JOB_STATS, err);
    if (!rc) rc = write_net_and_probe(st, rows, n_rows, err);
    if (!rc) rc = dmz_counters_write(&st->rd, st->meta, rows, n_rows, err);
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

static void meta_add_results(run_state *st, const dmz_rank_rows *rows, int n_rows) {
    if (!st->cross) return;
    dmz_straggler sg;
    if (dmz_find_straggler(rows, n_rows, &sg)) {
        cJSON *o = cJSON_AddObjectToObject(st->meta, "straggler");
        cJSON_AddNumberToObject(o, "rank", sg.slowest);
        cJSON_AddStringToObject(o, "site", dmz_comm_site(st->comm, sg.slowest));
        cJSON_AddNumberToObject(o, "wall_s", sg.slowest_s);
        cJSON_AddNumberToObject(o, "fastest_rank", sg.fastest);
        cJSON_AddNumberToObject(o, "fastest_wall_s", sg.fastest_s);
        cJSON_AddNumberToObject(o, "slower_pct", sg.slower_pct);
    }
    if (st->have_probe) {
        cJSON *o = cJSON_AddObjectToObject(st->meta, "probe");
        double lat = dmz_probe_min_latency_us(&st->probe), peak = dmz_probe_peak_gbps(&st->probe);
        if (isfinite(lat)) cJSON_AddNumberToObject(o, "latency_us_1B", lat);
        if (isfinite(peak)) cJSON_AddNumberToObject(o, "peak_pingpong_gbps", peak);
        if (isfinite(st->probe.allreduce_busbw_gbps)) {
            cJSON_AddNumberToObject(o, "allreduce_bytes", (double)st->probe.allreduce_bytes);
            cJSON_AddNumberToObject(o, "allreduce_us", st->probe.allreduce_s * 1e6);
            cJSON_AddNumberToObject(o, "allreduce_busbw_gbps", st->probe.allreduce_busbw_gbps);
        }
        cJSON_AddNumberToObject(o, "wall_s", st->probe.wall_s);
        /* the emulated link's configuration (DMZBENCH_WAN_FILE) beside what the probe measured */
        cJSON *wan = cJSON_GetObjectItem(st->meta, "wan");
        cJSON *pairs = wan ? cJSON_AddArrayToObject(wan, "probe_rtt_ms_by_pair") : NULL;
        for (int i = 0; pairs && i < st->probe.n_rows; i++) {
            const dmz_probe_row *r = &st->probe.rows[i];
            if (r->bytes != 1) continue;
            cJSON *p = cJSON_CreateObject();
            char name[64];
            snprintf(name, sizeof name, "%d-%d", r->rank_a, r->rank_b);
            cJSON_AddStringToObject(p, "ranks", name);
            cJSON_AddNumberToObject(p, "rtt_ms", 2 * r->latency_us / 1e3);
            cJSON_AddItemToArray(pairs, p);
        }
        if (wan && isfinite(peak)) cJSON_AddNumberToObject(wan, "probe_peak_gbit_per_s", peak * 8);
    }
}

/* Rank 0: writes everything the run has, marks it ok or failed, moves it into place. */
static int finish_run(run_state *st, int rc, const char *error, int n_gathered) {
    char err[DMZ_ERR_LEN];
    bool ok = rc == DMZ_OK;
    /* the signal that ended the run is handled; a new one interrupts the writing (the index lock wait) */
    if (!ok) dmz_interrupt_clear();
    dmz_guardian_phase(&st->guardian, "writing the results");
    dmz_rank_rows *rows = calloc((size_t)st->comm->size, sizeof *rows);
    int n_rows = rank_rows(st, rows, n_gathered);
    dmz_stat stats[N_STATS];
    compute_stats(rows, n_rows, st->n_reps, stats);
    MLLOG_END(&st->log, "run_stop", -1, ok ? "success" : "aborted");
    if (st->log.f) fclose(st->log.f), st->log.f = NULL;
    meta_add_results(st, rows, n_rows);
    int wrc = write_tables(st, stats, rows, n_rows, ok, err);
    if (!wrc) wrc = dmz_meta_finish(st->meta, &st->rd, ok ? "ok" : "failed", ok ? NULL : error, err);
    if (!wrc && ok) draw_figures(st);
    if (!wrc && ok && *stop_flag) { /* gnuplot got the Ctrl-C too: a figure may be missing */
        ok = false, rc = DMZ_EXIT_FAIL;
        error = "interrupted by a signal while drawing the figures";
        dmz_interrupt_clear(); /* noted; a new signal interrupts the index lock wait */
        wrc = dmz_meta_finish(st->meta, &st->rd, "failed", error, err);
    }
    /* indexed before it is moved into place: a run that cannot be indexed ends failed, never "ok" unindexed */
    static char index_error[DMZ_ERR_LEN + 64];
    dmz_run_info info = run_info(st);
    if (!wrc && dmz_index_append(&st->rd, &info, ok ? "ok" : "failed", st->n_reps, &stats[STAT_WALL],
                                 &stats[STAT_RATE], &stats[STAT_ACC], err) != DMZ_OK) {
        snprintf(index_error, sizeof index_error, "the results could not be added to index.csv: %s", err);
        fprintf(stderr, "dmzbench: %s\n", index_error);
        ok = false, rc = rc ? rc : DMZ_EXIT_FAIL, error = index_error;
        wrc = dmz_meta_finish(st->meta, &st->rd, "failed", error, err);
    }
    if (!wrc) wrc = dmz_rundir_finish(&st->rd, ok, error, err);
    print_stats(st, stats, rows, n_rows);
    free(rows);
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
    for (int r = 0; st->all && r < st->comm->size; r++) {
        for (int i = 0; st->all[r] && i < st->cfg->repeat; i++) dmz_rep_result_free(&st->all[r][i]);
        free(st->all[r]);
    }
    free(st->all);
    if (st->model) dmz_model_destroy(st->model);
    if (st->have_data) dmz_dataset_free(&st->ds);
    dmz_probe_free(&st->probe);
    dmz_counters_run_free();
    cJSON_Delete(st->meta);
}

static int alloc_results(run_state *st, char *err) {
    int p = st->comm->size;
    st->all = calloc((size_t)p, sizeof *st->all);
    if (!st->all) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    for (int r = 0; r < p; r++) {
        if (!st->root && r != st->comm->rank) continue;
        st->all[r] = calloc((size_t)st->cfg->repeat, sizeof **st->all);
        if (!st->all[r]) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
        for (int i = 0; i < st->cfg->repeat; i++) dmz_rep_result_init(&st->all[r][i], i);
    }
    return DMZ_OK;
}

static int run_probe(run_state *st, char *err) {
    if (!st->cross || st->cfg->no_probe || st->comm->size < 2) return DMZ_OK;
    dmz_probe_options o;
    dmz_probe_options_default(&o);
    o.size_factor = 4;
    o.seconds_per_size = 0.02;
    o.allreduce_floats = st->model ? dmz_model_num_params(st->model) : 0;
    int rc = dmz_probe_run(st->comm, &o, &st->probe, err);
    st->have_probe = rc == DMZ_OK;
    if (!rc && st->root && !st->cfg->quiet) dmz_probe_print(stdout, st->comm, &st->probe);
    return rc;
}

/* Everything up to training: the result directory (rank 0), data, model, probe. */
static int prepare(run_state *st, const dmz_backend *be, int argc, char **argv, char *err) {
    const dmz_train_config *cfg = st->cfg;
    dmz_comm *c = st->comm;
    snprintf(st->site, sizeof st->site, "%s", dmz_comm_site(c, c->rank));
    if (cfg->name) snprintf(st->experiment, sizeof st->experiment, "%s", cfg->name);
    else if (st->cross) snprintf(st->experiment, sizeof st->experiment, "%s-%s-%s-%dr", cfg->model, cfg->backend, cfg->mode, c->size);
    else snprintf(st->experiment, sizeof st->experiment, "%s-%s-%s", cfg->model, cfg->backend, cfg->mode);
    int rc = alloc_results(st, err);
    if (rc) return rc;
    if (st->root) {
        if ((rc = dmz_rundir_create(&st->rd, cfg->out_dir, st->experiment, err))) return rc;
        static dmz_run_info info;
        info = run_info(st);
        if ((rc = dmz_guardian_start(&st->guardian, &st->rd, &info, err))) return rc;
        st->log.f = dmz_rundir_fopen(&st->rd, "log.txt", err);
        st->meta = dmz_meta_begin(cfg, argc, argv, &st->rd, st->site);
        if (st->cross) cJSON_ReplaceItemInObject(st->meta, "mpi", dmz_ranks_meta(cfg, c));
        cJSON *wan = dmz_wan_meta_from_env(); /* sites emulated by `dmzbench wan` */
        if (wan) cJSON_AddItemToObject(st->meta, "wan", wan);
        MLLOG_STR(&st->log, "submission_benchmark", strcmp(cfg->model, "cnn") == 0 ? "dmzbench-cnn" : "dmzbench-mlp");
        MLLOG_START(&st->log, "init", -1);
    }
    rc = dmz_check_same_build(c, err);
    if (!rc) rc = dmz_counters_run_start(cfg, be, c->rank, &be, err); /* binding first: the load runs bound */
    dmz_guardian_phase(&st->guardian, "the data load");
    if (!rc) rc = load_data(st, err);
    if (!rc && st->cross) rc = c->barrier(c, "the data load", NULL, err);
    if (!rc && st->cross) /* each rank's device into meta.json: bench/rank_devices.c */
        rc = dmz_ranks_add_devices(c, cfg->backend, st->root ? cJSON_GetObjectItem(st->meta, "mpi") : NULL, err);
    st->grad_comm = c;
    if (!rc && is_mode(cfg, "sync") && strcmp(be->name, "cpu") != 0 && dmz_comm_nccl_built(NULL, 0))
        rc = dmz_comm_nccl(c, &st->grad_comm, err); /* picks this rank's GPU before the model is made */
    if (!rc && st->root && st->grad_comm != c)
        cJSON_AddStringToObject(cJSON_GetObjectItem(st->meta, "mpi"), "gradient_transport", st->grad_comm->transport);
    if (!rc) rc = create_model(st, be, err);
    dmz_guardian_phase(&st->guardian, "the link probe");
    if (!rc) rc = run_probe(st, err);
    if (st->root) MLLOG_END(&st->log, "init", -1, rc ? "aborted" : "success");
    return rc;
}

/* A rank other than 0 that failed: tell rank 0 (which records it and ends the
 * job), then leave if nobody does. */
static int fail_member(run_state *st, int rc, const char *error) {
    dmz_comm *c = st->comm;
    fprintf(stderr, "dmzbench: rank %d (site %s): %s\n", c->rank, dmz_comm_site(c, c->rank), error);
    c->report_error(c, error);
    struct timespec tenth = {0, 100000000};
    for (int i = 0; i < 100 && !*stop_flag; i++) nanosleep(&tenth, NULL);
    return rc;
}

int dmz_train_main(const dmz_train_config *cfg, int argc, char **argv) {
    char err[DMZ_ERR_LEN];
    const dmz_backend *be = NULL;
    stop_flag = dmz_interrupt_flag();
    int rc = check_supported(cfg, &be, err);
    if (rc) {
        fprintf(stderr, "dmzbench train: %s\n", err);
        return rc;
    }
    run_state st = {.cfg = cfg, .cross = !is_mode(cfg, "single"), .guardian = {.pid = -1, .fd = -1}};
    if (st.cross) rc = dmz_comm_mpi(NULL, NULL, &st.comm, err);
    else st.comm = dmz_comm_single();
    if (rc) {
        fprintf(stderr, "dmzbench train: %s\n", err);
        return rc;
    }
    st.comm->timeout_s = cfg->timeout_s;
    st.comm->stop = stop_flag;
    st.root = st.comm->rank == 0;
    if ((rc = dmz_role_for_rank(cfg, st.comm, &st.role, err))) { /* the same verdict on every rank */
        if (st.root) fprintf(stderr, "dmzbench train: %s\n", err);
        st.comm->finalize(st.comm);
        return rc;
    }
    if (!st.cross) st.role = dmz_role_single(cfg);
    dmz_interrupt_install();
    rc = prepare(&st, be, argc, argv, err);
    if (!rc) rc = train_all(&st, err);
    dmz_counters_run_stop();
    if (!rc && st.cross) rc = dmz_counters_gather(st.comm, err);
    int n_gathered = st.n_reps - (rc ? 1 : 0);
    if (st.root && st.rd.work[0]) {
        rc = finish_run(&st, rc, rc ? err : NULL, n_gathered < 0 ? 0 : n_gathered);
        dmz_guardian_done(&st.guardian);
    }
    else if (st.root && rc) fprintf(stderr, "dmzbench train: %s\n", err);
    else if (rc) rc = fail_member(&st, rc, err);
    if (st.cross && rc && st.root) st.comm->abort_job(st.comm, rc);
    if (st.cross && !rc) rc = st.comm->barrier(st.comm, "the end of the run", NULL, err);
    if (st.grad_comm && st.grad_comm != st.comm) st.grad_comm->finalize(st.grad_comm);
    free_run(&st);
    dmz_interrupt_uninstall();
    if (st.cross && !rc) st.comm->finalize(st.comm);
    return rc;
}
