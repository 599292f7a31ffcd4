/* The training loop of single and sync mode. Every step: data (gather a
 * batch, upload), forward, backward, [sync: wait for every rank, sum the
 * gradients], Adam update. Test-set evaluations are timed apart (eval_s) and
 * left out of wall_s.
 *
 * Two ways to run a step:
 *  - host-timed (the cpu backend, and any backend without the device step):
 *    each phase ends with a backend sync so the monotonic clock measures
 *    finished work; the loss is read back every step;
 *  - device-resident (dmz_model_resident: the cuda backends): the training
 *    split is uploaded once and batches are gathered on the device; phases are
 *    timed by events on the model's stream; each step's loss goes to a device
 *    log; nothing waits for the device until a flush point (every --log-every
 *    steps, an evaluation, a consistency check, the last step, or a full event
 *    ring), where the pending steps' losses and phase times are read back at
 *    once and the steps are accounted and observed in order. With --graph the
 *    whole step is captured once in a CUDA Graph and replayed: its phases
 *    cannot be told apart (data/fwd/bwd/update NAN, step_s the device time). */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"
#include "train_parts.h"

enum { TAG_CHECKSUM = 31201 };

dmz_train_role dmz_role_single(const dmz_train_config *cfg) {
    return (dmz_train_role){.rank = 0, .size = 1, .local_batch = cfg->batch, .data_seed = cfg->seed, .speed = 1,
                            .grad_scale = 1};
}

enum { EV_START, EV_DATA, EV_FWD, EV_BWD, EV_COMM, EV_END, EV_PER_STEP };
#define RING_STEPS 256 /* pending device steps before a flush is forced */

typedef struct loop_state {
    dmz_model *m;
    dmz_comm *comm;
    const dmz_train_config *cfg;
    const dmz_train_role *role;
    dmz_batch_source src;
    dmz_host_view grads;
    /* the device-resident step */
    int device, graph;
    void *ev[RING_STEPS * EV_PER_STEP];
    int pending;            /* steps queued since the last flush */
    int first_pending;      /* 0-based model step of the first of them */
    float losses[RING_STEPS];
} loop_state;

/* Sums the gradients over the ranks; rank-local work in single mode. */
static int exchange(loop_state *L, dmz_step_record *s, char *err) {
    const dmz_backend *be = dmz_model_backend(L->m);
    dmz_comm *c = L->comm;
    if (c->size > 1) {
        char what[64];
        if (s->step < 0) snprintf(what, sizeof what, "warm-up step %d's gradient exchange", -s->step);
        else snprintf(what, sizeof what, "step %d's gradient exchange", s->step);
        int rc = c->barrier(c, what, &s->wait_s, err);
        if (rc) return rc;
    }
    double t0 = dmz_now_s(), sent0 = c->stats.bytes_sent;
    int rc;
    if (c->device_buffers) { /* nccl: straight from device memory */
        rc = c->allreduce(c, dmz_model_grads(L->m), L->grads.n, L->role->grad_scale, err);
    } else {
        dmz_host_view_pull(&L->grads, be, dmz_model_grads(L->m));
        rc = c->allreduce(c, L->grads.host, L->grads.n, L->role->grad_scale, err);
        dmz_host_view_push(&L->grads, be, dmz_model_grads(L->m));
    }
    be->sync();
    s->comm_s = dmz_now_s() - t0;
    s->comm_bytes = c->stats.bytes_sent - sent0;
    return rc;
}

static double span(const dmz_backend *be, void **ev, int a, int b) { return be->event_elapsed(ev[a], ev[b]); }

/* Fills the phase times of a flushed device step from its events. */
static void device_times(loop_state *L, int k, dmz_step_record *s) {
    const dmz_backend *be = dmz_model_backend(L->m);
    void **ev = &L->ev[k * EV_PER_STEP];
    s->step_s = span(be, ev, EV_START, EV_END);
    if (L->graph) {
        s->data_s = s->fwd_s = s->bwd_s = s->update_s = NAN;
        return;
    }
    s->data_s = span(be, ev, EV_START, EV_DATA);
    s->fwd_s = span(be, ev, EV_DATA, EV_FWD);
    s->bwd_s = span(be, ev, EV_FWD, EV_BWD);
    s->update_s = span(be, ev, EV_COMM, EV_END);
}

/* One device step, queued (nothing waits unless --rank-speed or a
 * cross-site exchange needs it). */
static int device_step(loop_state *L, dmz_step_record *s, char *err) {
    dmz_model *m = L->m;
    const dmz_backend *be = dmz_model_backend(m);
    const dmz_train_config *cfg = L->cfg;
    void **ev = &L->ev[L->pending * EV_PER_STEP];
    if (L->pending == 0) L->first_pending = s->step < 0 ? -s->step - 1 : s->step - 1;
    if (dmz_batch_source_advance(&L->src)) dmz_model_set_order(m, L->src.order, L->src.split->count);
    be->event_record(ev[EV_START]);
    int rc = DMZ_OK;
    if (L->graph) {
        dmz_model_replay_step(m);
    } else {
        dmz_model_gather(m, L->src.offset, L->src.count, L->src.global);
        be->event_record(ev[EV_DATA]);
        dmz_model_forward_train(m);
        be->event_record(ev[EV_FWD]);
        dmz_model_backward(m);
        be->event_record(ev[EV_BWD]);
        if (L->comm->size > 1 || L->role->grad_scale != 1.0f) rc = exchange(L, s, err);
        be->event_record(ev[EV_COMM]);
        if (rc) return rc;
        dmz_model_update(m, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps);
    }
    be->event_record(ev[EV_END]);
    L->pending++;
    if (L->role->speed < 1.0) { /* the throttle needs this step's compute time: wait for it */
        dmz_model_sync(m);
        double compute = span(be, ev, EV_START, EV_BWD);
        s->throttle_s = dmz_throttle(L->graph ? span(be, ev, EV_START, EV_END) : compute, L->role->speed);
    }
    s->test_loss = s->test_accuracy = s->global_step = s->staleness = NAN;
    return DMZ_OK;
}

/* Reads back the pending device steps' losses and times (one wait). */
static void device_flush(loop_state *L, dmz_step_record *first) {
    if (L->pending == 0) return;
    if (dmz_model_step_losses(L->m, L->first_pending, L->pending, L->losses) != 0) abort(); /* a bug: not logged */
    for (int k = 0; k < L->pending; k++) {
        first[k].loss = L->losses[k];
        device_times(L, k, &first[k]);
    }
    L->pending = 0;
}

/* One step, phases timed into s. Returns the exchange's status. */
static int train_step(loop_state *L, dmz_step_record *s, char *err) {
    if (L->device) return device_step(L, s, err);
    const dmz_backend *be = dmz_model_backend(L->m);
    const dmz_train_config *cfg = L->cfg;
    double t0 = dmz_now_s();
    dmz_compute_step(L->m, &L->src, L->role->local_batch, L->role->speed, s);
    int rc = exchange(L, s, err);
    double t4 = dmz_now_s();
    if (rc) return rc;
    dmz_phase_begin(DMZ_PHASE_UPDATE);
    dmz_model_update(L->m, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps);
    be->sync();
    dmz_phase_end(DMZ_PHASE_UPDATE);
    double t5 = dmz_now_s();
    s->update_s = t5 - t4;
    s->step_s = t5 - t0;
    s->test_loss = s->test_accuracy = s->global_step = s->staleness = NAN;
    return DMZ_OK;
}

static int loop_init(loop_state *L, dmz_model *m, dmz_comm *comm, const dmz_dataset *ds,
                     const dmz_train_config *cfg, const dmz_train_role *role, char *err) {
    memset(L, 0, sizeof *L);
    L->m = m, L->comm = comm, L->cfg = cfg, L->role = role;
    const dmz_backend *be = dmz_model_backend(m);
    int rc = dmz_batch_source_init(&L->src, &ds->train, role->global_batch, role->offset, role->local_batch,
                                   role->data_seed, err);
    if (!rc && !comm->device_buffers)
        rc = dmz_host_view_init(&L->grads, be, dmz_model_grads(m), dmz_model_num_params(m), err);
    L->grads.n = dmz_model_num_params(m);
    dmz_model_set_count_correct(m, 0); /* accuracy is counted where it is evaluated */
    L->device = !rc && dmz_model_resident(m) && be->event_create;
    if (cfg->graph && !rc && !L->device)
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "--graph: the %s backend has no device-resident step to capture "
                        "(use --backend cuda)", be->name);
    if (cfg->graph && !rc && comm->size > 1)
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "--graph captures a whole step: only in --mode single (a cross-site "
                        "exchange sits inside the step)");
    if (!rc && L->device) {
        if (!dmz_model_data_count(m)) rc = dmz_model_load_data(m, ds->train.images, ds->train.labels, ds->train.count, err);
        for (int k = 0; !rc && k < RING_STEPS * EV_PER_STEP; k++) L->ev[k] = be->event_create();
        if (!rc) dmz_model_set_order(m, L->src.order, L->src.split->count);
    }
    if (!rc && cfg->graph) {
        L->graph = 1;
        rc = dmz_model_capture_step(m, L->src.offset, L->src.count, L->src.global, cfg->lr, cfg->beta1, cfg->beta2,
                                    cfg->eps, err);
    }
    return rc;
}

static void loop_free(loop_state *L) {
    const dmz_backend *be = dmz_model_backend(L->m);
    if (L->device) dmz_model_sync(L->m);
    for (int k = 0; k < RING_STEPS * EV_PER_STEP; k++)
        if (L->ev[k]) be->event_destroy(L->ev[k]);
    dmz_batch_source_free(&L->src);
    dmz_host_view_free(&L->grads);
}

static int run_warmup(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds, const dmz_train_config *cfg,
                      const dmz_train_role *role, volatile sig_atomic_t *stop, double *seconds, char *err) {
    loop_state L;
    double t0 = dmz_now_s();
    int rc = loop_init(&L, m, comm, ds, cfg, role, err);
    for (int i = 0; rc == DMZ_OK && i < cfg->warmup; i++) {
        if (stop && *stop) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by a signal during warm-up (step %d of %d)", i + 1,
                            cfg->warmup);
            break;
        }
        dmz_step_record s = {.step = -(i + 1)};
        rc = train_step(&L, &s, err);
        if (L.pending == RING_STEPS || i + 1 == cfg->warmup) {
            dmz_step_record sink[RING_STEPS];
            device_flush(&L, sink);
        }
    }
    *seconds = cfg->warmup > 0 ? dmz_now_s() - t0 : NAN;
    loop_free(&L);
    dmz_model_reset(m, cfg->seed);
    comm->stats = (dmz_comm_stats){0};
    return rc;
}

static void accumulate(dmz_rep_result *r, const dmz_step_record *s) {
    r->data_s += s->data_s, r->fwd_s += s->fwd_s, r->bwd_s += s->bwd_s;
    r->comm_s += s->comm_s, r->update_s += s->update_s;
    r->wait_s += s->wait_s, r->throttle_s += s->throttle_s;
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

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* sync: every rank's parameters must be bit-identical; rank 0 compares. */
static int check_consistency(loop_state *L, int step, char *err) {
    dmz_comm *c = L->comm;
    size_t n = dmz_model_num_params(L->m);
    float *p = malloc(n * sizeof(float));
    if (!p) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    dmz_model_get_params(L->m, p);
    uint64_t mine = fnv1a(p, n * sizeof(float));
    free(p);
    char what[64];
    snprintf(what, sizeof what, "the parameter check at step %d", step);
    if (c->rank != 0) return c->send(c, 0, TAG_CHECKSUM, &mine, sizeof mine, what, err);
    for (int r = 1; r < c->size; r++) {
        uint64_t theirs = 0;
        int rc = c->recv(c, r, TAG_CHECKSUM, &theirs, sizeof theirs, NULL, NULL, what, err);
        if (rc) return rc;
        if (theirs != mine)
            return dmz_errorf(err, DMZ_EXIT_FAIL,
                              "--check-consistency: after step %d the parameters of rank %d (site %s) differ from "
                              "rank 0's (checksum %016llx vs %016llx)",
                              step, r, dmz_comm_site(c, r), (unsigned long long)theirs, (unsigned long long)mine);
    }
    return DMZ_OK;
}

/* Every rank starts the measured steps from rank 0's parameters. */
static int start_identical(dmz_model *m, dmz_comm *comm, char *err) {
    if (comm->size < 2) return DMZ_OK;
    size_t n = dmz_model_num_params(m);
    float *p = malloc(n * sizeof(float));
    if (!p) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    dmz_model_get_params(m, p);
    int rc = comm->bcast(comm, p, n * sizeof(float), 0, err);
    if (!rc) dmz_model_set_params(m, p);
    free(p);
    comm->stats = (dmz_comm_stats){0};
    return rc;
}

static void finish_result(dmz_rep_result *r, const dmz_comm *comm, int batch) {
    r->steps_done = r->n_steps;
    r->samples_per_s = r->wall_s > 0 ? (double)r->n_steps * batch / r->wall_s : NAN;
    r->bytes_sent = comm->stats.bytes_sent;
}

void dmz_rep_result_init(dmz_rep_result *r, int rep) {
    memset(r, 0, sizeof *r);
    r->rep = rep;
    r->final_loss = r->test_loss = r->test_accuracy = r->time_to_target_s = NAN;
    r->warmup_s = r->staleness_median = r->staleness_max = NAN;
    dmz_rep_counters_init(&r->ctr);
}

int dmz_train_repetition(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds, const dmz_train_config *cfg,
                         const dmz_train_role *role, int rep, const dmz_train_observer *obs,
                         volatile sig_atomic_t *stop, dmz_rep_result *r, char *err) {
    dmz_rep_result_init(r, rep);
    if (!dmz_rep_result_room(r, 1)) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for step records");
    int rc = run_warmup(m, comm, ds, cfg, role, stop, &r->warmup_s, err);
    if (rc == DMZ_OK) rc = start_identical(m, comm, err);
    loop_state L;
    if (rc == DMZ_OK) rc = loop_init(&L, m, comm, ds, cfg, role, err);
    if (rc) return rc;
    dmz_rep_counters_begin(&r->ctr);
    double start = dmz_now_s();
    int done = 0; /* steps accounted (a device step is accounted at the flush after it) */
    for (int step = 1; step <= cfg->steps; step++) {
        if (!dmz_rep_result_room(r, step)) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for %d step records", step);
            break;
        }
        dmz_step_record *s = &r->steps[step - 1];
        if (stop && *stop) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by a signal at step %d of %d", step, cfg->steps);
            break;
        }
        s->step = step;
        if ((rc = train_step(&L, s, err))) break;
        s->elapsed_s = dmz_now_s() - start - r->eval_s; /* device steps: when queued, or after the flush below */
        int evaluate_now = step % cfg->eval_every == 0 || step == cfg->steps;
        int check_now = role->consistency_every > 0 && (step % role->consistency_every == 0 || step == cfg->steps);
        if (L.device) {
            if (!(evaluate_now || check_now || step % cfg->log_every == 0 || L.pending == RING_STEPS)) continue;
            device_flush(&L, &r->steps[done]);
            s->elapsed_s = dmz_now_s() - start - r->eval_s;
        }
        for (; done < step; done++) { /* the steps that now have their loss, in order */
            dmz_step_record *d = &r->steps[done];
            r->n_steps = done + 1;
            accumulate(r, d);
            if (!isfinite(d->loss)) {
                rc = dmz_errorf(err, DMZ_EXIT_FAIL, "training diverged: loss is %g at step %d on rank %d", d->loss,
                                d->step, role->rank);
                break;
            }
            if (obs && obs->on_step && done + 1 < step) obs->on_step(obs->ctx, r, d);
        }
        if (rc) break;
        if (check_now && (rc = check_consistency(&L, step, err))) break;
        if (obs && obs->on_step) obs->on_step(obs->ctx, r, s);
        if (evaluate_now) {
            evaluate(m, ds, cfg, r, s);
            if (obs && obs->on_eval) obs->on_eval(obs->ctx, r, s);
        }
    }
    r->wall_s = dmz_now_s() - start - r->eval_s;
    dmz_rep_counters_end(&r->ctr, rep);
    finish_result(r, comm, role->local_batch);
    loop_free(&L);
    return rc;
}

/* Step records grow as the steps come (a huge --steps costs nothing up front). */
bool dmz_rep_result_room(dmz_rep_result *r, int records) {
    if (records <= r->cap_steps) return true;
    int cap = r->cap_steps ? r->cap_steps : 1024;
    while (cap < records) cap *= 2;
    dmz_step_record *grown = realloc(r->steps, (size_t)cap * sizeof *grown);
    if (!grown) return false;
    memset(grown + r->cap_steps, 0, (size_t)(cap - r->cap_steps) * sizeof *grown);
    r->steps = grown, r->cap_steps = cap;
    return true;
}

void dmz_rep_result_free(dmz_rep_result *r) {
    free(r->steps);
    r->steps = NULL;
    r->cap_steps = 0;
}
