/* Convolution forward on the cpu: for each sample, im2col into its slot of the
 * workspace, then out_b [OC][OH*OW] = bias + w [OC][C*K*K] @ col (the blocked
 * SGEMM). Samples are shared out among threads, each sample computed by one
 * thread whole: results do not depend on the thread count. */
#include "cpu_ops.h"

/* The workspace: the weights packed once for the SGEMM (forward: w, backward-
 * data: w^T), then CPU_CONV_SLOTS im2col buffers, one per sample in flight. */
size_t cpu_conv2d_packed_w_floats(dmz_conv_shape s) {
    int CKK = s.C * s.K * s.K;
    size_t fwd = cpu_sgemm_packed_a_floats(s.OC, CKK), bwd = cpu_sgemm_packed_a_floats(CKK, s.OC);
    return ((fwd > bwd ? fwd : bwd) + 15) / 16 * 16;
}

size_t cpu_conv2d_workspace(dmz_conv_shape s) {
    size_t slots = (size_t)(s.B < CPU_CONV_SLOTS ? s.B : CPU_CONV_SLOTS);
    size_t col = (size_t)s.C * s.K * s.K * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    return (cpu_conv2d_packed_w_floats(s) + slots * col) * sizeof(float);
}

void cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                        float *work) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), P = OH * OW, CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * P, col_n = (size_t)CKK * P;
    float *packed_w = work, *cols = work + cpu_conv2d_packed_w_floats(s);
#pragma omp parallel
    {
#pragma omp single
        cpu_sgemm_pack_a(s.OC, CKK, w, CKK, 1, packed_w);
        for (int b0 = 0; b0 < s.B; b0 += CPU_CONV_SLOTS) {
            int group = s.B - b0 < CPU_CONV_SLOTS ? s.B - b0 : CPU_CONV_SLOTS;
#pragma omp for schedule(static)
            for (int g = 0; g < group; g++) {
                float *col = cols + (size_t)g * col_n, *o = out + (size_t)(b0 + g) * out_n;
                cpu_im2col(col, inp + (size_t)(b0 + g) * in_n, s.C, s.H, s.W, s.K, s.pad);
                for (int oc = 0; oc < s.OC; oc++)
                    for (int p = 0; p < P; p++) o[(size_t)oc * P + p] = bias ? bias[oc] : 0.0f;
                cpu_sgemm_packed(s.OC, P, CKK, packed_w, col, P, 1, o, P, 1);
            }
        }
    }
}
