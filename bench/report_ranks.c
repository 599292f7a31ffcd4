/* bench/report_ranks.c — a cross-site run rank by rank: where it ran, on what
 * device, at what speed and batch, its wall time and throughput, and how long
 * it waited for the others; in sync mode, how much time the faster rank lost
 * waiting for the slower one (the heterogeneous two-site case: a TITAN Xp site
 * and a GTX 1080 Ti site). Medians over repetitions.
 *
 * A rank's device: meta.json mpi.ranks[i].device (a string, or an object with
 * a name), else summary.csv's device column, else the run's own device when the
 * rank ran on rank 0's host, else "not recorded". */
#include "bench/compare_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rank_row {
    double rank, speed, batch, wall, sps, wait, compute; /* compute: forward + backward + update */
    char site[128], host[128], device[256];
} rank_row;

static double median_of(const rpt_table *t, double rank, const char *col) {
    int c = rpt_table_col(t, col), cr = rpt_table_col(t, "rank");
    double v[256];
    int n = 0;
    for (size_t r = 0; r < t->nrows && n < 256; r++) {
        double x, k;
        if (rpt_table_num(t, r, cr, &k, NULL) || k != rank) continue;
        if (rpt_table_num(t, r, c, &x, NULL) || isnan(x)) continue;
        v[n++] = x;
    }
    rpt_spread s;
    rpt_spread_of(v, n, &s);
    return s.median;
}

static cJSON *read_meta(const rpt_run *run) {
    char path[RPT_PATH_LEN + 16], *text = NULL, err[DMZ_ERR_LEN];
    snprintf(path, sizeof path, "%s/meta.json", run->dir);
    if (dmz_read_file(path, (size_t)64 << 20, &text, NULL, err) != DMZ_OK) return NULL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    return root;
}

static void own_device(const cJSON *meta, const rpt_run *run, char *out, size_t len) {
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(meta, "gpus"), 0), "name");
    if (strcmp(run->backend, "cpu") != 0 && cJSON_IsString(g)) snprintf(out, len, "%.150s", g->valuestring);
    else snprintf(out, len, "cpu: %.150s", run->cpu_model[0] ? run->cpu_model : "?");
}

static void rank_device(const cJSON *meta, const rpt_run *run, size_t row, rank_row *out) {
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "mpi"), "ranks"), *r;
    cJSON_ArrayForEach(r, ranks) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(r, "rank");
        if (!cJSON_IsNumber(k) || k->valuedouble != out->rank) continue;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "device");
        if (cJSON_IsObject(d)) d = cJSON_GetObjectItemCaseSensitive(d, "name");
        if (cJSON_IsString(d) && d->valuestring) {
            snprintf(out->device, sizeof out->device, "%s", d->valuestring);
            return;
        }
    }
    const char *col = rpt_table_cell(&run->summary_csv, row, rpt_table_col(&run->summary_csv, "device"));
    if (strcmp(col, "NA") != 0 && col[0]) {
        snprintf(out->device, sizeof out->device, "%s", col);
        return;
    }
    if (run->hostname[0] && strcmp(out->host, run->hostname) == 0) {
        char own[200];
        own_device(meta, run, own, sizeof own);
        snprintf(out->device, sizeof out->device, "%s (rank 0's host)", own);
        return;
    }
    snprintf(out->device, sizeof out->device, "not recorded");
}

static int collect(const rpt_run *run, rank_row **out) {
    const rpt_table *t = &run->summary_csv;
    cJSON *meta = read_meta(run);
    rank_row *rows = NULL;
    int n = 0;
    int cr = rpt_table_col(t, "rank");
    for (size_t r = 0; r < t->nrows; r++) {
        double k;
        if (rpt_table_num(t, r, cr, &k, NULL) || isnan(k)) continue;
        bool seen = false;
        for (int i = 0; i < n; i++) seen |= rows[i].rank == k;
        if (seen) continue;
        rank_row *grown = realloc(rows, (size_t)(n + 1) * sizeof *grown);
        if (!grown) break;
        rows = grown;
        rank_row *x = &rows[n++];
        memset(x, 0, sizeof *x);
        x->rank = k;
        rpt_copy(x->site, sizeof x->site, rpt_table_cell(t, r, rpt_table_col(t, "site")));
        rpt_copy(x->host, sizeof x->host, rpt_table_cell(t, r, rpt_table_col(t, "host")));
        x->speed = median_of(t, k, "rank_speed");
        x->batch = median_of(t, k, "batch");
        x->wall = median_of(t, k, "wall_s");
        x->sps = median_of(t, k, "samples_per_s");
        x->wait = median_of(t, k, "wait_s");
        x->compute = median_of(t, k, "fwd_s") + median_of(t, k, "bwd_s") + median_of(t, k, "update_s");
        double throttle = median_of(t, k, "throttle_s"); /* --rank-speed: the slower device emulated */
        if (!isnan(throttle)) x->compute += throttle;
        rank_device(meta, run, r, x);
    }
    cJSON_Delete(meta);
    *out = rows;
    return n;
}

/* In sync mode: the computing rank that spends the least compute time per
 * sample (forward + backward + update + throttle) is the faster one; it waits at every
 * all-reduce for the slowest. */
static const rank_row *faster(const rpt_run *run, const rank_row *rows, int n, const rank_row **slower) {
    const rank_row *fast = NULL, *slow = NULL;
    if (strcmp(run->mode, "sync") != 0) return NULL;
    for (int i = 0; i < n; i++) {
        if (!(rows[i].batch > 0) || isnan(rows[i].compute)) continue;
        double v = rows[i].compute / rows[i].batch;
        if (!fast || v < fast->compute / fast->batch) fast = &rows[i];
        if (!slow || v > slow->compute / slow->batch) slow = &rows[i];
    }
    *slower = slow;
    return fast && slow && fast != slow ? fast : NULL;
}

static void num(FILE *f, const char *fmt, double v) {
    if (isnan(v)) fputs("NA", f);
    else fprintf(f, fmt, v);
}

void rpt_ranks_text(FILE *f, const rpt_run *run, const char *prefix) {
    rank_row *rows;
    int n = collect(run, &rows);
    fprintf(f, "%s%-4s %-12s %-12s %-36s %6s %6s %10s %10s %10s\n", prefix, "rank", "site", "host",
            "device", "speed", "batch", "wall_s", "samples/s", "wait_s");
    for (int i = 0; i < n; i++) {
        const rank_row *x = &rows[i];
        fprintf(f, "%s%-4g %-12.12s %-12.12s %-36.36s ", prefix, x->rank, x->site, x->host, x->device);
        num(f, "%6.3g", x->speed), fputc(' ', f), num(f, "%6.0f", x->batch), fputc(' ', f);
        num(f, "%10.4g", x->wall), fputc(' ', f), num(f, "%10.4g", x->sps), fputc(' ', f);
        num(f, "%10.4g", x->wait), fputc('\n', f);
    }
    const rank_row *slow, *fast = faster(run, rows, n, &slow);
    if (fast && !isnan(fast->wait))
        fprintf(f, "%ssync: the faster rank %g (%s) waited %.4g s of its %.4g s (%.1f%%) for rank %g (%s)\n",
                prefix, fast->rank, fast->device, fast->wait, fast->wall, 100 * fast->wait / fast->wall,
                slow->rank, slow->device);
    free(rows);
}

void rpt_ranks_html(FILE *f, const rpt_run *run) {
    rank_row *rows;
    int n = collect(run, &rows);
    fputs("<table><tr><th>rank</th><th>site</th><th>host</th><th>device</th><th>speed</th>"
          "<th>batch</th><th>wall_s</th><th>samples/s</th><th>wait_s</th></tr>\n", f);
    for (int i = 0; i < n; i++) {
        const rank_row *x = &rows[i];
        fprintf(f, "<tr><td>%g</td><td>", x->rank);
        cmp_html_escape(f, x->site);
        fputs("</td><td>", f);
        cmp_html_escape(f, x->host);
        fputs("</td><td>", f);
        cmp_html_escape(f, x->device);
        fputs("</td>", f);
        double v[] = {x->speed, x->batch, x->wall, x->sps, x->wait};
        for (int j = 0; j < 5; j++) fputs("<td class=num>", f), num(f, "%.4g", v[j]), fputs("</td>", f);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<p>Medians over repetitions; speed: --rank-speed (NA: not given).</p>\n", f);
    const rank_row *slow, *fast = faster(run, rows, n, &slow);
    if (fast && !isnan(fast->wait)) {
        fprintf(f, "<p>Sync: the faster rank %g (", fast->rank);
        cmp_html_escape(f, fast->device);
        fprintf(f, ") waited %.4g s of its %.4g s wall time (%.1f%%) for rank %g (", fast->wait, fast->wall,
                100 * fast->wait / fast->wall, slow->rank);
        cmp_html_escape(f, slow->device);
        fputs(").</p>\n", f);
    }
    free(rows);
}
