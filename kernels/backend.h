/* kernels/backend.h — the backend interface: one table of function pointers per
 * backend (cpu now; cuda, cublas, cudnn later), one function per op.
 *
 * Memory. A backend owns its buffers: `alloc` returns memory on the backend's
 * device (host memory for cpu, device memory for cuda). The caller never reads
 * or writes such a pointer itself; it moves data with `upload`/`download` and
 * hands pointers to the ops. Ops are asynchronous on devices that queue work;
 * `sync` waits for all of them (the phase timers call it).
 *
 * Shapes. Tensors are plain row-major float buffers; each op takes its
 * dimensions as arguments (B batch, C input features, OC output features, V
 * classes). Dense weights are stored [C][OC] (TensorFlow's layout): out = inp @ w + b.
 *
 * Every op of every backend is tested against the cpu backend, and the cpu
 * backend against finite differences (tests/test_ops.c). */
#ifndef DMZ_BACKEND_H
#define DMZ_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* TensorFlow's cross-entropy clip: log(clip(p, 1e-10, 1)). */
#define DMZ_PROB_CLIP_MIN 1e-10f

typedef struct dmz_adam_params {
    float lr, beta1, beta2, eps;
    int t; /* 1-based step number, for the bias correction */
} dmz_adam_params;

typedef struct dmz_backend {
    const char *name;
    /* Human-readable description of what this backend runs on. */
    void (*describe)(char *out, size_t len);

    /* memory */
    void *(*alloc)(size_t bytes);     /* zero-filled; NULL on failure */
    void (*free)(void *ptr);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);   /* device to device */
    void (*sync)(void);

    /* ops */
    /* out[i] = in[i] * scale: 8-bit pixels to floats (scale 1/255). */
    void (*u8_to_float)(float *out, const uint8_t *in, size_t n, float scale);
    /* out[B][OC] = inp[B][C] @ w[C][OC] + bias[OC] */
    void (*dense_forward)(float *out, const float *inp, const float *w, const float *bias,
                          int B, int C, int OC);
    /* dw = inp^T @ dout, dbias = column sums of dout (both overwritten);
     * dinp = dout @ w^T unless dinp is NULL (the first layer needs none). */
    void (*dense_backward)(float *dinp, float *dw, float *dbias, const float *dout,
                           const float *inp, const float *w, int B, int C, int OC);
    void (*relu_forward)(float *out, const float *inp, size_t n);
    /* dinp = dout where out > 0, else 0 */
    void (*relu_backward)(float *dinp, const float *dout, const float *out, size_t n);
    /* probs = softmax(logits) row-wise; losses[b] = -log(clip(probs[b][labels[b]])). */
    void (*softmax_xent_forward)(float *probs, float *losses, const float *logits,
                                 const int32_t *labels, int B, int V);
    /* Gradient of sum_b losses[b] w.r.t. logits, TensorFlow's clip included:
     * probs - onehot where probs[label] >= 1e-10, else 0 for that row. */
    void (*softmax_xent_backward)(float *dlogits, const float *probs, const int32_t *labels,
                                  int B, int V);
    /* out[0] = sum of in[0..n), in a fixed order. */
    void (*reduce_sum)(float *out, const float *in, size_t n);
    /* out[0] = number of rows whose argmax (first maximum) equals the label. */
    void (*count_correct)(float *out, const float *probs, const int32_t *labels, int B, int V);
    /* TensorFlow's Adam (epsilon-hat form):
     *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
     *   p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps) */
    void (*adam_update)(float *params, const float *grads, float *m, float *v, size_t n,
                        dmz_adam_params hp);
} dmz_backend;

/* The backend called `name`, or NULL with the reason in err (unknown, or not built). */
const dmz_backend *dmz_backend_get(const char *name, char *err);
/* Names of all backends this build knows, built or not, NULL-terminated. */
extern const char *const dmz_backend_names[];

/* The reference backend. */
extern const dmz_backend dmz_backend_cpu;
/* cpu backend thread count (OpenMP); 0 = OpenMP's default. Results do not
 * depend on it: every op partitions its output, never a sum. */
void dmz_cpu_set_threads(int n);
int dmz_cpu_threads(void);

#endif
