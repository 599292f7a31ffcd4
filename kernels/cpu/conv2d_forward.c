/* Convolution forward on the cpu, an implicit GEMM: for each sample, pad the
 * image into its slot of the workspace, then
 *   wide [OC][OH*Ws] = w [OC][C*K*K] @ col
 * with col's rows taken from the padded image by offset (im2col.c; copied into
 * the SGEMM's packed strips, never written out whole), and keep the OW valid
 * columns of each wide row, + bias (and ReLU). Samples are shared out among
 * threads (one slot each, no barrier between samples), each computed by one
 * thread whole: results do not depend on the thread count. */
#include "cpu_ops.h"

#include <omp.h>
#include <stdlib.h>

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

static size_t tap_table_floats(dmz_conv_shape s) {
    return round16((size_t)s.C * s.K * s.K * sizeof(ptrdiff_t) / sizeof(float));
}

static size_t packed_w_floats(dmz_conv_shape s) {
    int CKK = s.C * s.K * s.K;
    size_t fwd = cpu_sgemm_packed_a_floats(s.OC, CKK), bwd = cpu_sgemm_packed_a_floats(CKK, s.OC);
    return round16(fwd > bwd ? fwd : bwd);
}

/* At least one: a thread still lays out its slot (offsets, zeroed tails) when
 * the batch is empty. */
static size_t slots(dmz_conv_shape s) {
    int n = s.B < CPU_CONV_SLOTS ? s.B : CPU_CONV_SLOTS;
    return (size_t)(n > 0 ? n : 1);
}

/* What each op keeps in the scratch: forward a padded image and a wide output
 * per slot; backward-data a wide dout, a wide col and a padded image per slot;
 * backward-filter a partial dw^T per run of samples, and a padded image and a
 * wide dout^T per slot. */
static size_t scratch_floats(dmz_conv_shape s) {
    size_t Q = (size_t)cpu_conv_wide_cols(s), pimg = cpu_conv_padded_floats(s);
    size_t fwd = slots(s) * (pimg + round16((size_t)s.OC * Q));
    size_t bwd_data = slots(s) * cpu_conv2d_backward_data_slot_floats(s);
    size_t bwd_filter = cpu_conv2d_backward_filter_partial_floats(s) + slots(s) * cpu_conv2d_backward_filter_slot_floats(s);
    size_t most = fwd > bwd_data ? fwd : bwd_data;
    return most > bwd_filter ? most : bwd_filter;
}

/* Bytes before the bias lanes: either algorithm's own part. */
static size_t algorithm_bytes(dmz_conv_shape s) {
    size_t implicit = (tap_table_floats(s) + packed_w_floats(s) + scratch_floats(s)) * sizeof(float);
    size_t winograd = cpu_conv_winograd_workspace(s);
    return round16(implicit > winograd ? implicit : winograd);
}

size_t cpu_conv2d_workspace(dmz_conv_shape s) {
    return algorithm_bytes(s) + cpu_conv2d_bias_lanes_floats(s) * sizeof(float);
}

float *cpu_conv2d_bias_lanes_at(dmz_conv_shape s, void *work) { return (float *)((char *)work + algorithm_bytes(s)); }

cpu_conv_work cpu_conv2d_work(dmz_conv_shape s, void *work) {
    float *f = work;
    return (cpu_conv_work){.tap_off = work, .packed_w = f + tap_table_floats(s),
                           .scratch = f + tap_table_floats(s) + packed_w_floats(s)};
}

int cpu_conv2d_threads(dmz_conv_shape s) {
    int n = (int)slots(s), nt = omp_get_max_threads();
    return nt < n ? nt : n;
}

/* Bias, ReLU and 2x2 pool over the wide rows of one sample: out and code
 * [OC][OH/2][OW/2]. */
static void pool_epilogue(float *out, uint8_t *code, const float *wide, const float *bias, dmz_conv_shape s) {
    int OH2 = dmz_conv_out_h(s) / 2, OW2 = dmz_conv_out_w(s) / 2, Ws = cpu_conv_wide_row(s);
    int Q = cpu_conv_wide_cols(s);
    for (int oc = 0; oc < s.OC; oc++)
        for (int y = 0; y < OH2; y++) {
            const float *r0 = wide + (size_t)oc * Q + (size_t)2 * y * Ws;
            size_t o = ((size_t)oc * OH2 + y) * OW2;
            cpu_relu_pool_rows(out + o, code + o, r0, r0 + Ws, bias ? bias[oc] : 0.0f, OW2);
        }
}

/* out = conv + bias (ReLU if asked); with code, ReLU and the 2x2 pool too:
 * out and code are then the pool's. */
static void forward(float *out, uint8_t *code, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                    float *work, int relu) {
    if (cpu_conv_winograd_fits(s)) {
        if (code) cpu_conv_winograd_forward_pool(out, code, inp, w, bias, s, work);
        else cpu_conv_winograd_forward(out, inp, w, bias, relu, s, work);
        return;
    }
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), Ws = cpu_conv_wide_row(s), Q = cpu_conv_wide_cols(s);
    int CKK = s.C * s.K * s.K;
    size_t in_n = (size_t)s.C * s.H * s.W, out_n = (size_t)s.OC * OH * OW, pimg_n = cpu_conv_padded_floats(s);
    size_t slot_n = pimg_n + round16((size_t)s.OC * Q);
    cpu_conv_work ws = cpu_conv2d_work(s, work);
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
        float *pimg = ws.scratch + (size_t)omp_get_thread_num() * slot_n, *wide = pimg + pimg_n;
#pragma omp single
        {
            cpu_sgemm_pack_a(s.OC, CKK, w, CKK, 1, ws.packed_w);
            cpu_conv_tap_offsets(ws.tap_off, s);
        }
#pragma omp for schedule(static)
        for (int b = 0; b < s.B; b++) {
            float *o = out + (size_t)b * out_n;
            cpu_conv_pad_image(pimg, inp + (size_t)b * in_n, s);
            cpu_sgemm_packed_rows_b(s.OC, Q, CKK, ws.packed_w, pimg, ws.tap_off, wide, Q, 0);
            if (code) {
                size_t pooled_n = out_n / 4;
                pool_epilogue(out + (size_t)b * pooled_n, code + (size_t)b * pooled_n, wide, bias, s);
                continue;
            }
            /* the bias added to the finished sum as the valid columns are kept */
            for (int oc = 0; oc < s.OC; oc++) {
                float bo = bias ? bias[oc] : 0.0f;
                for (int y = 0; y < OH; y++) {
                    const float *src = wide + (size_t)oc * Q + (size_t)y * Ws;
                    float *dst = o + ((size_t)oc * OH + y) * OW;
                    if (relu) /* relu_forward's own comparison */
                        for (int x = 0; x < OW; x++) dst[x] = src[x] + bo > 0.0f ? src[x] + bo : 0.0f;
                    else
                        for (int x = 0; x < OW; x++) dst[x] = src[x] + bo;
                }
            }
        }
    }
}

void cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                        float *work) {
    forward(out, NULL, inp, w, bias, s, work, 0);
}

/* The same, then ReLU: bit-identical to cpu_conv2d_forward + cpu_relu_forward. */
void cpu_conv2d_forward_relu(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                             float *work) {
    forward(out, NULL, inp, w, bias, s, work, 1);
}

/* The same, then the 2x2 pool (an even output size): bit-identical to
 * cpu_conv2d_forward_relu + cpu_maxpool2x2_forward, and the pool's codes. */
void cpu_conv2d_relu_pool_forward(float *out, uint8_t *code, const float *inp, const float *w, const float *bias,
                                  dmz_conv_shape s, float *work) {
    if (dmz_conv_out_h(s) % 2 || dmz_conv_out_w(s) % 2) abort(); /* a caller bug: the model pools even sizes only */
    forward(out, code, inp, w, bias, s, work, 1);
}
