/* The NCCL communicator: the gradient all-reduce on device buffers (for
 * --backend cuda in sync mode), with the same deadline as every other wait:
 * the collective runs on its own stream, which is polled together with
 * NCCL's asynchronous error state, and a stalled collective aborts the NCCL
 * communicator instead of hanging. Everything but the all-reduce (barrier,
 * broadcast, point to point, site names) goes to the MPI communicator that
 * created it; the NCCL unique id travels over MPI too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "common/dmz.h"

#ifndef DMZ_HAVE_NCCL

int dmz_comm_nccl_built(char *why, size_t len) {
    snprintf(why, len, "this build has no NCCL (it needs nvcc, MPI and nccl.h/libnccl; or NO_NCCL=1 was set)");
    return 0;
}

int dmz_comm_nccl(dmz_comm *host, dmz_comm **out, char *err) {
    (void)host;
    char why[256];
    dmz_comm_nccl_built(why, sizeof why);
    *out = NULL;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s", why);
}

#else

#include <cuda_runtime.h>
#include <nccl.h>

#if NCCL_VERSION_CODE < 21400
#error "dmzbench needs NCCL 2.14 or newer (non-blocking communicators, ncclAvg); build with NO_NCCL=1"
#endif

typedef struct nccl_impl {
    dmz_comm pub;
    dmz_comm *host;
    ncclComm_t comm;
    cudaStream_t stream;
} nccl_impl;

static nccl_impl device_world;

int dmz_comm_nccl_built(char *why, size_t len) {
    int v = 0;
    ncclGetVersion(&v);
    snprintf(why, len, "NCCL %d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
    return 1;
}

static int nccl_fail(char *err, const dmz_comm *c, const char *what, ncclResult_t r) {
    return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d (site %s): %s: NCCL: %s", c->rank, dmz_comm_site(c, c->rank),
                      what, ncclGetErrorString(r));
}

/* Polls the stream (or, with stream NULL, the communicator's state) until done,
 * a signal, an NCCL error or the deadline; a stall aborts the communicator. */
static int nccl_wait(nccl_impl *m, cudaStream_t stream, const char *what, char *err) {
    dmz_comm *c = &m->pub;
    double t0 = dmz_now_s();
    for (;;) {
        ncclResult_t state = ncclSuccess;
        ncclCommGetAsyncError(m->comm, &state);
        if (state != ncclSuccess && state != ncclInProgress) return nccl_fail(err, c, what, state);
        if (stream) {
            cudaError_t e = cudaStreamQuery(stream);
            if (e == cudaSuccess) return DMZ_OK;
            if (e != cudaErrorNotReady)
                return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: %s: CUDA: %s", c->rank, what, cudaGetErrorString(e));
        } else if (state == ncclSuccess) {
            return DMZ_OK;
        }
        if (c->stop && *c->stop) {
            ncclCommAbort(m->comm);
            return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d (site %s): interrupted by a signal during %s", c->rank,
                              dmz_comm_site(c, c->rank), what);
        }
        if (c->timeout_s > 0 && dmz_now_s() - t0 > c->timeout_s) {
            ncclCommAbort(m->comm);
            return dmz_errorf(err, DMZ_EXIT_FAIL,
                              "rank %d (site %s): %s did not complete in %.0f s (--timeout): a rank stalled, was "
                              "stopped or died mid-exchange (NCCL communicator aborted)",
                              c->rank, dmz_comm_site(c, c->rank), what, c->timeout_s);
        }
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

static int nccl_allreduce(dmz_comm *c, float *buf, size_t n, float scale, char *err) {
    nccl_impl *m = (nccl_impl *)c;
    ncclRedOp_t op = ncclSum;
    if (scale != 1.0f) {
        if (scale != 1.0f / (float)c->size)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "NCCL all-reduce: scale %g is neither 1 nor 1/ranks", scale);
        op = ncclAvg;
    }
    double t0 = dmz_now_s();
    ncclResult_t r = ncclAllReduce(buf, buf, n, ncclFloat, op, m->comm, m->stream);
    if (r != ncclSuccess && r != ncclInProgress) return nccl_fail(err, c, "the gradient all-reduce", r);
    int rc = nccl_wait(m, m->stream, "the gradient all-reduce (NCCL)", err);
    if (rc) return rc;
    c->stats.seconds += dmz_now_s() - t0;
    c->stats.bytes_sent += c->busbw_factor(c) * (double)n * sizeof(float);
    c->stats.calls++;
    return DMZ_OK;
}

static double nccl_busbw_factor(const dmz_comm *c) { return c->size > 1 ? 2.0 * (c->size - 1) / c->size : 0.0; }

/* everything else: the MPI communicator */
#define HOST(c) (((nccl_impl *)(c))->host)
static int fwd_barrier(dmz_comm *c, const char *what, double *w, char *err) { return HOST(c)->barrier(HOST(c), what, w, err); }
static int fwd_bcast(dmz_comm *c, void *b, size_t n, int root, char *err) { return HOST(c)->bcast(HOST(c), b, n, root, err); }
static int fwd_send(dmz_comm *c, int dst, int tag, const void *b, size_t n, const char *what, char *err) {
    return HOST(c)->send(HOST(c), dst, tag, b, n, what, err);
}
static int fwd_recv(dmz_comm *c, int src, int tag, void *b, size_t n, int *from, size_t *got, const char *what,
                    char *err) {
    return HOST(c)->recv(HOST(c), src, tag, b, n, from, got, what, err);
}
static int fwd_pingpong(dmz_comm *c, int peer, void *b, size_t n, int iters, double *s, char *err) {
    return HOST(c)->pingpong(HOST(c), peer, b, n, iters, s, err);
}
static void fwd_report_error(dmz_comm *c, const char *text) { HOST(c)->report_error(HOST(c), text); }
static void fwd_abort(dmz_comm *c, int code) { HOST(c)->abort_job(HOST(c), code); }
static void nccl_finalize(dmz_comm *c) {
    nccl_impl *m = (nccl_impl *)c;
    if (m->comm) ncclCommDestroy(m->comm);
    if (m->stream) cudaStreamDestroy(m->stream);
    m->comm = NULL, m->stream = NULL;
}

/* The GPU of this rank: its rank among the ranks of its host, modulo the GPUs there. */
static int pick_device(const dmz_comm *host, int *device, char *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "rank %d: NCCL needs a CUDA device: %s", host->rank,
                          e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    int local = 0;
    for (int r = 0; r < host->rank; r++) local += strcmp(host->host_of[r], host->host_of[host->rank]) == 0;
    *device = local % count;
    e = cudaSetDevice(*device);
    return e == cudaSuccess ? DMZ_OK
                            : dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: cudaSetDevice(%d): %s", host->rank, *device,
                                         cudaGetErrorString(e));
}

int dmz_comm_nccl(dmz_comm *host, dmz_comm **out, char *err) {
    *out = NULL;
    nccl_impl *m = &device_world;
    *m = (nccl_impl){.host = host};
    int device = 0;
    int rc = pick_device(host, &device, err);
    if (rc) return rc;
    ncclUniqueId id;
    if (host->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) return nccl_fail(err, host, "ncclGetUniqueId", r);
    }
    if ((rc = host->bcast(host, &id, sizeof id, 0, err))) return rc;
    if (cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking) != cudaSuccess)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: cudaStreamCreate failed", host->rank);
    dmz_comm *c = &m->pub;
    *c = *host; /* rank, size, sites, timeout, stop */
    c->name = "nccl";
    c->allreduce = nccl_allreduce, c->busbw_factor = nccl_busbw_factor;
    c->barrier = fwd_barrier, c->bcast = fwd_bcast, c->send = fwd_send, c->recv = fwd_recv;
    c->pingpong = fwd_pingpong, c->report_error = fwd_report_error, c->abort_job = fwd_abort;
    c->finalize = nccl_finalize;
    c->device_buffers = 1;
    c->stats = (dmz_comm_stats){0};
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0; /* init and collectives return at once; nccl_wait polls with the deadline */
    ncclResult_t r = ncclCommInitRankConfig(&m->comm, host->size, id, host->rank, &config);
    if (r != ncclSuccess && r != ncclInProgress) return nccl_fail(err, c, "ncclCommInitRank", r);
    if ((rc = nccl_wait(m, NULL, "joining the NCCL communicator", err))) return rc;
    char version[64];
    dmz_comm_nccl_built(version, sizeof version);
    snprintf(c->transport, sizeof c->transport, "%s on device %d; bootstrap over %.200s", version, device,
             host->transport);
    *out = c;
    return DMZ_OK;
}

#endif
