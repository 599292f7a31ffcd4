#include "train_parts.h"

#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int dmz_batch_source_init(dmz_batch_source *b, const dmz_split *split, int global, int offset, int count,
                          uint64_t seed, char *err) {
    memset(b, 0, sizeof *b);
    if (global <= 0) global = count, offset = 0;
    if (split->count < (size_t)global)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "a batch of %d is larger than the training split (%zu samples)",
                          global, split->count);
    b->split = split;
    b->global = global, b->offset = offset, b->count = count;
    b->order = malloc(split->count * sizeof(uint32_t));
    b->images = malloc((size_t)(count ? count : 1) * DMZ_IMG_PIXELS);
    b->labels = malloc((size_t)(count ? count : 1));
    if (!b->order || !b->images || !b->labels) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < split->count; i++) b->order[i] = (uint32_t)i;
    dmz_rng_seed(&b->rng, seed ^ 0x5eed0da7aULL);
    dmz_rng_shuffle(&b->rng, b->order, split->count);
    return DMZ_OK;
}

void dmz_batch_source_free(dmz_batch_source *b) {
    free(b->order), free(b->images), free(b->labels);
    b->order = NULL, b->images = b->labels = NULL;
}

void dmz_batch_source_next(dmz_batch_source *b) {
    if (b->pos + (size_t)b->global > b->split->count) {
        dmz_rng_shuffle(&b->rng, b->order, b->split->count);
        b->pos = 0;
    }
    for (int i = 0; i < b->count; i++) {
        uint32_t k = b->order[b->pos + (size_t)b->offset + (size_t)i];
        memcpy(b->images + (size_t)i * DMZ_IMG_PIXELS, b->split->images + (size_t)k * DMZ_IMG_PIXELS,
               DMZ_IMG_PIXELS);
        b->labels[i] = b->split->labels[k];
    }
    b->pos += (size_t)b->global;
}

int dmz_batch_source_advance(dmz_batch_source *b) {
    int reshuffled = 0;
    if (b->pos + (size_t)b->global > b->split->count) {
        dmz_rng_shuffle(&b->rng, b->order, b->split->count);
        b->pos = 0;
        reshuffled = 1;
    }
    b->pos += (size_t)b->global;
    return reshuffled;
}

double dmz_throttle(double compute_s, double speed) {
    if (!(speed < 1.0) || compute_s <= 0) return 0;
    double want = compute_s * (1.0 / speed - 1.0);
    double t0 = dmz_now_s();
    struct timespec ts = {(time_t)want, (long)((want - floor(want)) * 1e9)};
    nanosleep(&ts, NULL);
    return dmz_now_s() - t0;
}

static int host_backend(const dmz_backend *be) { return strcmp(be->name, "cpu") == 0; }

int dmz_host_view_init(dmz_host_view *v, const dmz_backend *be, float *backend_buf, size_t n, char *err) {
    *v = (dmz_host_view){.n = n};
    if (host_backend(be)) {
        v->host = backend_buf;
        return DMZ_OK;
    }
    v->host = v->staging = malloc(n * sizeof(float));
    return v->staging ? DMZ_OK : dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for %zu staged floats", n);
}

void dmz_host_view_pull(dmz_host_view *v, const dmz_backend *be, const float *backend_buf) {
    if (v->staging) be->download(v->staging, backend_buf, v->n * sizeof(float));
}

void dmz_host_view_push(dmz_host_view *v, const dmz_backend *be, float *backend_buf) {
    if (v->staging) be->upload(backend_buf, v->staging, v->n * sizeof(float));
}

void dmz_host_view_free(dmz_host_view *v) {
    free(v->staging);
    v->staging = v->host = NULL;
}

void dmz_compute_step(dmz_model *m, dmz_batch_source *src, int batch, double speed, dmz_step_record *s) {
    const dmz_backend *be = dmz_model_backend(m);
    double t0 = dmz_now_s();
    dmz_phase_begin(DMZ_PHASE_DATA);
    dmz_batch_source_next(src);
    dmz_model_set_batch(m, src->images, src->labels, batch);
    be->sync();
    dmz_phase_end(DMZ_PHASE_DATA);
    double t1 = dmz_now_s();
    dmz_phase_begin(DMZ_PHASE_FWD);
    dmz_model_forward(m);
    s->loss = dmz_model_loss(m); /* synchronises */
    dmz_phase_end(DMZ_PHASE_FWD);
    double t2 = dmz_now_s();
    dmz_phase_begin(DMZ_PHASE_BWD);
    dmz_model_backward(m);
    be->sync();
    dmz_phase_end(DMZ_PHASE_BWD);
    double t3 = dmz_now_s();
    s->data_s = t1 - t0, s->fwd_s = t2 - t1, s->bwd_s = t3 - t2;
    s->throttle_s = dmz_throttle(t3 - t1, speed);
}
