/* Adam as TensorFlow 1.x's AdamOptimizer computes it (the "epsilon hat" form,
 * bias correction folded into the learning rate). */
#include "cpu_ops.h"

#include <math.h>

void cpu_adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                     dmz_adam_params hp) {
    double correction = sqrt(1.0 - pow(hp.beta2, hp.t)) / (1.0 - pow(hp.beta1, hp.t));
    float lr_t = (float)(hp.lr * correction);
    float b1 = hp.beta1, b2 = hp.beta2;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= lr_t * m[i] / (sqrtf(v[i]) + hp.eps);
    }
}
