/* out[b][o] = act(out[b][o] + bias[o]): the epilogue of a GEMM that has none
 * (the cublas comparison backend's cublasSgemm); act is the identity or the
 * ReLU (the relu kernel's comparison). Twin of the + bias in
 * kernels/cpu/dense.c and of kernels/cpu/relu.c. Elementwise, grid-stride. */
#include "common.cuh"

static __global__ void bias_act_kernel(float *out, const float *bias, size_t n, int OC, int relu) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = out[i] + bias[i % (size_t)OC];
        out[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_bias_act(float *out, const float *bias, int B, int OC, int relu) {
    size_t n = (size_t)B * (size_t)OC;
    if (n == 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(bias_act_kernel, dmz_elementwise_blocks(n, threads), threads, 0, out, bias, n, OC, relu);
}
#endif
