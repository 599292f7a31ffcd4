/* The training loop. Every step: data (gather a batch, upload), forward,
 * backward, gradient exchange, Adam update — each phase ends with a backend
 * sync so the monotonic clock measures finished work. Test-set evaluations are
 * timed apart (eval_s) and left out of wall_s. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

/* Epoch-wise shuffled order, as TensorFlow's mnist next_batch: a fresh
 * permutation each epoch; a tail shorter than a batch is skipped. */
typedef struct batch_source {
    const dmz_split *split;
    uint32_t *order;
    size_t pos;
    int batch;
    dmz_rng rng;
    uint8_t *images, *labels; /* the gathered batch */
} batch_source;

static int batch_source_init(batch_source *b, const dmz_split *split, int batch, uint64_t seed, char *err) {
    memset(b, 0, sizeof *b);
    if (split->count < (size_t)batch)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--batch %d is larger than the training split (%zu samples)",
                          batch, split->count);
    b->split = split;
    b->batch = batch;
    b->order = malloc(split->count * sizeof(uint32_t));
    b->images = malloc((size_t)batch * DMZ_IMG_PIXELS);
    b->labels = malloc((size_t)batch);
    if (!b->order || !b->images || !b->labels) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < split->count; i++) b->order[i] = (uint32_t)i;
    dmz_rng_seed(&b->rng, seed ^ 0x5eed0da7aULL);
    dmz_rng_shuffle(&b->rng, b->order, split->count);
    return DMZ_OK;
}

static void batch_source_free(batch_source *b) {
    free(b->order), free(b->images), free(b->labels);
}

static void batch_source_next(batch_source *b) {
    if (b->pos + (size_t)b->batch > b->split->count) {
        dmz_rng_shuffle(&b->rng, b->order, b->split->count);
        b->pos = 0;
    }
    for (int i = 0; i < b->batch; i++) {
        uint32_t k = b->order[b->pos + (size_t)i];
        memcpy(b->images + (size_t)i * DMZ_IMG_PIXELS, b->split->images + (size_t)k * DMZ_IMG_PIXELS,
               DMZ_IMG_PIXELS);
        b->labels[i] = b->split->labels[k];
    }
    b->pos += (size_t)b->batch;
}

/* One step, phases timed into s. Returns the exchange's status. */
static int train_step(dmz_model *m, dmz_comm *comm, batch_source *src, const dmz_train_config *cfg,
                      dmz_step_record *s, char *err) {
    const dmz_backend *be = dmz_model_backend(m);
    double t0 = dmz_now_s();
    batch_source_next(src);
    dmz_model_set_batch(m, src->images, src->labels, cfg->batch);
    be->sync();
    double t1 = dmz_now_s();
    dmz_model_forward(m);
    s->loss = dmz_model_loss(m); /* synchronises */
    double t2 = dmz_now_s();
    dmz_model_backward(m);
    be->sync();
    double t3 = dmz_now_s();
    int rc = comm->allreduce_mean(comm, dmz_model_grads(m), dmz_model_num_params(m), err);
    double t4 = dmz_now_s();
    if (rc) return rc;
    dmz_model_update(m, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps);
    be->sync();
    double t5 = dmz_now_s();
    s->data_s = t1 - t0, s->fwd_s = t2 - t1, s->bwd_s = t3 - t2, s->comm_s = t4 - t3, s->update_s = t5 - t4;
    s->step_s = t5 - t0;
    s->test_loss = s->test_accuracy = NAN;
    return DMZ_OK;
}

static int run_warmup(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds, const dmz_train_config *cfg,
                      double *seconds, char *err) {
    batch_source src;
    int rc = batch_source_init(&src, &ds->train, cfg->batch, cfg->seed, err);
    double t0 = dmz_now_s();
    for (int i = 0; rc == DMZ_OK && i < cfg->warmup; i++) {
        dmz_step_record s;
        rc = train_step(m, comm, &src, cfg, &s, err);
    }
    *seconds = dmz_now_s() - t0;
    batch_source_free(&src);
    dmz_model_reset(m, cfg->seed);
    comm->stats = (dmz_comm_stats){0};
    return rc;
}

static void accumulate(dmz_rep_result *r, const dmz_step_record *s) {
    r->data_s += s->data_s, r->fwd_s += s->fwd_s, r->bwd_s += s->bwd_s;
    r->comm_s += s->comm_s, r->update_s += s->update_s;
    r->final_loss = s->loss;
}

static void evaluate(dmz_model *m, const dmz_dataset *ds, const dmz_train_config *cfg, dmz_rep_result *r,
                     dmz_step_record *s) {
    double t0 = dmz_now_s();
    dmz_eval ev;
    dmz_model_evaluate(m, ds->test.images, ds->test.labels, ds->test.count, &ev);
    r->eval_s += dmz_now_s() - t0;
    s->test_loss = r->test_loss = ev.loss;
    s->test_accuracy = r->test_accuracy = ev.accuracy;
    if (cfg->target_accuracy > 0 && isnan(r->time_to_target_s) && ev.accuracy >= cfg->target_accuracy)
        r->time_to_target_s = s->elapsed_s;
}

static void finish_result(dmz_rep_result *r, const dmz_comm *comm, const dmz_train_config *cfg) {
    r->samples_per_s = r->wall_s > 0 ? (double)r->n_steps * cfg->batch / r->wall_s : NAN;
    r->bytes_sent = comm->stats.bytes_sent;
}

int dmz_train_repetition(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds,
                         const dmz_train_config *cfg, int rep, const dmz_train_observer *obs,
                         volatile sig_atomic_t *stop, dmz_rep_result *r, char *err) {
    memset(r, 0, sizeof *r);
    r->rep = rep;
    r->final_loss = r->test_loss = r->test_accuracy = r->time_to_target_s = NAN;
    r->steps = calloc((size_t)cfg->steps, sizeof *r->steps);
    if (!r->steps) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for %d step records", cfg->steps);
    int rc = run_warmup(m, comm, ds, cfg, &r->warmup_s, err);
    batch_source src;
    if (rc == DMZ_OK) rc = batch_source_init(&src, &ds->train, cfg->batch, cfg->seed, err);
    if (rc) return rc;
    double start = dmz_now_s();
    for (int step = 1; step <= cfg->steps; step++) {
        dmz_step_record *s = &r->steps[step - 1];
        if (stop && *stop) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by a signal at step %d of %d", step, cfg->steps);
            break;
        }
        if ((rc = train_step(m, comm, &src, cfg, s, err))) break;
        s->step = step;
        s->elapsed_s = dmz_now_s() - start - r->eval_s;
        r->n_steps = step;
        accumulate(r, s);
        if (!isfinite(s->loss)) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "training diverged: loss is %g at step %d", s->loss, step);
            break;
        }
        if (obs && obs->on_step) obs->on_step(obs->ctx, r, s);
        if (step % cfg->eval_every == 0 || step == cfg->steps) {
            evaluate(m, ds, cfg, r, s);
            if (obs && obs->on_eval) obs->on_eval(obs->ctx, r, s);
        }
    }
    r->wall_s = dmz_now_s() - start - r->eval_s;
    finish_result(r, comm, cfg);
    batch_source_free(&src);
    return rc;
}

void dmz_rep_result_free(dmz_rep_result *r) {
    free(r->steps);
    r->steps = NULL;
}
