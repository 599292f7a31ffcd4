/* async-ps: the paper's mode. Workers (ranks 1..N-1) compute gradients and
 * push them; the server (rank 0) applies them in arrival order (net/ps.h).
 * Both start from the parameters rank 0 broadcast. The final parameters are
 * evaluated on the server: evaluating during training would stall every
 * worker, so async-ps has one test evaluation, at the end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"
#include "net/ps.h"
#include "train.h"
#include "train_parts.h"

typedef struct worker_state {
    dmz_model *m;
    dmz_comm *comm;
    const dmz_train_role *role;
    dmz_batch_source src;
    dmz_host_view grads;
    float *params;      /* host copy pulled from the server */
    int64_t pulled_step;
} worker_state;

/* One worker step: data, forward, backward, push + pull. */
static int worker_step(worker_state *W, dmz_step_record *s, int *stopped, int *applied, char *err) {
    const dmz_backend *be = dmz_model_backend(W->m);
    size_t n = dmz_model_num_params(W->m);
    double t0 = dmz_now_s();
    dmz_compute_step(W->m, &W->src, W->role->local_batch, W->role->speed, s);
    double t4 = dmz_now_s(), sent0 = W->comm->stats.bytes_sent;
    dmz_host_view_pull(&W->grads, be, dmz_model_grads(W->m));
    dmz_ps_reply reply;
    int rc = dmz_ps_push_pull(W->comm, W->grads.host, W->params, n, &W->pulled_step, &reply, err);
    double t5 = dmz_now_s();
    if (rc) return rc;
    dmz_model_set_params(W->m, W->params);
    be->sync();
    double t6 = dmz_now_s();
    *stopped = reply.stopped;
    *applied = reply.applied;
    s->update_s = t6 - t5;
    s->wait_s = reply.service_s;
    s->comm_s = (t5 - t4) - reply.service_s;
    s->comm_bytes = W->comm->stats.bytes_sent - sent0;
    s->step_s = t6 - t0;
    s->global_step = (double)reply.global_step;
    s->staleness = reply.applied ? (double)reply.staleness : NAN;
    s->test_loss = s->test_accuracy = NAN;
    return DMZ_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void staleness_summary(dmz_rep_result *r) {
    double *v = malloc(sizeof(double) * (size_t)(r->n_steps ? r->n_steps : 1));
    int k = 0;
    for (int i = 0; v && i < r->n_steps; i++)
        if (!isnan(r->steps[i].staleness)) v[k++] = r->steps[i].staleness;
    if (k > 0) {
        qsort(v, (size_t)k, sizeof *v, cmp_double);
        r->staleness_max = v[k - 1];
        r->staleness_median = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
    }
    free(v);
}

int dmz_train_ps_worker(dmz_model *m, dmz_comm *comm, const dmz_dataset *ds, const dmz_train_config *cfg,
                        const dmz_train_role *role, int rep, const dmz_train_observer *obs,
                        volatile sig_atomic_t *stop, dmz_rep_result *r, char *err) {
    dmz_rep_result_init(r, rep);
    size_t n = dmz_model_num_params(m);
    worker_state W = {.m = m, .comm = comm, .role = role};
    W.params = malloc(n * sizeof(float));
    if (!dmz_rep_result_room(r, 1) || !W.params) {
        free(W.params);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for %d step records", cfg->steps);
    }
    int rc = dmz_batch_source_init(&W.src, &ds->train, 0, 0, role->local_batch, role->data_seed, err);
    if (!rc) rc = dmz_host_view_init(&W.grads, dmz_model_backend(m), dmz_model_grads(m), n, err);
    dmz_model_get_params(m, W.params);
    if (!rc) rc = comm->bcast(comm, W.params, n * sizeof(float), 0, err);
    if (!rc) dmz_model_set_params(m, W.params);
    comm->stats = (dmz_comm_stats){0};
    dmz_rep_counters_begin(&r->ctr);
    double start = dmz_now_s();
    int stopped = 0, applied = 0;
    while (rc == DMZ_OK && !stopped) {
        if (r->n_steps > cfg->steps)
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: the server never said stop after %d steps", comm->rank,
                            r->n_steps);
        else if (stop && *stop)
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: interrupted by a signal at its step %d", comm->rank,
                            r->n_steps + 1);
        if (rc) break;
        if (!dmz_rep_result_room(r, r->n_steps + 1)) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for step records");
            break;
        }
        dmz_step_record *s = &r->steps[r->n_steps];
        s->step = r->n_steps + 1;
        if ((rc = worker_step(&W, s, &stopped, &applied, err))) break;
        s->elapsed_s = dmz_now_s() - start;
        r->n_steps++;
        r->steps_done += applied;
        r->data_s += s->data_s, r->fwd_s += s->fwd_s, r->bwd_s += s->bwd_s, r->comm_s += s->comm_s;
        r->update_s += s->update_s, r->wait_s += s->wait_s, r->throttle_s += s->throttle_s;
        r->final_loss = s->loss;
        if (!isfinite(s->loss))
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "training diverged: loss is %g at step %d of rank %d", s->loss,
                            s->step, comm->rank);
        if (obs && obs->on_step) obs->on_step(obs->ctx, r, s);
    }
    r->wall_s = dmz_now_s() - start;
    dmz_rep_counters_end(&r->ctr, rep);
    r->samples_per_s = r->wall_s > 0 ? (double)r->steps_done * role->local_batch / r->wall_s : NAN;
    r->bytes_sent = comm->stats.bytes_sent;
    staleness_summary(r);
    dmz_batch_source_free(&W.src);
    dmz_host_view_free(&W.grads);
    free(W.params);
    return rc;
}

int dmz_train_ps_server(dmz_model *eval_model, dmz_comm *comm, const dmz_dataset *ds,
                        const dmz_train_config *cfg, int rep, dmz_rep_result *r, char *err) {
    dmz_rep_result_init(r, rep);
    size_t n = dmz_model_num_params(eval_model);
    float *params = malloc(n * sizeof(float));
    if (!params) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for %zu parameters", n);
    dmz_model_reset(eval_model, cfg->seed);
    dmz_model_get_params(eval_model, params);
    int rc = comm->bcast(comm, params, n * sizeof(float), 0, err);
    comm->stats = (dmz_comm_stats){0};
    dmz_ps_server_result res = {0};
    dmz_adam_params hp = {.lr = cfg->lr, .beta1 = cfg->beta1, .beta2 = cfg->beta2, .eps = cfg->eps};
    dmz_rep_counters_begin(&r->ctr);
    if (!rc) rc = dmz_ps_serve(comm, params, n, cfg->steps, hp, &res, err);
    dmz_rep_counters_end(&r->ctr, rep);
    r->steps_done = (int)res.global_step;
    r->wall_s = res.wall_s;
    r->update_s = res.apply_s;
    r->wait_s = res.idle_s;
    r->bytes_sent = res.bytes_sent;
    r->comm_s = comm->stats.seconds - res.idle_s;
    r->samples_per_s = NAN; /* the server computes no samples: the workers' rows hold the throughput */
    int64_t max_st = 0;
    for (int w = 0; res.per_worker && w < res.workers; w++)
        if (res.per_worker[w].staleness_max > max_st) max_st = res.per_worker[w].staleness_max;
    r->staleness_max = res.per_worker ? (double)max_st : NAN;
    free(res.per_worker);
    if (rc == DMZ_OK) {
        double t0 = dmz_now_s();
        dmz_model_set_params(eval_model, params);
        dmz_eval ev;
        dmz_model_evaluate(eval_model, ds->test.images, ds->test.labels, ds->test.count, &ev);
        r->eval_s = dmz_now_s() - t0;
        r->test_loss = ev.loss, r->test_accuracy = ev.accuracy;
        if (cfg->target_accuracy > 0 && ev.accuracy >= cfg->target_accuracy) r->time_to_target_s = r->wall_s;
    }
    free(params);
    return rc;
}
