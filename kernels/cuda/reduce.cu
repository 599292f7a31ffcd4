/* Reductions (twins of kernels/cpu/reduce.c):
 *   reduce_sum     out[0] = sum of in[0..n)
 *   count_correct  out[0] = rows whose first maximum is at the label
 *
 * Deterministic two-pass scheme, no atomics: each block reduces a grid-stride
 * share of the input (warp shuffles, then one value per warp through shared
 * memory) into one partial sum; when the grid has more than one block, a second
 * one-block kernel adds the partials in a fixed tree. The same inputs give the
 * same bits on every run; the order differs from the reference's sequential
 * double sum, so results agree to float rounding. The partials live in a
 * file-scope __device__ array: ops run in order on one stream, so two
 * reductions never use it at once. */
#include "common.cuh"

#define REDUCE_THREADS 256
#define REDUCE_MAX_BLOCKS 256 /* == REDUCE_THREADS: the second pass reads one partial per thread */
#define ITEMS_PER_THREAD 4

/* The block's total goes to out[0] when it is the only block, else to its partial slot. */
static __device__ __forceinline__ void store_block_total(float *out, float *partials, float total) {
    if (threadIdx.x != 0) return;
    if (gridDim.x == 1) out[0] = total;
    else partials[blockIdx.x] = total;
}

static __global__ void sum_kernel(float *out, float *partials, const float *in, size_t n) {
    float s = 0.0f;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) s += in[i];
    store_block_total(out, partials, dmz_block_sum(s));
}

static __global__ void sum_partials_kernel(float *out, const float *partials, int nblocks) {
    float s = (int)threadIdx.x < nblocks ? partials[threadIdx.x] : 0.0f;
    s = dmz_block_sum(s);
    if (threadIdx.x == 0) out[0] = s;
}

/* One warp per row (rows grid-strided over all warps). Each lane keeps the first
 * maximum of its strided elements, ignoring NaN; the warp combines them keeping
 * the larger value, and of equal values the lower index. The reference's loop
 * (best = 0; best = i where p[i] > p[best]) gives exactly that, except that a NaN
 * in column 0 keeps best at 0: handled by lane 0. */
static __global__ void count_correct_kernel(float *out, float *partials, const float *probs, const int32_t *labels, int B, int V) {
    const int lane = (int)(threadIdx.x % 32);
    const int warps = (int)(blockDim.x / 32);
    float correct = 0.0f;
    for (int row = (int)blockIdx.x * warps + (int)threadIdx.x / 32; row < B; row += (int)gridDim.x * warps) {
        const float *p = probs + (size_t)row * V;
        float best_v = 0.0f;
        int best_i = -1;
        for (int i = lane; i < V; i += 32) {
            float v = p[i];
            if (v == v && (best_i < 0 || v > best_v)) best_v = v, best_i = i;
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            float ov = __shfl_xor_sync(DMZ_FULL_MASK, best_v, offset);
            int oi = __shfl_xor_sync(DMZ_FULL_MASK, best_i, offset);
            if (oi >= 0 && (best_i < 0 || ov > best_v || (ov == best_v && oi < best_i))) best_v = ov, best_i = oi;
        }
        if (lane == 0) {
            int argmax = best_i < 0 || p[0] != p[0] ? 0 : best_i; /* V == 0: best_i < 0, p not read */
            correct += argmax == labels[row] ? 1.0f : 0.0f;
        }
    }
    store_block_total(out, partials, dmz_block_sum(correct));
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
static void finish(float *out, const float *partials, unsigned blocks) {
    if (blocks > 1) DMZ_LAUNCH(sum_partials_kernel, 1, REDUCE_THREADS, 0, out, partials, (int)blocks);
}

void cuda_reduce_sum(float *out, const float *in, size_t n) {
    unsigned blocks = dmz_ceil_div(n, (size_t)REDUCE_THREADS * ITEMS_PER_THREAD);
    if (blocks == 0) blocks = 1; /* n == 0: one block writes 0 */
    if (blocks > REDUCE_MAX_BLOCKS) blocks = REDUCE_MAX_BLOCKS;
    float *partials = DMZ_CUDA_NS::scratch(REDUCE_MAX_BLOCKS);
    DMZ_LAUNCH(sum_kernel, blocks, REDUCE_THREADS, 0, out, partials, in, n);
    finish(out, partials, blocks);
}

void cuda_count_correct(float *out, const float *probs, const int32_t *labels, int B, int V) {
    const unsigned warps = REDUCE_THREADS / 32;
    unsigned blocks = B > 0 ? dmz_ceil_div((size_t)B, warps) : 1;
    if (blocks > REDUCE_MAX_BLOCKS) blocks = REDUCE_MAX_BLOCKS;
    float *partials = DMZ_CUDA_NS::scratch(REDUCE_MAX_BLOCKS);
    DMZ_LAUNCH(count_correct_kernel, blocks, REDUCE_THREADS, 0, out, partials, probs, labels, B, V);
    finish(out, partials, blocks);
}
#endif
