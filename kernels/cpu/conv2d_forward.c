/* Convolution forward on the cpu: for each sample, im2col into its slot of the
 * workspace, then out_b [OC][OH*OW] = bias + w [OC][C*K*K] @ col (the blocked
 * SGEMM). Samples are shared out among threads (one slot each, no barrier
 * between samples), each sample computed by one thread whole: results do not
 * depend on the thread count. */
#include "cpu_ops.h"

#include <omp.h>

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

int cpu_conv2d_threads(dmz_conv_shape s) {
    int slots = s.B < CPU_CONV_SLOTS ? s.B : CPU_CONV_SLOTS, nt = omp_get_max_threads();
    return nt < slots ? nt : slots > 0 ? slots : 1;
}

static void forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s, float *work,
                    int relu) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), P = OH * OW, CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * P, col_n = (size_t)CKK * P;
    float *packed_w = work, *cols = work + cpu_conv2d_packed_w_floats(s);
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
        float *col = cols + (size_t)omp_get_thread_num() * col_n; /* this thread's slot */
#pragma omp single
        cpu_sgemm_pack_a(s.OC, CKK, w, CKK, 1, packed_w);
#pragma omp for schedule(static)
        for (int b = 0; b < s.B; b++) {
            float *o = out + (size_t)b * out_n;
            cpu_im2col(col, inp + (size_t)b * in_n, s.C, s.H, s.W, s.K, s.pad);
            for (int oc = 0; oc < s.OC; oc++)
                for (int p = 0; p < P; p++) o[(size_t)oc * P + p] = bias ? bias[oc] : 0.0f;
            cpu_sgemm_packed(s.OC, P, CKK, packed_w, col, P, 1, o, P, 1);
            if (relu) /* while the sample is in cache; relu_forward's own comparison */
                for (size_t i = 0; i < out_n; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
        }
    }
}

void cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                        float *work) {
    forward(out, inp, w, bias, s, work, 0);
}

/* The same, then ReLU: bit-identical to cpu_conv2d_forward + cpu_relu_forward. */
void cpu_conv2d_forward_relu(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                             float *work) {
    forward(out, inp, w, bias, s, work, 1);
}
