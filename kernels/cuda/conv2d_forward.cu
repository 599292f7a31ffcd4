/* Convolution forward (twin of kernels/cpu/conv2d_forward.c), stride 1, zero
 * padding, NCHW, filters [OC][C][K][K]:
 *   out[b][oc][y][x] = bias[oc] + sum_{c,ky,kx} w[oc][c][ky][kx] * inp[b][c][y+ky-pad][x+kx-pad]
 * as an implicit GEMM (kernels/cuda/conv2d_igemm.cuh): M = OC, K = C*K*K taps,
 * N = B*OH*OW positions (the batch folded in, so that even one sample fills
 * several blocks). conv2d_forward_relu fuses the ReLU that follows every conv
 * layer of the cnn into the epilogue: one launch per layer. Sums run in another
 * order than the reference (bias last, not first): results agree to rounding,
 * and are the same bits from run to run (no atomics). */
#include "conv2d_igemm.cuh"

static __global__ void __launch_bounds__(CONV_THREADS)
    conv2d_forward_kernel(float *out, const float *inp, const float *w, const float *bias, int B, int C, int H,
                          int W, int OC, int K, int pad, int OH, int OW) {
    conv_igemm<false, false>(out, inp, w, bias, B, C, H, W, OC, K, pad, OH, OW);
}

static __global__ void __launch_bounds__(CONV_THREADS)
    conv2d_forward_relu_kernel(float *out, const float *inp, const float *w, const float *bias, int B, int C, int H,
                               int W, int OC, int K, int pad, int OH, int OW) {
    conv_igemm<false, true>(out, inp, w, bias, B, C, H, W, OC, K, pad, OH, OW);
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
/* The convolutions need no scratch but backward-filter's partial sums (conv2d_backward_filter.cu). */
size_t cuda_conv2d_workspace(dmz_conv_shape s) { return cuda_conv2d_backward_filter_workspace(s); }

static void forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s, int relu) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    if (s.B <= 0 || OH <= 0 || OW <= 0 || s.OC <= 0) return;
    size_t N = (size_t)s.B * OH * OW;
    dim3 grid = conv_igemm_grid(N, s.OC);
    if (relu)
        DMZ_LAUNCH(conv2d_forward_relu_kernel, grid, conv_igemm_block, 0, out, inp, w, bias, s.B, s.C, s.H, s.W, s.OC,
                   s.K, s.pad, OH, OW);
    else
        DMZ_LAUNCH(conv2d_forward_kernel, grid, conv_igemm_block, 0, out, inp, w, bias, s.B, s.C, s.H, s.W, s.OC, s.K,
                   s.pad, OH, OW);
}

void cuda_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                         float *work) {
    (void)work;
    forward(out, inp, w, bias, s, 0);
}

void cuda_conv2d_forward_relu(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                              float *work) {
    (void)work;
    forward(out, inp, w, bias, s, 1);
}
#endif
