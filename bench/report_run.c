/* bench/report_run.c — one run directory as the report sees it: meta.json,
 * summary.csv reduced to one line per repetition, steps.csv and stats.csv
 * checked, and the paper's reference numbers. */
#include "bench/report_impl.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const rpt_phase_cols[RPT_NPHASES] = {"data_s", "fwd_s", "bwd_s", "comm_s",
                                                 "update_s"};

static const char *const summary_required[] = {"rep", "rank", "wall_s", "samples_per_s", NULL};
static const char *const summary_numeric[] = {
    "rep", "rank", "ranks", "steps", "batch", "warmup_s", "wall_s", "samples_per_s", "data_s",
    "fwd_s", "bwd_s", "comm_s", "update_s", "eval_s", "final_loss", "test_loss",
    "test_accuracy", "time_to_target_s", "bytes_sent", "algbw_gbps", "busbw_gbps", "threads",
    NULL};
static const char *const steps_required[] = {"rep", "step", "elapsed_s", "loss",
                                             "test_accuracy", NULL};
static const char *const steps_numeric[] = {
    "rep", "step", "elapsed_s", "step_s", "loss", "data_s", "fwd_s", "bwd_s", "comm_s",
    "update_s", "samples_per_s", "test_loss", "test_accuracy", NULL};
static const char *const stats_required[] = {"metric", "median", "min", "max", NULL};
static const char *const stats_numeric[] = {"n", "median", "min", "max", "mean", "stddev", NULL};
static const char *const paper_required[] = {"label", "ranks", "wall_s", "steps", "gpus",
                                             "source", NULL};

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ------------------------------------------------------------ meta.json */
static void json_copy(char *out, size_t len, const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(item) && item->valuestring) rpt_copy(out, len, item->valuestring);
}

static void json_long(long *out, const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(item) && fabs(item->valuedouble) < 1e15) *out = (long)item->valuedouble;
}

static void meta_fields(rpt_run *run, const cJSON *root) {
    json_copy(run->name, sizeof run->name, root, "run");
    json_copy(run->status, sizeof run->status, root, "status");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    json_copy(run->model, sizeof run->model, config, "model");
    json_copy(run->backend, sizeof run->backend, config, "backend");
    json_copy(run->mode, sizeof run->mode, config, "mode");
    json_long(&run->steps, config, "steps");
    json_long(&run->batch, config, "batch");
    json_long(&run->ranks, config, "ranks");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "dataset");
    json_copy(run->dataset, sizeof run->dataset, data, "name");
    json_copy(run->dataset_sha256, sizeof run->dataset_sha256, data, "sha256");
    json_copy(run->fallback_reason, sizeof run->fallback_reason, data, "fallback_reason");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(data, "fallback")))
        run->dataset_fallback = true;
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(root, "host");
    json_copy(run->hostname, sizeof run->hostname, host, "hostname");
    json_copy(run->cpu_model, sizeof run->cpu_model, host, "cpu_model");
}

static int read_text(const char *path, char **out, char *err) {
    return dmz_read_file(path, (size_t)64 << 20, out, NULL, err);
}

static int json_error(const char *path, const char *text, const char *at, char *err) {
    long line = 1, col = 1;
    for (const char *p = text; at && p < at && *p; p++) {
        col = (*p == '\n') ? 1 : col + 1;
        line += (*p == '\n');
    }
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld, column %ld: invalid JSON", path, line,
                      col);
}

static int load_meta(rpt_run *run, char *err) {
    char path[RPT_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/meta.json", run->dir);
    if (!file_exists(path)) return DMZ_OK;
    char *text = NULL;
    int rc = read_text(path, &text, err);
    if (rc != DMZ_OK) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    if (!root) rc = json_error(path, text, end, err);
    else if (!cJSON_IsObject(root)) rc = json_error(path, text, text, err);
    else {
        meta_fields(run, root);
        run->has_meta = true;
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ------------------------------------------------------------ summary.csv */
static rpt_rep *rep_slot(rpt_run *run, double rep) {
    for (int i = 0; i < run->nreps; i++)
        if (run->reps[i].rep == rep) return &run->reps[i];
    rpt_rep *grown = realloc(run->reps, (size_t)(run->nreps + 1) * sizeof *grown);
    if (!grown) return NULL;
    run->reps = grown;
    rpt_rep *slot = &run->reps[run->nreps++];
    *slot = (rpt_rep){.rep = rep, .wall_s = NAN, .samples_per_s = NAN, .test_accuracy = NAN};
    for (int p = 0; p < RPT_NPHASES; p++) slot->phase_s[p] = NAN;
    return slot;
}

/* -1 for NA or a value no long can hold. */
static long to_long(double v) {
    return (isnan(v) || fabs(v) > 1e15) ? -1 : (long)v;
}

static double col_num(const rpt_table *t, size_t row, const char *name) {
    double v;
    if (rpt_table_num(t, row, rpt_table_col(t, name), &v, NULL) != DMZ_OK) return NAN;
    return v; /* the table was checked already: no error here */
}

static void summary_text(rpt_run *run, size_t row) {
    const rpt_table *t = &run->summary_csv;
    struct { char *out; size_t len; const char *col; } fields[] = {
        {run->name, sizeof run->name, "run"},       {run->model, sizeof run->model, "model"},
        {run->backend, sizeof run->backend, "backend"}, {run->mode, sizeof run->mode, "mode"},
        {run->dataset, sizeof run->dataset, "dataset"}, {run->status, sizeof run->status, "status"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = rpt_table_cell(t, row, rpt_table_col(t, fields[i].col));
        if (strcmp(v, "NA") != 0) rpt_copy(fields[i].out, fields[i].len, v);
    }
    double ranks = col_num(t, row, "ranks"), steps = col_num(t, row, "steps");
    double batch = col_num(t, row, "batch");
    if (!isnan(ranks)) run->ranks = to_long(ranks);
    if (!isnan(steps)) run->steps = to_long(steps);
    if (!isnan(batch)) run->batch = to_long(batch);
}

static double nan_max(double a, double b) { return isnan(a) ? b : (isnan(b) ? a : fmax(a, b)); }
static double nan_sum(double a, double b) { return isnan(a) ? b : (isnan(b) ? a : a + b); }

static int add_summary_row(rpt_run *run, size_t row, char *err) {
    const rpt_table *t = &run->summary_csv;
    double rep = col_num(t, row, "rep"), rank = col_num(t, row, "rank");
    if (isnan(rep) || isnan(rank))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld: rep and rank must not be NA",
                          t->path, t->line[row]);
    rpt_rep *slot = rep_slot(run, rep);
    if (!slot) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
    slot->wall_s = nan_max(slot->wall_s, col_num(t, row, "wall_s"));
    slot->samples_per_s = nan_sum(slot->samples_per_s, col_num(t, row, "samples_per_s"));
    if (rank != 0) return DMZ_OK;
    slot->test_accuracy = col_num(t, row, "test_accuracy");
    for (int p = 0; p < RPT_NPHASES; p++) slot->phase_s[p] = col_num(t, row, rpt_phase_cols[p]);
    return DMZ_OK;
}

static int spread_reps(rpt_run *run) {
    double *v = malloc((size_t)(run->nreps ? run->nreps : 1) * sizeof *v);
    if (!v) return DMZ_EXIT_FAIL;
    for (int i = 0; i < run->nreps; i++) v[i] = run->reps[i].wall_s;
    rpt_spread_of(v, run->nreps, &run->wall);
    for (int i = 0; i < run->nreps; i++) v[i] = run->reps[i].samples_per_s;
    rpt_spread_of(v, run->nreps, &run->samples_per_s);
    for (int i = 0; i < run->nreps; i++) v[i] = run->reps[i].test_accuracy;
    rpt_spread_of(v, run->nreps, &run->test_accuracy);
    free(v);
    return DMZ_OK;
}

static int load_summary(rpt_run *run, char *err) {
    char path[RPT_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/summary.csv", run->dir);
    rpt_table *t = &run->summary_csv;
    int rc = rpt_table_read(path, t, err);
    if (rc == DMZ_OK) rc = rpt_table_require(t, summary_required, err);
    if (rc == DMZ_OK) rc = rpt_table_check_numeric(t, summary_numeric, err);
    if (rc != DMZ_OK) return rc;
    if (t->nrows == 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: no rows after the header", path);
    for (size_t r = 0; r < t->nrows && rc == DMZ_OK; r++) {
        if (r == 0 || col_num(t, r, "rank") == 0) summary_text(run, r);
        rc = add_summary_row(run, r, err);
    }
    if (rc == DMZ_OK && spread_reps(run) != DMZ_OK)
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    return rc;
}

/* ------------------------------------------------------------ optional tables */
static int load_optional(rpt_run *run, const char *file, rpt_table *t, bool *has,
                         const char *const *required, const char *const *numeric, char *err) {
    char path[RPT_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/%s", run->dir, file);
    if (!file_exists(path)) return DMZ_OK;
    int rc = rpt_table_read(path, t, err);
    if (rc == DMZ_OK) rc = rpt_table_require(t, required, err);
    if (rc == DMZ_OK) rc = rpt_table_check_numeric(t, numeric, err);
    *has = (rc == DMZ_OK);
    return rc;
}

int rpt_run_load(const char *run_dir, rpt_run *run, char *err) {
    memset(run, 0, sizeof *run);
    run->ranks = run->steps = run->batch = -1;
    rpt_copy(run->dir, sizeof run->dir, run_dir);
    for (size_t n = strlen(run->dir); n > 1 && run->dir[n - 1] == '/'; n--) run->dir[n - 1] = '\0';
    run_dir = run->dir;
    struct stat sb;
    if (stat(run_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: no such run directory", run_dir);
    const char *base = strrchr(run_dir, '/');
    rpt_copy(run->name, sizeof run->name, base && base[1] ? base + 1 : run_dir);
    int rc = load_summary(run, err);
    if (rc == DMZ_OK) rc = load_meta(run, err);
    if (rc == DMZ_OK)
        rc = load_optional(run, "steps.csv", &run->steps_csv, &run->has_steps, steps_required,
                           steps_numeric, err);
    if (rc == DMZ_OK)
        rc = load_optional(run, "stats.csv", &run->stats_csv, &run->has_stats, stats_required,
                           stats_numeric, err);
    char log[RPT_PATH_LEN + 16];
    snprintf(log, sizeof log, "%s/log.txt", run_dir);
    run->has_log = file_exists(log);
    if (rc != DMZ_OK) rpt_run_free(run);
    return rc;
}

void rpt_run_free(rpt_run *run) {
    rpt_table_free(&run->summary_csv);
    rpt_table_free(&run->steps_csv);
    rpt_table_free(&run->stats_csv);
    free(run->reps);
    run->reps = NULL;
    run->nreps = 0;
}

void rpt_run_config_label(const rpt_run *run, char *out, size_t len) {
    char ranks[64] = "? ranks";
    if (run->ranks >= 0 && strcmp(run->mode, "async-ps") == 0)
        snprintf(ranks, sizeof ranks, "server + %ld worker%s", run->ranks - 1, run->ranks == 2 ? "" : "s");
    else if (run->ranks >= 0)
        snprintf(ranks, sizeof ranks, "%ld rank%s", run->ranks, run->ranks == 1 ? "" : "s");
    char threads[48] = "";
    const rpt_table *t = &run->summary_csv;
    int col = rpt_table_col(t, "threads");
    if (col >= 0 && t->nrows > 0)
        snprintf(threads, sizeof threads, ", %s thread%s each", rpt_table_cell(t, 0, col),
                 strcmp(rpt_table_cell(t, 0, col), "1") == 0 ? "" : "s");
    snprintf(out, len, "%s %s: %s%s", run->backend[0] ? run->backend : "?", run->mode[0] ? run->mode : "?", ranks,
             threads);
}

/* ------------------------------------------------------------ paper.csv */
static void paper_path(char *out, size_t len) {
    const char *dir = getenv("DMZBENCH_REFERENCE_DIR");
    if (!dir || !*dir) dir = DMZ_SOURCE_DIR "/results/reference";
    snprintf(out, len, "%s/paper.csv", dir);
}

int rpt_paper_load(rpt_paper *paper, char *err) {
    memset(paper, 0, sizeof *paper);
    paper_path(paper->path, sizeof paper->path);
    rpt_table t;
    int rc = rpt_table_read(paper->path, &t, err);
    if (rc != DMZ_OK) return rc;
    static const char *const numeric[] = {"ranks", "wall_s", "steps", NULL};
    rc = rpt_table_require(&t, paper_required, err);
    if (rc == DMZ_OK) rc = rpt_table_check_numeric(&t, numeric, err);
    for (size_t r = 0; rc == DMZ_OK && r < t.nrows && paper->n < RPT_PAPER_MAX; r++) {
        rpt_paper_row *row = &paper->rows[paper->n++];
        rpt_copy(row->label, sizeof row->label, rpt_table_cell(&t, r, rpt_table_col(&t, "label")));
        rpt_copy(row->gpus, sizeof row->gpus, rpt_table_cell(&t, r, rpt_table_col(&t, "gpus")));
        rpt_copy(row->source, sizeof row->source,
                 rpt_table_cell(&t, r, rpt_table_col(&t, "source")));
        row->wall_s = col_num(&t, r, "wall_s");
        row->ranks = to_long(col_num(&t, r, "ranks"));
        row->steps = to_long(col_num(&t, r, "steps"));
    }
    rpt_table_free(&t);
    return rc;
}
