/* bench/train.h — the training loops, with per-phase timers. Internal to bench/.
 *
 *   single, sync   dmz_train_repetition: every rank steps its own model; in sync
 *                  the gradients are summed over the ranks (after a barrier that
 *                  measures how long this rank waited for the slowest) and every
 *                  rank applies the same Adam update;
 *   async-ps       dmz_train_ps_worker on ranks 1..N-1 (push gradients, pull
 *                  parameters) and dmz_train_ps_server on rank 0 (net/ps.h). */
#ifndef DMZ_TRAIN_H
#define DMZ_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "counters_run.h"
#include "datasets/datasets.h"
#include "kernels/model.h"
#include "net/comm.h"

typedef struct dmz_step_record {
    int step;                       /* 1-based measured step of this rank */
    double elapsed_s;               /* training seconds since the repetition began (eval excluded) */
    double step_s, data_s, fwd_s, bwd_s, comm_s, update_s;
    double wait_s;                  /* blocked on another rank (sync: barrier; async-ps: server's service) */
    double throttle_s;              /* --rank-speed: sleep that emulates a slower device */
    double comm_bytes;              /* payload bytes this rank sent in the step's exchange */
    double global_step;             /* async-ps: the server's step after this push; else NAN */
    double staleness;               /* async-ps: of this push; else NAN */
    double loss;                    /* summed over the batch */
    double test_loss, test_accuracy; /* NAN unless evaluated at this step */
} dmz_step_record;

typedef struct dmz_rep_result {
    int rep;
    double warmup_s, wall_s, samples_per_s;
    double data_s, fwd_s, bwd_s, comm_s, update_s, eval_s, wait_s, throttle_s;
    double final_loss, test_loss, test_accuracy;
    double time_to_target_s;        /* NAN: not reached or no target */
    double bytes_sent;
    double staleness_median, staleness_max; /* async-ps; NAN otherwise */
    int steps_done;                 /* steps this rank computed (server: global steps applied) */
    int n_steps;                    /* records in steps */
    int cap_steps;                  /* records allocated */
    dmz_step_record *steps;
    dmz_rep_counters ctr;           /* binding, PAPI per phase, energy */
} dmz_rep_result;

/* Who this rank is in the run, and how it takes its data. */
typedef struct dmz_train_role {
    int rank, size;
    int local_batch;        /* samples this rank computes per step */
    int global_batch;       /* > 0: all ranks walk one shared order, this many per step */
    int offset;             /* this rank's first sample within the global batch */
    uint64_t data_seed;     /* data order */
    double speed;           /* 1: full speed; F < 1 sleeps (1/F - 1) x the compute time */
    float grad_scale;       /* applied to the summed gradients */
    int consistency_every;  /* sync: parameter checksum comparison every K steps; 0: never */
} dmz_train_role;

/* single mode: one rank, --batch, the run's seed. */
dmz_train_role dmz_role_single(const dmz_train_config *cfg);

/* Called after every step and every evaluation (progress, MLPerf log). */
typedef struct dmz_train_observer {
    void (*on_step)(void *ctx, const dmz_rep_result *r, const dmz_step_record *s);
    void (*on_eval)(void *ctx, const dmz_rep_result *r, const dmz_step_record *s);
    void *ctx;
} dmz_train_observer;

/* Runs warm-up (then resets model and data order), then cfg->steps measured
 * steps. `stop` set by a signal ends the loop with an error. */
int dmz_train_repetition(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds, const dmz_train_config *cfg,
                         const dmz_train_role *role, int rep, const dmz_train_observer *obs,
                         volatile sig_atomic_t *stop, dmz_rep_result *out, char *err);

/* async-ps. The worker computes until the server says stop; the server applies
 * pushes until cfg->steps global steps, then evaluates the final parameters
 * with `eval_model` (a cpu model of the same kind). Both start from the
 * parameters rank 0 broadcasts. */
int dmz_train_ps_worker(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds, const dmz_train_config *cfg,
                        const dmz_train_role *role, int rep, const dmz_train_observer *obs,
                        volatile sig_atomic_t *stop, dmz_rep_result *out, char *err);
int dmz_train_ps_server(dmz_model *eval_model, dmz_comm *comm, const dmz_dataset *ds,
                        const dmz_train_config *cfg, int rep, dmz_rep_result *out, char *err);

/* Zeroes r; values that were not measured start as NAN. */
void dmz_rep_result_init(dmz_rep_result *r, int rep);
/* Makes room for `records` step records; false when out of memory. */
bool dmz_rep_result_room(dmz_rep_result *r, int records);
void dmz_rep_result_free(dmz_rep_result *r);

#endif
