/* The link probe (see probe.h). */
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

enum { TAG_PROBE_ITERS = 31101, TAG_PROBE_ROW = 31102 };

void dmz_probe_options_default(dmz_probe_options *o) {
    *o = (dmz_probe_options){.max_bytes = (size_t)64 << 20, .size_factor = 2, .seconds_per_size = 0.05};
}

static int n_sizes(const dmz_probe_options *o) {
    int k = 0;
    for (size_t b = 1; b <= o->max_bytes; b *= (size_t)o->size_factor) k++;
    return k;
}

/* The lower rank of the pair times one round trip, picks the iteration count
 * for the time budget and tells the other. */
static int measure_pair(dmz_comm *c, int peer, void *buf, size_t bytes, const dmz_probe_options *o,
                        dmz_probe_row *row, char *err) {
    double once = 0, total = 0;
    int rc = c->pingpong(c, peer, buf, bytes, 1, &once, err); /* warm-up, also the estimate */
    int iters = 0;
    if (rc) return rc;
    if (c->rank < peer) {
        double n = once > 0 ? o->seconds_per_size / once : 1000;
        iters = n < 1 ? 1 : n > 1000 ? 1000 : (int)n;
        rc = c->send(c, peer, TAG_PROBE_ITERS, &iters, sizeof iters, "the link probe", err);
    } else {
        rc = c->recv(c, peer, TAG_PROBE_ITERS, &iters, sizeof iters, NULL, NULL, "the link probe", err);
    }
    if (!rc) rc = c->pingpong(c, peer, buf, bytes, iters, &total, err);
    if (rc) return rc;
    double one_way = total / iters / 2;
    *row = (dmz_probe_row){.rank_a = c->rank < peer ? c->rank : peer, .rank_b = c->rank < peer ? peer : c->rank,
                           .bytes = bytes, .iters = iters, .latency_us = one_way * 1e6,
                           .bandwidth_gbps = one_way > 0 ? (double)bytes / one_way / 1e9 : NAN};
    return DMZ_OK;
}

static int probe_pairs(dmz_comm *c, const dmz_probe_options *o, void *buf, dmz_probe_result *out, char *err) {
    int rc = DMZ_OK;
    for (int a = 0; rc == DMZ_OK && a < c->size; a++)
        for (int b = a + 1; rc == DMZ_OK && b < c->size; b++) {
            for (size_t bytes = 1; rc == DMZ_OK && bytes <= o->max_bytes; bytes *= (size_t)o->size_factor) {
                dmz_probe_row row;
                if (c->rank == a || c->rank == b) rc = measure_pair(c, c->rank == a ? b : a, buf, bytes, o, &row, err);
                if (rc) break;
                if (c->rank == a && a != 0)
                    rc = c->send(c, 0, TAG_PROBE_ROW, &row, sizeof row, "sending probe results to rank 0", err);
                if (c->rank == 0 && a != 0)
                    rc = c->recv(c, a, TAG_PROBE_ROW, &row, sizeof row, NULL, NULL, "collecting probe results", err);
                if (c->rank == 0 && !rc) out->rows[out->n_rows++] = row;
            }
            if (rc == DMZ_OK) rc = c->barrier(c, "the link probe", NULL, err);
        }
    return rc;
}

static int probe_allreduce(dmz_comm *c, const dmz_probe_options *o, dmz_probe_result *out, char *err) {
    size_t n = o->allreduce_floats;
    float *v = calloc(n, sizeof(float));
    if (!v) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    dmz_comm_stats saved = c->stats;
    int rc = DMZ_OK;
    double w0 = dmz_now_s();
    for (int i = 0; rc == DMZ_OK && i < 3; i++) rc = c->allreduce(c, v, n, 1.0f, err);
    /* rank 0 sizes the run to about 0.2 s (10 to 1000 calls); every rank must agree */
    double each = (dmz_now_s() - w0) / 3;
    int iters = each > 0 ? (int)(0.2 / each) : 1000;
    iters = iters < 10 ? 10 : iters > 1000 ? 1000 : iters;
    if (rc == DMZ_OK) rc = c->bcast(c, &iters, sizeof iters, 0, err);
    double t0 = dmz_now_s();
    for (int i = 0; rc == DMZ_OK && i < iters; i++) rc = c->allreduce(c, v, n, 1.0f, err);
    double per_call = (dmz_now_s() - t0) / iters;
    c->stats = saved;
    free(v);
    if (rc) return rc;
    out->allreduce_bytes = n * sizeof(float);
    out->allreduce_iters = iters;
    out->allreduce_s = per_call;
    out->allreduce_algbw_gbps = (double)out->allreduce_bytes / per_call / 1e9;
    out->allreduce_busbw_gbps = out->allreduce_algbw_gbps * c->busbw_factor(c);
    return DMZ_OK;
}

int dmz_probe_run(dmz_comm *c, const dmz_probe_options *o, dmz_probe_result *out, char *err) {
    memset(out, 0, sizeof *out);
    out->allreduce_s = out->allreduce_algbw_gbps = out->allreduce_busbw_gbps = NAN;
    if (c->size < 2) return dmz_errorf(err, DMZ_EXIT_USAGE, "the probe needs at least 2 ranks (run it under mpirun -np 2 or more)");
    double t0 = dmz_now_s();
    int pairs = c->size * (c->size - 1) / 2;
    if (c->rank == 0) {
        out->rows = calloc((size_t)(pairs * n_sizes(o)), sizeof *out->rows);
        if (!out->rows) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    }
    void *buf = malloc(o->max_bytes ? o->max_bytes : 1);
    if (!buf) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for a %zu-byte probe buffer", o->max_bytes);
    memset(buf, 0xa5, o->max_bytes);
    dmz_comm_stats saved = c->stats;
    int rc = c->barrier(c, "the start of the link probe", NULL, err);
    if (!rc) rc = probe_pairs(c, o, buf, out, err);
    c->stats = saved;
    free(buf);
    if (!rc && o->allreduce_floats) rc = probe_allreduce(c, o, out, err);
    out->wall_s = dmz_now_s() - t0;
    return rc;
}

void dmz_probe_free(dmz_probe_result *r) {
    free(r->rows);
    r->rows = NULL;
    r->n_rows = 0;
}

void dmz_probe_print(FILE *f, const dmz_comm *c, const dmz_probe_result *r) {
    fprintf(f, "# dmzbench probe: ping-pong between every pair of ranks (one-way time = round trip / 2)\n");
    fprintf(f, "# transport: %s\n", c->transport);
    fprintf(f, "# %-22s %12s %8s %14s %14s\n", "pair (sites)", "size", "iters", "latency", "bandwidth");
    fprintf(f, "# %-22s %12s %8s %14s %14s\n", "", "(B)", "", "(us)", "(GB/s)");
    for (int i = 0; i < r->n_rows; i++) {
        const dmz_probe_row *row = &r->rows[i];
        char pair[96];
        snprintf(pair, sizeof pair, "%d-%d (%s-%s)", row->rank_a, row->rank_b, dmz_comm_site(c, row->rank_a),
                 dmz_comm_site(c, row->rank_b));
        fprintf(f, "  %-22s %12zu %8d %14.2f %14.4f\n", pair, row->bytes, row->iters, row->latency_us,
                row->bandwidth_gbps);
    }
    if (r->allreduce_bytes) {
        fprintf(f, "# all-reduce over %d ranks (reduce-scatter + all-gather), nccl-tests' columns\n", c->size);
        fprintf(f, "# %12s %12s %6s %12s %10s %10s\n", "size", "count", "type", "time", "algbw", "busbw");
        fprintf(f, "# %12s %12s %6s %12s %10s %10s\n", "(B)", "(elements)", "", "(us)", "(GB/s)", "(GB/s)");
        fprintf(f, "  %12zu %12zu %6s %12.2f %10.4f %10.4f\n", r->allreduce_bytes, r->allreduce_bytes / sizeof(float),
                "float", r->allreduce_s * 1e6, r->allreduce_algbw_gbps, r->allreduce_busbw_gbps);
    }
}

int dmz_probe_write_csv(FILE *f, const dmz_comm *c, const dmz_probe_result *r) {
    fputs("kind,rank_a,site_a,rank_b,site_b,bytes,iters,latency_us,bandwidth_gbps,algbw_gbps,busbw_gbps\n", f);
    for (int i = 0; i < r->n_rows; i++) {
        const dmz_probe_row *row = &r->rows[i];
        fprintf(f, "pingpong,%d,%s,%d,%s,%zu,%d,%.6g,%.6g,NA,NA\n", row->rank_a, dmz_comm_site(c, row->rank_a),
                row->rank_b, dmz_comm_site(c, row->rank_b), row->bytes, row->iters, row->latency_us,
                row->bandwidth_gbps);
    }
    if (r->allreduce_bytes)
        fprintf(f, "allreduce,0,%s,all,all,%zu,%d,%.6g,NA,%.6g,%.6g\n", dmz_comm_site(c, 0), r->allreduce_bytes,
                r->allreduce_iters, r->allreduce_s * 1e6, r->allreduce_algbw_gbps, r->allreduce_busbw_gbps);
    return ferror(f) ? DMZ_EXIT_FAIL : DMZ_OK;
}

double dmz_probe_peak_gbps(const dmz_probe_result *r) {
    double best = NAN;
    for (int i = 0; i < r->n_rows; i++)
        if (isnan(best) || r->rows[i].bandwidth_gbps > best) best = r->rows[i].bandwidth_gbps;
    return best;
}

double dmz_probe_min_latency_us(const dmz_probe_result *r) {
    double sum = 0;
    int k = 0;
    for (int i = 0; i < r->n_rows; i++)
        if (r->rows[i].bytes == 1) sum += r->rows[i].latency_us, k++;
    return k ? sum / k : NAN;
}
