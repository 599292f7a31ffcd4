/* Convolution backward-data on the cpu: for each sample, dcol = w^T @ dout_b
 * ([C*K*K][OC] @ [OC][OH*OW], the blocked SGEMM) into its workspace slot, then
 * col2im (a gather: each input element summed by one thread in a fixed order)
 * into dinp_b. One thread per sample: bit-identical across thread counts. */
#include "cpu_ops.h"

#include <omp.h>

void cpu_conv2d_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), P = OH * OW, CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * P, col_n = (size_t)CKK * P;
    cpu_conv_work ws = cpu_conv2d_work(s, work);
    float *packed_wt = ws.packed_w, *cols = ws.scratch;
    col_n = (col_n + 15) / 16 * 16;
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
        float *col = cols + (size_t)omp_get_thread_num() * col_n; /* this thread's slot */
#pragma omp single
        cpu_sgemm_pack_a(CKK, s.OC, w, 1, CKK, packed_wt); /* A(i=ckk, k=oc) = w[oc][ckk] */
#pragma omp for schedule(static)
        for (int b = 0; b < s.B; b++) {
            cpu_sgemm_packed(CKK, P, s.OC, packed_wt, dout + (size_t)b * out_n, P, 1, col, P, 0);
            cpu_col2im(dinp + (size_t)b * in_n, col, s.C, s.H, s.W, s.K, s.pad);
        }
    }
}
