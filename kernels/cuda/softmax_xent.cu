/* Softmax + TensorFlow's clipped cross-entropy (twin of kernels/cpu/softmax_xent.c):
 *   forward   probs = softmax(logits) row-wise; losses[b] = -log(clip(probs[b][y_b], 1e-10, 1))
 *   backward  dlogits = probs - onehot(y), or 0 for a row whose probs[y] < 1e-10
 *             (clip_by_value passes no gradient outside its range)
 *
 * Forward: one warp per row (the paper's rows have 47 classes): lanes stride over
 * the row for the max, the sum of exponentials and the normalised outputs, with
 * warp-shuffle reductions in between; the loss comes from the probability as
 * stored, exactly as the reference takes it. Backward is elementwise.
 * A label outside [0, V) gives NaN (loss and that row's gradient) rather than a
 * read out of bounds. Not in place: dlogits must not alias probs. */
#include "common.cuh"

#include <math.h>

#define ROWS_PER_BLOCK 8 /* warps per block */

static __global__ void softmax_xent_forward_kernel(float *probs, float *losses, const float *logits,
                                                   const int32_t *labels, int B, int V) {
    const int lane = (int)(threadIdx.x % 32);
    const int row = (int)(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32);
    if (row >= B) return; /* the whole warp leaves together: the shuffles below stay full */
    const float *z = logits + (size_t)row * V;
    float *p = probs + (size_t)row * V;
    float maxz = -INFINITY;
    for (int i = lane; i < V; i += 32) maxz = fmaxf(maxz, z[i]);
    maxz = dmz_warp_max(maxz);
    float sum = 0.0f;
    for (int i = lane; i < V; i += 32) sum += expf(z[i] - maxz);
    sum = dmz_warp_sum(sum);
    const float inv = 1.0f / sum;
    for (int i = lane; i < V; i += 32) p[i] = expf(z[i] - maxz) * inv;
    __syncwarp(); /* lane 0 reads what another lane wrote */
    if (lane == 0) {
        int y = labels[row];
        float pl = y >= 0 && y < V ? p[y] : NAN;
        if (pl < DMZ_PROB_CLIP_MIN) pl = DMZ_PROB_CLIP_MIN;
        if (pl > 1.0f) pl = 1.0f;
        losses[row] = -logf(pl);
    }
}

static __global__ void softmax_xent_backward_kernel(float *dlogits, const float *probs, const int32_t *labels, int B,
                                                    int V) {
    const size_t n = (size_t)B * V, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += stride) {
        int b = (int)(idx / (size_t)V), i = (int)(idx - (size_t)b * V);
        int y = labels[b];
        float d;
        if (y < 0 || y >= V) d = NAN;
        else if (probs[(size_t)b * V + y] < DMZ_PROB_CLIP_MIN) d = 0.0f;
        else d = i == y ? probs[idx] - 1.0f : probs[idx];
        dlogits[idx] = d;
    }
}

/* The loss head of a training step in one kernel (softmax_xent_train in
 * kernels/backend.h): one block, a warp per row (rows w, w + warps, ...), each
 * row's softmax exactly as the forward kernel computes it; dlogits as the
 * backward kernel writes them; each warp adds its rows' losses in row order,
 * the block adds the warps' sums in a fixed tree (deterministic). Thread 0
 * then logs the sum and moves the step state on. */
#define TRAIN_MAX_THREADS 1024
static __global__ void softmax_xent_train_kernel(float *dlogits, float *loss_log, int log_len, const float *logits,
                                                 const int32_t *labels, dmz_step_state *st, int advance, int B,
                                                 int V) {
    const int lane = (int)(threadIdx.x % 32), warps = (int)(blockDim.x / 32);
    float warp_loss = 0.0f;
    for (int row = (int)threadIdx.x / 32; row < B; row += warps) {
        const float *z = logits + (size_t)row * V;
        float *d = dlogits + (size_t)row * V;
        const int y = labels[row];
        const bool valid = y >= 0 && y < V;
        float maxz = -INFINITY;
        for (int i = lane; i < V; i += 32) maxz = fmaxf(maxz, z[i]);
        maxz = dmz_warp_max(maxz);
        float sum = 0.0f;
        for (int i = lane; i < V; i += 32) sum += expf(z[i] - maxz);
        sum = dmz_warp_sum(sum);
        const float inv = 1.0f / sum;
        float py = 0.0f; /* probs[y], from the lane that holds it (the others add zeros) */
        for (int i = lane; i < V; i += 32)
            if (i == y) py = expf(z[i] - maxz) * inv;
        py = dmz_warp_sum(py);
        if (!valid) py = NAN;
        for (int i = lane; i < V; i += 32) {
            float p = expf(z[i] - maxz) * inv, g;
            if (!valid) g = NAN;
            else if (py < DMZ_PROB_CLIP_MIN) g = 0.0f;
            else g = i == y ? p - 1.0f : p;
            d[i] = g;
        }
        float pl = py;
        if (pl < DMZ_PROB_CLIP_MIN) pl = DMZ_PROB_CLIP_MIN;
        if (pl > 1.0f) pl = 1.0f;
        warp_loss += -logf(pl);
    }
    float total = dmz_block_sum(lane == 0 ? warp_loss : 0.0f);
    if (threadIdx.x == 0) {
        int t = st->t;
        loss_log[t % log_len] = total;
        st->t = t + 1;
        st->cursor += advance;
    }
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_softmax_xent_train(float *dlogits, float *loss_log, int log_len, const float *logits, const int32_t *labels,
                             dmz_step_state *st, int advance, int B, int V) {
    unsigned threads = B > 0 ? 32u * (unsigned)B : 32u;
    if (threads > TRAIN_MAX_THREADS) threads = TRAIN_MAX_THREADS;
    DMZ_LAUNCH(softmax_xent_train_kernel, 1, threads, 0, dlogits, loss_log, log_len, logits, labels, st, advance,
               B > 0 && V > 0 ? B : 0, V);
}

void cuda_softmax_xent_forward(float *probs, float *losses, const float *logits, const int32_t *labels, int B, int V) {
    if (B <= 0 || V <= 0) return;
    DMZ_LAUNCH(softmax_xent_forward_kernel, dmz_ceil_div((size_t)B, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, probs,
               losses, logits, labels, B, V);
}

void cuda_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int B, int V) {
    if (B <= 0 || V <= 0) return;
    const unsigned threads = 256;
    size_t n = (size_t)B * V;
    DMZ_LAUNCH(softmax_xent_backward_kernel, dmz_elementwise_blocks(n, threads), threads, 0, dlogits, probs, labels, B,
               V);
}
#endif
