/* Convolution backward-data (twin of kernels/cpu/conv2d_backward_data.c):
 *   dinp[b][c][iy][ix] = sum_{oc,ky,kx} w[oc][c][ky][kx] * dout[b][oc][iy-ky+pad][ix-kx+pad]
 * which is itself a stride-1 convolution of dout (OC channels, OH x OW) with the
 * filters transposed ([C][OC]) and turned by 180 degrees, padding K-1-pad: its
 * output is H x W again. So it runs on the forward's implicit-GEMM engine
 * (kernels/cuda/conv2d_igemm.cuh, FLIP): M = C, K = OC*K*K, N = B*H*W. A gather,
 * not a scatter: every element of dinp is written once, by one thread, in a
 * fixed order (no atomics, the same bits on every run). */
#include "conv2d_igemm.cuh"

static __global__ void __launch_bounds__(CONV_THREADS)
    conv2d_backward_data_kernel(float *dinp, const float *dout, const float *w, int B, int OC, int OH, int OW, int C,
                                int K, int pad_t, int H, int W) {
    conv_igemm<true, false>(dinp, dout, w, (const float *)NULL, B, OC, OH, OW, C, K, pad_t, H, W);
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_conv2d_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
    (void)work;
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    size_t N = (size_t)s.B * s.H * s.W;
    if (N == 0 || s.C <= 0) return;
    /* OC == 0 or an empty output: the sums are empty and the engine writes zeros */
    DMZ_LAUNCH(conv2d_backward_data_kernel, conv_igemm_grid(N, s.C), conv_igemm_block, 0, dinp, dout, w, s.B, s.OC,
               OH, OW, s.C, s.K, s.K - 1 - s.pad, s.H, s.W);
}
#endif
