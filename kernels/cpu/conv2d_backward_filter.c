/* Convolution backward-filter on the cpu, an implicit GEMM computed transposed:
 *   dw^T [C*K*K][OC] = sum over samples of col_b @ dout_b^T
 * with col's rows read in place from the padded image (im2col.c) and dout_b^T
 * laid out wide (zero at the discarded columns, so they add nothing); then
 * dw = (dw^T)^T. dbias[oc] = sum of dout over samples and positions (lanes
 * per sample, then in batch order: cpu_conv2d_bias_lanes).
 * The batch is cut into CPU_CONV_FILTER_RUNS runs of consecutive samples (a
 * function of the batch size alone); one thread sums a run's samples in order
 * into its partial dw^T, and the partials are added in run order at the end:
 * bit-identical across thread counts, with no barrier per sample (conv1's 25
 * filter taps were too few rows to share out). 5x5 filters with 8 or more
 * channels each side go to Winograd (conv2d_winograd.c). */
#include "cpu_ops.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* doutT [q][oc] = dout_b [oc][y*OW + x] at q = y*Ws + x, 0 for x >= OW: row y. */
static void wide_transpose(float *doutT, const float *dout_b, dmz_conv_shape s, int y) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s), Ws = cpu_conv_wide_row(s);
    float *dst = doutT + (size_t)y * Ws * s.OC;
    cpu_transpose(dst, s.OC, dout_b + (size_t)y * OW, (ptrdiff_t)OH * OW, s.OC, OW);
    for (size_t i = (size_t)OW * s.OC; i < (size_t)Ws * s.OC; i++) dst[i] = 0.0f;
}

/* dbias in two steps, the same for any thread count: while a sample's dout is
 * at hand, 8 running sums per channel (position mod 8: vectorisable); at the
 * end, the samples' sums added in batch order, then the 8 lanes in a fixed
 * tree. */
size_t cpu_conv2d_bias_lanes_floats(dmz_conv_shape s) { return (size_t)(s.B > 0 ? s.B : 1) * s.OC * 8; }

void cpu_conv2d_bias_lanes(float *lanes, const float *dout_b, dmz_conv_shape s) {
    int P = dmz_conv_out_h(s) * dmz_conv_out_w(s);
    for (int oc = 0; oc < s.OC; oc++) {
        const float *g = dout_b + (size_t)oc * P;
        float lane[8] = {0};
        int p = 0;
        for (; p + 8 <= P; p += 8)
            for (int l = 0; l < 8; l++) lane[l] += g[p + l];
        for (; p < P; p++) lane[p - (P & ~7)] += g[p];
        memcpy(lanes + (size_t)oc * 8, lane, sizeof lane);
    }
}

static void bias_from_lanes(float *dbias, const float *lanes, dmz_conv_shape s) {
#pragma omp parallel for schedule(static) num_threads(cpu_conv2d_threads(s))
    for (int oc = 0; oc < s.OC; oc++) {
        float lane[8] = {0};
        for (int b = 0; b < s.B; b++)
            for (int l = 0; l < 8; l++) lane[l] += lanes[((size_t)b * s.OC + oc) * 8 + l];
        dbias[oc] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
}

/* Runs of samples whose products one thread sums: a function of the batch
 * alone (never of the thread count). */
static int sample_runs(dmz_conv_shape s) { return s.B < CPU_CONV_FILTER_RUNS ? s.B : CPU_CONV_FILTER_RUNS; }

/* The partial dw^T of each run (room for one when the batch is empty). */
size_t cpu_conv2d_backward_filter_partial_floats(dmz_conv_shape s) {
    int runs = sample_runs(s);
    return (size_t)(runs > 0 ? runs : 1) * round16((size_t)s.C * s.K * s.K * s.OC);
}

/* A slot: the padded image and the wide dout^T of the sample in hand, and
 * room for its dout when it comes from a pool's codes. */
size_t cpu_conv2d_backward_filter_slot_floats(dmz_conv_shape s) {
    return cpu_conv_padded_floats(s) + round16((size_t)cpu_conv_wide_cols(s) * s.OC) + cpu_conv2d_dout_floats(s);
}

size_t cpu_conv2d_dout_floats(dmz_conv_shape s) {
    return round16((size_t)s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s));
}

/* Sample b's dout: in place, or spread from the pool's gradient by its codes
 * into `room` (the conv followed by ReLU and pool, conv2d_relu_pool_forward). */
const float *cpu_conv2d_sample_dout(const cpu_conv_dout *d, int b, float *room) {
    int OH = dmz_conv_out_h(d->s), OW = dmz_conv_out_w(d->s);
    size_t n = (size_t)d->s.OC * OH * OW;
    if (!d->code) return d->dout + (size_t)b * n;
    cpu_maxpool2x2_backward_codes_planes(room, d->dout + (size_t)b * n / 4, d->code + (size_t)b * n / 4, d->s.OC, OH,
                                         OW);
    return room;
}

/* dw by the implicit GEMM: runs of samples, then the runs added in order;
 * each sample's bias lanes on the way (lanes NULL: none). */
static void implicit_filter_gradient(float *dw, float *lanes, const cpu_conv_dout *d, const float *inp,
                                     dmz_conv_shape s, float *work) {
    int OH = dmz_conv_out_h(s), Q = cpu_conv_wide_cols(s), CKK = s.C * s.K * s.K, runs = sample_runs(s);
    size_t in_n = (size_t)s.C * s.H * s.W, dwT_n = round16((size_t)CKK * s.OC);
    size_t pimg_n = cpu_conv_padded_floats(s), slot_n = cpu_conv2d_backward_filter_slot_floats(s);
    cpu_conv_work ws = cpu_conv2d_work(s, work);
    float *partial = ws.scratch, *slots = partial + cpu_conv2d_backward_filter_partial_floats(s);
#pragma omp parallel num_threads(cpu_conv2d_threads(s))
    {
        float *pimg = slots + (size_t)omp_get_thread_num() * slot_n, *doutT = pimg + pimg_n;
        float *room = doutT + round16((size_t)Q * s.OC);
#pragma omp single
        cpu_conv_tap_offsets(ws.tap_off, s);
        /* each run: dw^T of its samples, in batch order, by one thread */
#pragma omp for schedule(static)
        for (int r = 0; r < runs; r++) {
            int b0 = (int)((long)s.B * r / runs), b1 = (int)((long)s.B * (r + 1) / runs);
            for (int b = b0; b < b1; b++) {
                const float *dout_b = cpu_conv2d_sample_dout(d, b, room);
                if (lanes) cpu_conv2d_bias_lanes(lanes + (size_t)b * s.OC * 8, dout_b, s);
                cpu_conv_pad_image(pimg, inp + (size_t)b * in_n, s);
                for (int y = 0; y < OH; y++) wide_transpose(doutT, dout_b, s, y);
                cpu_sgemm_rows_a(CKK, s.OC, Q, pimg, ws.tap_off, doutT, s.OC, 1, partial + (size_t)r * dwT_n, s.OC,
                                 b > b0);
            }
        }
        /* the runs added in order, and transposed: dw[oc][r] = sum of dw^T[r][oc] */
#pragma omp for schedule(static)
        for (int oc = 0; oc < s.OC; oc++)
            for (int r = 0; r < CKK; r++) {
                float sum = runs > 0 ? partial[(size_t)r * s.OC + oc] : 0.0f;
                for (int k = 1; k < runs; k++) sum += partial[(size_t)k * dwT_n + (size_t)r * s.OC + oc];
                dw[(size_t)oc * CKK + r] = sum;
            }
    }
}

static void filter_gradient(float *dw, float *dbias, const cpu_conv_dout *d, const float *inp, dmz_conv_shape s,
                            float *work) {
    float *lanes = dbias ? cpu_conv2d_bias_lanes_at(s, work) : NULL;
    if (cpu_conv_winograd_fits(s)) cpu_conv_winograd_backward_filter(dw, lanes, d, inp, s, work);
    else implicit_filter_gradient(dw, lanes, d, inp, s, work);
    if (dbias) bias_from_lanes(dbias, lanes, s);
}

void cpu_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                float *work) {
    cpu_conv_dout d = {.dout = dout, .s = s};
    filter_gradient(dw, dbias, &d, inp, s, work);
}

/* The same from the gradient of the pool that follows the conv and its ReLU
 * (conv2d_relu_pool_forward's codes): each sample's dout spread in its slot,
 * the full-size one never written. The same bits as
 * cpu_maxpool2x2_backward_codes then cpu_conv2d_backward_filter. */
void cpu_conv2d_backward_filter_pooled(float *dw, float *dbias, const float *dpool, const uint8_t *code,
                                       const float *inp, dmz_conv_shape s, float *work) {
    if (dmz_conv_out_h(s) % 2 || dmz_conv_out_w(s) % 2) abort(); /* a caller bug: pools of even sizes only */
    cpu_conv_dout d = {.dout = dpool, .code = code, .s = s};
    filter_gradient(dw, dbias, &d, inp, s, work);
}
