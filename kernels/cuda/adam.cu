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

/* The same with the step number read on the device (adam_update_step): each
 * block's thread 0 folds the bias correction into the rate, in double as the
 * host does, once per block. */
static __global__ void adam_step_kernel(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                                        float b1, float b2, float eps, const dmz_step_state *st) {
    __shared__ float lr_t;
    if (threadIdx.x == 0) {
        int t = st->t;
        double correction = sqrt(1.0 - pow((double)b2, (double)t)) / (1.0 - pow((double)b1, (double)t));
        lr_t = (float)((double)lr * correction);
    }
    __syncthreads();
    const float rate = lr_t;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float g = grads[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= rate * mi / (sqrtf(vi) + eps);
    }
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_adam_update_step(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp,
                           const dmz_step_state *st) {
    if (n == 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(adam_step_kernel, dmz_elementwise_blocks(n, threads), threads, 0, params, grads, m, v, n, hp.lr,
               hp.beta1, hp.beta2, hp.eps, st);
}

void cuda_adam_update(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp) {
    if (n == 0) return;
    double correction = sqrt(1.0 - pow(hp.beta2, hp.t)) / (1.0 - pow(hp.beta1, hp.t));
    float lr_t = (float)(hp.lr * correction);
    const unsigned threads = 256;
    DMZ_LAUNCH(adam_kernel, dmz_elementwise_blocks(n, threads), threads, 0, params, grads, m, v, n, lr_t, hp.beta1,
               hp.beta2, hp.eps);
}
#endif
