/* Adam as TensorFlow 1.x's AdamOptimizer computes it (the "epsilon hat" form,
 * bias correction folded into the learning rate).
 *
 * Denormals: a weight whose gradient is always zero (a pixel that is 0 in every
 * image, like the border of MNIST-style digits) has moments that decay
 * geometrically, m by beta1 and v by beta2 each step, into the denormal range.
 * There every x86 multiply on them takes a microcode assist of ~100 cycles:
 * the paper mlp's update took 0.30 ms a step instead of 0.04 (half its step).
 * The loop runs with flush-to-zero and denormals-are-zero (FTZ+DAZ, as
 * TensorFlow's threads do), so such a moment becomes exactly 0 instead. The
 * parameter itself never sees the difference: lr * m / (sqrt(v) + eps) with a
 * denormal m is far below half an ulp of any weight. */
#include "cpu_ops.h"

#include <math.h>
#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* FTZ+DAZ on this thread; returns the mode to restore. */
static unsigned flush_denormals_begin(void) {
#if defined(__SSE__)
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u); /* bit 15 FTZ, bit 6 DAZ */
    return csr;
#else
    return 0;
#endif
}

static void flush_denormals_end(unsigned csr) {
#if defined(__SSE__)
    _mm_setcsr(csr);
#else
    (void)csr;
#endif
}

void cpu_adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                     dmz_adam_params hp) {
    double correction = sqrt(1.0 - pow(hp.beta2, hp.t)) / (1.0 - pow(hp.beta1, hp.t));
    float lr_t = (float)(hp.lr * correction);
    float b1 = hp.beta1, b2 = hp.beta2;
#pragma omp parallel
    {
        unsigned csr = flush_denormals_begin();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float g = grads[i];
            m[i] = b1 * m[i] + (1.0f - b1) * g;
            v[i] = b2 * v[i] + (1.0f - b2) * g * g;
            params[i] -= lr_t * m[i] / (sqrtf(v[i]) + hp.eps);
        }
        flush_denormals_end(csr);
    }
}
