/* Adam as TensorFlow 1.x computes it (twin of kernels/cpu/adam.c): the bias
 * correction is folded into the learning rate on the host, in double, exactly as
 * the reference does; the kernel then does the reference's float arithmetic per
 * element (nvcc may fuse a multiply-add: differences of an ulp or so). */
#include "common.cuh"

#include <math.h>

static __global__ void adam_kernel(float *params, const float *grads, float *m, float *v, size_t n, float lr_t,
                                   float b1, float b2, float eps) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float g = grads[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr_t * mi / (sqrtf(vi) + eps);
    }
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_adam_update(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp) {
    if (n == 0) return;
    double correction = sqrt(1.0 - pow(hp.beta2, hp.t)) / (1.0 - pow(hp.beta1, hp.t));
    float lr_t = (float)(hp.lr * correction);
    const unsigned threads = 256;
    DMZ_LAUNCH(adam_kernel, dmz_elementwise_blocks(n, threads), threads, 0, params, grads, m, v, n, lr_t, hp.beta1,
               hp.beta2, hp.eps);
}
#endif
