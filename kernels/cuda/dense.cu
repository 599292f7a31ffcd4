/* Fully connected layer (twin of kernels/cpu/dense.c), weights stored [C][OC]:
 *   forward   out[B][OC]  = inp[B][C] @ w[C][OC] + bias      (sgemm_nn)
 *   backward  dw[C][OC]   = inp^T @ dout                     (sgemm_tn)
 *             dinp[B][C]  = dout[B][OC] @ w^T                (sgemm_nt)
 *             dbias[OC]   = column sums of dout              (column_sum)
 *
 * One tiled shared-memory SGEMM serves all three products: C[M][N] = op(A) @ op(B),
 *   op(A)[m][k] = TA ? A[k*M + m] : A[m*K + k],   op(B)[k][n] = TB ? B[n*K + k] : B[k*N + n].
 * A block computes a 32x32 tile of C with 8x8 threads, each thread a 4x4 block of
 * outputs held in registers (rows ty+8i, columns tx+8j). Per step of 32 along k,
 * the block stages a 32x32 tile of op(A) and of op(B) in shared memory, k-major
 * and padded by one column: global loads run along whichever dimension is
 * contiguous in memory (each warp reads 128 consecutive bytes), shared stores
 * and the inner loop's reads are free of bank conflicts. Ragged edges (sizes
 * not multiples of 32) load zeros and skip stores.
 *
 * 32x32 tiles keep the paper's small layers (B=100) spread over several SMs:
 * dw 25x4 blocks, dinp 4x25. The forward 100x784x100 would be only 4x4 blocks:
 * a product with few tiles and a long k is split along k (split-K, the third
 * grid dimension): each block sums its share of k into a partial tile in the
 * context's scratch, and the last block of a tile to finish (a per-tile
 * counter, an integer atomic) adds the partials in split order 0, 1, ... and
 * writes the tile. The order of every sum is fixed by the grid, not by which
 * block finishes first: the same bits on every run; no float atomics.
 *
 * Epilogue: + bias[n] and, for dense_forward_relu, the ReLU (out > 0 ? out : 0,
 * the relu kernel's own comparison: the same bits as the two ops apart).
 * Sums run in a different order than the cpu reference: results agree to rounding. */
#include "common.cuh"

#define TILE 32       /* output tile edge, and the k step */
#define TILE_THREADS 8 /* threads per tile edge: 8x8 = 64 per block */
#define PER_THREAD (TILE / TILE_THREADS) /* 4x4 outputs per thread */

/* The epilogue of one output: bias, then the ReLU when asked. */
static __device__ __forceinline__ float epilogue(float acc, const float *bias, int n, int relu) {
    float v = acc + (bias ? bias[n] : 0.0f);
    return relu ? (v > 0.0f ? v : 0.0f) : v;
}

/* C = op(A) @ op(B) (+ bias, ReLU). Block (x, y, z): output tile (y, x), k range
 * [z * k_split, (z+1) * k_split). With gridDim.z > 1, partials [z][M][N] and
 * counters [tiles] (zero on entry, left zero) come from the context's scratch. */
template <bool TA, bool TB>
static __device__ __forceinline__ void sgemm_tile(float *C, const float *__restrict__ A, const float *__restrict__ B,
                                                  const float *__restrict__ bias, int M, int N, int K, int relu,
                                                  int k_split, float *partials, unsigned *counters) {
    __shared__ int is_last;
    __shared__ float As[TILE][TILE + 1]; /* As[k][m] */
    __shared__ float Bs[TILE][TILE + 1]; /* Bs[k][n] */
    const int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    const int t = ty * TILE_THREADS + tx;
    const int m0 = (int)blockIdx.y * TILE, n0 = (int)blockIdx.x * TILE;
    const int nthreads = TILE_THREADS * TILE_THREADS;
    float acc[PER_THREAD][PER_THREAD];
    DMZ_UNROLL
    for (int i = 0; i < PER_THREAD; i++) {
        DMZ_UNROLL
        for (int j = 0; j < PER_THREAD; j++) acc[i][j] = 0.0f;
    }

    const int k_begin = (int)blockIdx.z * k_split;
    const int k_end = k_begin + k_split < K ? k_begin + k_split : K;
    for (int k0 = k_begin; k0 < k_end; k0 += TILE) {
        /* stage the tiles: element e of a tile is (fast = e % 32, slow = e / 32),
         * fast running along the dimension that is contiguous in memory */
        DMZ_UNROLL
        for (int e = t; e < TILE * TILE; e += nthreads) {
            int fast = e % TILE, slow = e / TILE;
            int m = TA ? fast : slow, ka = TA ? slow : fast;
            int gm = m0 + m, gka = k0 + ka;
            float a = 0.0f;
            if (gm < M && gka < k_end) a = TA ? A[(size_t)gka * M + gm] : A[(size_t)gm * K + gka];
            As[ka][m] = a;
            int n = TB ? slow : fast, kb = TB ? fast : slow;
            int gn = n0 + n, gkb = k0 + kb;
            float b = 0.0f;
            if (gn < N && gkb < k_end) b = TB ? B[(size_t)gn * K + gkb] : B[(size_t)gkb * N + gn];
            Bs[kb][n] = b;
        }
        __syncthreads();
        DMZ_UNROLL
        for (int k = 0; k < TILE; k++) {
            float a[PER_THREAD], b[PER_THREAD];
            DMZ_UNROLL
            for (int i = 0; i < PER_THREAD; i++) a[i] = As[k][ty + TILE_THREADS * i];
            DMZ_UNROLL
            for (int j = 0; j < PER_THREAD; j++) b[j] = Bs[k][tx + TILE_THREADS * j];
            DMZ_UNROLL
            for (int i = 0; i < PER_THREAD; i++) {
                DMZ_UNROLL
                for (int j = 0; j < PER_THREAD; j++) acc[i][j] += a[i] * b[j];
            }
        }
        __syncthreads();
    }

    if (gridDim.z == 1) {
        DMZ_UNROLL
        for (int i = 0; i < PER_THREAD; i++) {
            int m = m0 + ty + TILE_THREADS * i;
            if (m >= M) continue;
            DMZ_UNROLL
            for (int j = 0; j < PER_THREAD; j++) {
                int n = n0 + tx + TILE_THREADS * j;
                if (n < N) C[(size_t)m * N + n] = epilogue(acc[i][j], bias, n, relu);
            }
        }
        return;
    }
    /* split-K: this block's partial tile, then the last block of the tile adds them in order */
    const size_t MN = (size_t)M * N;
    float *mine = partials + (size_t)blockIdx.z * MN;
    DMZ_UNROLL
    for (int i = 0; i < PER_THREAD; i++) {
        int m = m0 + ty + TILE_THREADS * i;
        if (m >= M) continue;
        DMZ_UNROLL
        for (int j = 0; j < PER_THREAD; j++) {
            int n = n0 + tx + TILE_THREADS * j;
            if (n < N) mine[(size_t)m * N + n] = acc[i][j];
        }
    }
    __threadfence(); /* the partial is visible device-wide before the counter says so */
    __syncthreads();
    const unsigned tile = blockIdx.y * gridDim.x + blockIdx.x;
    if (t == 0) is_last = atomicAdd(&counters[tile], 1u) == gridDim.z - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    DMZ_UNROLL
    for (int i = 0; i < PER_THREAD; i++) {
        int m = m0 + ty + TILE_THREADS * i;
        if (m >= M) continue;
        DMZ_UNROLL
        for (int j = 0; j < PER_THREAD; j++) {
            int n = n0 + tx + TILE_THREADS * j;
            if (n >= N) continue;
            float sum = 0.0f;
            for (unsigned z = 0; z < gridDim.z; z++) sum += __ldcg(&partials[z * MN + (size_t)m * N + n]);
            C[(size_t)m * N + n] = epilogue(sum, bias, n, relu);
        }
    }
    if (t == 0) counters[tile] = 0; /* ready for the next product (or the next replay of a graph) */
}

#define SGEMM_PARAMS                                                                                                  \
    float *C, const float *A, const float *B, const float *bias, int M, int N, int K, int relu, int k_split,          \
        float *partials, unsigned *counters
#define SGEMM_ARGS C, A, B, bias, M, N, K, relu, k_split, partials, counters

static __global__ void __launch_bounds__(TILE_THREADS *TILE_THREADS) sgemm_nn(SGEMM_PARAMS) {
    sgemm_tile<false, false>(SGEMM_ARGS);
}

static __global__ void __launch_bounds__(TILE_THREADS *TILE_THREADS) sgemm_tn(SGEMM_PARAMS) {
    sgemm_tile<true, false>(SGEMM_ARGS);
}

static __global__ void __launch_bounds__(TILE_THREADS *TILE_THREADS) sgemm_nt(SGEMM_PARAMS) {
    sgemm_tile<false, true>(SGEMM_ARGS);
}

/* dbias[o] = sum_b dout[b][o]: blocks of 32 columns x 8 row-strides. Each warp
 * reads 32 consecutive columns of a row; the 8 partial sums of a column are
 * added in a fixed order (deterministic, no atomics). */
#define COLSUM_ROWS 8
static __global__ void column_sum(float *dbias, const float *dout, int B, int OC) {
    __shared__ float part[COLSUM_ROWS][32 + 1];
    const int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    const int o = (int)blockIdx.x * 32 + tx;
    float s = 0.0f;
    if (o < OC)
        for (int b = ty; b < B; b += COLSUM_ROWS) s += dout[(size_t)b * OC + o];
    part[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && o < OC) {
        float total = 0.0f;
        for (int r = 0; r < COLSUM_ROWS; r++) total += part[r][tx];
        dbias[o] = total;
    }
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
static const dim3 sgemm_block(TILE_THREADS, TILE_THREADS);

/* Fewer output tiles than this and a long enough k: split k to fill the GPU. */
#define SPLIT_K_TARGET_BLOCKS 96

typedef void (*sgemm_kernel)(SGEMM_PARAMS);

/* Launches C[M][N] = op(A) @ op(B) (+ bias, ReLU), split along k when the
 * output has few tiles (and the partials fit the context's scratch). */
static void launch_sgemm(sgemm_kernel kernel, const char *name, float *C, const float *A, const float *B,
                         const float *bias, int M, int N, int K, int relu) {
    unsigned gx = dmz_ceil_div((size_t)N, TILE), gy = dmz_ceil_div((size_t)M, TILE);
    unsigned tiles = gx * gy, ktiles = dmz_ceil_div((size_t)K, TILE), splits = 1;
    if (tiles < SPLIT_K_TARGET_BLOCKS && ktiles >= 4) {
        splits = dmz_ceil_div(SPLIT_K_TARGET_BLOCKS, tiles);
        if (splits > ktiles / 2) splits = ktiles / 2;
    }
    int k_split = K;
    float *partials = NULL;
    unsigned *counters = NULL;
    if (splits > 1) {
        k_split = (int)dmz_ceil_div(ktiles, splits) * TILE;
        splits = dmz_ceil_div((size_t)K, (size_t)k_split);
        if ((size_t)splits * M * N > DMZ_CUDA_NS::scratch_floats() || tiles > DMZ_CUDA_NS::scratch_counters_max())
            splits = 1, k_split = K;
    }
    if (splits > 1) {
        partials = DMZ_CUDA_NS::scratch((size_t)splits * M * N);
        counters = DMZ_CUDA_NS::scratch_counters(tiles);
    }
    DMZ_LAUNCH_NAMED(name, kernel, dim3(gx, gy, splits), sgemm_block, 0, C, A, B, bias, M, N, K, relu, k_split,
                     partials, counters);
}

void cuda_dense_forward(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    if (B <= 0 || OC <= 0) return;
    launch_sgemm(sgemm_nn, "sgemm_nn", out, inp, w, bias, B, OC, C, 0);
}

void cuda_dense_forward_relu(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    if (B <= 0 || OC <= 0) return;
    launch_sgemm(sgemm_nn, "sgemm_nn_relu", out, inp, w, bias, B, OC, C, 1);
}

void cuda_dense_bias_grad(float *dbias, const float *dout, int B, int OC) {
    if (OC > 0)
        DMZ_LAUNCH(column_sum, dim3(dmz_ceil_div((size_t)OC, 32)), dim3(32, COLSUM_ROWS), 0, dbias, dout, B, OC);
}

void cuda_dense_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int B, int C, int OC) {
    /* Empty sums give zeros, as in the reference: B == 0 leaves dw and dbias 0,
     * OC == 0 leaves dinp 0 (the loops over k just do nothing). */
    /* dw[C][OC] = inp^T @ dout: M=C, N=OC, K=B */
    if (C > 0 && OC > 0) launch_sgemm(sgemm_tn, "sgemm_tn", dw, inp, dout, NULL, C, OC, B, 0);
    if (dbias) cuda_dense_bias_grad(dbias, dout, B, OC);
    /* dinp[B][C] = dout @ w^T: M=B, N=C, K=OC */
    if (dinp && B > 0 && C > 0) launch_sgemm(sgemm_nt, "sgemm_nt", dinp, dout, w, NULL, B, C, OC, 0);
}
#endif
