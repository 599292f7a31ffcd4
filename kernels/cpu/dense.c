/* Fully connected layer on the cpu: out = inp @ w + bias, w stored [C][OC],
 * every product through the blocked SGEMM (sgemm.c), which splits outputs, not
 * sums, across threads: results are bit-identical across thread counts. */
#include "cpu_ops.h"

#include <string.h>

void cpu_dense_forward(float *out, const float *inp, const float *w, const float *bias,
                       int B, int C, int OC) {
    for (int b = 0; b < B; b++) {
        float *row = out + (size_t)b * OC;
        if (bias) memcpy(row, bias, sizeof(float) * (size_t)OC);
        else memset(row, 0, sizeof(float) * (size_t)OC);
    }
    /* out[b][o] += sum_c inp[b][c] w[c][o] */
    cpu_sgemm_sparse_a(B, OC, C, inp, C, 1, w, OC, 1, out, OC, 1); /* pixels and ReLU outputs: many zeros */
}

/* Column sums in batch order: one thread, the reference order. */
static void dense_backward_bias(float *dbias, const float *dout, int B, int OC) {
    for (int o = 0; o < OC; o++) dbias[o] = 0.0f;
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * OC;
        for (int o = 0; o < OC; o++) dbias[o] += g[o];
    }
}

void cpu_dense_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int B, int C, int OC) {
    /* dw[c][o] = sum_b inp[b][c] dout[b][o]: A = inp^T */
    cpu_sgemm_sparse_a(C, OC, B, inp, 1, C, dout, OC, 1, dw, OC, 0);
    if (dbias) dense_backward_bias(dbias, dout, B, OC);
    /* dinp[b][c] = sum_o dout[b][o] w[c][o]: B = w^T */
    if (dinp) cpu_sgemm(B, C, OC, dout, OC, 1, w, 1, OC, dinp, C, 0);
}
