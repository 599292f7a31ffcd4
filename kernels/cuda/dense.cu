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
 * forward 100x784x100 is 4x4 blocks, dw 25x4, dinp 4x25. Sums run in a
 * different order than the cpu reference: results agree to rounding. */
#include "common.cuh"

#define TILE 32       /* output tile edge, and the k step */
#define TILE_THREADS 8 /* threads per tile edge: 8x8 = 64 per block */
#define PER_THREAD (TILE / TILE_THREADS) /* 4x4 outputs per thread */

template <bool TA, bool TB>
static __device__ __forceinline__ void sgemm_tile(float *C, const float *__restrict__ A, const float *__restrict__ B,
                                                  const float *__restrict__ bias, int M, int N, int K) {
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

    for (int k0 = 0; k0 < K; k0 += TILE) {
        /* stage the tiles: element e of a tile is (fast = e % 32, slow = e / 32),
         * fast running along the dimension that is contiguous in memory */
        DMZ_UNROLL
        for (int e = t; e < TILE * TILE; e += nthreads) {
            int fast = e % TILE, slow = e / TILE;
            int m = TA ? fast : slow, ka = TA ? slow : fast;
            int gm = m0 + m, gka = k0 + ka;
            float a = 0.0f;
            if (gm < M && gka < K) a = TA ? A[(size_t)gka * M + gm] : A[(size_t)gm * K + gka];
            As[ka][m] = a;
            int n = TB ? slow : fast, kb = TB ? fast : slow;
            int gn = n0 + n, gkb = k0 + kb;
            float b = 0.0f;
            if (gn < N && gkb < K) b = TB ? B[(size_t)gn * K + gkb] : B[(size_t)gkb * N + gn];
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

    DMZ_UNROLL
    for (int i = 0; i < PER_THREAD; i++) {
        int m = m0 + ty + TILE_THREADS * i;
        if (m >= M) continue;
        DMZ_UNROLL
        for (int j = 0; j < PER_THREAD; j++) {
            int n = n0 + tx + TILE_THREADS * j;
            if (n < N) C[(size_t)m * N + n] = acc[i][j] + (bias ? bias[n] : 0.0f);
        }
    }
}

static __global__ void __launch_bounds__(TILE_THREADS *TILE_THREADS)
    sgemm_nn(float *C, const float *A, const float *B, const float *bias, int M, int N, int K) {
    sgemm_tile<false, false>(C, A, B, bias, M, N, K);
}

static __global__ void __launch_bounds__(TILE_THREADS *TILE_THREADS)
    sgemm_tn(float *C, const float *A, const float *B, const float *bias, int M, int N, int K) {
    sgemm_tile<true, false>(C, A, B, bias, M, N, K);
}

static __global__ void __launch_bounds__(TILE_THREADS *TILE_THREADS)
    sgemm_nt(float *C, const float *A, const float *B, const float *bias, int M, int N, int K) {
    sgemm_tile<false, true>(C, A, B, bias, M, N, K);
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
static dim3 sgemm_grid(int M, int N) { return dim3(dmz_ceil_div((size_t)N, TILE), dmz_ceil_div((size_t)M, TILE)); }

static const dim3 sgemm_block(TILE_THREADS, TILE_THREADS);

void cuda_dense_forward(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    if (B <= 0 || OC <= 0) return;
    DMZ_LAUNCH(sgemm_nn, sgemm_grid(B, OC), sgemm_block, 0, out, inp, w, bias, B, OC, C);
}

void cuda_dense_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int B, int C, int OC) {
    /* Empty sums give zeros, as in the reference: B == 0 leaves dw and dbias 0,
     * OC == 0 leaves dinp 0 (the loops over k just do nothing). */
    /* dw[C][OC] = inp^T @ dout: M=C, N=OC, K=B */
    if (C > 0 && OC > 0)
        DMZ_LAUNCH(sgemm_tn, sgemm_grid(C, OC), sgemm_block, 0, dw, inp, dout, (const float *)NULL, C, OC, B);
    if (dbias && OC > 0)
        DMZ_LAUNCH(column_sum, dim3(dmz_ceil_div((size_t)OC, 32)), dim3(32, COLSUM_ROWS), 0, dbias, dout, B, OC);
    /* dinp[B][C] = dout @ w^T: M=B, N=C, K=OC */
    if (dinp && B > 0 && C > 0)
        DMZ_LAUNCH(sgemm_nt, sgemm_grid(B, C), sgemm_block, 0, dinp, dout, w, (const float *)NULL, B, C, OC);
}
#endif
