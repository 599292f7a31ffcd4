/* net/comm.h — the communicator: how ranks exchange gradients between backward
 * and update. Single mode uses dmz_comm_single (one rank, nothing to send);
 * the MPI/NCCL communicators of the cross-site issue implement the same table.
 * Buffers are backend memory (see kernels/backend.h). */
#ifndef DMZ_COMM_H
#define DMZ_COMM_H

#include <stddef.h>

typedef struct dmz_comm_stats {
    double bytes_sent;   /* by this rank, payload bytes */
    double seconds;      /* spent inside exchanges */
    int calls;
} dmz_comm_stats;

typedef struct dmz_comm dmz_comm;
struct dmz_comm {
    const char *name;   /* "single", "mpi", "nccl" */
    int rank, size;
    /* Sums (all-reduce) n floats of grads across ranks, then divides by size,
     * in place. Returns 0 or an exit code with the reason in err. */
    int (*allreduce_mean)(dmz_comm *c, float *grads, size_t n, char *err);
    /* nccl-tests' bus-bandwidth factor for this collective: 2(n-1)/n for all-reduce. */
    double (*busbw_factor)(const dmz_comm *c);
    dmz_comm_stats stats;
};

/* One rank, no peers: exchanges return at once and send nothing. */
dmz_comm *dmz_comm_single(void);

#endif
