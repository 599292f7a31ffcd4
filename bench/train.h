/* bench/train.h — one repetition of the training loop, with per-phase timers.
 * Internal to bench/. */
#ifndef DMZ_TRAIN_H
#define DMZ_TRAIN_H

#include <signal.h>

#include "bench.h"
#include "datasets/datasets.h"
#include "kernels/model.h"
#include "net/comm.h"

typedef struct dmz_step_record {
    int step;                       /* 1-based measured step */
    double elapsed_s;               /* training seconds since the repetition began (eval excluded) */
    double step_s, data_s, fwd_s, bwd_s, comm_s, update_s;
    double loss;                    /* summed over the batch */
    double test_loss, test_accuracy; /* NAN unless evaluated at this step */
} dmz_step_record;

typedef struct dmz_rep_result {
    int rep;
    double warmup_s, wall_s, samples_per_s;
    double data_s, fwd_s, bwd_s, comm_s, update_s, eval_s;
    double final_loss, test_loss, test_accuracy;
    double time_to_target_s;        /* NAN: not reached or no target */
    double bytes_sent;
    int n_steps;                    /* steps completed */
    dmz_step_record *steps;         /* n_steps records */
} dmz_rep_result;

/* Called after every step and every evaluation (progress, MLPerf log). */
typedef struct dmz_train_observer {
    void (*on_step)(void *ctx, const dmz_rep_result *r, const dmz_step_record *s);
    void (*on_eval)(void *ctx, const dmz_rep_result *r, const dmz_step_record *s);
    void *ctx;
} dmz_train_observer;

/* Runs warm-up (then resets model and data order), then cfg->steps measured
 * steps. `stop` set by a signal ends the loop with an error. */
int dmz_train_repetition(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds,
                         const dmz_train_config *cfg, int rep, const dmz_train_observer *obs,
                         volatile sig_atomic_t *stop, dmz_rep_result *out, char *err);
void dmz_rep_result_free(dmz_rep_result *r);

#endif
