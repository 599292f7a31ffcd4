/* Convolution backward-filter on the cpu, an implicit GEMM computed transposed:
 *   dw^T [C*K*K][OC] = sum over samples, in batch order, of col_b @ dout_b^T
 * with col's rows read in place from the padded image (im2col.c) and dout_b^T
 * laid out wide (zero at the discarded columns, so they add nothing); then
 * dw = (dw^T)^T. dbias[oc] = sum of dout over samples and positions.
 * The batch sum is never split across threads: the team works on one sample
 * at a time, each thread on its own rows of dw^T (filter taps, whole register
 * strips), and adds the samples in order. Each element's sum is the one the
 * untransposed product would make: bit-identical across thread counts. */
#include "cpu_ops.h"

#include <omp.h>

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* doutT [q][oc] = dout_b [oc][y*OW + x] at q = y*Ws + x, 0 for x >= OW: row y. */
static void wide_transpose(float *doutT, const float *dout_b, dmz_conv_shape s, int y) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), Ws = cpu_conv_wide_row(s);
    float *dst = doutT + (size_t)y * Ws * s.OC;
    cpu_transpose(dst, s.OC, dout_b + (size_t)y * OW, (ptrdiff_t)OH * OW, s.OC, OW);
    for (size_t i = (size_t)OW * s.OC; i < (size_t)Ws * s.OC; i++) dst[i] = 0.0f;
}

/* dbias[oc]: 8 running sums (position mod 8, over the batch), then added in a
 * fixed order: vectorisable, and the same for any thread count. */
static float bias_grad(const float *dout, int oc, dmz_conv_shape s) {
    int P = dmz_conv_out_h(s) * dmz_conv_out_w(s);
    float lane[8] = {0};
    for (int b = 0; b < s.B; b++) {
        const float *g = dout + ((size_t)b * s.OC + oc) * P;
        int p = 0;
        for (; p + 8 <= P; p += 8)
            for (int l = 0; l < 8; l++) lane[l] += g[p + l];
        for (; p < P; p++) lane[p - (P & ~7)] += g[p];
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

void cpu_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                float *work) {
    if (cpu_conv_winograd_fits(s)) {
        cpu_conv_winograd_backward_filter(dw, dout, inp, s, work);
        if (dbias) {
#pragma omp parallel for schedule(static) num_threads(cpu_conv2d_threads(s))
            for (int oc = 0; oc < s.OC; oc++) dbias[oc] = bias_grad(dout, oc, s);
        }
        return;
    }
    int OH = dmz_conv_out_h(s), Q = cpu_conv_wide_cols(s), CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * OH * dmz_conv_out_w(s);
    size_t pimg_n = cpu_conv_padded_floats(s), pair_n = pimg_n + round16((size_t)Q * s.OC);
    cpu_conv_work ws = cpu_conv2d_work(s, work);
    float *dwT = ws.scratch, *pairs = dwT + round16((size_t)CKK * s.OC);
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
#pragma omp single
        cpu_conv_tap_offsets(ws.tap_off, s);
        for (int b = 0; b < s.B; b++) {
            /* two buffers in turn: the barrier that ends sample b's layout also
             * means every thread is done with sample b-1's product */
            float *pimg = pairs + (size_t)(b & 1) * pair_n, *doutT = pimg + pimg_n;
#pragma omp single nowait
            cpu_conv_pad_image(pimg, inp + (size_t)b * in_n, s);
#pragma omp for schedule(static)
            for (int y = 0; y < OH; y++) wide_transpose(doutT, dout + (size_t)b * out_n, s, y);
            cpu_sgemm_rows_a_team(CKK, s.OC, Q, pimg, ws.tap_off, doutT, s.OC, 1, dwT, s.OC, b > 0);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int oc = 0; oc < s.OC; oc++)
            for (int r = 0; r < CKK; r++) dw[(size_t)oc * CKK + r] = s.B > 0 ? dwT[(size_t)r * s.OC + oc] : 0.0f;
        if (dbias) {
#pragma omp for schedule(static)
            for (int oc = 0; oc < s.OC; oc++) dbias[oc] = bias_grad(dout, oc, s);
        }
    }
}
