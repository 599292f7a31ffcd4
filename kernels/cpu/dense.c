/* Fully connected layer on the cpu: out = inp @ w + bias, w stored [C][OC].
 * Every output element is computed by one thread with the same summation order
 * whatever the thread count, so results are bit-identical across thread counts. */
#include "cpu_ops.h"

#include <string.h>

void cpu_dense_forward(float *out, const float *inp, const float *w, const float *bias,
                       int B, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *row = out + (size_t)b * OC;
        const float *x = inp + (size_t)b * C;
        for (int o = 0; o < OC; o++) row[o] = bias ? bias[o] : 0.0f;
        for (int c = 0; c < C; c++) {
            float xc = x[c];
            if (xc == 0.0f) continue; /* pixels are mostly 0; skipping adds exactly 0 */
            const float *wrow = w + (size_t)c * OC;
            for (int o = 0; o < OC; o++) row[o] += xc * wrow[o];
        }
    }
}

static void dense_backward_weights(float *dw, const float *dout, const float *inp, int B, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float *dwrow = dw + (size_t)c * OC;
        memset(dwrow, 0, sizeof(float) * (size_t)OC);
        for (int b = 0; b < B; b++) {
            float xc = inp[(size_t)b * C + c];
            if (xc == 0.0f) continue;
            const float *g = dout + (size_t)b * OC;
            for (int o = 0; o < OC; o++) dwrow[o] += xc * g[o];
        }
    }
}

static void dense_backward_bias(float *dbias, const float *dout, int B, int OC) {
    for (int o = 0; o < OC; o++) dbias[o] = 0.0f;
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * OC;
        for (int o = 0; o < OC; o++) dbias[o] += g[o];
    }
}

static void dense_backward_input(float *dinp, const float *dout, const float *w, int B, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * OC;
        float *dx = dinp + (size_t)b * C;
        for (int c = 0; c < C; c++) {
            const float *wrow = w + (size_t)c * OC;
            float s = 0.0f;
            for (int o = 0; o < OC; o++) s += g[o] * wrow[o];
            dx[c] = s;
        }
    }
}

void cpu_dense_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int B, int C, int OC) {
    dense_backward_weights(dw, dout, inp, B, C, OC);
    if (dbias) dense_backward_bias(dbias, dout, B, OC);
    if (dinp) dense_backward_input(dinp, dout, w, B, C, OC);
}
