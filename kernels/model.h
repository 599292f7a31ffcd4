/* kernels/model.h — models built from backend ops, as a small layer graph:
 *  "mlp" (the paper's): 784 -> dense 100 + ReLU -> dense C -> softmax,
 *        summed clipped cross-entropy; TF mnist_replica init, zero biases.
 *  "cnn" (TensorFlow's "Deep MNIST"): 1x28x28 -> conv 5x5x32 'same' + ReLU ->
 *        maxpool 2x2 -> conv 5x5x64 'same' + ReLU -> maxpool 2x2 -> flatten
 *        (3136, NCHW order) -> dense 1024 + ReLU -> dense C -> softmax, the same
 *        summed clipped cross-entropy; truncated-normal weights stddev 0.1,
 *        biases 0.1, as the tutorial.
 *
 * Parameters, gradients and the two Adam moments each live in one flat backend
 * buffer of dmz_model_num_params() floats, laid out layer by layer, weights
 * then bias (mlp: w1[784][100], b1[100], w2[100][C], b2[C]; cnn: conv1
 * w[32][1][5][5], b[32], conv2 w[64][32][5][5], b[64], fc1 w[3136][1024],
 * b[1024], fc2 w[1024][C], b[C]), so that a cross-site exchange of gradients or
 * parameters is one call on one buffer.
 *
 * One training step, as the runner times it:
 *   dmz_model_set_batch   (data: upload 8-bit pixels and labels, convert)
 *   dmz_model_forward     (forward + loss)
 *   dmz_model_backward    (all gradients into the flat gradient buffer)
 *   ...exchange gradients (the communicator; nothing in single mode)...
 *   dmz_model_update      (Adam on the flat buffers) */
#ifndef DMZ_MODEL_H
#define DMZ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct dmz_model dmz_model;

typedef struct dmz_model_config {
    const char *kind;   /* "mlp" or "cnn" */
    int inputs;         /* 784: pixels per image (cnn: height * width, one channel) */
    int hidden;         /* units of the hidden dense layer: 100 (mlp), 1024 (cnn) */
    int classes;        /* 47 for EMNIST Balanced */
    int max_batch;      /* largest batch set_batch will see */
    /* cnn only (0 = the defaults below) */
    int height, width;  /* 28 x 28 */
    int conv1, conv2;   /* filters: 32, 64 */
    int kernel;         /* 5 (odd: 'same' padding) */
} dmz_model_config;

/* The learning rate a model trains with unless told otherwise: 0.01 for the
 * mlp (the paper's), 1e-3 for the cnn (the tutorial's 1e-4 reached 0.883 test accuracy on
 * Fashion-MNIST in 2000 steps of batch 100, 1e-3 reached 0.901; README). */
float dmz_model_default_lr(const char *kind);

void dmz_model_config_default(dmz_model_config *cfg, const char *kind, int classes, int max_batch);

/* Creates the model on a backend and initialises it from seed. */
int dmz_model_create(const dmz_backend *be, const dmz_model_config *cfg, uint64_t seed,
                     dmz_model **out, char *err);
void dmz_model_destroy(dmz_model *m);
/* Re-initialises parameters (as create did, same seed => same values) and
 * zeroes the optimizer state and step counter. */
void dmz_model_reset(dmz_model *m, uint64_t seed);

size_t dmz_model_num_params(const dmz_model *m);
const dmz_backend *dmz_model_backend(const dmz_model *m);
/* The flat backend buffers (backend memory: pass to the backend or a communicator). */
float *dmz_model_params(dmz_model *m);
float *dmz_model_grads(dmz_model *m);

void dmz_model_set_batch(dmz_model *m, const uint8_t *images, const uint8_t *labels, int n);
void dmz_model_forward(dmz_model *m);
void dmz_model_backward(dmz_model *m);
void dmz_model_update(dmz_model *m, float lr, float beta1, float beta2, float eps);

/* Results of the last forward (these synchronise with the backend). */
float dmz_model_loss(dmz_model *m);     /* summed over the batch */
int dmz_model_correct(dmz_model *m);    /* rows predicted right */

/* Whether forward counts the rows predicted right (default on; dmz_model_correct
 * needs it). Training turns it off: accuracy is counted where it is evaluated. */
void dmz_model_set_count_correct(dmz_model *m, int on);

/* ---- A training step that stays on the device (backends with the optional
 * step ops of kernels/backend.h; dmz_model_resident says whether). The
 * training split is uploaded once; each step's batch is gathered on the
 * device from the epoch's order; the loss head (softmax + loss + gradient)
 * is one op that writes the step's summed loss into a device log of
 * DMZ_MODEL_LOSS_LOG entries, read back only when asked; Adam's step number
 * lives on the device, so a step captured in a graph replays right:
 *   load_data once; set_order at every epoch (before that epoch's first step);
 *   per step: gather, forward_train, backward, [exchange], update
 *   (or capture_step once, then replay_step per step). */
#define DMZ_MODEL_LOSS_LOG 1024
int dmz_model_resident(const dmz_model *m);
int dmz_model_load_data(dmz_model *m, const uint8_t *images, const uint8_t *labels, size_t count, char *err);
size_t dmz_model_data_count(const dmz_model *m); /* samples loaded; 0: none */
/* The epoch's order (count indices into the loaded data); the next batch starts at its position 0. */
void dmz_model_set_order(dmz_model *m, const uint32_t *order, size_t count);
/* The batch: n samples from order[cursor + offset ...]; the cursor then moves `advance` (at the loss head). */
void dmz_model_gather(dmz_model *m, int offset, int n, int advance);
/* forward for training: no probabilities kept, no accuracy; the loss head's
 * gradient is ready for dmz_model_backward, the loss in the log. */
void dmz_model_forward_train(dmz_model *m);
/* The summed losses of steps first .. first+n-1 (0-based since the last reset;
 * at most DMZ_MODEL_LOSS_LOG back): one read back (two when the log wraps).
 * Returns -1 when they are not in the log. */
int dmz_model_step_losses(dmz_model *m, int first, int n, float *out);
/* Captures one whole step (gather with these arguments, forward_train,
 * backward, update) in a graph, running nothing; replay_step runs it. */
int dmz_model_capture_step(dmz_model *m, int offset, int n, int advance, float lr, float beta1, float beta2, float eps,
                           char *err);
void dmz_model_replay_step(dmz_model *m);
/* Waits for the model's queued work. */
void dmz_model_sync(dmz_model *m);

/* Host copies of the flat buffers, for tests and checkpoints. */
void dmz_model_get_params(dmz_model *m, float *host);
void dmz_model_set_params(dmz_model *m, const float *host);
void dmz_model_get_grads(dmz_model *m, float *host);

typedef struct dmz_eval {
    double loss;      /* mean cross-entropy per sample */
    double accuracy;  /* fraction correct */
    size_t samples;
} dmz_eval;

/* Evaluates on n samples in batches of the model's max_batch. */
void dmz_model_evaluate(dmz_model *m, const uint8_t *images, const uint8_t *labels, size_t n,
                        dmz_eval *out);

#endif
