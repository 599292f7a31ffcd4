/* net/comm.h — the communicator: how ranks (sites) talk. The front door of net/.
 *
 * Two implementations share one table:
 *   single  one rank, no peers: collectives return at once and send nothing;
 *   mpi     MPI-3 on host buffers (net/comm_mpi.c), one process per rank under
 *           mpirun/srun/an MPIJob. Built when the build found MPI (DMZ_HAVE_MPI).
 *
 * Never a hang. Every blocking call polls its non-blocking MPI requests and
 * gives up after `timeout_s` (the error names the rank and site it waited for
 * and what for), or at once when `*stop` is set (a signal: the launcher ends
 * the job when a rank dies). Polling also keeps a waiting rank off the cores
 * the computing ranks need (MPI's own blocking calls busy-poll).
 *
 * Buffers are host memory. Every call returns DMZ_OK or an exit code with the
 * reason in err (DMZ_ERR_LEN). Payload bytes and seconds are counted in stats. */
#ifndef DMZ_COMM_H
#define DMZ_COMM_H

#include <signal.h>
#include <stddef.h>

enum { DMZ_SITE_LEN = 64, DMZ_ANY_RANK = -1 };

typedef struct dmz_comm_stats {
    double bytes_sent;   /* by this rank, payload bytes (collectives: the ring algorithm's share) */
    double seconds;      /* spent inside exchanges */
    int calls;
} dmz_comm_stats;

typedef struct dmz_comm dmz_comm;
struct dmz_comm {
    const char *name;   /* "single", "mpi", "nccl" */
    int device_buffers; /* 1: allreduce takes device memory (nccl); 0: host memory */
    int rank, size;
    double timeout_s;   /* a wait longer than this fails the job; <= 0: wait forever */
    volatile sig_atomic_t *stop; /* set by a signal handler: waits end at once; may be NULL */

    /* Sums n floats over all ranks, multiplies by scale, in place. Every rank
     * ends with bit-identical values: each element is reduced on exactly one
     * rank and then copied to all (reduce-scatter + all-gather, the ring's
     * two halves). */
    int (*allreduce)(dmz_comm *c, float *buf, size_t n, float scale, char *err);
    /* nccl-tests' bus-bandwidth factor of the all-reduce: 2(n-1)/n (0 for one rank). */
    double (*busbw_factor)(const dmz_comm *c);
    /* Waits until every rank arrived. Rank 0 collects the arrivals, so on a
     * timeout it names the ranks that did not come; *waited_s (may be NULL)
     * gets the seconds spent waiting. `what` names the point in the run. */
    int (*barrier)(dmz_comm *c, const char *what, double *waited_s, char *err);
    int (*bcast)(dmz_comm *c, void *buf, size_t bytes, int root, char *err);
    /* Point to point, blocking with the timeout. recv takes DMZ_ANY_RANK as src
     * and reports the sender and size; a message longer than `bytes` fails. */
    int (*send)(dmz_comm *c, int dst, int tag, const void *buf, size_t bytes, const char *what, char *err);
    int (*recv)(dmz_comm *c, int src, int tag, void *buf, size_t bytes, int *from, size_t *got,
                const char *what, char *err);
    /* Ping-pong (for the probe): `iters` round trips of `bytes` between this rank
     * and `peer`; the lower rank sends first. *seconds gets the total time. */
    int (*pingpong)(dmz_comm *c, int peer, void *buf, size_t bytes, int iters, double *seconds, char *err);
    /* A rank other than 0 that fails tells rank 0 why (best effort), so that
     * rank 0, which writes the result directory, records the real reason: its
     * waits end with "rank R (site S) failed: <text>". */
    void (*report_error)(dmz_comm *c, const char *text);
    /* Ends every rank of the job (after an error was recorded); does not return
     * for mpi. */
    void (*abort_job)(dmz_comm *c, int code);
    void (*finalize)(dmz_comm *c);

    char **site_of;                 /* size entries: DMZBENCH_SITE, else the host name */
    char **host_of;                 /* size entries: the host name */
    char transport[512];            /* e.g. "Open MPI v4.1.4; btl tcp,self" */
    dmz_comm_stats stats;
};

/* One rank, no peers. */
dmz_comm *dmz_comm_single(void);

/* Whether this build has MPI; if not, why (for messages and `dmzbench info`). */
int dmz_comm_mpi_built(char *why, size_t len);
/* Whether this process was started by an MPI launcher (mpirun, srun, ...). */
int dmz_comm_under_launcher(void);
/* Initialises MPI once per process and returns its communicator over all
 * ranks; site names are exchanged here. DMZ_EXIT_USAGE when MPI is not built. */
int dmz_comm_mpi(int *argc, char ***argv, dmz_comm **out, char *err);

/* NCCL for the gradient all-reduce on device buffers (--backend cuda), built
 * with nvcc + MPI + NCCL (DMZ_HAVE_NCCL). Picks this rank's GPU by its rank
 * among the ranks on its host, joins a communicator whose unique id rank 0
 * broadcasts over `host`, and forwards everything else to `host`. */
int dmz_comm_nccl_built(char *why, size_t len);
int dmz_comm_nccl(dmz_comm *host, dmz_comm **out, char *err);

/* The site of `rank` ("?" when unknown). */
const char *dmz_comm_site(const dmz_comm *c, int rank);
/* This process's site name: $DMZBENCH_SITE, else the host name. */
void dmz_local_site(char *out, size_t len);

#endif
