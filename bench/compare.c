/* bench/compare.c — `dmzbench compare RUNDIR_A RUNDIR_B [--out DIR]`: the
 * numbers side by side, what differs between the runs, whether they can be
 * compared at all, the stdout table, compare.csv and the figures. */
#include "bench/compare.h"
#include "bench/compare_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */
void cmp_ratio(const rpt_spread *a, const rpt_spread *b, double *ratio, double *lo, double *hi) {
    *ratio = a->median / b->median;
    *lo = a->min / b->max;
    *hi = a->max / b->min;
    if (a->n == 0 || b->n == 0 || !(b->median != 0)) *ratio = *lo = *hi = NAN;
}

static rpt_spread one(double v) {
    return isnan(v) ? (rpt_spread){0, NAN, NAN, NAN} : (rpt_spread){1, v, v, v};
}

static int add_metric(cmp_result *res, const char *section, const char *item, const char *unit,
                      rpt_spread a, rpt_spread b, int kind) {
    cmp_metric *grown = realloc(res->metrics, (size_t)(res->nmetrics + 1) * sizeof *grown);
    if (!grown) return DMZ_EXIT_FAIL;
    res->metrics = grown;
    cmp_metric *m = &res->metrics[res->nmetrics++];
    memset(m, 0, sizeof *m);
    rpt_copy(m->section, sizeof m->section, section);
    rpt_copy(m->item, sizeof m->item, item);
    rpt_copy(m->unit, sizeof m->unit, unit);
    m->a = a, m->b = b, m->kind = kind;
    if (kind == CMP_TIME) cmp_ratio(&a, &b, &m->ratio, &m->ratio_lo, &m->ratio_hi);
    else cmp_ratio(&b, &a, &m->ratio, &m->ratio_lo, &m->ratio_hi);
    return DMZ_OK;
}

/* ------------------------------------------------------------ numbers */
static int metrics(cmp_result *res) {
    const cmp_run *a = res->a, *b = res->b;
    static const char *const phase_names[RPT_NPHASES] = {"data", "forward", "backward", "comm", "update"};
    int rc = add_metric(res, "time", "wall time", "s", a->r.wall, b->r.wall, CMP_TIME);
    if (!rc) rc = add_metric(res, "time", "step time", "ms", a->step_ms, b->step_ms, CMP_TIME);
    if (!rc) rc = add_metric(res, "time", "throughput", "samples/s", a->r.samples_per_s, b->r.samples_per_s, CMP_RATE);
    for (int p = 0; p < RPT_NPHASES && !rc; p++) {
        char item[64];
        snprintf(item, sizeof item, "%s per step", phase_names[p]);
        rc = add_metric(res, "phase", item, "ms", a->phase_ms[p], b->phase_ms[p], CMP_TIME);
    }
    if (!rc) rc = add_metric(res, "energy", "energy per step", "J", a->energy_step_j, b->energy_step_j, CMP_TIME);
    if (!rc) rc = add_metric(res, "energy", "samples per joule", "1/J", a->samples_per_j, b->samples_per_j, CMP_RATE);
    if (!rc) rc = add_metric(res, "energy", "mean power", "W", a->power_w, b->power_w, CMP_RATIO);
    if (!rc) rc = add_metric(res, "accuracy", "test accuracy", "1", a->r.test_accuracy, b->r.test_accuracy, CMP_RATIO);
    /* kernels: the union of both runs' names, per step */
    for (int side = 0; side < 2 && !rc; side++) {
        const cmp_run *x = side ? b : a, *y = side ? a : b;
        for (int i = 0; i < x->nkernels && !rc; i++) {
            const cmp_kernel *k = &x->kernels[i], *other = NULL;
            for (int j = 0; j < y->nkernels; j++)
                if (strcmp(y->kernels[j].kind, k->kind) == 0 && strcmp(y->kernels[j].name, k->name) == 0)
                    other = &y->kernels[j];
            if (side == 1 && other) continue; /* listed from A already */
            char item[170];
            snprintf(item, sizeof item, "%s%s", k->name, strcmp(k->kind, "memcpy") == 0 ? " (memcpy)" : "");
            rpt_spread sx = one(cmp_kernel_step_ms(x, k)), sy = other ? one(cmp_kernel_step_ms(y, other)) : one(NAN);
            rc = add_metric(res, "kernel", item, "ms/step", side ? sy : sx, side ? sx : sy, CMP_TIME);
        }
    }
    return rc;
}

/* ------------------------------------------------------------ differences */
static const struct { const char *what, *path; } fields[] = {
    {"GPU compute capability", "gpus.0.compute_capability"},
    {"GPU memory (bytes)", "gpus.0.memory_bytes"},
    {"CUDA driver", "gpus.0.cuda_driver"},
    {"CUDA runtime", "gpus.0.cuda_runtime"},
    {"toolkit (build)", "build.cuda"},
    {"dmzbench version", "build.version"},
    {"binary: git revision", "build.git_revision"},
    {"binary: arch flags", "build.arch_flags"},
    {"binary: ISA", "build.isa"},
    {"compiler", "host.compiler"},
    {"host", "host.hostname"},
    {"CPU", "host.cpu_model"},
    {"CPUs online", "host.cpus_online"},
    {"backend", "backend.description"},
    {"data set", "dataset.name"},
    {"data set sha256", "dataset.sha256"},
    {"data set fallback", "dataset.fallback"},
    {"MPI size", "mpi.size"},
    {"MPI transport", "mpi.transport"},
    {"rank speeds", "mpi.rank_speed"},
    {"global batch", "mpi.global_batch"},
};

static int add_diff(cmp_result *res, const char *what, const char *a, const char *b) {
    if (strcmp(a, b) == 0) {
        res->nsame += a[0] != '\0';
        return DMZ_OK;
    }
    cmp_diff *grown = realloc(res->diffs, (size_t)(res->ndiffs + 1) * sizeof *grown);
    if (!grown) return DMZ_EXIT_FAIL;
    res->diffs = grown;
    cmp_diff *d = &res->diffs[res->ndiffs++];
    rpt_copy(d->what, sizeof d->what, what);
    rpt_copy(d->a, sizeof d->a, a[0] ? a : "(not recorded)");
    rpt_copy(d->b, sizeof d->b, b[0] ? b : "(not recorded)");
    return DMZ_OK;
}

/* The command line without the program and the values of options that name
 * paths or the run (they always differ between sites). */
static void flags_of(const cmp_run *run, char *out, size_t len) {
    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(run->meta, "command_line");
    size_t used = 0;
    out[0] = '\0';
    int i = 0;
    bool skip_value = false;
    const cJSON *arg;
    cJSON_ArrayForEach(arg, argv) {
        const char *s = cJSON_IsString(arg) ? arg->valuestring : "";
        bool skip = i++ == 0 || skip_value;
        skip_value = !skip && (strcmp(s, "--out") == 0 || strcmp(s, "--name") == 0 || strcmp(s, "--data-dir") == 0);
        if (skip || used + 2 >= len) continue;
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", s);
        if (skip_value && used + 4 < len) used += (size_t)snprintf(out + used, len - used, " ...");
    }
}

static int differences(cmp_result *res) {
    const cmp_run *a = res->a, *b = res->b;
    char x[600], y[600];
    int rc = add_diff(res, "device", a->device, b->device);
    if (!rc) rc = add_diff(res, "device table row", a->match, b->match);
    for (size_t i = 0; !rc && i < sizeof fields / sizeof fields[0]; i++) {
        cmp_meta_text(a, fields[i].path, x, sizeof x);
        cmp_meta_text(b, fields[i].path, y, sizeof y);
        rc = add_diff(res, fields[i].what, x, y);
    }
    /* every config key either run has */
    for (int side = 0; side < 2 && !rc; side++) {
        const cmp_run *p = side ? b : a, *q = side ? a : b;
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(p->meta, "config"), *item;
        cJSON_ArrayForEach(item, cfg) {
            if (!item->string) continue;
            if (side == 1 && cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(q->meta, "config"), item->string))
                continue;
            char path[160], what[120];
            snprintf(path, sizeof path, "config.%s", item->string);
            snprintf(what, sizeof what, "config: %s", item->string);
            cmp_meta_text(a, path, x, sizeof x);
            cmp_meta_text(b, path, y, sizeof y);
            if ((rc = add_diff(res, what, x, y))) break;
        }
    }
    if (!rc) {
        flags_of(a, x, sizeof x);
        flags_of(b, y, sizeof y);
        rc = add_diff(res, "flags (command line)", x, y);
    }
    return rc;
}

static void warn(cmp_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(cmp_result *res, const char *fmt, ...) {
    if (res->nwarn >= (int)(sizeof res->warn / sizeof res->warn[0])) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->warn[res->nwarn++], sizeof res->warn[0], fmt, ap);
    va_end(ap);
}

/* Different data, model, steps or batch: the times answer different questions. */
static void comparable(cmp_result *res) {
    const rpt_run *a = &res->a->r, *b = &res->b->r;
    if (strcmp(a->model, b->model) != 0)
        warn(res, "different model: A trains '%s' vs B '%s'", a->model, b->model);
    if (a->steps != b->steps) warn(res, "different steps: A %ld vs B %ld", a->steps, b->steps);
    if (a->batch != b->batch) warn(res, "different batch: A %ld vs B %ld", a->batch, b->batch);
    if (strcmp(a->dataset, b->dataset) != 0)
        warn(res, "different data: A '%s' vs B '%s'", a->dataset, b->dataset);
    else if (a->dataset_sha256[0] && b->dataset_sha256[0] && strcmp(a->dataset_sha256, b->dataset_sha256) != 0)
        warn(res, "different data: same name '%s' but sha256 %.12s... (A) vs %.12s... (B)", a->dataset,
             a->dataset_sha256, b->dataset_sha256);
}

static void projections(cmp_result *res) {
    const cmp_run *a = res->a, *b = res->b;
    if (!a->row || !b->row) {
        snprintf(res->no_projection, sizeof res->no_projection,
                 "no projection: %s's device (%s) is not in the device table", !a->row ? "A" : "B",
                 !a->row ? a->device : b->device);
        return;
    }
    if (a->row == b->row) {
        snprintf(res->no_projection, sizeof res->no_projection,
                 "no projection: both runs ran on a %s", a->row->name);
        return;
    }
    prj_options opt;
    prj_options_default(&opt);
    char err[DMZ_ERR_LEN];
    for (int i = 0; i < 2; i++) {
        const cmp_run *src = i ? b : a, *dst = i ? a : b;
        res->have_projection[i] = prj_project(src, src->row, dst->row, &opt, &res->proj[i], err) == DMZ_OK;
        if (!res->have_projection[i])
            snprintf(res->no_projection, sizeof res->no_projection, "no projection: %.370s", err);
    }
}

int cmp_compute(cmp_run *a, cmp_run *b, cmp_result *res, char *err) {
    memset(res, 0, sizeof *res);
    res->a = a, res->b = b;
    int rc = metrics(res);
    if (!rc) rc = differences(res);
    if (rc) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    comparable(res);
    projections(res);
    return DMZ_OK;
}

void cmp_result_free(cmp_result *res) {
    free(res->metrics);
    free(res->diffs);
    for (int i = 0; i < 2; i++) prj_free(&res->proj[i]);
    memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------ stdout */
static void cell(FILE *f, double v, int width) {
    if (isnan(v)) fprintf(f, " %*s", width, "NA");
    else fprintf(f, " %*.4g", width, v);
}

static const char *kind_text(int kind) {
    return kind == CMP_TIME ? "A/B" : kind == CMP_RATE ? "B/A" : "B/A";
}

static void run_line(FILE *f, const cmp_run *x) {
    fprintf(f, "# %s: %s\n#    device %s [%s]; %s %s %s, %ld steps x batch %ld, %d rep%s; data %s "
            "(sha256 %.12s)\n", x->label, x->r.name, x->device, x->match, x->r.model, x->r.backend,
            x->r.mode, x->r.steps, x->r.batch, x->r.nreps, x->r.nreps == 1 ? "" : "s",
            x->r.dataset[0] ? x->r.dataset : "?", x->r.dataset_sha256[0] ? x->r.dataset_sha256 : "?");
}

static void print_projection(FILE *f, const cmp_result *res) {
    fputs("#\n# PROJECTION beside the measurement (bench/project.c; roofline per kernel)\n", f);
    if (!res->have_projection[0] && !res->have_projection[1]) {
        fprintf(f, "#   %s\n", res->no_projection);
        return;
    }
    fprintf(f, "# %-34s %14s %14s %9s\n", "projection", "PROJECTED ms", "measured ms", "error");
    for (int i = 0; i < 2; i++) {
        if (!res->have_projection[i]) continue;
        const prj_result *p = &res->proj[i];
        const cmp_run *dst = i ? res->a : res->b;
        char what[80];
        snprintf(what, sizeof what, "%s onto %s%s", i ? "B" : "A", p->to_name, p->coarse ? " (COARSE)" : "");
        double meas = dst->step_ms.median;
        fprintf(f, "  %-34s %14.4g %14.4g %+8.1f%%\n", what, p->projected_step_ms, meas,
                100.0 * (p->projected_step_ms - meas) / meas);
    }
}

void cmp_print_table(FILE *f, const cmp_result *res) {
    fprintf(f, "# dmzbench compare\n");
    run_line(f, res->a);
    run_line(f, res->b);
    for (int i = 0; i < res->nwarn; i++) fprintf(f, "# WARNING: NOT COMPARABLE: %s\n", res->warn[i]);
    fputs("# B vs A: speedup A/B for times (> 1: B is faster), B/A for rates and other values;\n"
          "# spread: min..max over repetitions (speedup min = A min / B max, max = A max / B min)\n#\n", f);
    fprintf(f, "# %-30s %-9s %10s %10s %10s %10s %10s %10s %4s %8s %8s %8s\n", "metric", "unit",
            "A median", "A min", "A max", "B median", "B min", "B max", "", "B vs A", "min", "max");
    const char *section = "";
    for (int i = 0; i < res->nmetrics; i++) {
        const cmp_metric *m = &res->metrics[i];
        if (strcmp(section, m->section) != 0) {
            if (strcmp(m->section, "kernel") == 0)
                fprintf(f, "# kernels (kernels.csv, rank 0, per step):\n");
            section = m->section;
        }
        fprintf(f, "  %-30.30s %-9s", m->item, m->unit);
        cell(f, m->a.median, 10), cell(f, m->a.min, 10), cell(f, m->a.max, 10);
        cell(f, m->b.median, 10), cell(f, m->b.min, 10), cell(f, m->b.max, 10);
        fprintf(f, " %4s", kind_text(m->kind));
        cell(f, m->ratio, 8), cell(f, m->ratio_lo, 8), cell(f, m->ratio_hi, 8);
        fputc('\n', f);
    }
    if (!res->a->has_kernels || !res->b->has_kernels)
        fprintf(f, "# kernels: %s\n", !res->a->has_kernels && !res->b->has_kernels ? "no kernels.csv in either run"
                : !res->a->has_kernels ? "no kernels.csv in A" : "no kernels.csv in B");
    fprintf(f, "# energy: A %s; B %s\n", res->a->energy_source, res->b->energy_source);
    print_projection(f, res);
    fprintf(f, "#\n# what differs (%d field%s the same):\n", res->nsame, res->nsame == 1 ? "" : "s");
    for (int i = 0; i < res->ndiffs; i++)
        fprintf(f, "#   %-26s A: %s\n#   %-26s B: %s\n", res->diffs[i].what, res->diffs[i].a, "", res->diffs[i].b);
    if (res->ndiffs == 0) fputs("#   nothing recorded differs\n", f);
    for (int i = 0; i < 2; i++) {
        const cmp_run *x = i ? res->b : res->a;
        if (x->r.ranks > 1) {
            fprintf(f, "#\n# %s's ranks:\n", x->label);
            rpt_ranks_text(f, &x->r, "#   ");
        }
    }
    if (res->nwarn)
        fprintf(f, "# WARNING: these runs are NOT COMPARABLE (%d reason%s above): read the speedups "
                "with care\n", res->nwarn, res->nwarn == 1 ? "" : "s");
}

/* ------------------------------------------------------------ compare.csv */
static void put(FILE *f, double v) {
    if (isnan(v)) fputs(",NA", f);
    else fprintf(f, ",%.6g", v);
}

static int finish_file(FILE *f, char **buf, size_t *len, const char *out_dir, const char *name, char *err) {
    char path[RPT_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    if (fclose(f) != 0) {
        free(*buf);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    return rpt_write_stream(path, *buf, *len, err);
}

int cmp_write_csv(const cmp_result *res, const char *out_dir, char *err) {
    char *buf = NULL, field[700], f2[700];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("section,item,unit,a_median,a_min,a_max,b_median,b_min,b_max,b_vs_a,b_vs_a_min,b_vs_a_max,note\n", f);
    for (int i = 0; i < 2; i++) {
        const cmp_run *x = i ? res->b : res->a;
        char text[1200];
        snprintf(text, sizeof text, "%s: %s; device %s [%s]", x->label, x->r.name, x->device, x->match);
        rpt_csv_field(field, sizeof field, text);
        fprintf(f, "run,%s,,NA,NA,NA,NA,NA,NA,NA,NA,NA,%s\n", x->label, field);
    }
    for (int i = 0; i < res->nwarn; i++) {
        rpt_csv_field(field, sizeof field, res->warn[i]);
        fprintf(f, "warning,not comparable,,NA,NA,NA,NA,NA,NA,NA,NA,NA,%s\n", field);
    }
    for (int i = 0; i < res->nmetrics; i++) {
        const cmp_metric *m = &res->metrics[i];
        rpt_csv_field(field, sizeof field, m->item);
        fprintf(f, "%s,%s,%s", m->section, field, m->unit);
        put(f, m->a.median), put(f, m->a.min), put(f, m->a.max);
        put(f, m->b.median), put(f, m->b.min), put(f, m->b.max);
        put(f, m->ratio), put(f, m->ratio_lo), put(f, m->ratio_hi);
        fprintf(f, ",%s\n", m->kind == CMP_TIME ? "speedup A/B" : m->kind == CMP_RATE ? "speedup B/A" : "ratio B/A");
    }
    for (int i = 0; i < 2; i++) {
        if (!res->have_projection[i]) continue;
        const prj_result *p = &res->proj[i];
        double meas = (i ? res->a : res->b)->step_ms.median;
        snprintf(f2, sizeof f2, "PROJECTION %s onto %s%s", i ? "B" : "A", p->to_name, p->coarse ? " (COARSE)" : "");
        rpt_csv_field(field, sizeof field, f2);
        /* a_*: the projection, b_*: the measurement on that device */
        fprintf(f, "projection,%s,ms", field);
        put(f, p->projected_step_ms), fputs(",NA,NA", f);
        put(f, meas), fputs(",NA,NA", f);
        put(f, p->projected_step_ms / meas), fputs(",NA,NA", f);
        fprintf(f, ",PROJECTION: a_median projected; b_median measured; error %+.1f%%\n",
                100.0 * (p->projected_step_ms - meas) / meas);
    }
    if (!res->have_projection[0] && !res->have_projection[1]) {
        rpt_csv_field(field, sizeof field, res->no_projection);
        fprintf(f, "projection,none,,NA,NA,NA,NA,NA,NA,NA,NA,NA,%s\n", field);
    }
    for (int i = 0; i < res->ndiffs; i++) {
        char text[800];
        rpt_csv_field(f2, sizeof f2, res->diffs[i].what);
        snprintf(text, sizeof text, "A: %s | B: %s", res->diffs[i].a, res->diffs[i].b);
        rpt_csv_field(field, sizeof field, text);
        fprintf(f, "differs,%s,,NA,NA,NA,NA,NA,NA,NA,NA,NA,%s\n", f2, field);
    }
    return finish_file(f, &buf, &len, out_dir, "compare.csv", err);
}

/* ------------------------------------------------------------ figure data */
static void spread3(FILE *f, const rpt_spread *s) { put(f, s->median), put(f, s->min), put(f, s->max); }

static int fig_data(const cmp_result *res, const char *out_dir, char *err) {
    const cmp_run *runs[2] = {res->a, res->b};
    char *buf = NULL, field[400], text[400];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    const cmp_metric *speed = &res->metrics[1]; /* step time */
    fputs("a,b,title,warning\n", f);
    for (int i = 0; i < 2; i++) {
        snprintf(text, sizeof text, "%s: %s", runs[i]->label, runs[i]->device);
        rpt_csv_field(field, sizeof field, text);
        fprintf(f, "%s,", field);
    }
    if (isnan(speed->ratio)) snprintf(text, sizeof text, "B vs A: speedup unknown");
    else if (speed->ratio >= 1)
        snprintf(text, sizeof text, "B is %.3gx faster per step than A (speedup %.3g-%.3g over repetitions)",
                 speed->ratio, speed->ratio_lo, speed->ratio_hi);
    else
        snprintf(text, sizeof text, "B is %.3gx slower per step than A (speedup %.3g; %.3g-%.3g over repetitions)",
                 1 / speed->ratio, speed->ratio, speed->ratio_lo, speed->ratio_hi);
    rpt_csv_field(field, sizeof field, text);
    fprintf(f, "%s,%s\n", field, res->nwarn ? "NOT COMPARABLE: see compare.html" : "none");
    int rc = finish_file(f, &buf, &len, out_dir, "fig-compare-info.csv", err);
    if (rc) return rc;

    if (!(f = open_memstream(&buf, &len))) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("label,wall_median_s,wall_min_s,wall_max_s,sps_median,sps_min,sps_max\n", f);
    for (int i = 0; i < 2; i++) {
        snprintf(text, sizeof text, "%s: %s", runs[i]->label, runs[i]->device);
        rpt_csv_field(field, sizeof field, text);
        fputs(field, f);
        spread3(f, &runs[i]->r.wall), spread3(f, &runs[i]->r.samples_per_s);
        fputc('\n', f);
    }
    if ((rc = finish_file(f, &buf, &len, out_dir, "fig-compare-time.csv", err))) return rc;

    if (!(f = open_memstream(&buf, &len))) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("label,data_ms,fwd_ms,bwd_ms,comm_ms,update_ms,other_ms,step_ms\n", f);
    for (int i = 0; i < 2; i++) {
        double sum = 0;
        fputs(runs[i]->label, f);
        for (int p = 0; p < RPT_NPHASES; p++) {
            double v = runs[i]->phase_ms[p].median;
            sum += isnan(v) ? 0 : v;
            put(f, v);
        }
        double step = runs[i]->step_ms.median;
        put(f, step > sum ? step - sum : 0);
        put(f, step);
        fputc('\n', f);
    }
    if ((rc = finish_file(f, &buf, &len, out_dir, "fig-compare-breakdown.csv", err))) return rc;

    if (!(f = open_memstream(&buf, &len))) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("kernel,a_ms,b_ms,speedup\n", f);
    for (int i = 0; i < res->nmetrics; i++) {
        const cmp_metric *m = &res->metrics[i];
        if (strcmp(m->section, "kernel") != 0) continue;
        rpt_csv_field(field, sizeof field, m->item);
        fputs(field, f);
        put(f, m->a.median), put(f, m->b.median), put(f, m->ratio);
        fputc('\n', f);
    }
    if ((rc = finish_file(f, &buf, &len, out_dir, "fig-compare-kernels.csv", err))) return rc;

    if (!(f = open_memstream(&buf, &len))) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("label,energy_median_j,energy_min_j,energy_max_j,spj_median,spj_min,spj_max\n", f);
    for (int i = 0; i < 2; i++) {
        snprintf(text, sizeof text, "%s: %s", runs[i]->label, runs[i]->device);
        rpt_csv_field(field, sizeof field, text);
        fputs(field, f);
        spread3(f, &runs[i]->energy_step_j), spread3(f, &runs[i]->samples_per_j);
        fputc('\n', f);
    }
    return finish_file(f, &buf, &len, out_dir, "fig-compare-energy.csv", err);
}

/* ------------------------------------------------------------ figures */
static void skip(rpt_figure *fig, const char *why, const char *side, const char *detail) {
    fig->state = RPT_FIG_SKIPPED;
    snprintf(fig->note, sizeof fig->note, "%s %s%s%.900s%s", why, side, detail[0] ? " (" : "", detail,
             detail[0] ? ")" : "");
}

static bool any_phase(const cmp_run *x) {
    for (int p = 0; p < RPT_NPHASES; p++)
        if (x->phase_ms[p].n > 0) return true;
    return false;
}

static int draw(rpt_ctx *ctx, const cmp_result *res, rpt_figure *figs, const char *out_dir, char *err) {
    figs[CMP_FIG_TIME] = (rpt_figure){"compare-time", "Wall time and throughput of A and B: median over "
        "repetitions, whiskers min and max; the title gives B's speedup per step over A.", RPT_FIG_FAILED, ""};
    figs[CMP_FIG_BREAKDOWN] = (rpt_figure){"compare-breakdown", "Where a step's time goes (rank 0, median "
        "over repetitions, ms per step): data, forward, backward, communication, update and the rest.",
        RPT_FIG_FAILED, ""};
    figs[CMP_FIG_KERNELS] = (rpt_figure){"compare-kernels", "Per-kernel device time per step from "
        "kernels.csv (rank 0), A beside B, and each kernel's speedup A/B.", RPT_FIG_FAILED, ""};
    figs[CMP_FIG_ENERGY] = (rpt_figure){"compare-energy", "Energy per step and samples per joule where "
        "power was recorded (whiskers: min and max over repetitions).", RPT_FIG_FAILED, ""};
    const cmp_run *a = res->a, *b = res->b;
    if (a->r.wall.n == 0 || b->r.wall.n == 0) skip(&figs[CMP_FIG_TIME], "no wall time in", a->r.wall.n ? "B" : "A", "");
    if (!any_phase(a) || !any_phase(b))
        skip(&figs[CMP_FIG_BREAKDOWN], "no step phases (data_s, fwd_s, ...) in the summary.csv of", any_phase(a) ? "B" : "A", "");
    if (!a->has_kernels || !b->has_kernels)
        skip(&figs[CMP_FIG_KERNELS], "kernels.csv missing in", a->has_kernels ? "B" : "A",
             a->has_kernels ? b->r.dir : a->r.dir);
    if (a->energy_step_j.n == 0 || b->energy_step_j.n == 0)
        skip(&figs[CMP_FIG_ENERGY], "no power recorded in", a->energy_step_j.n ? "B" : "A",
             a->energy_step_j.n ? b->energy_source : a->energy_source);
    int first = DMZ_OK;
    char why[DMZ_ERR_LEN];
    for (int i = 0; i < CMP_NFIGS; i++) {
        if (figs[i].state == RPT_FIG_SKIPPED) continue;
        int rc = rpt_draw(ctx, &figs[i], out_dir, out_dir, why);
        if (rc && !first) first = dmz_errorf(err, rc, "%s", why);
    }
    return first;
}

/* ------------------------------------------------------------ entry */
static void default_out(const cmp_run *a, const cmp_run *b, char *out, size_t len) {
    char x[120], y[120];
    rpt_csv_field(x, sizeof x, a->r.name);
    rpt_csv_field(y, sizeof y, b->r.name);
    snprintf(out, len, "compare-%s-vs-%s", x, y);
    for (char *p = out; *p; p++)
        if (*p == '/' || *p == ' ' || *p == '\'') *p = '_';
}

int dmz_compare(const char *run_a, const char *run_b, const char *out_dir, bool quiet, char *err) {
    dmz_device_table table;
    int rc = dmz_devices_load(&table, NULL, err);
    if (rc) return rc;
    cmp_run *runs = calloc(2, sizeof *runs);
    rpt_ctx *ctx = calloc(1, sizeof *ctx);
    int loaded = 0;
    if (!runs || !ctx) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    for (; !rc && loaded < 2; loaded++)
        if ((rc = cmp_run_load(loaded ? run_b : run_a, &table, &runs[loaded], err))) break;
    cmp_result res = {0};
    char out[RPT_PATH_LEN];
    if (!rc) {
        rpt_copy(runs[0].label, sizeof runs[0].label, "A");
        rpt_copy(runs[1].label, sizeof runs[1].label, "B");
        rc = cmp_compute(&runs[0], &runs[1], &res, err);
    }
    if (!rc) {
        if (out_dir) rpt_copy(out, sizeof out, out_dir);
        else default_out(&runs[0], &runs[1], out, sizeof out);
        if (strchr(out, '\'')) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "--out '%s': a path with a single quote cannot be passed to gnuplot", out);
    }
    if (!rc) rc = dmz_mkdirs(out, err);
    if (!rc && !quiet) cmp_print_table(stdout, &res);
    if (!rc) rc = cmp_write_csv(&res, out, err);
    if (!rc) rc = fig_data(&res, out, err);
    rpt_figure figs[CMP_NFIGS];
    int drawn = DMZ_OK;
    char draw_err[DMZ_ERR_LEN] = "";
    if (!rc) {
        ctx->quiet = quiet;
        const char *dir = getenv("DMZBENCH_PLOTS_DIR");
        rpt_copy(ctx->plots_dir, sizeof ctx->plots_dir, dir && *dir ? dir : DMZ_SOURCE_DIR "/plots");
        drawn = draw(ctx, &res, figs, out, draw_err);
        rc = cmp_html(&res, figs, CMP_NFIGS, out, err);
    }
    if (!rc && !quiet) {
        printf("# compare: %s/compare.html %s/compare.csv\n", out, out);
        for (int i = 0; i < CMP_NFIGS; i++) {
            if (figs[i].state == RPT_FIG_OK) printf("# figure: %s/%s.png %s/%s.svg\n", out, figs[i].name, out, figs[i].name);
            else printf("# figure %s %s: %s\n", figs[i].name, figs[i].state == RPT_FIG_SKIPPED ? "skipped" : "FAILED", figs[i].note);
        }
    }
    if (!rc && drawn) rc = dmz_errorf(err, drawn, "%s", draw_err);
    cmp_result_free(&res);
    for (int i = 0; i < loaded; i++) cmp_run_free(&runs[i]);
    free(runs);
    free(ctx);
    dmz_devices_free(&table);
    return rc;
}

int dmz_compare_main(int argc, char **argv) {
    const char *dirs[2] = {NULL, NULL}, *out = NULL;
    int n = 0;
    char err[DMZ_ERR_LEN];
    int rc = DMZ_OK;
    for (int i = 1; i < argc && !rc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-') rc = dmz_errorf(err, DMZ_EXIT_USAGE, "bad option '%s'", argv[i]);
        else if (n < 2) dirs[n++] = argv[i];
        else rc = dmz_errorf(err, DMZ_EXIT_USAGE, "two run directories, not more ('%s'); "
                             "dmzbench report takes any number", argv[i]);
    }
    if (!rc && n != 2) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "usage: dmzbench compare RUNDIR_A RUNDIR_B [--out DIR]");
    if (!rc) rc = dmz_compare(dirs[0], dirs[1], out, false, err);
    if (rc) fprintf(stderr, "dmzbench compare: %s\n", err);
    return rc;
}

/* ------------------------------------------------------------ from `report` */
int cmp_report_links(const rpt_run *runs, int n_runs, const char *out_dir, bool quiet,
                     char **html, char *err) {
    *html = NULL;
    if (n_runs < 2) return DMZ_OK;
    dmz_device_table table;
    char why[DMZ_ERR_LEN];
    if (dmz_devices_load(&table, NULL, why) != DMZ_OK) { /* the report goes on without them */
        fprintf(stderr, "dmzbench report: no device comparisons: %s\n", why);
        return DMZ_OK;
    }
    int rc = DMZ_OK;
    cmp_run *x = calloc(2, sizeof *x);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = x ? open_memstream(&buf, &len) : NULL;
    if (!f) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    bool first_loaded = !rc && (rc = cmp_run_load(runs[0].dir, &table, &x[0], err)) == DMZ_OK;
    int linked = 0;
    for (int i = 1; !rc && i < n_runs; i++) {
        if ((rc = cmp_run_load(runs[i].dir, &table, &x[1], err))) break;
        bool differ = strcmp(x[0].device, x[1].device) != 0 || strcmp(x[0].r.backend, x[1].r.backend) != 0;
        char sub[RPT_PATH_LEN + 32], name[32];
        snprintf(name, sizeof name, "compare-%d", i + 1);
        snprintf(sub, sizeof sub, "%s/%s", out_dir, name);
        if (differ) rc = dmz_compare(runs[0].dir, runs[i].dir, sub, true, err);
        if (differ && !rc) {
            if (!linked++)
                fputs("<h2>Different devices or backends</h2>\n<p>Runs that ran on another device "
                      "or backend than the first, side by side with it (dmzbench compare):</p>\n<ul>\n", f);
            fprintf(f, "<li><a href=\"%s/compare.html\">", name);
            cmp_html_escape(f, x[0].r.name);
            fputs(" vs ", f);
            cmp_html_escape(f, x[1].r.name);
            fputs("</a>: ", f);
            cmp_html_escape(f, x[0].device);
            fputs(" vs ", f);
            cmp_html_escape(f, x[1].device);
            fputs("</li>\n", f);
            if (!quiet) printf("compare: %s/compare.html\n", sub);
        }
        cmp_run_free(&x[1]);
    }
    if (f) {
        if (linked) fputs("</ul>\n", f);
        fclose(f);
        if (linked && !rc) *html = buf;
        else free(buf);
    }
    if (first_loaded) cmp_run_free(&x[0]);
    free(x);
    dmz_devices_free(&table);
    return rc;
}
