/* bench/train_parts.h — pieces both training loops use: the batch source, the
 * --rank-speed throttle, and host staging of the flat buffers for exchanges.
 * Internal to bench/. */
#ifndef DMZ_TRAIN_PARTS_H
#define DMZ_TRAIN_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/dmz.h"
#include "datasets/datasets.h"
#include "kernels/model.h"

/* Epoch-wise shuffled order, as TensorFlow's mnist next_batch: a fresh
 * permutation each epoch; a tail shorter than a (global) batch is skipped.
 * With global > 0 every rank walks the same order, `global` samples a step,
 * and takes `count` of them from `offset`. */
typedef struct dmz_batch_source {
    const dmz_split *split;
    uint32_t *order;
    size_t pos;
    int global, offset, count;
    dmz_rng rng;
    uint8_t *images, *labels; /* the gathered batch: count samples */
} dmz_batch_source;

int dmz_batch_source_init(dmz_batch_source *b, const dmz_split *split, int global, int offset, int count,
                          uint64_t seed, char *err);
void dmz_batch_source_next(dmz_batch_source *b);
void dmz_batch_source_free(dmz_batch_source *b);
/* The same walk without gathering on the host (the batch is gathered on the
 * device from order[pos_before + offset ...]): 1 when it reshuffled first
 * (the device needs the new order), else 0. */
int dmz_batch_source_advance(dmz_batch_source *b);

/* Sleeps (1/speed - 1) x compute_s, so that this rank computes like a device
 * `speed` times as fast; returns the seconds actually slept. */
double dmz_throttle(double compute_s, double speed);

/* The compute part of a step, as both loops time it: data (gather, upload),
 * forward (with the loss read back), backward, then the --rank-speed sleep.
 * Fills data_s, fwd_s, bwd_s, throttle_s and loss of s. */
typedef struct dmz_step_record dmz_step_record;
void dmz_compute_step(dmz_model *m, dmz_batch_source *src, int batch, double speed, dmz_step_record *s);

/* The model's flat buffers as host memory: the buffer itself on the cpu
 * backend, a staging copy otherwise. */
typedef struct dmz_host_view {
    float *host;       /* n floats */
    float *staging;    /* owned when the backend is not host memory */
    size_t n;
} dmz_host_view;

int dmz_host_view_init(dmz_host_view *v, const dmz_backend *be, float *backend_buf, size_t n, char *err);
void dmz_host_view_pull(dmz_host_view *v, const dmz_backend *be, const float *backend_buf); /* backend -> host */
void dmz_host_view_push(dmz_host_view *v, const dmz_backend *be, float *backend_buf);       /* host -> backend */
void dmz_host_view_free(dmz_host_view *v);

#endif
