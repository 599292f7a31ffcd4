/* net/probe.h — the link probe (`dmzbench probe`, and before every cross-site
 * run): ping-pong latency and bandwidth between every pair of ranks by message
 * size (as IMB PingPong / OSU osu_latency measure them: one-way time is half
 * the round trip; bandwidth is size over one-way time), and the all-reduce at
 * the model's gradient size (nccl-tests' algbw and busbw). Every rank calls it;
 * rank 0 ends with all rows. */
#ifndef DMZ_PROBE_H
#define DMZ_PROBE_H

#include <stddef.h>
#include <stdio.h>

#include "comm.h"

typedef struct dmz_probe_row {
    int rank_a, rank_b;
    size_t bytes;
    int iters;
    double latency_us;     /* one way */
    double bandwidth_gbps; /* bytes / one-way time, 1e9 bytes/s */
} dmz_probe_row;

typedef struct dmz_probe_result {
    dmz_probe_row *rows;   /* rank 0 only */
    int n_rows;
    size_t allreduce_bytes;
    int allreduce_iters;
    double allreduce_s;    /* mean per call, on rank 0 */
    double allreduce_algbw_gbps, allreduce_busbw_gbps;
    double wall_s;
} dmz_probe_result;

typedef struct dmz_probe_options {
    size_t max_bytes;        /* largest ping-pong message (default 64 MiB) */
    int size_factor;         /* 2: every power of two; 4: every other one */
    double seconds_per_size; /* measuring time per size and pair (default 0.05) */
    size_t allreduce_floats; /* 0: no all-reduce */
} dmz_probe_options;

void dmz_probe_options_default(dmz_probe_options *o);
int dmz_probe_run(dmz_comm *c, const dmz_probe_options *o, dmz_probe_result *out, char *err);
void dmz_probe_free(dmz_probe_result *r);

/* OSU-style table: '#' header lines, one row per pair and size. */
void dmz_probe_print(FILE *f, const dmz_comm *c, const dmz_probe_result *r);
/* probe.csv: rank_a,site_a,rank_b,site_b,bytes,iters,latency_us,bandwidth_gbps;
 * then the all-reduce as a row with rank_b "all". */
int dmz_probe_write_csv(FILE *f, const dmz_comm *c, const dmz_probe_result *r);
/* The best bandwidth any pair reached (for "busbw as a fraction of the link"). */
double dmz_probe_peak_gbps(const dmz_probe_result *r);
/* The smallest-size latency averaged over pairs. */
double dmz_probe_min_latency_us(const dmz_probe_result *r);

#endif
