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

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
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
