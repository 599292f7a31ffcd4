/* 8-bit pixels to floats on the device (twin of kernels/cpu/convert.c).
 * One thread per element, grid-stride: consecutive threads read consecutive
 * bytes and write consecutive floats, so both sides coalesce. */
#include "common.cuh"

static __global__ void u8_to_float_kernel(float *out, const uint8_t *in, size_t n, float scale) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = (float)in[i] * scale;
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_u8_to_float(float *out, const uint8_t *in, size_t n, float scale) {
    if (n == 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(u8_to_float_kernel, dmz_elementwise_blocks(n, threads), threads, 0, out, in, n, scale);
}
#endif
