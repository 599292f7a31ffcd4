/* bench/compare_run.c — one run directory as compare and project see it: the
 * report's view (summary, meta, steps), the device it ran on, kernels.csv,
 * and the energy it used (summary.csv's energy_j, else gpu.csv). Every file
 * is read relative to the directory given: runs copied from other machines
 * work as they are. */
#include "bench/compare_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const kernels_required[] = {"rank", "kind", "name", "calls", "total_ms",
                                               "flops", "bytes", NULL};
static const char *const kernels_numeric[] = {"rank", "calls", "total_ms", "mean_us", "flops",
                                              "bytes", "gflops", "gbps", "peak_fraction", NULL};
static const char *const gpu_required[] = {"rank", "t_s", NULL};
static const char *const gpu_numeric[] = {"rank", "device", "t_s", "power_w", "energy_j", NULL};

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static double num(const rpt_table *t, size_t row, const char *col) {
    double v;
    if (rpt_table_num(t, row, rpt_table_col(t, col), &v, NULL) != DMZ_OK) return NAN;
    return v;
}

/* ------------------------------------------------------------ meta.json */
static int load_meta(cmp_run *run, char *err) {
    char path[RPT_PATH_LEN + 16], *text = NULL;
    snprintf(path, sizeof path, "%s/meta.json", run->r.dir);
    if (!is_file(path)) return DMZ_OK;
    int rc = dmz_read_file(path, (size_t)64 << 20, &text, NULL, err);
    if (rc != DMZ_OK) return rc;
    run->meta = cJSON_Parse(text); /* rpt_run_load has checked it already */
    free(text);
    return DMZ_OK;
}

static const cJSON *meta_at(const cJSON *node, const char *path) {
    char key[96];
    while (node && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)(n < sizeof key - 1 ? n : sizeof key - 1), path);
        if (cJSON_IsArray(node)) node = cJSON_GetArrayItem(node, atoi(key));
        else node = cJSON_GetObjectItemCaseSensitive(node, key);
        path += n + (path[n] == '.');
    }
    return node;
}

void cmp_meta_text(const cmp_run *run, const char *path, char *out, size_t len) {
    const cJSON *v = meta_at(run->meta, path);
    if (cJSON_IsString(v) && v->valuestring) snprintf(out, len, "%s", v->valuestring);
    else if (cJSON_IsNumber(v) && fabs(v->valuedouble) < 1e15 && v->valuedouble == floor(v->valuedouble))
        snprintf(out, len, "%.0f", v->valuedouble);
    else if (cJSON_IsNumber(v)) snprintf(out, len, "%.10g", v->valuedouble);
    else if (cJSON_IsBool(v)) snprintf(out, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (v && !cJSON_IsNull(v)) {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(out, len, "%s", s ? s : "");
        free(s);
    } else if (len) out[0] = '\0';
}

/* ------------------------------------------------------------ device */
/* A cross-site run whose ranks ran on different devices (meta.json
 * mpi.ranks[i].device): all of them, and no single row of the table. */
static bool mixed_ranks(cmp_run *run) {
    const cJSON *ranks = meta_at(run->meta, "mpi.ranks"), *r;
    char list[sizeof run->device] = "";
    size_t used = 0;
    int distinct = 0;
    cJSON_ArrayForEach(r, ranks) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "device");
        if (!cJSON_IsString(d) || !d->valuestring[0] || strstr(list, d->valuestring)) continue;
        distinct++;
        if (used + 4 < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? " + " : "", d->valuestring);
    }
    if (distinct < 2) return false;
    snprintf(run->device, sizeof run->device, "%s", list);
    snprintf(run->match, sizeof run->match, "unmatched: ranks on %d different devices", distinct);
    return true;
}

static void find_device(cmp_run *run, const dmz_device_table *table) {
    const rpt_table *s = &run->r.summary_csv;
    char text[256];
    run->threads = -1;
    int tc = rpt_table_col(s, "threads");
    double th = tc >= 0 && s->nrows ? num(s, 0, "threads") : NAN;
    cmp_meta_text(run, "backend.threads", text, sizeof text);
    if (isnan(th) && text[0]) th = atof(text);
    if (!isnan(th)) run->threads = (int)th;
    run->on_gpu = run->r.backend[0] && strcmp(run->r.backend, "cpu") != 0;
    if (!run->on_gpu) {
        const char *cpu = run->r.cpu_model[0] ? run->r.cpu_model : "unknown CPU";
        if (run->threads > 0)
            snprintf(run->device, sizeof run->device, "cpu: %s, %d thread%s", cpu, run->threads,
                     run->threads == 1 ? "" : "s");
        else snprintf(run->device, sizeof run->device, "cpu: %s", cpu);
        snprintf(run->match, sizeof run->match, "unmatched: a CPU (the table lists GPUs)");
        return;
    }
    if (mixed_ranks(run)) return;
    cmp_meta_text(run, "gpus.0.name", text, sizeof text);
    snprintf(run->device, sizeof run->device, "%s", text[0] ? text : "unknown GPU (meta.json lists none)");
    char recorded[300];
    cmp_meta_text(run, "device_match", recorded, sizeof recorded);
    if (recorded[0] && strncmp(recorded, "unmatched", 9) != 0) run->row = dmz_devices_find(table, recorded);
    if (!run->row && text[0]) run->row = dmz_devices_match(table, text);
    if (run->row) snprintf(run->match, sizeof run->match, "%s", run->row->name);
    else snprintf(run->match, sizeof run->match, "unmatched: %s", run->device);
}

/* ------------------------------------------------------------ kernels.csv */
static cmp_kernel *kernel_slot(cmp_run *run, const char *kind, const char *name) {
    for (int i = 0; i < run->nkernels; i++)
        if (strcmp(run->kernels[i].kind, kind) == 0 && strcmp(run->kernels[i].name, name) == 0)
            return &run->kernels[i];
    cmp_kernel *grown = realloc(run->kernels, (size_t)(run->nkernels + 1) * sizeof *grown);
    if (!grown) return NULL;
    run->kernels = grown;
    cmp_kernel *k = &run->kernels[run->nkernels++];
    memset(k, 0, sizeof *k);
    rpt_copy(k->kind, sizeof k->kind, kind);
    rpt_copy(k->name, sizeof k->name, name);
    k->peak_fraction = NAN;
    return k;
}

static double add_na(double a, double b) { return isnan(a) ? NAN : (isnan(b) ? NAN : a + b); }

static int load_kernels(cmp_run *run, char *err) {
    char path[RPT_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/kernels.csv", run->r.dir);
    if (!is_file(path)) return DMZ_OK;
    rpt_table t;
    int rc = rpt_table_read(path, &t, err);
    if (!rc) rc = rpt_table_require(&t, kernels_required, err);
    if (!rc) rc = rpt_table_check_numeric(&t, kernels_numeric, err);
    int ckind = rpt_table_col(&t, "kind"), cname = rpt_table_col(&t, "name");
    int csrc = rpt_table_col(&t, "source");
    for (size_t r = 0; !rc && r < t.nrows; r++) {
        const char *kind = rpt_table_cell(&t, r, ckind);
        if (strcmp(kind, "kernel") != 0 && strcmp(kind, "memcpy") != 0) {
            rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld, column %d (kind): '%s' is neither "
                            "kernel nor memcpy", path, t.line[r], ckind + 1, kind);
            break;
        }
        if (num(&t, r, "rank") != 0) continue; /* rank 0 speaks for the run */
        cmp_kernel *k = kernel_slot(run, kind, rpt_table_cell(&t, r, cname));
        if (!k) { rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path); break; }
        bool first = k->rows++ == 0;
        k->calls = first ? num(&t, r, "calls") : add_na(k->calls, num(&t, r, "calls"));
        k->total_ms = first ? num(&t, r, "total_ms") : add_na(k->total_ms, num(&t, r, "total_ms"));
        k->flops = first ? num(&t, r, "flops") : add_na(k->flops, num(&t, r, "flops"));
        k->bytes = first ? num(&t, r, "bytes") : add_na(k->bytes, num(&t, r, "bytes"));
        k->peak_fraction = num(&t, r, "peak_fraction");
        rpt_copy(k->source, sizeof k->source, rpt_table_cell(&t, r, csrc));
    }
    run->has_kernels = rc == DMZ_OK;
    rpt_table_free(&t);
    return rc;
}

/* kernels.csv is taken to cover the measured steps of every repetition. */
double cmp_kernel_step_ms(const cmp_run *run, const cmp_kernel *k) {
    double steps = run->r.steps > 0 ? (double)run->r.steps : NAN;
    return k->total_ms / (steps * run->kernel_reps);
}

/* ------------------------------------------------------------ energy */
/* Per repetition from summary.csv's energy_j (summed over ranks). */
static bool energy_from_summary(cmp_run *run) {
    const rpt_table *t = &run->r.summary_csv;
    if (rpt_table_col(t, "energy_j") < 0) return false;
    int n = run->r.nreps;
    double *e = calloc((size_t)n + 1, sizeof *e), *per_step = calloc((size_t)n + 1, sizeof *e);
    double *spj = calloc((size_t)n + 1, sizeof *e), *pw = calloc((size_t)n + 1, sizeof *e);
    int used = 0;
    for (int i = 0; e && per_step && spj && pw && i < n; i++) {
        const rpt_rep *rep = &run->r.reps[i];
        bool any = false;
        for (size_t r = 0; r < t->nrows; r++) {
            if (num(t, r, "rep") != rep->rep) continue;
            double x = num(t, r, "energy_j");
            if (!isnan(x)) e[i] += x, any = true;
        }
        if (!any || !(e[i] > 0) || !(run->r.steps > 0)) continue;
        per_step[used] = e[i] / (double)run->r.steps;
        spj[used] = rep->samples_per_s * rep->wall_s / e[i];
        pw[used] = e[i] / rep->wall_s;
        used++;
    }
    if (used > 0) {
        rpt_spread_of(per_step, used, &run->energy_step_j);
        rpt_spread_of(spj, used, &run->samples_per_j);
        rpt_spread_of(pw, used, &run->power_w);
        snprintf(run->energy_source, sizeof run->energy_source,
                 "summary.csv energy_j (all ranks, each repetition)");
    }
    free(e), free(per_step), free(spj), free(pw);
    return used > 0;
}

static bool same_gpu(const rpt_table *t, size_t row, double rank, double dev) {
    double r = num(t, row, "rank"), d = num(t, row, "device");
    return r == rank && (d == dev || (isnan(d) && isnan(dev)));
}

/* The whole run from gpu.csv: energy_j's rise, else power_w integrated over t_s,
 * per (rank, device), divided over every measured step. */
static int energy_from_gpu_csv(cmp_run *run, char *err) {
    char path[RPT_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/gpu.csv", run->r.dir);
    if (!is_file(path)) return DMZ_OK;
    rpt_table t;
    int rc = rpt_table_read(path, &t, err);
    if (!rc) rc = rpt_table_require(&t, gpu_required, err);
    if (!rc) rc = rpt_table_check_numeric(&t, gpu_numeric, err);
    if (rc) return rc;
    run->has_gpu_csv = true;
    double total = 0, t0 = NAN, t1 = NAN;
    bool any = false;
    /* each (rank, device) on its own, its rows in file order (the sampler's time order) */
    for (size_t i = 0; i < t.nrows; i++) {
        double rank = num(&t, i, "rank"), dev = num(&t, i, "device");
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) seen = same_gpu(&t, k, rank, dev);
        if (seen) continue;
        double e0 = NAN, e1 = NAN, area = 0, pa = NAN, ta = NAN;
        bool integrated = false;
        for (size_t k = i; k < t.nrows; k++) {
            if (!same_gpu(&t, k, rank, dev)) continue;
            double e = num(&t, k, "energy_j"), p = num(&t, k, "power_w"), ts = num(&t, k, "t_s");
            if (!isnan(e)) e1 = e, e0 = isnan(e0) ? e : e0;
            if (!isnan(p) && !isnan(pa) && !isnan(ts) && ts >= ta) area += 0.5 * (pa + p) * (ts - ta), integrated = true;
            if (!isnan(p) && !isnan(ts)) pa = p, ta = ts;
            if (!isnan(ts)) t0 = isnan(t0) || ts < t0 ? ts : t0, t1 = isnan(t1) || ts > t1 ? ts : t1;
        }
        double part = (!isnan(e0) && e1 > e0) ? e1 - e0 : integrated ? area : NAN;
        if (!isnan(part)) total += part, any = true;
    }
    rpt_table_free(&t);
    double steps = run->r.steps > 0 ? (double)run->r.steps * (run->r.nreps > 0 ? run->r.nreps : 1) : NAN;
    if (!any || !(total > 0) || isnan(steps)) {
        snprintf(run->energy_source, sizeof run->energy_source,
                 "none: gpu.csv has neither energy_j nor power_w samples");
        return DMZ_OK;
    }
    double samples = 0;
    for (int r = 0; r < run->r.nreps; r++)
        if (!isnan(run->r.reps[r].samples_per_s) && !isnan(run->r.reps[r].wall_s))
            samples += run->r.reps[r].samples_per_s * run->r.reps[r].wall_s;
    double per_step = total / steps, spj = samples > 0 ? samples / total : NAN;
    double pw = t1 > t0 ? total / (t1 - t0) : NAN;
    rpt_spread_of(&per_step, 1, &run->energy_step_j);
    rpt_spread_of(&spj, 1, &run->samples_per_j);
    rpt_spread_of(&pw, 1, &run->power_w);
    snprintf(run->energy_source, sizeof run->energy_source,
             "gpu.csv over the whole run (warm-up and evaluation included), per measured step");
    return DMZ_OK;
}

/* ------------------------------------------------------------ per step */
static void per_step_spreads(cmp_run *run) {
    int n = run->r.nreps;
    double *v = calloc((size_t)n + 1, sizeof *v);
    double steps = run->r.steps > 0 ? (double)run->r.steps : NAN;
    if (!v) return;
    for (int i = 0; i < n; i++) v[i] = run->r.reps[i].wall_s / steps * 1e3;
    rpt_spread_of(v, isnan(steps) ? 0 : n, &run->step_ms);
    for (int p = 0; p < RPT_NPHASES; p++) {
        for (int i = 0; i < n; i++) v[i] = run->r.reps[i].phase_s[p] / steps * 1e3;
        rpt_spread_of(v, isnan(steps) ? 0 : n, &run->phase_ms[p]);
    }
    free(v);
}

int cmp_run_load(const char *run_dir, const dmz_device_table *table, cmp_run *run, char *err) {
    memset(run, 0, sizeof *run);
    int rc = rpt_run_load(run_dir, &run->r, err);
    if (rc) return rc;
    rpt_spread none = {0, NAN, NAN, NAN};
    run->energy_step_j = run->samples_per_j = run->power_w = none;
    run->kernel_reps = run->r.nreps > 0 ? run->r.nreps : 1;
    rc = load_meta(run, err);
    if (!rc) find_device(run, table);
    if (!rc) rc = load_kernels(run, err);
    per_step_spreads(run);
    snprintf(run->energy_source, sizeof run->energy_source,
             "none: no energy_j in summary.csv and no gpu.csv");
    if (!rc && !energy_from_summary(run)) rc = energy_from_gpu_csv(run, err);
    if (rc) cmp_run_free(run);
    return rc;
}

void cmp_run_free(cmp_run *run) {
    rpt_run_free(&run->r);
    cJSON_Delete(run->meta);
    free(run->kernels);
    run->meta = NULL;
    run->kernels = NULL;
    run->nkernels = 0;
}
