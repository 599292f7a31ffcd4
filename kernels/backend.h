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
 * Images are NCHW: [B][C][H][W]; convolution filters [OC][C][K][K] (PyTorch's
 * layout, not TensorFlow's HWIO); a flattened NCHW sample is its C*H*W floats
 * in that order.
 *
 * Scratch. An op that needs scratch memory takes it as `work`, a backend
 * buffer the caller (the model) allocates once, of the size the backend's
 * matching `*_workspace` function returns for that shape (it may be 0). Ops
 * never allocate per call.
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

/* What a device-resident training step keeps on the device (backend memory,
 * see gather_batch, softmax_xent_train, adam_update_step): */
typedef struct dmz_step_state {
    int32_t t;      /* training steps taken since the model was reset: Adam's t after this step's loss head */
    int32_t cursor; /* the next batch's position in the resident data order */
} dmz_step_state;

/* A convolution's shape: stride 1, dilation 1, `pad` zeros on every side.
 *   inp  [B][C][H][W]     w [OC][C][K][K]     bias [OC]
 *   out  [B][OC][OH][OW]  OH = H + 2*pad - K + 1, OW = W + 2*pad - K + 1
 * pad = (K-1)/2 with odd K is TensorFlow's padding='SAME'. */
typedef struct dmz_conv_shape {
    int B, C, H, W, OC, K, pad;
} dmz_conv_shape;

static inline int dmz_conv_out_h(dmz_conv_shape s) { return s.H + 2 * s.pad - s.K + 1; }
static inline int dmz_conv_out_w(dmz_conv_shape s) { return s.W + 2 * s.pad - s.K + 1; }
/* 2x2 max pooling, stride 2, TensorFlow's padding='SAME': OH = ceil(H/2), an odd
 * last row or column pools the elements it has. */
static inline int dmz_pool_out(int n) { return (n + 1) / 2; }

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

    /* convolution and pooling (the cnn); a backend without them leaves them
     * NULL and the model refuses the cnn on it, naming the missing op. */
    /* Bytes of `work` the three conv2d ops need for shape s (the model keeps the
     * largest over its layers). */
    size_t (*conv2d_workspace)(dmz_conv_shape s);
    /* out = conv(inp, w) + bias[oc] (cross-correlation, as every framework) */
    void (*conv2d_forward)(float *out, const float *inp, const float *w, const float *bias,
                           dmz_conv_shape s, float *work);
    /* out = max(conv(inp, w) + bias[oc], 0): conv2d_forward with the ReLU that
     * follows it fused in (one pass, one launch), the same bits as conv2d_forward
     * then relu_forward. Optional: NULL and the model makes the two calls. */
    void (*conv2d_forward_relu)(float *out, const float *inp, const float *w, const float *bias,
                                dmz_conv_shape s, float *work);
    /* dinp [B][C][H][W] = gradient of sum(out * dout) w.r.t. inp (overwritten) */
    void (*conv2d_backward_data)(float *dinp, const float *dout, const float *w, dmz_conv_shape s,
                                 float *work);
    /* dw [OC][C][K][K] and dbias [OC] (unless NULL) = gradients of sum(out * dout)
     * w.r.t. w and bias, summed over the batch (overwritten) */
    void (*conv2d_backward_filter)(float *dw, float *dbias, const float *dout, const float *inp,
                                   dmz_conv_shape s, float *work);
    /* out [B][C][OH][OW] = max over each 2x2 window of inp [B][C][H][W], OH = dmz_pool_out(H) */
    void (*maxpool2x2_forward)(float *out, const float *inp, int B, int C, int H, int W);
    /* dinp [B][C][H][W] (overwritten): each window's dout goes to the element of inp
     * that was its maximum (the first in row-major order on ties), 0 elsewhere */
    void (*maxpool2x2_backward)(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W);

    /* ---- optional: a training step that stays on the device. A backend whose
     * ops queue work on a device fills these; the cpu backend leaves them NULL
     * and the model keeps the plain path above (its results unchanged, bit for
     * bit). Each is used only when present (kernels/model.c). ---- */
    /* An execution context: a stream, the scratch its ops use (reductions,
     * split-K partials), pinned staging. A model makes one and calls
     * context_use before its ops, so that two models on two threads never
     * share a stream or scratch; ops called outside a model use the backend's
     * default context. create: NULL with the reason in err. */
    void *(*context_create)(char *err);
    void (*context_destroy)(void *ctx);
    void (*context_use)(void *ctx);
    /* out = relu(inp @ w + bias): dense_forward with the ReLU in its epilogue
     * (the same bits as dense_forward then relu_forward). */
    void (*dense_forward_relu)(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC);
    /* A batch from a data set resident on the device: for i < n, with
     * k = order[st->cursor + offset + i], input[i][p] = images[k][p] * scale
     * (p < pixels) and labels[i] = labels_all[k]. */
    void (*gather_batch)(float *input, int32_t *labels, const uint8_t *images, const uint8_t *labels_all,
                         const uint32_t *order, const dmz_step_state *st, int offset, int n, int pixels, float scale);
    /* A training step's loss head in one op: dlogits as softmax_xent_backward
     * gives them (no probs kept), loss_log[st->t % log_len] = the sum of the
     * batch's losses (softmax_xent_forward + reduce_sum), then st->t += 1 and
     * st->cursor += advance. */
    void (*softmax_xent_train)(float *dlogits, float *loss_log, int log_len, const float *logits,
                               const int32_t *labels, dmz_step_state *st, int advance, int B, int V);
    /* adam_update with the step number read on the device from st->t (hp.t is
     * ignored): a captured step replays with the right bias correction. */
    void (*adam_update_step)(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp,
                             const dmz_step_state *st);
    /* Timing events on the context's stream. elapsed: seconds from a to b once
     * both were reached (after a sync or a download); NAN otherwise. */
    void *(*event_create)(void);
    void (*event_destroy)(void *ev);
    void (*event_record)(void *ev);
    double (*event_elapsed)(void *a, void *b);
    /* Graphs: graph_begin starts capturing the context's stream (ops queue
     * into the graph instead of running); graph_end returns the graph ready
     * to replay, or NULL with the reason; graph_launch replays it. */
    int (*graph_begin)(char *err);
    void *(*graph_end)(char *err);
    void (*graph_launch)(void *graph);
    void (*graph_destroy)(void *graph);
    /* Whether maxpool2x2 can pool an H x W input (NULL: every size); else 0 and
     * why (the cudnn backend cannot pool odd sizes as TensorFlow's 'SAME' does). */
    int (*maxpool2x2_supports)(int H, int W, char *why, size_t len);
    /* Optional: maxpool2x2_backward over the output of a ReLU, with that ReLU's
     * backward folded in: a window's gradient reaches its maximum only where
     * that maximum is > 0 (the same bits as maxpool2x2_backward then
     * relu_backward with out = inp). NULL: the model runs the two ops. */
    void (*maxpool2x2_backward_relu)(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W);
    /* Optional, both or neither: a conv, its ReLU and a 2x2 pool in one op, for
     * an even output size (OH, OW): out [B][OC][OH/2][OW/2] as
     * conv2d_forward_relu then maxpool2x2_forward give it, and code (one byte
     * per output, the backend's own format) for maxpool2x2_backward_codes,
     * which then writes the conv's dout [B][C][H][W] as
     * maxpool2x2_backward_relu would (the same bits): the full-size
     * activation is never kept. NULL: the model runs the ops apart. */
    void (*conv2d_relu_pool_forward)(float *out, uint8_t *code, const float *inp, const float *w, const float *bias,
                                     dmz_conv_shape s, float *work);
    void (*maxpool2x2_backward_codes)(float *dinp, const float *dout, const uint8_t *code, int B, int C, int H, int W);
    /* Optional, with the pair above: conv2d_backward_filter from that pool's
     * dout and codes (the same bits as maxpool2x2_backward_codes then
     * conv2d_backward_filter), for a conv whose input needs no gradient (the
     * first layer): its full-size dout is never written either. */
    void (*conv2d_backward_filter_pooled)(float *dw, float *dbias, const float *dpool, const uint8_t *code,
                                          const float *inp, dmz_conv_shape s, float *work);
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
/* cpu convolutions: by default Winograd F(4x4, 5x5) where it fits (5x5
 * filters, 8 or more channels each side; larger rounding error than the
 * direct sum) and the implicit GEMM elsewhere; "direct" (or the environment's
 * DMZBENCH_CPU_CONV=direct) takes the implicit GEMM everywhere: the tighter
 * reference that the other backends' tests compare with. The backend's
 * description (meta.json) says which. */
void dmz_cpu_set_direct_conv(int on);
int dmz_cpu_direct_conv(void);

#endif
