/* Convolution backward-filter on the cpu: dw [OC][C*K*K] = sum over samples,
 * in batch order, of dout_b [OC][OH*OW] @ col_b^T; dbias[oc] = sum of dout over
 * samples and positions. The batch sum is never split across threads: threads
 * im2col different samples into their slots, then each owns a rectangle of dw
 * (cpu_sgemm_team) and adds the samples in order. Bit-identical across thread
 * counts. */
#include "cpu_ops.h"

#include <string.h>

void cpu_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                float *work) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), P = OH * OW, CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * P, col_n = (size_t)CKK * P;
    float *cols = work + cpu_conv2d_packed_w_floats(s);
#pragma omp parallel
    {
        for (int b0 = 0; b0 < s.B; b0 += CPU_CONV_SLOTS) {
            int group = s.B - b0 < CPU_CONV_SLOTS ? s.B - b0 : CPU_CONV_SLOTS;
#pragma omp for schedule(static)
            for (int g = 0; g < group; g++)
                cpu_im2col(cols + (size_t)g * col_n, inp + (size_t)(b0 + g) * in_n, s.C, s.H, s.W, s.K, s.pad);
            for (int g = 0; g < group; g++) /* B(k=p, j=ckk) = col[ckk][p] */
                cpu_sgemm_team(s.OC, CKK, P, dout + (size_t)(b0 + g) * out_n, P, 1, cols + (size_t)g * col_n, 1,
                               P, dw, CKK, b0 + g > 0);
#pragma omp barrier
        }
        if (dbias) {
#pragma omp for schedule(static)
            for (int oc = 0; oc < s.OC; oc++) {
                /* 8 running sums (position mod 8, over the batch), then added in a
                 * fixed order: vectorisable, and the same for any thread count */
                float lane[8] = {0};
                for (int b = 0; b < s.B; b++) {
                    const float *g = dout + (size_t)b * out_n + (size_t)oc * P;
                    int p = 0;
                    for (; p + 8 <= P; p += 8)
                        for (int l = 0; l < 8; l++) lane[l] += g[p + l];
                    for (; p < P; p++) lane[p - (P & ~7)] += g[p];
                }
                dbias[oc] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
            }
        }
    }
    if (s.B == 0) memset(dw, 0, sizeof(float) * (size_t)s.OC * CKK);
}
