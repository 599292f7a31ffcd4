/* 2x2 max pooling, stride 2, TensorFlow's 'SAME' (an odd last row or column
 * pools what it has), on NCHW planes; one thread per plane. Windows do not
 * overlap, so the backward pass writes each input element once. Full windows
 * take a branch-free path (the comparisons are data-dependent coin flips).
 * cpu_maxpool2x2_backward_relu is the backward pass over a ReLU's output with
 * that ReLU's backward folded in (one pass over the input gradient, not two).
 *
 * Pooling fused into a convolution (cpu_relu_pool_rows, called by the conv's
 * epilogue): bias, ReLU and the pool in one pass over the conv's output while
 * it is in cache, keeping for each window a code, which of its four inputs
 * takes the gradient (0..3 in row-major order, CPU_POOL_NO_GRAD where the
 * ReLU passes none); cpu_maxpool2x2_backward_codes spreads the pool's
 * gradient by those codes. The same values and the same gradient, bit for
 * bit, as conv, ReLU and pool run apart; the full-size activation is never
 * written or read again. */
#include "cpu_ops.h"
#include "vec8.h"

#include <string.h>

static inline float max4(float a, float b, float c, float d) {
    float m = a; /* in row-major order, as the partial windows scan */
    m = b > m ? b : m;
    m = c > m ? c : m;
    return d > m ? d : m;
}

/* A partial window [y0, y1) x [x0, x1): the first maximum in row-major order. */
static size_t argmax_window(const float *x, int W, int y0, int y1, int x0, int x1) {
    size_t best = (size_t)y0 * W + x0;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++)
            if (x[(size_t)iy * W + ix] > x[best]) best = (size_t)iy * W + ix;
    return best;
}

void cpu_maxpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W) {
    int OH = dmz_pool_out(H), OW = dmz_pool_out(W), FH = H / 2, FW = W / 2; /* FH x FW full windows */
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < B * C; pl++) {
        const float *x = inp + (size_t)pl * H * W;
        float *o = out + (size_t)pl * OH * OW;
        for (int y = 0; y < OH; y++) {
            const float *r0 = x + (size_t)2 * y * W, *r1 = r0 + W;
            int full_row = y < FH;
            for (int xo = 0; xo < OW; xo++) {
                if (full_row && xo < FW) {
                    o[(size_t)y * OW + xo] = max4(r0[2 * xo], r0[2 * xo + 1], r1[2 * xo], r1[2 * xo + 1]);
                    continue;
                }
                int y1 = 2 * y + 2 < H ? 2 * y + 2 : H, x1 = 2 * xo + 2 < W ? 2 * xo + 2 : W;
                o[(size_t)y * OW + xo] = x[argmax_window(x, W, 2 * y, y1, 2 * xo, x1)];
            }
        }
    }
}

/* The four inputs of 8 windows from two rows (2k floats each, k <= 8): even
 * and odd columns of each row. */
static inline void split_windows(v8f q[4], const float *r0, const float *r1, int k) {
    v8f t0[2] = {{0}}, t1[2] = {{0}};
    load16(t0, r0, 2 * k);
    load16(t1, r1, 2 * k);
    q[0] = __builtin_shufflevector(t0[0], t0[1], 0, 2, 4, 6, 8, 10, 12, 14);
    q[1] = __builtin_shufflevector(t0[0], t0[1], 1, 3, 5, 7, 9, 11, 13, 15);
    q[2] = __builtin_shufflevector(t1[0], t1[1], 0, 2, 4, 6, 8, 10, 12, 14);
    q[3] = __builtin_shufflevector(t1[0], t1[1], 1, 3, 5, 7, 9, 11, 13, 15);
}

/* The inverse: each window's four shares back into two rows of 2k floats. */
static inline void merge_windows(float *d0, float *d1, const v8f q[4], int k) {
    v8f o0[2] = {__builtin_shufflevector(q[0], q[1], 0, 8, 1, 9, 2, 10, 3, 11),
                 __builtin_shufflevector(q[0], q[1], 4, 12, 5, 13, 6, 14, 7, 15)};
    v8f o1[2] = {__builtin_shufflevector(q[2], q[3], 0, 8, 1, 9, 2, 10, 3, 11),
                 __builtin_shufflevector(q[2], q[3], 4, 12, 5, 13, 6, 14, 7, 15)};
    store16(d0, o0, 2 * k);
    store16(d1, o1, 2 * k);
}

/* Eight windows at a time, in vectors: rows of 7 windows (the cnn's second
 * pool) are too short for gcc's own vectoriser. The window's first maximum in
 * row-major order takes the gradient, the others 0, as max4 scans. */
static void full_windows_backward(float *d0, float *d1, const float *r0, const float *r1, const float *g, int FW,
                                  int relu) {
    for (int xo = 0; xo < FW; xo += 8) {
        int n = FW - xo < 8 ? FW - xo : 8;
        v8f gv[2] = {{0}}, q[4];
        split_windows(q, r0 + 2 * xo, r1 + 2 * xo, n);
        if (n == 8) memcpy(gv, g + xo, 8 * sizeof(float));
        else load16(gv, g + xo, n);
        v8f a = q[0], b = q[1], c = q[2], d = q[3];
        v8f m = a;
        m = select8(b > m, b, m);
        m = select8(c > m, c, m);
        m = select8(d > m, d, m);
        v8i ea = a == m, eb = b == m, ec = c == m, zero = {0};
        v8i ta = ea, tb = eb & ~ea, tc = ec & ~(ea | eb), td = ~(ea | eb | ec);
        if (relu) /* relu_backward's own comparison, on the element that takes the gradient */
            ta &= a > 0.0f, tb &= b > 0.0f, tc &= c > 0.0f, td &= d > 0.0f;
        q[0] = select8(ta, gv[0], (v8f)zero), q[1] = select8(tb, gv[0], (v8f)zero);
        q[2] = select8(tc, gv[0], (v8f)zero), q[3] = select8(td, gv[0], (v8f)zero);
        merge_windows(d0 + 2 * xo, d1 + 2 * xo, q, n);
    }
}

void cpu_relu_pool_rows(float *out, uint8_t *code, const float *x0, const float *x1, float bias, int n) {
    v8f zero = {0};
    for (int xo = 0; xo < n; xo += 8) {
        int k = n - xo < 8 ? n - xo : 8;
        v8f q[4];
        split_windows(q, x0 + 2 * xo, x1 + 2 * xo, k);
        for (int i = 0; i < 4; i++) { /* conv's epilogue: v + bias > 0 ? v + bias : 0 */
            v8f v = q[i] + bias;
            q[i] = select8(v > 0.0f, v, zero);
        }
        v8f m = q[0]; /* max4's order */
        m = select8(q[1] > m, q[1], m);
        m = select8(q[2] > m, q[2], m);
        m = select8(q[3] > m, q[3], m);
        v8i e0 = q[0] == m, e1 = q[1] == m, e2 = q[2] == m; /* the first maximum, as the backward pass picks it */
        v8i none = {0}, c = none + 3;
        c = (e2 & (none + 2)) | (~e2 & c);
        c = (e1 & (none + 1)) | (~e1 & c);
        c = ~e0 & c;
        v8i pos = m > 0.0f;
        c = (pos & c) | (~pos & (none + CPU_POOL_NO_GRAD));
        v8f mo[2] = {m, zero};
        store16(out + xo, mo, k);
        for (int l = 0; l < k; l++) code[xo + l] = (uint8_t)c[l];
    }
}

/* Plane pl's gradient: each window's dout to the input its code names, 0
 * to the other three (all four: CPU_POOL_NO_GRAD). */
static void codes_backward_plane(float *dinp, const float *dout, const uint8_t *code, int pl, int H, int W) {
    int OH = H / 2, OW = W / 2;
    for (int y = 0; y < OH; y++) {
        const float *g = dout + ((size_t)pl * OH + y) * OW;
        const uint8_t *cd = code + ((size_t)pl * OH + y) * OW;
        float *d0 = dinp + ((size_t)pl * H + 2 * y) * W, *d1 = d0 + W;
        for (int xo = 0; xo < OW; xo += 8) {
            int k = OW - xo < 8 ? OW - xo : 8;
            v8f gv[2] = {{0}}, q[4], zero = {0};
            v8i c = (v8i){0} + CPU_POOL_NO_GRAD;
            load16(gv, g + xo, k);
            for (int l = 0; l < k; l++) c[l] = cd[xo + l];
            for (int i = 0; i < 4; i++) q[i] = select8(c == i, gv[0], zero);
            merge_windows(d0 + 2 * xo, d1 + 2 * xo, q, k);
        }
    }
}

void cpu_maxpool2x2_backward_codes(float *dinp, const float *dout, const uint8_t *code, int B, int C, int H, int W) {
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < B * C; pl++) codes_backward_plane(dinp, dout, code, pl, H, W);
}

void cpu_maxpool2x2_backward_codes_planes(float *dinp, const float *dout, const uint8_t *code, int C, int H, int W) {
    for (int pl = 0; pl < C; pl++) codes_backward_plane(dinp, dout, code, pl, H, W);
}

/* What a partial window's maximum x receives of g: all of it, or with the
 * ReLU's backward folded in, relu_backward's own x > 0 ? g : 0. */
static inline float window_grad(float g, float x, int relu) { return relu && !(x > 0.0f) ? 0.0f : g; }

static void backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W, int relu) {
    int OH = dmz_pool_out(H), OW = dmz_pool_out(W), FH = H / 2, FW = W / 2;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < B * C; pl++) {
        const float *x = inp + (size_t)pl * H * W;
        const float *g = dout + (size_t)pl * OH * OW;
        float *dx = dinp + (size_t)pl * H * W;
        for (int y = 0; y < OH; y++) {
            const float *r0 = x + (size_t)2 * y * W, *r1 = r0 + W;
            float *d0 = dx + (size_t)2 * y * W, *d1 = d0 + W;
            if (y >= FH) { /* the odd last row: one input row */
                memset(d0, 0, sizeof(float) * (size_t)W);
                for (int xo = 0; xo < OW; xo++) {
                    int x1 = 2 * xo + 2 < W ? 2 * xo + 2 : W;
                    size_t best = argmax_window(x, W, 2 * y, 2 * y + 1, 2 * xo, x1);
                    dx[best] = window_grad(g[(size_t)y * OW + xo], x[best], relu);
                }
                continue;
            }
            full_windows_backward(d0, d1, r0, r1, g + (size_t)y * OW, FW, relu);
            if (FW < OW) { /* the odd last column */
                d0[W - 1] = d1[W - 1] = 0.0f;
                size_t best = argmax_window(x, W, 2 * y, 2 * y + 2, W - 1, W);
                dx[best] = window_grad(g[(size_t)y * OW + FW], x[best], relu);
            }
        }
    }
}

void cpu_maxpool2x2_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    backward(dinp, dout, inp, B, C, H, W, 0);
}

/* The pool of a ReLU's output with the ReLU's backward folded in. */
void cpu_maxpool2x2_backward_relu(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    backward(dinp, dout, inp, B, C, H, W, 1);
}
