/* net/ps.h — the parameter server of `--mode async-ps`, as TensorFlow's
 * between-graph replication ran it in the paper (and as ps-lite exposes it:
 * push and pull, nothing else).
 *
 * Rank 0 serves: it holds the parameters and Adam's moments on the CPU,
 * applies each pushed gradient at once, in arrival order, and counts the
 * global step. Ranks 1..N-1 work: each pushes the gradient of its own batch
 * and gets the current parameters back in the same round trip (push + pull).
 * Once the global step reaches the target, the server applies no more
 * gradients: it answers every worker's next push with "stop", so the job ends
 * at exactly the target step.
 *
 * Staleness of a push: global steps applied between the worker's pull and the
 * arrival of its push (0 with one worker). */
#ifndef DMZ_PS_H
#define DMZ_PS_H

#include <stddef.h>
#include <stdint.h>

#include "comm.h"
#include "kernels/backend.h"

/* What the server answers to a push. */
typedef struct dmz_ps_reply {
    int64_t global_step;   /* after this push (if applied) */
    int64_t staleness;     /* of this push */
    int applied;           /* 1: this push's gradient was applied */
    int stopped;           /* 1: the target step is reached: stop */
    double service_s;      /* server time between taking the push and answering it */
} dmz_ps_reply;

typedef struct dmz_ps_worker_stats {
    int64_t pushes;        /* gradients applied */
    int64_t staleness_max;
    double staleness_mean;
    double staleness_median;
} dmz_ps_worker_stats;

typedef struct dmz_ps_server_result {
    int64_t global_step;
    double wall_s;         /* from the first push to the target step */
    double apply_s;        /* in Adam */
    double idle_s;         /* waiting for pushes */
    double bytes_sent;
    int workers;
    dmz_ps_worker_stats *per_worker; /* index worker rank - 1; free() it */
} dmz_ps_server_result;

/* Serves until the target step is reached and every worker was told to stop.
 * params (host, n floats) hold the initial values and end with the final ones.
 * Adam runs on the cpu backend with the given hyper-parameters (t = global step). */
int dmz_ps_serve(dmz_comm *c, float *params, size_t n, int64_t target_steps, dmz_adam_params hp,
                 dmz_ps_server_result *out, char *err);

/* One worker round trip: pushes grads (host, n floats) stamped with the step
 * of the parameters they were computed on (*pulled_step), receives the current
 * parameters into params and advances *pulled_step. */
int dmz_ps_push_pull(dmz_comm *c, const float *grads, float *params, size_t n, int64_t *pulled_step,
                     dmz_ps_reply *reply, char *err);

#endif
