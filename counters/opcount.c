/* counters/opcount.c — the counted backend: every op of kernels/backend.h
 * forwarded to the real backend, with its calls, FLOP and bytes worked out
 * from the shapes it is given, and a bracket around it for kernel timing.
 *
 * FLOP: multiply-adds count 2 (GEMM and convolution: 2*M*N*K), every other
 * elementwise operation 1 (exp, compare, divide, sqrt alike). Bytes: each
 * input read once and each output written once (floats 4, pixels 1, labels
 * 4): the traffic a kernel cannot avoid, so achieved GB/s is a lower bound.
 * Memory moves (upload, download, copy) count bytes only. */
#include "counters/counters.h"
#include "counters/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_U8, OP_DENSE_F, OP_DENSE_B, OP_RELU_F, OP_RELU_B, OP_SMX_F, OP_SMX_B, OP_REDUCE, OP_CORRECT, OP_ADAM,
       OP_CONV_F, OP_CONV_BD, OP_CONV_BF, OP_POOL_F, OP_POOL_B, OP_HTOD, OP_DTOH, OP_DTOD,
       OP_CONV_FR, OP_DENSE_FR, OP_GATHER, OP_SMX_T, OP_ADAM_S, OP_POOL_BR, OP_CONV_FRP, OP_POOL_BC, OP_CONV_BFP, N_OPS };

static const char *const op_names[N_OPS] = {
    "u8_to_float", "dense_forward", "dense_backward", "relu_forward", "relu_backward", "softmax_xent_forward",
    "softmax_xent_backward", "reduce_sum", "count_correct", "adam_update", "conv2d_forward",
    "conv2d_backward_data", "conv2d_backward_filter", "maxpool2x2_forward", "maxpool2x2_backward",
    "memcpy_htod", "memcpy_dtoh", "memcpy_dtod",
    "conv2d_forward_relu", "dense_forward_relu", "gather_batch", "softmax_xent_train", "adam_update_step",
    "maxpool2x2_backward_relu", "conv2d_relu_pool_forward", "maxpool2x2_backward_codes",
    "conv2d_backward_filter_pooled"};

static const dmz_backend *inner;
static dmz_backend counted;
static dmz_op_total totals[N_OPS];

/* Call records for CUPTI's attribution of kernels to calls (only while timing). */
typedef struct call_rec { int op; double flops, bytes; } call_rec;
static call_rec *calls;
static uint64_t n_calls, cap_calls;

const char *dmz_opcount_name(int op) { return op >= 0 && op < N_OPS ? op_names[op] : "?"; }

void dmz_opcount_call_of(uint64_t call, int *op, double *flops, double *bytes) {
    if (call >= 1 && call <= n_calls) {
        const call_rec *c = &calls[call - 1];
        *op = c->op, *flops = c->flops, *bytes = c->bytes;
    } else {
        *op = -1, *flops = *bytes = NAN;
    }
}

void dmz_opcount_add_event_ms(int op, double ms) {
    if (op < 0 || op >= N_OPS) return;
    totals[op].event_ms = isnan(totals[op].event_ms) ? ms : totals[op].event_ms + ms;
}

static uint64_t begin(int op, double flops, double bytes) {
    dmz_op_total *t = &totals[op];
    t->calls += 1, t->flops += flops, t->bytes += bytes;
    uint64_t id = 0;
    if (dmz_kernels_active()) {
        if (n_calls == cap_calls) {
            uint64_t cap = cap_calls ? 2 * cap_calls : 4096;
            call_rec *g = realloc(calls, cap * sizeof *g);
            if (g) calls = g, cap_calls = cap;
        }
        if (n_calls < cap_calls) {
            calls[n_calls++] = (call_rec){op, flops, bytes};
            id = n_calls;
        }
        dmz_kernels_op_begin(op, id);
    }
    return id;
}

static void end(int op, uint64_t id) {
    if (dmz_kernels_active()) dmz_kernels_op_end(op, id);
}

#define F4 4.0 /* bytes per float */

static void w_upload(void *dst, const void *src, size_t bytes) {
    uint64_t id = begin(OP_HTOD, 0, (double)bytes);
    inner->upload(dst, src, bytes);
    end(OP_HTOD, id);
}
static void w_download(void *dst, const void *src, size_t bytes) {
    uint64_t id = begin(OP_DTOH, 0, (double)bytes);
    inner->download(dst, src, bytes);
    end(OP_DTOH, id);
}
static void w_copy(void *dst, const void *src, size_t bytes) {
    uint64_t id = begin(OP_DTOD, 0, 2.0 * (double)bytes);
    inner->copy(dst, src, bytes);
    end(OP_DTOD, id);
}
static void w_u8(float *out, const uint8_t *in, size_t n, float scale) {
    uint64_t id = begin(OP_U8, (double)n, (double)n * (1 + F4));
    inner->u8_to_float(out, in, n, scale);
    end(OP_U8, id);
}
static void w_dense_f(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    double b = B, c = C, oc = OC;
    uint64_t id = begin(OP_DENSE_F, 2 * b * c * oc + b * oc, F4 * (b * c + c * oc + oc + b * oc));
    inner->dense_forward(out, inp, w, bias, B, C, OC);
    end(OP_DENSE_F, id);
}
static void w_dense_fr(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    double b = B, c = C, oc = OC;
    uint64_t id = begin(OP_DENSE_FR, 2 * b * c * oc + 2 * b * oc, F4 * (b * c + c * oc + oc + b * oc));
    inner->dense_forward_relu(out, inp, w, bias, B, C, OC);
    end(OP_DENSE_FR, id);
}
static void w_gather(float *input, int32_t *labels, const uint8_t *images, const uint8_t *labels_all,
                     const uint32_t *order, const dmz_step_state *st, int offset, int n, int pixels, float scale) {
    double px = (double)n * pixels;
    uint64_t id = begin(OP_GATHER, px, px * (1 + F4) + (double)n * (1 + 4 + 4));
    inner->gather_batch(input, labels, images, labels_all, order, st, offset, n, pixels, scale);
    end(OP_GATHER, id);
}
static void w_smx_t(float *dlogits, float *loss_log, int log_len, const float *logits, const int32_t *labels,
                    dmz_step_state *st, int advance, int B, int V) {
    double bv = (double)B * V;
    uint64_t id = begin(OP_SMX_T, 5 * bv + 3.0 * B, F4 * (2 * bv + B + 1));
    inner->softmax_xent_train(dlogits, loss_log, log_len, logits, labels, st, advance, B, V);
    end(OP_SMX_T, id);
}
static void w_adam_s(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp,
                     const dmz_step_state *st) {
    uint64_t id = begin(OP_ADAM_S, 12.0 * (double)n, F4 * 7 * (double)n);
    inner->adam_update_step(params, grads, m, v, n, hp, st);
    end(OP_ADAM_S, id);
}
static void w_dense_b(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int B,
                      int C, int OC) {
    double b = B, c = C, oc = OC, d = dinp != NULL;
    uint64_t id = begin(OP_DENSE_B, 2 * b * c * oc * (1 + d) + b * oc,
                        F4 * (b * oc + b * c + c * oc + oc + d * (c * oc + b * c)));
    inner->dense_backward(dinp, dw, dbias, dout, inp, w, B, C, OC);
    end(OP_DENSE_B, id);
}
static void w_relu_f(float *out, const float *inp, size_t n) {
    uint64_t id = begin(OP_RELU_F, (double)n, 2 * F4 * (double)n);
    inner->relu_forward(out, inp, n);
    end(OP_RELU_F, id);
}
static void w_relu_b(float *dinp, const float *dout, const float *out, size_t n) {
    uint64_t id = begin(OP_RELU_B, (double)n, 3 * F4 * (double)n);
    inner->relu_backward(dinp, dout, out, n);
    end(OP_RELU_B, id);
}
static void w_smx_f(float *probs, float *losses, const float *logits, const int32_t *labels, int B, int V) {
    double bv = (double)B * V;
    uint64_t id = begin(OP_SMX_F, 4 * bv + 2.0 * B, F4 * (2 * bv + 2.0 * B));
    inner->softmax_xent_forward(probs, losses, logits, labels, B, V);
    end(OP_SMX_F, id);
}
static void w_smx_b(float *dlogits, const float *probs, const int32_t *labels, int B, int V) {
    double bv = (double)B * V;
    uint64_t id = begin(OP_SMX_B, bv, F4 * (2 * bv + B));
    inner->softmax_xent_backward(dlogits, probs, labels, B, V);
    end(OP_SMX_B, id);
}
static void w_reduce(float *out, const float *in, size_t n) {
    uint64_t id = begin(OP_REDUCE, (double)n, F4 * ((double)n + 1));
    inner->reduce_sum(out, in, n);
    end(OP_REDUCE, id);
}
static void w_correct(float *out, const float *probs, const int32_t *labels, int B, int V) {
    double bv = (double)B * V;
    uint64_t id = begin(OP_CORRECT, bv, F4 * (bv + B + 1));
    inner->count_correct(out, probs, labels, B, V);
    end(OP_CORRECT, id);
}
static void w_adam(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp) {
    /* m: 3, v: 4, the step: sqrt, add, divide, multiply, subtract = 12 per parameter */
    uint64_t id = begin(OP_ADAM, 12.0 * (double)n, F4 * 7 * (double)n);
    inner->adam_update(params, grads, m, v, n, hp);
    end(OP_ADAM, id);
}
static double conv_macs(dmz_conv_shape s) {
    return (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s) * s.C * s.K * s.K;
}
static double conv_io(dmz_conv_shape s, int in, int filt, int out) {
    return F4 * (in * (double)s.B * s.C * s.H * s.W + filt * ((double)s.OC * s.C * s.K * s.K + s.OC) +
                 out * (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s));
}
static void w_conv_f(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s, float *work) {
    uint64_t id = begin(OP_CONV_F, 2 * conv_macs(s) + (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s),
                        conv_io(s, 1, 1, 1));
    inner->conv2d_forward(out, inp, w, bias, s, work);
    end(OP_CONV_F, id);
}
static void w_conv_fr(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                      float *work) {
    double outs = (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    uint64_t id = begin(OP_CONV_FR, 2 * conv_macs(s) + 2 * outs, conv_io(s, 1, 1, 1));
    inner->conv2d_forward_relu(out, inp, w, bias, s, work);
    end(OP_CONV_FR, id);
}
static void w_conv_bd(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
    uint64_t id = begin(OP_CONV_BD, 2 * conv_macs(s), conv_io(s, 1, 1, 1));
    inner->conv2d_backward_data(dinp, dout, w, s, work);
    end(OP_CONV_BD, id);
}
static void w_conv_bf(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s, float *work) {
    double outs = (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    uint64_t id = begin(OP_CONV_BF, 2 * conv_macs(s) + (dbias ? outs : 0), conv_io(s, 1, 1, 1));
    inner->conv2d_backward_filter(dw, dbias, dout, inp, s, work);
    end(OP_CONV_BF, id);
}
static void w_pool_f(float *out, const float *inp, int B, int C, int H, int W) {
    double o = (double)B * C * dmz_pool_out(H) * dmz_pool_out(W), i = (double)B * C * H * W;
    uint64_t id = begin(OP_POOL_F, 3 * o, F4 * (i + o));
    inner->maxpool2x2_forward(out, inp, B, C, H, W);
    end(OP_POOL_F, id);
}
static void w_pool_b(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    double o = (double)B * C * dmz_pool_out(H) * dmz_pool_out(W), i = (double)B * C * H * W;
    uint64_t id = begin(OP_POOL_B, 3 * o, F4 * (2 * i + o));
    inner->maxpool2x2_backward(dinp, dout, inp, B, C, H, W);
    end(OP_POOL_B, id);
}
static void w_pool_br(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    double o = (double)B * C * dmz_pool_out(H) * dmz_pool_out(W), i = (double)B * C * H * W;
    uint64_t id = begin(OP_POOL_BR, 4 * o, F4 * (2 * i + o));
    inner->maxpool2x2_backward_relu(dinp, dout, inp, B, C, H, W);
    end(OP_POOL_BR, id);
}
static void w_conv_frp(float *out, uint8_t *code, const float *inp, const float *w, const float *bias,
                       dmz_conv_shape s, float *work) {
    double outs = (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    /* the conv, bias and ReLU per output, 3 compares per pooled output; writes the pool's values and codes */
    uint64_t id = begin(OP_CONV_FRP, 2 * conv_macs(s) + 2 * outs + 0.75 * outs,
                        conv_io(s, 1, 1, 0) + (F4 + 1) * outs / 4);
    inner->conv2d_relu_pool_forward(out, code, inp, w, bias, s, work);
    end(OP_CONV_FRP, id);
}
static void w_pool_bc(float *dinp, const float *dout, const uint8_t *code, int B, int C, int H, int W) {
    double o = (double)B * C * (H / 2) * (W / 2), i = (double)B * C * H * W;
    uint64_t id = begin(OP_POOL_BC, 4 * o, F4 * (i + o) + o);
    inner->maxpool2x2_backward_codes(dinp, dout, code, B, C, H, W);
    end(OP_POOL_BC, id);
}
static void w_conv_bfp(float *dw, float *dbias, const float *dpool, const uint8_t *code, const float *inp,
                       dmz_conv_shape s, float *work) {
    double outs = (double)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    uint64_t id = begin(OP_CONV_BFP, 2 * conv_macs(s) + (dbias ? outs : 0), conv_io(s, 1, 1, 0) + (F4 + 1) * outs / 4);
    inner->conv2d_backward_filter_pooled(dw, dbias, dpool, code, inp, s, work);
    end(OP_CONV_BFP, id);
}
static void w_sync(void) {
    inner->sync();
    if (dmz_kernels_active()) dmz_kernels_synced(); /* CUDA events: read the finished ones */
}

#define WRAP(field, fn) counted.field = inner->field ? fn : NULL

const dmz_backend *dmz_opcount_wrap(const dmz_backend *be) {
    inner = be;
    counted = *be;
    WRAP(upload, w_upload);
    WRAP(download, w_download);
    WRAP(copy, w_copy);
    WRAP(sync, w_sync);
    WRAP(u8_to_float, w_u8);
    WRAP(dense_forward, w_dense_f);
    WRAP(dense_backward, w_dense_b);
    WRAP(relu_forward, w_relu_f);
    WRAP(relu_backward, w_relu_b);
    WRAP(softmax_xent_forward, w_smx_f);
    WRAP(softmax_xent_backward, w_smx_b);
    WRAP(reduce_sum, w_reduce);
    WRAP(count_correct, w_correct);
    WRAP(adam_update, w_adam);
    WRAP(conv2d_forward, w_conv_f);
    WRAP(conv2d_forward_relu, w_conv_fr);
    WRAP(dense_forward_relu, w_dense_fr);
    WRAP(gather_batch, w_gather);
    WRAP(softmax_xent_train, w_smx_t);
    WRAP(adam_update_step, w_adam_s);
    WRAP(conv2d_backward_data, w_conv_bd);
    WRAP(conv2d_backward_filter, w_conv_bf);
    WRAP(maxpool2x2_forward, w_pool_f);
    WRAP(maxpool2x2_backward, w_pool_b);
    WRAP(maxpool2x2_backward_relu, w_pool_br);
    WRAP(conv2d_relu_pool_forward, w_conv_frp);
    WRAP(maxpool2x2_backward_codes, w_pool_bc);
    WRAP(conv2d_backward_filter_pooled, w_conv_bfp);
    dmz_opcount_reset();
    return &counted;
}

void dmz_opcount_reset(void) {
    for (int i = 0; i < N_OPS; i++) {
        totals[i] = (dmz_op_total){.event_ms = NAN};
        snprintf(totals[i].name, sizeof totals[i].name, "%s", op_names[i]);
    }
    free(calls);
    calls = NULL, n_calls = cap_calls = 0;
}

int dmz_opcount_totals(dmz_op_total *out, int max) {
    int n = 0;
    for (int i = 0; i < N_OPS && n < max; i++)
        if (totals[i].calls > 0) out[n++] = totals[i];
    return n;
}
