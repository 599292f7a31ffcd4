/* kernels/cuda/conv2d_igemm.cuh — the implicit-GEMM engine shared by the
 * convolution kernels (conv2d_forward.cu, conv2d_backward_data.cu,
 * conv2d_backward_filter.cu). Nothing is im2col'd into memory: a block stages
 * tiles of the implicit im2col matrix straight from the image into shared
 * memory, as cuDNN's IMPLICIT_GEMM algorithm does.
 *
 * The implicit im2col matrix of an image img [Bn][Cin][Hin][Win], K x K taps,
 * `pad` zeros each side, output Hout x Wout (stride 1):
 *   col(r, n) = img[b][c][oy + ky - pad][ox + kx - pad]   (0 outside the image)
 *   r = (c*K + ky)*K + kx  (a tap),   n = (b*Hout + oy)*Wout + ox  (an output position)
 * Decoding r and n takes integer divisions; the engine does them once per tap
 * and tile (a table of taps in shared memory: conv_tap) and once per output
 * position and thread, never per element loaded.
 *
 * Tiles: 32x32 outputs per block of 8x8 threads, each thread 4x4 outputs in
 * registers (rows ty+8i, columns tx+8j), k steps of 32, the two operand tiles
 * k-major in shared memory padded by one column (as kernels/cuda/dense.cu):
 * 8.4 KiB of shared memory, well under sm_61's 48 KiB. Each thread accumulates
 * its outputs in k order: results are the same bits on every run. */
#ifndef DMZ_CUDA_CONV2D_IGEMM_CUH
#define DMZ_CUDA_CONV2D_IGEMM_CUH

#include "common.cuh"

#define CONV_TILE 32                            /* output tile edge and k step */
#define CONV_TT 8                               /* threads per tile edge */
#define CONV_THREADS (CONV_TT * CONV_TT)        /* 64 per block */
#define CONV_PER (CONV_TILE / CONV_TT)          /* 4x4 outputs per thread */
#define CONV_LOADS (CONV_TILE * CONV_TILE / CONV_THREADS) /* 16 elements per thread per tile */
#define CONV_FAR (1 << 28)                      /* a tap offset that puts every read outside the image */

/* One tap r of the image: where its element for output position (oy, ox)
 * lies relative to img_b + oy*Win + ox, and its displacement (dy, dx). */
struct conv_tap {
    int off, dy, dx;
};

static __device__ __forceinline__ conv_tap conv_tap_of(int r, int ntaps, int Hin, int Win, int K, int pad) {
    conv_tap t;
    if (r >= ntaps) { /* past the last tap: reads nothing */
        t.off = 0, t.dy = CONV_FAR, t.dx = 0;
        return t;
    }
    int KK = K * K, c = r / KK, q = r - c * KK, ky = q / K, kx = q - ky * K;
    t.dy = ky - pad, t.dx = kx - pad;
    t.off = (c * Hin + t.dy) * Win + t.dx;
    return t;
}

/* col(tap, position): 0 where the tap falls outside the image. */
static __device__ __forceinline__ float conv_gather(const float *img_b, conv_tap t, int oy, int ox, int Hin,
                                                    int Win) {
    int iy = oy + t.dy, ix = ox + t.dx;
    if ((unsigned)iy >= (unsigned)Hin || (unsigned)ix >= (unsigned)Win) return 0.0f;
    return img_b[t.off + oy * Win + ox];
}

/* acc += As^T Bs for one staged k step (As[k][m], Bs[k][n]). */
static __device__ __forceinline__ void conv_tile_fma(float acc[CONV_PER][CONV_PER],
                                                     const float (*As)[CONV_TILE + 1],
                                                     const float (*Bs)[CONV_TILE + 1], int ty, int tx) {
    DMZ_UNROLL
    for (int k = 0; k < CONV_TILE; k++) {
        float a[CONV_PER], b[CONV_PER];
        DMZ_UNROLL
        for (int i = 0; i < CONV_PER; i++) a[i] = As[k][ty + CONV_TT * i];
        DMZ_UNROLL
        for (int j = 0; j < CONV_PER; j++) b[j] = Bs[k][tx + CONV_TT * j];
        DMZ_UNROLL
        for (int i = 0; i < CONV_PER; i++) {
            DMZ_UNROLL
            for (int j = 0; j < CONV_PER; j++) acc[i][j] += a[i] * b[j];
        }
    }
}

/* A convolution as out[b][m][p] = epilogue(sum_r A(m, r) * col(r, (b, p))):
 * M output channels, r over Cin*K*K taps, positions p over Hout x Wout, the
 * batch folded into the GEMM's N dimension (N = Bn*Hout*Wout). A(m, r) =
 * w[woff(r) + m*mstride]:
 *   FLIP = false (forward):       w [M][Cin][K][K],  A(m, r) = w[m][r]
 *   FLIP = true  (backward-data): w [Cin][M][K][K],  A(m, (oc, q)) = w[oc][m][K*K-1-q]
 *     (the filter transposed and turned by 180 degrees; the caller passes
 *     pad' = K-1-pad and the output gradient as the image).
 * Grid: x over ceil(N/32) column tiles, y over ceil(M/32) row tiles. */
template <bool FLIP, bool RELU>
static __device__ __forceinline__ void conv_igemm(float *__restrict__ out, const float *__restrict__ img,
                                                  const float *__restrict__ w, const float *__restrict__ bias,
                                                  int Bn, int Cin, int Hin, int Win, int M, int K, int pad,
                                                  int Hout, int Wout) {
    __shared__ float As[CONV_TILE][CONV_TILE + 1]; /* As[k][m] */
    __shared__ float Bs[CONV_TILE][CONV_TILE + 1]; /* Bs[k][n] */
    __shared__ conv_tap taps[CONV_TILE];           /* the k step's taps */
    __shared__ int woffs[CONV_TILE];               /* and their weight offsets */
    const int tx = (int)threadIdx.x, ty = (int)threadIdx.y, t = ty * CONV_TT + tx;
    const int m0 = (int)blockIdx.y * CONV_TILE, n0 = (int)blockIdx.x * CONV_TILE;
    const int KK = K * K, ntaps = Cin * KK, P = Hout * Wout, N = Bn * P;
    const int mstride = FLIP ? KK : ntaps;

    /* The loads: this thread's column (fast index t % 32) is the same in every
     * k step; its rows are t/32 + 2i. */
    const int lane = t % CONV_TILE, row0 = t / CONV_TILE;
    const int gn = n0 + lane;
    int oy = 0, ox = 0;
    const float *img_b = img;
    if (gn < N) {
        int b = gn / P, p = gn - b * P;
        oy = p / Wout, ox = p - oy * Wout;
        img_b = img + (size_t)b * Cin * Hin * Win;
    }

    float acc[CONV_PER][CONV_PER];
    DMZ_UNROLL
    for (int i = 0; i < CONV_PER; i++) {
        DMZ_UNROLL
        for (int j = 0; j < CONV_PER; j++) acc[i][j] = 0.0f;
    }

    for (int k0 = 0; k0 < ntaps; k0 += CONV_TILE) {
        if (t < CONV_TILE) {
            int r = k0 + t;
            taps[t] = conv_tap_of(r, ntaps, Hin, Win, K, pad);
            int oc = r / KK, q = r - oc * KK;
            woffs[t] = FLIP ? oc * M * KK + (KK - 1 - q) : r;
        }
        __syncthreads();
        /* A: k along the lane (contiguous in w), m = row0 + 2i */
        const int ka = lane, woff = woffs[ka];
        const int a_ok = k0 + ka < ntaps;
        /* B: n along the lane (contiguous positions), k = row0 + 2i */
        DMZ_UNROLL
        for (int i = 0; i < CONV_LOADS; i++) {
            int slow = row0 + (CONV_THREADS / CONV_TILE) * i;
            int gm = m0 + slow;
            As[ka][slow] = a_ok && gm < M ? w[woff + (size_t)gm * mstride] : 0.0f;
            Bs[slow][lane] = gn < N ? conv_gather(img_b, taps[slow], oy, ox, Hin, Win) : 0.0f;
        }
        __syncthreads();
        conv_tile_fma(acc, As, Bs, ty, tx);
        __syncthreads();
    }

    /* epilogue: + bias, ReLU (the relu op's own comparison: the same bits) */
    DMZ_UNROLL
    for (int j = 0; j < CONV_PER; j++) {
        int n = n0 + tx + CONV_TT * j;
        if (n >= N) continue;
        int b = n / P, p = n - b * P;
        float *o = out + (size_t)b * M * P + p;
        DMZ_UNROLL
        for (int i = 0; i < CONV_PER; i++) {
            int m = m0 + ty + CONV_TT * i;
            if (m >= M) continue;
            float v = acc[i][j] + (bias ? bias[m] : 0.0f);
            if (RELU) v = v > 0.0f ? v : 0.0f;
            o[(size_t)m * P] = v;
        }
    }
}

#ifndef __CUDACC_RTC__
static inline dim3 conv_igemm_grid(size_t N, int M) {
    return dim3(dmz_ceil_div(N, CONV_TILE), dmz_ceil_div((size_t)M, CONV_TILE));
}
static const dim3 conv_igemm_block(CONV_TT, CONV_TT);
#endif

#endif
