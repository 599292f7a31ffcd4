/* ReLU forward and backward (twin of kernels/cpu/relu.c). Elementwise, grid-stride;
 * both work in place (the model passes out == inp and dinp == dout), so no
 * __restrict__ here. The comparisons are the reference's own, so results are
 * bit-identical to it (-0.0 and NaN included). */
#include "common.cuh"

static __global__ void relu_forward_kernel(float *out, const float *inp, size_t n) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float x = inp[i];
        out[i] = x > 0.0f ? x : 0.0f;
    }
}

static __global__ void relu_backward_kernel(float *dinp, const float *dout, const float *out, size_t n) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_relu_forward(float *out, const float *inp, size_t n) {
    if (n == 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(relu_forward_kernel, dmz_elementwise_blocks(n, threads), threads, 0, out, inp, n);
}

void cuda_relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (n == 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(relu_backward_kernel, dmz_elementwise_blocks(n, threads), threads, 0, dinp, dout, out, n);
}
#endif
