/* The MPI communicator: MPI-3 non-blocking calls polled with a deadline, so
 * that no wait is unbounded and a waiting rank sleeps instead of spinning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "common/dmz.h"

int dmz_comm_under_launcher(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                       "MPI_LOCALNRANKS", "HYDI_CONTROL_FD", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

#ifndef DMZ_HAVE_MPI

int dmz_comm_mpi_built(char *why, size_t len) {
    snprintf(why, len, "this build has no MPI (mpicc was not found, or NO_MPI=1): "
                       "apt-get install libopenmpi-dev openmpi-bin (make deps does it) and rebuild");
    return 0;
}

int dmz_comm_mpi(int *argc, char ***argv, dmz_comm **out, char *err) {
    (void)argc, (void)argv;
    char why[256];
    dmz_comm_mpi_built(why, sizeof why);
    *out = NULL;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s", why);
}

#else

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <time.h>

#include <mpi.h>

enum { TAG_BARRIER_IN = 32001, TAG_BARRIER_OUT = 32002, TAG_PINGPONG = 32003, TAG_ERROR = 32004,
       TAG_PING = 32005, TAG_PONG = 32006 };
enum { ERROR_TEXT_LEN = 1024 };

typedef struct mpi_impl {
    dmz_comm pub;
    float *chunk;      /* this rank's slice of an all-reduce */
    size_t chunk_cap;
    int *counts, *displs;
    size_t counts_n;   /* the n the counts were made for */
} mpi_impl;

static mpi_impl world;

int dmz_comm_mpi_built(char *why, size_t len) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int vlen = 0;
    MPI_Get_library_version(version, &vlen);
    version[strcspn(version, ",\n")] = '\0';
    snprintf(why, len, "%s", version);
    return 1;
}

static int mpi_error(char *err, int code, const dmz_comm *c, const char *what) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d (site %s): %s: MPI error: %s", c->rank,
                      dmz_comm_site(c, c->rank), what, text);
}

/* How long a wait polls flat out before it starts to nap. A message in
 * flight needs the receiver's polls to progress (TCP, MPI's non-blocking
 * collectives), so transfers spin for 2 ms; waiting for another rank to
 * arrive (a barrier, the server waiting for a push) naps after 200 us, to
 * leave the core to the ranks that compute. DMZBENCH_SPIN_US sets both. */
enum { SPIN_TRANSFER_US = 2000, SPIN_ARRIVAL_US = 200 };

static double spin_s(int arrival) {
    static double forced = -2;
    if (forced == -2) {
        const char *v = getenv("DMZBENCH_SPIN_US");
        forced = v && *v ? atof(v) * 1e-6 : -1;
    }
    if (forced >= 0) return forced;
    return (arrival ? SPIN_ARRIVAL_US : SPIN_TRANSFER_US) * 1e-6;
}

static void nap(void) {
    struct timespec ts = {0, 20000}; /* 20 us: short against a step, long against a poll */
    nanosleep(&ts, NULL);
}

/* Polls reqs until all complete, the deadline passes or a signal arrives. Spins
 * for the first 200 us (or always, with spin) and then naps between polls. On a
 * timeout, *done[i] says which requests did complete (when done is not NULL). */
typedef struct wait_spec {
    const char *what;
    int peer;          /* the rank waited for, DMZ_ANY_RANK for several */
    double timeout_s;
    int spin;          /* never nap (the probe's ping-pong) */
    int arrival;       /* waiting for a rank to arrive, not for a transfer */
} wait_spec;

/* Every rank answers rank 0's liveness pings while it waits. */
static void answer_pings(void) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(0, TAG_PING, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return;
    int token = 0;
    MPI_Recv(&token, 1, MPI_INT, 0, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Request req;
    MPI_Isend(&token, 1, MPI_INT, 0, TAG_PONG, MPI_COMM_WORLD, &req);
    MPI_Request_free(&req);
}

/* Rank 0, after a collective timed out: which ranks do not answer a ping
 * within a few seconds? Appends "1 (site a), 3 (site c)" to out. */
static void unresponsive_ranks(dmz_comm *c, char *out, size_t len) {
    int p = c->size;
    MPI_Request *reqs = calloc((size_t)p * 2, sizeof *reqs);
    int *tokens = calloc((size_t)p * 2, sizeof *tokens);
    if (!reqs || !tokens) {
        free(reqs), free(tokens);
        return;
    }
    for (int r = 1; r < p; r++) {
        tokens[r] = r;
        MPI_Isend(&tokens[r], 1, MPI_INT, r, TAG_PING, MPI_COMM_WORLD, &reqs[r]);
        MPI_Irecv(&tokens[p + r], 1, MPI_INT, r, TAG_PONG, MPI_COMM_WORLD, &reqs[p + r]);
    }
    double t0 = dmz_now_s();
    int all = 0;
    while (!all && dmz_now_s() - t0 < 3.0) {
        MPI_Testall(p - 1, reqs + p + 1, &all, MPI_STATUSES_IGNORE);
        nap();
    }
    size_t n = strlen(out);
    for (int r = 1; r < p; r++) {
        int flag = 0;
        MPI_Test(&reqs[p + r], &flag, MPI_STATUS_IGNORE);
        if (!flag && n < len - 80)
            n += (size_t)snprintf(out + n, len - n, "%s%d (site %s)", n ? ", " : "", r, dmz_comm_site(c, r));
    }
    free(reqs), free(tokens);
}

/* Rank 0: has another rank reported its failure? */
static int peer_failed(dmz_comm *c, char *err) {
    if (c->rank != 0) return DMZ_OK;
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, TAG_ERROR, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return DMZ_OK;
    char text[ERROR_TEXT_LEN] = "";
    MPI_Recv(text, ERROR_TEXT_LEN, MPI_CHAR, st.MPI_SOURCE, TAG_ERROR, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    text[ERROR_TEXT_LEN - 1] = '\0';
    return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d (site %s) failed: %s", st.MPI_SOURCE,
                      dmz_comm_site(c, st.MPI_SOURCE), text);
}

/* What every wait does between polls: every 64th poll (or after a signal)
 * rank 0 looks for a peer's failure report and the others answer liveness
 * pings; a signal ends the wait. */
static int between_polls(dmz_comm *c, unsigned polls, const char *what, char *err) {
    bool stopped = c->stop && *c->stop;
    if ((polls & 63) == 0 || stopped) {
        int rc = peer_failed(c, err);
        if (rc) return rc;
        if (c->rank != 0) answer_pings();
    }
    if (stopped)
        return dmz_errorf(err, DMZ_EXIT_FAIL,
                          "rank %d (site %s): interrupted by a signal during %s (when a rank dies, the "
                          "launcher ends the others with SIGTERM)",
                          c->rank, dmz_comm_site(c, c->rank), what);
    return DMZ_OK;
}

static int last_wait_timed_out; /* the last wait_all failed by its deadline */

static int wait_all(dmz_comm *c, MPI_Request *reqs, int n, MPI_Status *statuses, const wait_spec *w,
                    char *err) {
    double t0 = dmz_now_s();
    last_wait_timed_out = 0;
    unsigned polls = 0;
    double deadline = w->timeout_s > 0 ? t0 + w->timeout_s : INFINITY;
    for (;;) {
        int flag = 0;
        int rc = MPI_Testall(n, reqs, &flag, statuses ? statuses : MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_error(err, rc, c, w->what);
        if (flag) return DMZ_OK;
        if ((rc = between_polls(c, ++polls, w->what, err))) return rc;
        double now = dmz_now_s();
        if (now > deadline) {
            last_wait_timed_out = 1;
            if (w->peer >= 0)
                return dmz_errorf(err, DMZ_EXIT_FAIL,
                                  "rank %d (site %s): %s: no answer from rank %d (site %s) in %.0f s "
                                  "(--timeout): it stalled, was stopped or died",
                                  c->rank, dmz_comm_site(c, c->rank), w->what, w->peer,
                                  dmz_comm_site(c, w->peer), w->timeout_s);
            char silent[512] = "";
            if (c->rank == 0) unresponsive_ranks(c, silent, sizeof silent);
            if (silent[0])
                return dmz_errorf(err, DMZ_EXIT_FAIL,
                                  "rank %d (site %s): %s did not complete in %.0f s (--timeout): rank %s does not "
                                  "answer (stalled, stopped or dead)",
                                  c->rank, dmz_comm_site(c, c->rank), w->what, w->timeout_s, silent);
            return dmz_errorf(err, DMZ_EXIT_FAIL,
                              "rank %d (site %s): %s did not complete in %.0f s (--timeout): a rank stalled, "
                              "was stopped or died mid-exchange",
                              c->rank, dmz_comm_site(c, c->rank), w->what, w->timeout_s);
        }
        if (!w->spin && now - t0 > spin_s(w->arrival)) nap();
    }
}

static int check_size(dmz_comm *c, size_t bytes, const char *what, char *err) {
    if (bytes > (size_t)INT_MAX)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: %s: %zu bytes is more than one MPI message holds",
                          c->rank, what, bytes);
    return DMZ_OK;
}

/* Slices of an n-float buffer, one per rank. */
static int ensure_slices(mpi_impl *m, size_t n, char *err) {
    int p = m->pub.size;
    if (!m->counts) {
        m->counts = calloc((size_t)p, sizeof(int));
        m->displs = calloc((size_t)p, sizeof(int));
        if (!m->counts || !m->displs) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    }
    if (m->counts_n != n) {
        size_t off = 0;
        for (int r = 0; r < p; r++) {
            size_t cnt = n / (size_t)p + ((size_t)r < n % (size_t)p);
            m->counts[r] = (int)cnt;
            m->displs[r] = (int)off;
            off += cnt;
        }
        m->counts_n = n;
    }
    size_t need = (size_t)m->counts[0];
    if (need > m->chunk_cap) {
        free(m->chunk);
        m->chunk = malloc((need ? need : 1) * sizeof(float));
        if (!m->chunk) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for a %zu-float slice", need);
        m->chunk_cap = need;
    }
    return DMZ_OK;
}

/* Ranks other than 0 wait longer in collectives, so that rank 0 (which
 * writes the result directory and can ask who is alive) reports first. */
static double member_timeout(const dmz_comm *c) {
    if (c->timeout_s <= 0) return 0;
    return c->rank == 0 ? c->timeout_s : c->timeout_s * 1.5 + 5;
}

static int mpi_allreduce(dmz_comm *c, float *buf, size_t n, float scale, char *err) {
    mpi_impl *m = (mpi_impl *)c;
    int rc = check_size(c, n * sizeof(float), "all-reduce", err);
    if (!rc) rc = ensure_slices(m, n, err);
    if (rc) return rc;
    double t0 = dmz_now_s();
    wait_spec w = {.what = "the gradient all-reduce", .peer = DMZ_ANY_RANK, .timeout_s = member_timeout(c)};
    MPI_Request req;
    int mine = m->counts[c->rank];
    int mrc = MPI_Ireduce_scatter(buf, m->chunk, m->counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return mpi_error(err, mrc, c, w.what);
    if ((rc = wait_all(c, &req, 1, NULL, &w, err))) return rc;
    if (scale != 1.0f)
        for (int i = 0; i < mine; i++) m->chunk[i] *= scale;
    mrc = MPI_Iallgatherv(m->chunk, mine, MPI_FLOAT, buf, m->counts, m->displs, MPI_FLOAT, MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return mpi_error(err, mrc, c, w.what);
    if ((rc = wait_all(c, &req, 1, NULL, &w, err))) return rc;
    c->stats.seconds += dmz_now_s() - t0;
    c->stats.bytes_sent += c->busbw_factor(c) * (double)n * sizeof(float);
    c->stats.calls++;
    return DMZ_OK;
}

/* nccl-tests, doc/PERFORMANCE.md: all-reduce busbw = algbw * 2(n-1)/n. */
static double mpi_busbw_factor(const dmz_comm *c) {
    return c->size > 1 ? 2.0 * (c->size - 1) / c->size : 0.0;
}

/* Fan-in to rank 0, fan-out from it: rank 0 sees who is missing. */
static int barrier_root(dmz_comm *c, const char *what, char *err) {
    int p = c->size;
    MPI_Request *reqs = calloc((size_t)p, sizeof *reqs);
    int *tokens = calloc((size_t)p, sizeof *tokens);
    if (!reqs || !tokens) {
        free(reqs), free(tokens);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    }
    for (int r = 1; r < p; r++) MPI_Irecv(&tokens[r], 1, MPI_INT, r, TAG_BARRIER_IN, MPI_COMM_WORLD, &reqs[r]);
    wait_spec w = {.what = what, .peer = DMZ_ANY_RANK, .timeout_s = c->timeout_s, .arrival = 1};
    int rc = wait_all(c, reqs + 1, p - 1, NULL, &w, err);
    if (rc) {
        char missing[512] = "";
        size_t len = 0;
        for (int r = 1; r < p; r++) {
            int flag = 0;
            MPI_Test(&reqs[r], &flag, MPI_STATUS_IGNORE);
            if (!flag && len < sizeof missing - 80)
                len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%d (site %s)", len ? ", " : "", r,
                                        dmz_comm_site(c, r));
        }
        if (c->stop && *c->stop && missing[0]) {
            size_t n = strlen(err);
            snprintf(err + n, DMZ_ERR_LEN - n, "; rank %s had not arrived (the rank that died?)", missing);
        } else if (last_wait_timed_out) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL,
                            "rank 0 (site %s): %s: rank %s did not arrive in %.0f s (--timeout): stalled, stopped or dead",
                            dmz_comm_site(c, 0), what, missing, c->timeout_s);
        }
    }
    for (int r = 1; rc == DMZ_OK && r < p; r++)
        MPI_Isend(&tokens[0], 1, MPI_INT, r, TAG_BARRIER_OUT, MPI_COMM_WORLD, &reqs[r]);
    if (rc == DMZ_OK) rc = wait_all(c, reqs + 1, p - 1, NULL, &w, err);
    free(reqs), free(tokens);
    return rc;
}

static int barrier_member(dmz_comm *c, const char *what, char *err) {
    int token = c->rank, back = 0;
    MPI_Request reqs[2];
    MPI_Isend(&token, 1, MPI_INT, 0, TAG_BARRIER_IN, MPI_COMM_WORLD, &reqs[0]);
    MPI_Irecv(&back, 1, MPI_INT, 0, TAG_BARRIER_OUT, MPI_COMM_WORLD, &reqs[1]);
    /* longer than rank 0's own bound, so that rank 0 names the missing rank first */
    wait_spec w = {.what = what, .peer = 0, .timeout_s = member_timeout(c), .arrival = 1};
    return wait_all(c, reqs, 2, NULL, &w, err);
}

static int mpi_barrier(dmz_comm *c, const char *what, double *waited_s, char *err) {
    double t0 = dmz_now_s();
    int rc = c->rank == 0 ? barrier_root(c, what, err) : barrier_member(c, what, err);
    if (waited_s) *waited_s = dmz_now_s() - t0;
    return rc;
}

static int mpi_bcast(dmz_comm *c, void *buf, size_t bytes, int root, char *err) {
    int rc = check_size(c, bytes, "broadcast", err);
    if (rc) return rc;
    double t0 = dmz_now_s();
    MPI_Request req;
    int mrc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return mpi_error(err, mrc, c, "broadcast");
    wait_spec w = {.what = "the broadcast of the initial parameters", .peer = root, .timeout_s = c->timeout_s};
    if ((rc = wait_all(c, &req, 1, NULL, &w, err))) return rc;
    c->stats.seconds += dmz_now_s() - t0;
    if (c->rank == root) c->stats.bytes_sent += (double)bytes * (c->size - 1);
    return DMZ_OK;
}

static int mpi_send(dmz_comm *c, int dst, int tag, const void *buf, size_t bytes, const char *what, char *err) {
    int rc = check_size(c, bytes, what, err);
    if (rc) return rc;
    double t0 = dmz_now_s();
    MPI_Request req;
    int mrc = MPI_Isend(buf, (int)bytes, MPI_BYTE, dst, tag, MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return mpi_error(err, mrc, c, what);
    wait_spec w = {.what = what, .peer = dst, .timeout_s = c->timeout_s};
    if ((rc = wait_all(c, &req, 1, NULL, &w, err))) return rc;
    c->stats.seconds += dmz_now_s() - t0;
    c->stats.bytes_sent += (double)bytes;
    return DMZ_OK;
}

/* Waits for the envelope of a `tag` message from any rank, so that the
 * receive (and a timeout inside it) names its sender. */
static int wait_for_sender(dmz_comm *c, int tag, int *src, const char *what, char *err) {
    double t0 = dmz_now_s();
    unsigned polls = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        int mrc = MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, &st);
        if (mrc != MPI_SUCCESS) return mpi_error(err, mrc, c, what);
        if (flag) {
            *src = st.MPI_SOURCE;
            return DMZ_OK;
        }
        int rc = between_polls(c, ++polls, what, err);
        if (rc) return rc;
        double now = dmz_now_s();
        if (c->timeout_s > 0 && now - t0 > c->timeout_s)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d (site %s): %s: no message from any rank in %.0f s (--timeout)",
                              c->rank, dmz_comm_site(c, c->rank), what, c->timeout_s);
        if (now - t0 > spin_s(1)) nap();
    }
}

static int mpi_recv(dmz_comm *c, int src, int tag, void *buf, size_t bytes, int *from, size_t *got,
                    const char *what, char *err) {
    int rc = check_size(c, bytes, what, err);
    if (rc) return rc;
    double t0 = dmz_now_s();
    if (src == DMZ_ANY_RANK && (rc = wait_for_sender(c, tag, &src, what, err))) return rc;
    MPI_Request req;
    MPI_Status st;
    int mrc = MPI_Irecv(buf, (int)bytes, MPI_BYTE, src, tag, MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return mpi_error(err, mrc, c, what);
    wait_spec w = {.what = what, .peer = src, .timeout_s = c->timeout_s};
    if ((rc = wait_all(c, &req, 1, &st, &w, err))) return rc;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (from) *from = st.MPI_SOURCE;
    if (got) *got = (size_t)count;
    c->stats.seconds += dmz_now_s() - t0;
    return DMZ_OK;
}

static int mpi_pingpong(dmz_comm *c, int peer, void *buf, size_t bytes, int iters, double *seconds, char *err) {
    int rc = check_size(c, bytes, "ping-pong", err);
    if (rc) return rc;
    wait_spec w = {.what = "the link probe's ping-pong", .peer = peer, .timeout_s = c->timeout_s, .spin = 1};
    int first = c->rank < peer;
    double t0 = dmz_now_s();
    for (int i = 0; rc == DMZ_OK && i < iters; i++) {
        MPI_Request req;
        for (int leg = 0; rc == DMZ_OK && leg < 2; leg++) {
            int sending = (leg == 0) == first;
            if (sending) MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, TAG_PINGPONG, MPI_COMM_WORLD, &req);
            else MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, TAG_PINGPONG, MPI_COMM_WORLD, &req);
            rc = wait_all(c, &req, 1, NULL, &w, err);
        }
    }
    *seconds = dmz_now_s() - t0;
    return rc;
}

static void mpi_report_error(dmz_comm *c, const char *text) {
    if (c->rank == 0 || c->size < 2) return;
    char msg[ERROR_TEXT_LEN];
    snprintf(msg, sizeof msg, "%s", text);
    MPI_Request req;
    if (MPI_Isend(msg, (int)strlen(msg) + 1, MPI_CHAR, 0, TAG_ERROR, MPI_COMM_WORLD, &req) != MPI_SUCCESS) return;
    wait_spec w = {.what = "reporting a failure to rank 0", .peer = 0, .timeout_s = 5};
    char err[DMZ_ERR_LEN];
    volatile sig_atomic_t *stop = c->stop;
    c->stop = NULL; /* deliver it even while the job is being ended */
    wait_all(c, &req, 1, NULL, &w, err);
    c->stop = stop;
}

static void mpi_abort_job(dmz_comm *c, int code) {
    (void)c;
    fflush(stdout), fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
}

static void mpi_finalize(dmz_comm *c) {
    mpi_impl *m = (mpi_impl *)c;
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
    free(m->chunk), free(m->counts), free(m->displs);
    m->chunk = NULL, m->counts = m->displs = NULL;
}

static void describe_transport(dmz_comm *c) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int vlen = 0;
    MPI_Get_library_version(version, &vlen);
    version[strcspn(version, ",\n")] = '\0';
    version[120] = '\0';
    const char *btl = getenv("OMPI_MCA_btl");
    const char *pml = getenv("OMPI_MCA_pml");
    snprintf(c->transport, sizeof c->transport, "%.120s; btl %.100s; pml %.100s", version, btl ? btl : "default",
             pml ? pml : "default");
}

/* Every rank learns every rank's site and host name. */
static int exchange_names(dmz_comm *c, char *err) {
    size_t p = (size_t)c->size;
    char mine[2][DMZ_SITE_LEN] = {{0}};
    dmz_local_site(mine[0], DMZ_SITE_LEN);
    if (gethostname(mine[1], DMZ_SITE_LEN) != 0) snprintf(mine[1], DMZ_SITE_LEN, "unknown-host");
    mine[1][DMZ_SITE_LEN - 1] = '\0';
    char *all = calloc(p, 2 * DMZ_SITE_LEN);
    c->site_of = calloc(p, sizeof(char *));
    c->host_of = calloc(p, sizeof(char *));
    if (!all || !c->site_of || !c->host_of) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    int rc = MPI_Allgather(mine, 2 * DMZ_SITE_LEN, MPI_CHAR, all, 2 * DMZ_SITE_LEN, MPI_CHAR, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error(err, rc, c, "exchanging site names");
    for (size_t r = 0; r < p; r++) {
        c->site_of[r] = all + r * 2 * DMZ_SITE_LEN;
        c->host_of[r] = all + r * 2 * DMZ_SITE_LEN + DMZ_SITE_LEN;
        c->site_of[r][DMZ_SITE_LEN - 1] = c->host_of[r][DMZ_SITE_LEN - 1] = '\0';
    }
    return DMZ_OK;
}

int dmz_comm_mpi(int *argc, char ***argv, dmz_comm **out, char *err) {
    *out = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "MPI_Init failed");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        dmz_comm *c = &world.pub;
        *c = (dmz_comm){.name = "mpi", .allreduce = mpi_allreduce, .busbw_factor = mpi_busbw_factor,
                        .barrier = mpi_barrier, .bcast = mpi_bcast, .send = mpi_send, .recv = mpi_recv,
                        .pingpong = mpi_pingpong, .report_error = mpi_report_error,
                        .abort_job = mpi_abort_job, .finalize = mpi_finalize};
        MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &c->size);
        describe_transport(c);
        int rc = exchange_names(c, err);
        if (rc) return rc;
    }
    *out = &world.pub;
    return DMZ_OK;
}

#endif
