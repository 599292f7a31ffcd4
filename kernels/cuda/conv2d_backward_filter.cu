/* Convolution backward-filter (twin of kernels/cpu/conv2d_backward_filter.c):
 *   dw[oc][r]  = sum over (b, y, x) of dout[b][oc][y][x] * col(r, (b, y, x))
 *   dbias[oc]  = sum over (b, y, x) of dout[b][oc][y][x]
 * (col: the implicit im2col matrix, kernels/cuda/conv2d_igemm.cuh). A GEMM with
 * a small output (OC x C*K*K: 32x25 for the cnn's first layer) and a long sum
 * (B*OH*OW: 78,400 at batch 100), so the sum is split: block (i, j, s) of the
 * partial kernel sums chunk s of the positions for a 32x32 tile of dw into its
 * own slice of the workspace, then the reduce kernel adds the slices in slice
 * order. The split depends on the shape only, every sum runs in a fixed order,
 * no atomics: the same bits on every run and every GPU. dbias: one block per
 * channel, a fixed-tree block sum. */
#include "conv2d_igemm.cuh"

/* The split of the B*OH*OW positions: S chunks of `chunk` (a multiple of the
 * k step), enough blocks to fill a large GPU (about 512), chunks of at least
 * 256 positions. */
typedef struct {
    int S, chunk;
} bwf_split;

static __global__ void __launch_bounds__(CONV_THREADS)
    conv2d_bwf_partial_kernel(float *part, const float *dout, const float *inp, int B, int C, int H, int W, int OC,
                              int K, int pad, int OH, int OW, int chunk) {
    __shared__ float As[CONV_TILE][CONV_TILE + 1]; /* As[k][oc]: dout */
    __shared__ float Bs[CONV_TILE][CONV_TILE + 1]; /* Bs[k][r]: col */
    __shared__ conv_tap taps[CONV_TILE];           /* the block's 32 taps (its dw columns) */
    const int tx = (int)threadIdx.x, ty = (int)threadIdx.y, t = ty * CONV_TT + tx;
    const int m0 = (int)blockIdx.y * CONV_TILE, n0 = (int)blockIdx.x * CONV_TILE;
    const int ntaps = C * K * K, P = OH * OW, NP = B * P;
    const int k_begin = (int)blockIdx.z * chunk, k_end = k_begin + chunk < NP ? k_begin + chunk : NP;
    if (t < CONV_TILE) taps[t] = conv_tap_of(n0 + t, ntaps, H, W, K, pad);
    /* loads: k (a position) along the lane, contiguous in dout and inp; oc and
     * r are row0 + 2i */
    const int lane = t % CONV_TILE, row0 = t / CONV_TILE;

    float acc[CONV_PER][CONV_PER];
    DMZ_UNROLL
    for (int i = 0; i < CONV_PER; i++) {
        DMZ_UNROLL
        for (int j = 0; j < CONV_PER; j++) acc[i][j] = 0.0f;
    }
    __syncthreads();

    for (int k0 = k_begin; k0 < k_end; k0 += CONV_TILE) {
        int gk = k0 + lane, ok = gk < k_end;
        int b = 0, oy = 0, ox = 0;
        if (ok) {
            b = gk / P;
            int p = gk - b * P;
            oy = p / OW, ox = p - oy * OW;
        }
        const float *g = dout + ((size_t)b * OC * P + (size_t)oy * OW + ox);
        const float *img_b = inp + (size_t)b * C * H * W;
        DMZ_UNROLL
        for (int i = 0; i < CONV_LOADS; i++) {
            int slow = row0 + (CONV_THREADS / CONV_TILE) * i;
            int oc = m0 + slow;
            As[lane][slow] = ok && oc < OC ? g[(size_t)oc * P] : 0.0f;
            Bs[lane][slow] = ok ? conv_gather(img_b, taps[slow], oy, ox, H, W) : 0.0f;
        }
        __syncthreads();
        conv_tile_fma(acc, As, Bs, ty, tx);
        __syncthreads();
    }

    float *dst = part + (size_t)blockIdx.z * OC * ntaps;
    DMZ_UNROLL
    for (int i = 0; i < CONV_PER; i++) {
        int oc = m0 + ty + CONV_TT * i;
        if (oc >= OC) continue;
        DMZ_UNROLL
        for (int j = 0; j < CONV_PER; j++) {
            int r = n0 + tx + CONV_TT * j;
            if (r < ntaps) dst[(size_t)oc * ntaps + r] = acc[i][j];
        }
    }
}

/* dw[i] = sum over s = 0..S-1, in that order, of part[s][i] (S = 0: zeros). */
static __global__ void conv2d_bwf_reduce_kernel(float *dw, const float *part, size_t n, int S) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = 0.0f;
        for (int s = 0; s < S; s++) v += part[(size_t)s * n + i];
        dw[i] = v;
    }
}

/* dbias[oc]: block oc; thread t sums positions t, t+256, ... in order, then the
 * block's fixed tree. */
#define BIAS_THREADS 256
static __global__ void __launch_bounds__(BIAS_THREADS)
    conv2d_bwf_bias_kernel(float *dbias, const float *dout, int B, int OC, int P) {
    const int oc = (int)blockIdx.x;
    float v = 0.0f;
    for (int b = 0; b < B; b++) {
        const float *g = dout + ((size_t)b * OC + oc) * P;
        for (int p = (int)threadIdx.x; p < P; p += BIAS_THREADS) v += g[p];
    }
    v = dmz_block_sum(v);
    if (threadIdx.x == 0) dbias[oc] = v;
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
static bwf_split split_of(dmz_conv_shape s) {
    bwf_split sp = {0, CONV_TILE};
    long long OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    long long NP = OH > 0 && OW > 0 && s.B > 0 ? (long long)s.B * OH * OW : 0;
    if (NP == 0) return sp;
    long long tiles = (long long)dmz_ceil_div((size_t)s.OC, CONV_TILE) * dmz_ceil_div((size_t)s.C * s.K * s.K, CONV_TILE);
    long long S = (512 + tiles - 1) / tiles, most = (NP + 255) / 256;
    if (S > most) S = most;
    if (S < 1) S = 1;
    long long chunk = (NP + S - 1) / S;
    chunk = (chunk + CONV_TILE - 1) / CONV_TILE * CONV_TILE;
    sp.chunk = (int)chunk;
    sp.S = (int)((NP + chunk - 1) / chunk);
    return sp;
}

size_t cuda_conv2d_backward_filter_workspace(dmz_conv_shape s) {
    bwf_split sp = split_of(s);
    return sp.S > 1 ? (size_t)sp.S * s.OC * s.C * s.K * s.K * sizeof(float) : 0;
}

void cuda_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                 float *work) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), ntaps = s.C * s.K * s.K;
    bwf_split sp = split_of(s);
    size_t n = (size_t)s.OC * ntaps;
    if (n > 0) {
        if (sp.S > 0) {
            dim3 grid(dmz_ceil_div((size_t)ntaps, CONV_TILE), dmz_ceil_div((size_t)s.OC, CONV_TILE), (unsigned)sp.S);
            float *part = sp.S > 1 ? work : dw; /* one chunk: straight into dw */
            DMZ_LAUNCH(conv2d_bwf_partial_kernel, grid, conv_igemm_block, 0, part, dout, inp, s.B, s.C, s.H, s.W, s.OC,
                       s.K, s.pad, OH, OW, sp.chunk);
        }
        if (sp.S != 1) {
            const unsigned threads = 256;
            DMZ_LAUNCH(conv2d_bwf_reduce_kernel, dmz_elementwise_blocks(n, threads), threads, 0, dw,
                       (const float *)work, n, sp.S);
        }
    }
    if (dbias && s.OC > 0)
        DMZ_LAUNCH(conv2d_bwf_bias_kernel, (unsigned)s.OC, BIAS_THREADS, 0, dbias, dout, sp.S > 0 ? s.B : 0, s.OC,
                   sp.S > 0 ? OH * OW : 0);
}
#endif
