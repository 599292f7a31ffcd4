/* The one-rank communicator: nothing to send, nothing to wait for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "common/dmz.h"

static int single_allreduce(dmz_comm *c, float *buf, size_t n, float scale, char *err) {
    (void)err;
    c->stats.calls++;
    if (scale != 1.0f)
        for (size_t i = 0; i < n; i++) buf[i] *= scale;
    return DMZ_OK;
}

/* nccl-tests, doc/PERFORMANCE.md: all-reduce busbw = algbw * 2(n-1)/n; 0 for one rank. */
static double single_busbw_factor(const dmz_comm *c) {
    return c->size > 1 ? 2.0 * (c->size - 1) / c->size : 0.0;
}

static int single_barrier(dmz_comm *c, const char *what, double *waited_s, char *err) {
    (void)c, (void)what, (void)err;
    if (waited_s) *waited_s = 0;
    return DMZ_OK;
}

static int single_bcast(dmz_comm *c, void *buf, size_t bytes, int root, char *err) {
    (void)c, (void)buf, (void)bytes, (void)root, (void)err;
    return DMZ_OK;
}

static int single_send(dmz_comm *c, int dst, int tag, const void *buf, size_t bytes, const char *what,
                       char *err) {
    (void)c, (void)tag, (void)buf, (void)bytes;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: no rank %d in a one-rank job", what, dst);
}

static int single_recv(dmz_comm *c, int src, int tag, void *buf, size_t bytes, int *from, size_t *got,
                       const char *what, char *err) {
    (void)c, (void)tag, (void)buf, (void)bytes, (void)from, (void)got;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: no rank %d in a one-rank job", what, src);
}

static int single_pingpong(dmz_comm *c, int peer, void *buf, size_t bytes, int iters, double *seconds,
                           char *err) {
    (void)c, (void)buf, (void)bytes, (void)iters, (void)seconds;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "ping-pong: no rank %d in a one-rank job", peer);
}

static void single_abort(dmz_comm *c, int code) { (void)c, (void)code; }
static void single_report_error(dmz_comm *c, const char *text) { (void)c, (void)text; }
static void single_finalize(dmz_comm *c) { (void)c; }

void dmz_local_site(char *out, size_t len) {
    const char *site = getenv("DMZBENCH_SITE");
    if (site && *site) {
        snprintf(out, len, "%s", site);
        return;
    }
    if (gethostname(out, len) != 0) snprintf(out, len, "unknown-host");
    out[len - 1] = '\0';
}

const char *dmz_comm_site(const dmz_comm *c, int rank) {
    if (!c || !c->site_of || rank < 0 || rank >= c->size) return "?";
    return c->site_of[rank];
}

dmz_comm *dmz_comm_single(void) {
    static dmz_comm single;
    static char site[DMZ_SITE_LEN], host[DMZ_SITE_LEN];
    static char *site_of[1] = {site}, *host_of[1] = {host};
    dmz_local_site(site, sizeof site);
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown-host");
    host[sizeof host - 1] = '\0';
    single = (dmz_comm){.name = "single", .rank = 0, .size = 1, .allreduce = single_allreduce,
                        .busbw_factor = single_busbw_factor, .barrier = single_barrier, .bcast = single_bcast,
                        .send = single_send, .recv = single_recv, .pingpong = single_pingpong,
                        .report_error = single_report_error, .abort_job = single_abort, .finalize = single_finalize,
                        .site_of = site_of, .host_of = host_of, .transport = "none (one process)"};
    return &single;
}
