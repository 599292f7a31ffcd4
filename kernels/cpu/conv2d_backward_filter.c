/* Convolution backward-filter on the cpu: dw [OC][C*K*K] = sum over samples,
 * in batch order, of dout_b [OC][OH*OW] @ col_b^T; dbias[oc] = sum of dout over
 * samples and positions. The batch sum is never split across threads: each
 * thread owns a band of dw's columns (filter taps, whole register strips),
 * im2cols just those rows of col for each sample into its own slot, and adds
 * the samples in order. No barrier between samples; bit-identical across
 * thread counts (a column's sum does not depend on where the band starts). */
#include "cpu_ops.h"

#include <omp.h>

void cpu_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                float *work) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), P = OH * OW, CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * P, col_n = (size_t)CKK * P;
    float *cols = work + cpu_conv2d_packed_w_floats(s);
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), strip = cpu_sgemm_strip_cols();
        int strips = (CKK + strip - 1) / strip, r0 = strips * t / nt * strip, r1 = strips * (t + 1) / nt * strip;
        if (r1 > CKK) r1 = CKK;
        float *col = cols + (size_t)t * col_n; /* rows [r0, r1) of col fit in a slot */
        for (int b = 0; r0 < r1 && b < s.B; b++) {
            cpu_im2col_rows(col, inp + (size_t)b * in_n, s.C, s.H, s.W, s.K, s.pad, r0, r1);
            /* dw[:, r0:r1] (+)= dout_b @ col_b[r0:r1]^T: B(k=p, j=ckk) = col[ckk][p] */
            cpu_sgemm(s.OC, r1 - r0, P, dout + (size_t)b * out_n, P, 1, col, 1, P, dw + r0, CKK, b > 0);
        }
        if (s.B == 0)
            for (int oc = 0; oc < s.OC; oc++)
                for (int r = r0; r < r1; r++) dw[(size_t)oc * CKK + r] = 0.0f;
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
}
