/* Convolution backward-data on the cpu: for each sample, dout_b laid out wide
 * (zero at the discarded columns, im2col.c), dcol = w^T @ dout_wide
 * ([C*K*K][OC] @ [OC][OH*Ws], the blocked SGEMM, taking dout_wide by rows),
 * then the adjoint of the implicit im2col (cpu_col2im_wide: each input element
 * summed by one thread, over the taps in order) into dinp_b. One thread per
 * sample, each with its slot of the workspace: bit-identical across thread
 * counts. */
#include "cpu_ops.h"

#include <omp.h>

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* Row offsets of dout_wide: k * Q. */
static void wide_row_offsets(ptrdiff_t *off, int rows, int Q) {
    for (int k = 0; k < rows; k++) off[k] = (ptrdiff_t)k * Q;
}

static void widen(float *dout_wide, const float *dout_b, dmz_conv_shape s) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), Ws = cpu_conv_wide_row(s);
    for (int oc = 0; oc < s.OC; oc++)
        for (int y = 0; y < OH; y++) {
            float *dst = dout_wide + ((size_t)oc * OH + y) * Ws;
            const float *src = dout_b + ((size_t)oc * OH + y) * OW;
            for (int x = 0; x < OW; x++) dst[x] = src[x];
            for (int x = OW; x < Ws; x++) dst[x] = 0.0f;
        }
}

size_t cpu_conv2d_backward_data_slot_floats(dmz_conv_shape s) {
    size_t CKK = (size_t)s.C * s.K * s.K, Q = (size_t)cpu_conv_wide_cols(s);
    return round16((size_t)s.OC * Q + (size_t)cpu_sgemm_strip_cols()) + round16(CKK * Q) +
           cpu_conv_padded_floats(s) + round16((size_t)s.OC * sizeof(ptrdiff_t) / sizeof(float));
}

void cpu_conv2d_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
    if (cpu_conv_winograd_fits(s)) {
        cpu_conv_winograd_backward_data(dinp, dout, w, s, work);
        return;
    }
    int Q = cpu_conv_wide_cols(s), CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    size_t wide_n = round16((size_t)s.OC * Q + (size_t)cpu_sgemm_strip_cols()), dcol_n = round16((size_t)CKK * Q);
    size_t slot_n = cpu_conv2d_backward_data_slot_floats(s);
    cpu_conv_work ws = cpu_conv2d_work(s, work);
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
        float *dout_wide = ws.scratch + (size_t)omp_get_thread_num() * slot_n, *dcol = dout_wide + wide_n;
        float *pimg = dcol + dcol_n;
        ptrdiff_t *row_off = (ptrdiff_t *)(pimg + cpu_conv_padded_floats(s));
        wide_row_offsets(row_off, s.OC, Q);
        for (size_t i = (size_t)s.OC * Q; i < wide_n; i++) dout_wide[i] = 0.0f; /* the last row's overread */
#pragma omp single
        {
            cpu_sgemm_pack_a(CKK, s.OC, w, 1, CKK, ws.packed_w); /* A(i=ckk, k=oc) = w[oc][ckk] */
            cpu_conv_tap_offsets(ws.tap_off, s);
        }
#pragma omp for schedule(static)
        for (int b = 0; b < s.B; b++) {
            widen(dout_wide, dout + (size_t)b * out_n, s);
            cpu_sgemm_packed_rows_b(CKK, Q, s.OC, ws.packed_w, dout_wide, row_off, dcol, Q, 0);
            cpu_col2im_wide(dinp + (size_t)b * in_n, dcol, ws.tap_off, s, pimg);
        }
    }
}
