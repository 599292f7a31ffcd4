/* Convolution backward-data on the cpu: for each sample, dcol = w^T @ dout_b
 * ([C*K*K][OC] @ [OC][OH*OW], the blocked SGEMM) into its workspace slot, then
 * col2im (a gather: each input element summed by one thread in a fixed order)
 * into dinp_b. One thread per sample: bit-identical across thread counts. */
#include "cpu_ops.h"

void cpu_conv2d_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), P = OH * OW, CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * P, col_n = (size_t)CKK * P;
    float *packed_wt = work, *cols = work + cpu_conv2d_packed_w_floats(s);
#pragma omp parallel
    {
#pragma omp single
        cpu_sgemm_pack_a(CKK, s.OC, w, 1, CKK, packed_wt); /* A(i=ckk, k=oc) = w[oc][ckk] */
        for (int b0 = 0; b0 < s.B; b0 += CPU_CONV_SLOTS) {
            int group = s.B - b0 < CPU_CONV_SLOTS ? s.B - b0 : CPU_CONV_SLOTS;
#pragma omp for schedule(static)
            for (int g = 0; g < group; g++) {
                float *col = cols + (size_t)g * col_n;
                cpu_sgemm_packed(CKK, P, s.OC, packed_wt, dout + (size_t)(b0 + g) * out_n, P, 1, col, P, 0);
                cpu_col2im(dinp + (size_t)(b0 + g) * in_n, col, s.C, s.H, s.W, s.K, s.pad);
            }
        }
    }
}
