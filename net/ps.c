/* The parameter server and its workers' push + pull (see ps.h). One message
 * each way: a small header, then the n floats (gradients up, parameters down). */
#include "ps.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

enum { TAG_PUSH = 31001, TAG_REPLY = 31002 };
enum { FLAG_APPLIED = 1, FLAG_STOP = 2 };

typedef struct ps_header {
    int64_t step;       /* push: the step the gradient was computed at; reply: the global step */
    int64_t staleness;  /* reply only */
    int64_t flags;      /* reply only */
    double service_s;   /* reply only */
} ps_header;

typedef struct ps_buffer {
    unsigned char *bytes;
    size_t cap;
} ps_buffer;

static int buffer_fit(ps_buffer *b, size_t bytes, char *err) {
    if (bytes <= b->cap) return DMZ_OK;
    free(b->bytes);
    b->bytes = malloc(bytes);
    b->cap = b->bytes ? bytes : 0;
    return b->bytes ? DMZ_OK : dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for a %zu-byte message", bytes);
}

static ps_header *header_of(ps_buffer *b) { return (ps_header *)b->bytes; }
static float *payload_of(ps_buffer *b) { return (float *)(b->bytes + sizeof(ps_header)); }

/* ---------------------------------------------------------------- worker */

int dmz_ps_push_pull(dmz_comm *c, const float *grads, float *params, size_t n, int64_t *pulled_step,
                     dmz_ps_reply *reply, char *err) {
    static ps_buffer out, in;
    size_t bytes = sizeof(ps_header) + n * sizeof(float);
    int rc = buffer_fit(&out, bytes, err);
    if (!rc) rc = buffer_fit(&in, bytes, err);
    if (rc) return rc;
    *header_of(&out) = (ps_header){.step = *pulled_step};
    memcpy(payload_of(&out), grads, n * sizeof(float));
    rc = c->send(c, 0, TAG_PUSH, out.bytes, bytes, "pushing a gradient to the parameter server", err);
    size_t got = 0;
    if (!rc) rc = c->recv(c, 0, TAG_REPLY, in.bytes, bytes, NULL, &got, "waiting for the parameter server's reply", err);
    if (rc) return rc;
    if (got != bytes)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "rank %d: the parameter server answered %zu bytes, expected %zu",
                          c->rank, got, bytes);
    const ps_header *h = header_of(&in);
    *reply = (dmz_ps_reply){.global_step = h->step, .staleness = h->staleness,
                            .applied = (h->flags & FLAG_APPLIED) != 0,
                            .stopped = (h->flags & FLAG_STOP) != 0, .service_s = h->service_s};
    memcpy(params, payload_of(&in), n * sizeof(float));
    *pulled_step = h->step;
    return DMZ_OK;
}

/* ---------------------------------------------------------------- server */

typedef struct server_state {
    dmz_comm *c;
    size_t n;
    int64_t target;
    float *m, *v;
    int64_t **staleness;   /* per worker, up to target entries */
    int64_t *pushes;
    double *last_heard;    /* per worker: when its last push came */
    char *told_stop;       /* per worker: its last push was answered with stop */
    ps_buffer in, out;
} server_state;

static void server_free(server_state *s) {
    int workers = s->c->size - 1;
    for (int w = 0; s->staleness && w < workers; w++) free(s->staleness[w]);
    free(s->staleness), free(s->pushes), free(s->last_heard), free(s->told_stop), free(s->m), free(s->v);
    free(s->in.bytes), free(s->out.bytes);
}

static int server_init(server_state *s, dmz_comm *c, size_t n, int64_t target, char *err) {
    int workers = c->size - 1;
    *s = (server_state){.c = c, .n = n, .target = target};
    s->m = calloc(n, sizeof(float));
    s->v = calloc(n, sizeof(float));
    s->staleness = calloc((size_t)workers, sizeof(int64_t *));
    s->pushes = calloc((size_t)workers, sizeof(int64_t));
    s->last_heard = calloc((size_t)workers, sizeof(double));
    s->told_stop = calloc((size_t)workers, 1);
    int ok = s->m && s->v && s->staleness && s->pushes && s->last_heard && s->told_stop;
    for (int w = 0; ok && w < workers; w++) ok = (s->staleness[w] = malloc((size_t)target * sizeof(int64_t))) != NULL;
    size_t bytes = sizeof(ps_header) + n * sizeof(float);
    if (!ok || buffer_fit(&s->in, bytes, err) || buffer_fit(&s->out, bytes, err)) {
        server_free(s);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for the parameter server (%zu parameters)", n);
    }
    double now = dmz_now_s();
    for (int w = 0; w < workers; w++) s->last_heard[w] = now;
    return DMZ_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void worker_stats(const server_state *s, int w, dmz_ps_worker_stats *out) {
    int64_t k = s->pushes[w];
    *out = (dmz_ps_worker_stats){.pushes = k, .staleness_mean = NAN, .staleness_median = NAN};
    if (k == 0) return;
    int64_t *v = s->staleness[w];
    double sum = 0;
    for (int64_t i = 0; i < k; i++) sum += (double)v[i];
    qsort(v, (size_t)k, sizeof *v, cmp_i64);
    out->staleness_max = v[k - 1];
    out->staleness_mean = sum / (double)k;
    out->staleness_median = k % 2 ? (double)v[k / 2] : 0.5 * (double)(v[k / 2 - 1] + v[k / 2]);
}

/* A timeout waiting for pushes names the workers not heard from for longest. */
static int silent_workers_error(const server_state *s, int rc, char *err) {
    dmz_comm *c = s->c;
    if (c->stop && *c->stop) return rc;
    char names[512] = "";
    size_t len = 0;
    double now = dmz_now_s();
    for (int w = 0; w < c->size - 1; w++)
        if (!s->told_stop[w] && now - s->last_heard[w] >= c->timeout_s && len < sizeof names - 80)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%d (site %s)", len ? ", " : "", w + 1,
                                    dmz_comm_site(c, w + 1));
    if (!len) return rc;
    return dmz_errorf(err, DMZ_EXIT_FAIL,
                      "rank 0 (site %s, parameter server): no push from worker rank %s in %.0f s (--timeout): "
                      "stalled, stopped or dead",
                      dmz_comm_site(c, 0), names, c->timeout_s);
}

int dmz_ps_serve(dmz_comm *c, float *params, size_t n, int64_t target, dmz_adam_params hp,
                 dmz_ps_server_result *out, char *err) {
    memset(out, 0, sizeof *out);
    int workers = c->size - 1;
    if (workers < 1) return dmz_errorf(err, DMZ_EXIT_USAGE, "async-ps needs at least 2 ranks (a server and a worker)");
    server_state s;
    int rc = server_init(&s, c, n, target, err);
    if (rc) return rc;
    size_t bytes = sizeof(ps_header) + n * sizeof(float);
    int64_t global = 0;
    int stopped = 0;
    double t0 = dmz_now_s(), t_target = NAN, idle = 0, apply = 0, sent0 = c->stats.bytes_sent;
    while (rc == DMZ_OK && stopped < workers) {
        int from = -1;
        size_t got = 0;
        double t_wait = dmz_now_s();
        rc = c->recv(c, DMZ_ANY_RANK, TAG_PUSH, s.in.bytes, bytes, &from, &got, "waiting for a worker's push", err);
        double t_take = dmz_now_s();
        idle += t_take - t_wait;
        if (rc) {
            rc = silent_workers_error(&s, rc, err);
            break;
        }
        if (got != bytes || from < 1) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "rank 0: a push from rank %d has %zu bytes, expected %zu (%zu parameters)",
                            from, got, bytes, n);
            break;
        }
        int w = from - 1;
        s.last_heard[w] = t_take;
        if (c->timeout_s > 0 && (rc = silent_workers_error(&s, DMZ_OK, err))) break;
        ps_header *reply = header_of(&s.out);
        *reply = (ps_header){0};
        if (global < target) {
            int64_t st = global - header_of(&s.in)->step;
            hp.t = (int)(global + 1);
            dmz_backend_cpu.adam_update(params, payload_of(&s.in), s.m, s.v, n, hp);
            global++;
            s.staleness[w][s.pushes[w]++] = st;
            reply->staleness = st;
            reply->flags = FLAG_APPLIED;
            if (global == target) t_target = dmz_now_s();
        }
        if (global >= target) reply->flags |= FLAG_STOP, stopped++, s.told_stop[w] = 1;
        reply->step = global;
        memcpy(payload_of(&s.out), params, n * sizeof(float));
        apply += dmz_now_s() - t_take;
        reply->service_s = dmz_now_s() - t_take;
        rc = c->send(c, from, TAG_REPLY, s.out.bytes, bytes, "answering a worker's push", err);
    }
    out->global_step = global;
    out->wall_s = (isnan(t_target) ? dmz_now_s() : t_target) - t0;
    out->apply_s = apply, out->idle_s = idle;
    out->bytes_sent = c->stats.bytes_sent - sent0;
    out->workers = workers;
    out->per_worker = calloc((size_t)workers, sizeof *out->per_worker);
    for (int w = 0; out->per_worker && w < workers; w++) worker_stats(&s, w, &out->per_worker[w]);
    server_free(&s);
    return rc;
}
