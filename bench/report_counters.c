/* bench/report_counters.c — the data behind the counter figures of one run:
 *   gpu       gpu.csv over time (power, SM clock, utilisation, memory), with
 *             the measured steps of every repetition marked (summary.csv's
 *             gpu_t0_s/gpu_t1_s)
 *   kernels   kernels.csv: the kernels and copies by total time
 *   roofline  kernels.csv's achieved GFLOP/s against FLOP per byte, under the
 *             device's roofline (meta.json: counters.ranks[].peak_*)
 *   papi      papi.csv: counts per sample of each event in each phase
 * A figure whose data is missing is skipped with the run's own reason
 * (meta.json's "unavailable: ..."). */
#include "bench/report_impl.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int finish(FILE *f, char **buf, size_t *len, const char *out_dir, const char *file, char *err) {
    char path[RPT_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/%s", out_dir, file);
    if (fclose(f) != 0) {
        free(*buf);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    return rpt_write_stream(path, *buf, *len, err);
}

static void put(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.6g", v);
    else fputs(",NA", f);
}

/* counters.ranks[0].<key> (or <key>.status) from meta.json: the run's reason. */
static void meta_reason(const rpt_run *run, const char *key, char *out, size_t len) {
    char path[RPT_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/meta.json", run->dir);
    char *text = NULL;
    size_t n = 0;
    char err[DMZ_ERR_LEN];
    snprintf(out, len, "the run recorded no reason (meta.json without counters)");
    if (dmz_read_file(path, 1 << 26, &text, &n, err) != DMZ_OK) return;
    cJSON *m = cJSON_Parse(text);
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "counters"), "ranks"), 0);
    cJSON *v = cJSON_GetObjectItem(r0, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItem(v, "status");
    if (cJSON_IsString(v)) rpt_csv_field(out, len, v->valuestring);
    cJSON_Delete(m);
    free(text);
}

/* The table, or why there is none (file missing: a run made before counters). */
static int open_table(const rpt_run *run, const char *file, rpt_table *t, char *why, size_t len, char *err) {
    char path[RPT_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/%s", run->dir, file);
    memset(t, 0, sizeof *t);
    if (access(path, R_OK) != 0) {
        snprintf(why, len, "%s not found (a run made before counters were recorded)", file);
        return DMZ_OK;
    }
    return rpt_table_read(path, t, err);
}

static double cell(const rpt_table *t, size_t r, const char *col) {
    double v = NAN;
    char e[DMZ_ERR_LEN];
    if (rpt_table_num(t, r, rpt_table_col(t, col), &v, e) != DMZ_OK) return NAN;
    return v;
}

static int gpu_data(const rpt_run *run, const char *out_dir, char *why, size_t len, char *err) {
    rpt_table t;
    int rc = open_table(run, "gpu.csv", &t, why, len, err);
    if (rc || why[0]) return rc;
    if (t.nrows == 0) {
        char r[600];
        meta_reason(run, "sampler", r, sizeof r);
        snprintf(why, len, "gpu.csv has no samples: %s", r);
        rpt_table_free(&t);
        return DMZ_OK;
    }
    char *buf = NULL, *sbuf = NULL, *rbuf = NULL;
    size_t blen = 0, slen = 0, rlen = 0;
    FILE *f = open_memstream(&buf, &blen), *s = open_memstream(&sbuf, &slen), *r = open_memstream(&rbuf, &rlen);
    fputs("series,t_s,power_w,sm_clock_mhz,gpu_util_pct,mem_util_pct,mem_used_gib\n", f);
    fputs("series,label\n", s);
    int keys[64][2], nk = 0;
    for (size_t i = 0; i < t.nrows; i++) { /* the series, in order of appearance */
        int rank = (int)cell(&t, i, "rank"), dev = (int)cell(&t, i, "device"), k;
        for (k = 0; k < nk && !(keys[k][0] == rank && keys[k][1] == dev); k++) {}
        if (k == nk && nk < 64) {
            keys[nk][0] = rank, keys[nk][1] = dev;
            fprintf(s, "%d,rank%d/gpu%d\n", nk, rank, dev);
            nk++;
        }
    }
    for (int k = 0; k < nk; k++) /* one series after the other: gnuplot's lines do not cross NA rows */
        for (size_t i = 0; i < t.nrows; i++) {
            if ((int)cell(&t, i, "rank") != keys[k][0] || (int)cell(&t, i, "device") != keys[k][1]) continue;
            fprintf(f, "%d", k);
            put(f, cell(&t, i, "t_s")), put(f, cell(&t, i, "power_w")), put(f, cell(&t, i, "sm_clock_mhz"));
            put(f, cell(&t, i, "gpu_util_pct")), put(f, cell(&t, i, "mem_util_pct"));
            put(f, cell(&t, i, "mem_used_bytes") / (1024.0 * 1024 * 1024));
            fputc('\n', f);
        }
    /* the measured steps of each repetition, on rank 0's clock (other ranks have their own) */
    fputs("rep,t0_s,t1_s\n", r);
    const rpt_table *sm = &run->summary_csv;
    for (size_t i = 0; i < sm->nrows; i++)
        if (cell(sm, i, "rank") == 0) {
            fprintf(r, "%g", cell(sm, i, "rep"));
            put(r, cell(sm, i, "gpu_t0_s")), put(r, cell(sm, i, "gpu_t1_s"));
            fputc('\n', r);
        }
    rpt_table_free(&t);
    rc = finish(f, &buf, &blen, out_dir, "fig-gpu.csv", err);
    int rc2 = finish(s, &sbuf, &slen, out_dir, "fig-gpu-series.csv", err);
    int rc3 = finish(r, &rbuf, &rlen, out_dir, "fig-gpu-reps.csv", err);
    return rc ? rc : rc2 ? rc2 : rc3;
}

typedef struct krow { char label[160]; double ms, flops, bytes, gflops; int rank; } krow;

static int by_time(const void *a, const void *b) {
    double x = ((const krow *)a)->ms, y = ((const krow *)b)->ms;
    return (x < y) - (x > y);
}

static int kernel_rows(const rpt_run *run, krow **out, size_t *n, char *why, size_t len, char *err) {
    rpt_table t;
    *out = NULL, *n = 0;
    int rc = open_table(run, "kernels.csv", &t, why, len, err);
    if (rc || why[0]) return rc;
    if (t.nrows == 0) {
        char r[600];
        meta_reason(run, "kernels", r, sizeof r);
        snprintf(why, len, "kernels.csv is empty: %s", r);
        rpt_table_free(&t);
        return DMZ_OK;
    }
    krow *k = calloc(t.nrows, sizeof *k);
    if (!k) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    int name = rpt_table_col(&t, "name"), kind = rpt_table_col(&t, "kind");
    for (size_t i = 0; i < t.nrows; i++) {
        char text[200];
        k[i].rank = (int)cell(&t, i, "rank");
        snprintf(text, sizeof text, "r%d %s%s", k[i].rank, strcmp(rpt_table_cell(&t, i, kind), "memcpy") == 0 ? "" : "",
                 rpt_table_cell(&t, i, name));
        rpt_csv_field(k[i].label, sizeof k[i].label, text);
        k[i].ms = cell(&t, i, "total_ms"), k[i].flops = cell(&t, i, "flops"), k[i].bytes = cell(&t, i, "bytes");
        k[i].gflops = cell(&t, i, "gflops");
    }
    *n = t.nrows;
    qsort(k, *n, sizeof *k, by_time);
    *out = k;
    rpt_table_free(&t);
    return DMZ_OK;
}

static int kernels_data(const rpt_run *run, const char *out_dir, char *why, size_t len, char *err) {
    krow *k;
    size_t n;
    int rc = kernel_rows(run, &k, &n, why, len, err);
    if (rc || why[0]) return rc;
    double total = 0;
    for (size_t i = 0; i < n; i++) total += isfinite(k[i].ms) ? k[i].ms : 0;
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    fputs("label,total_ms,share_pct\n", f);
    for (size_t i = 0; i < n && i < 20; i++) {
        fputs(k[i].label, f);
        put(f, k[i].ms), put(f, total > 0 ? 100 * k[i].ms / total : NAN);
        fputc('\n', f);
    }
    free(k);
    return finish(f, &buf, &blen, out_dir, "fig-kernels.csv", err);
}

static int roofline_data(const rpt_run *run, const char *out_dir, char *why, size_t len, char *err) {
    krow *k;
    size_t n;
    int rc = kernel_rows(run, &k, &n, why, len, err);
    if (rc || why[0]) return rc;
    char path[RPT_PATH_LEN + 32], *text = NULL;
    size_t tl = 0;
    snprintf(path, sizeof path, "%s/meta.json", run->dir);
    cJSON *m = dmz_read_file(path, 1 << 26, &text, &tl, err) == DMZ_OK ? cJSON_Parse(text) : NULL;
    free(text);
    char *buf = NULL, *dbuf = NULL;
    size_t blen = 0, dlen = 0;
    FILE *f = open_memstream(&buf, &blen), *d = open_memstream(&dbuf, &dlen);
    fputs("label,flop_per_byte,gflops,rank\n", f);
    fputs("rank,device,peak_gflops,peak_gbps\n", d);
    int points = 0, devices = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(k[i].flops > 0 && k[i].bytes > 0 && isfinite(k[i].gflops))) continue;
        fprintf(f, "%s", k[i].label);
        put(f, k[i].flops / k[i].bytes), put(f, k[i].gflops);
        fprintf(f, ",%d\n", k[i].rank);
        points++;
    }
    cJSON *rk;
    cJSON_ArrayForEach(rk, cJSON_GetObjectItem(cJSON_GetObjectItem(m, "counters"), "ranks")) {
        cJSON *pf = cJSON_GetObjectItem(rk, "peak_fp32_flops"), *pb = cJSON_GetObjectItem(rk, "peak_memory_bytes_per_s");
        if (!cJSON_IsNumber(pf) || !cJSON_IsNumber(pb)) continue;
        char dev[200];
        rpt_csv_field(dev, sizeof dev, cJSON_GetObjectItem(rk, "device") ? cJSON_GetObjectItem(rk, "device")->valuestring : "?");
        fprintf(d, "%d,%s,%.6g,%.6g\n", cJSON_GetObjectItem(rk, "rank")->valueint, dev, pf->valuedouble / 1e9,
                pb->valuedouble / 1e9);
        devices++;
    }
    cJSON_Delete(m);
    free(k);
    if (!points) snprintf(why, len, "no kernel has both a FLOP and a byte count (CUPTI kernels shared by one op call are NA)");
    else if (!devices) snprintf(why, len, "the device's peaks are unknown (meta.json: counters.ranks[].peak_*: no clocks)");
    rc = finish(f, &buf, &blen, out_dir, "fig-roofline.csv", err);
    int rc2 = finish(d, &dbuf, &dlen, out_dir, "fig-roofline-devices.csv", err);
    return rc ? rc : rc2;
}

static int papi_data(const rpt_run *run, const char *out_dir, char *why, size_t len, char *err) {
    rpt_table t;
    int rc = open_table(run, "papi.csv", &t, why, len, err);
    if (rc || why[0]) return rc;
    /* rank 0: mean over repetitions of each (phase, event) per sample */
    static const char *const phases[] = {"data", "fwd", "bwd", "update"};
    char events[8][64];
    int ne = 0;
    double sum[4][8] = {{0}}, cnt[4][8] = {{0}};
    int pc = rpt_table_col(&t, "phase"), ec = rpt_table_col(&t, "event");
    for (size_t i = 0; i < t.nrows; i++) {
        double v = cell(&t, i, "per_sample");
        if (cell(&t, i, "rank") != 0 || !isfinite(v)) continue;
        int p = -1, e;
        for (int j = 0; j < 4; j++)
            if (strcmp(rpt_table_cell(&t, i, pc), phases[j]) == 0) p = j;
        for (e = 0; e < ne && strcmp(events[e], rpt_table_cell(&t, i, ec)) != 0; e++) {}
        if (e == ne && ne < 8) rpt_csv_field(events[ne++], 64, rpt_table_cell(&t, i, ec));
        if (p < 0 || e >= 8) continue;
        sum[p][e] += v, cnt[p][e] += 1;
    }
    rpt_table_free(&t);
    if (ne == 0) {
        char r[600];
        meta_reason(run, "papi", r, sizeof r);
        snprintf(why, len, "papi.csv has no counts: %s", r);
        return DMZ_OK;
    }
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    fputs("phase", f);
    for (int e = 0; e < ne; e++) fprintf(f, ",%s", events[e]);
    fputc('\n', f);
    for (int p = 0; p < 4; p++) {
        fputs(phases[p], f);
        for (int e = 0; e < ne; e++) put(f, cnt[p][e] > 0 && sum[p][e] > 0 ? sum[p][e] / cnt[p][e] : NAN);
        fputc('\n', f);
    }
    return finish(f, &buf, &blen, out_dir, "fig-papi.csv", err);
}

int rpt_counter_data(const rpt_run *run, const char *figure, const char *out_dir, char *why, size_t len, char *err) {
    why[0] = '\0';
    if (strcmp(figure, "gpu") == 0) return gpu_data(run, out_dir, why, len, err);
    if (strcmp(figure, "kernels") == 0) return kernels_data(run, out_dir, why, len, err);
    if (strcmp(figure, "roofline") == 0) return roofline_data(run, out_dir, why, len, err);
    if (strcmp(figure, "papi") == 0) return papi_data(run, out_dir, why, len, err);
    return dmz_errorf(err, DMZ_EXIT_FAIL, "no counter figure %s", figure);
}
