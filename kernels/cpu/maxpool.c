/* 2x2 max pooling, stride 2, TensorFlow's 'SAME' (an odd last row or column
 * pools what it has), on NCHW planes; one thread per plane. Windows do not
 * overlap, so the backward pass writes each input element once. Full windows
 * take a branch-free path (the comparisons are data-dependent coin flips).
 * cpu_maxpool2x2_backward_relu is the backward pass over a ReLU's output with
 * that ReLU's backward folded in (one pass over the input gradient, not two). */
#include "cpu_ops.h"
#include "vec8.h"

#include <string.h>
#if defined(__AVX512VL__)
#include <immintrin.h>
#endif

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

/* Eight windows at a time, in vectors: rows of 7 windows (the cnn's second
 * pool) are too short for gcc's own vectoriser. The window's first maximum in
 * row-major order takes the gradient, the others 0, as max4 scans. */

/* A macro, not a function: a function taking or returning a 32-byte vector has
 * no ABI without AVX (gcc -Wpsabi, PORTABLE=1). */
#define select8(mask, yes, no) ((v8f)(((mask) & (v8i)(yes)) | (~(mask) & (v8i)(no))))

/* n of at most 16 floats; a whole vector's worth as one constant-size copy
 * (vector moves, not a call to memcpy) */
static inline void copy_floats(float *restrict dst, const float *restrict src, int n) {
    if (n == 16) {
        memcpy(dst, src, 16 * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++) dst[i] = src[i];
}

/* Two vectors from n <= 16 floats (zero past n), and back. Rows shorter than
 * 8 windows (the cnn's second pool: 7) would otherwise go through scalar
 * copies into a vector that is then loaded whole, a store-forwarding stall
 * per row; AVX-512's masked moves read and write exactly the n floats. */
#if defined(__AVX512VL__)
static inline __mmask8 lanes_below(int n) { return n >= 8 ? (__mmask8)0xff : n <= 0 ? 0 : (__mmask8)((1u << n) - 1); }
#define load16(t, src, n)                                                  \
    do {                                                                   \
        (t)[0] = (v8f)_mm256_maskz_loadu_ps(lanes_below(n), (src));        \
        (t)[1] = (v8f)_mm256_maskz_loadu_ps(lanes_below((n) - 8), (src) + 8); \
    } while (0)
#define store16(dst, t, n)                                                 \
    do {                                                                   \
        _mm256_mask_storeu_ps((dst), lanes_below(n), (__m256)(t)[0]);      \
        _mm256_mask_storeu_ps((dst) + 8, lanes_below((n) - 8), (__m256)(t)[1]); \
    } while (0)
#else
#define load16(t, src, n) copy_floats((float *)(t), (src), (n))
#define store16(dst, t, n) copy_floats((dst), (const float *)(t), (n))
#endif

static void full_windows_backward(float *d0, float *d1, const float *r0, const float *r1, const float *g, int FW,
                                  int relu) {
    for (int xo = 0; xo < FW; xo += 8) {
        int n = FW - xo < 8 ? FW - xo : 8;
        v8f t0[2] = {{0}}, t1[2] = {{0}}, gv[2] = {{0}};
        load16(t0, r0 + 2 * xo, 2 * n);
        load16(t1, r1 + 2 * xo, 2 * n);
        if (n == 8) memcpy(gv, g + xo, 8 * sizeof(float));
        else load16(gv, g + xo, n);
        v8f a = __builtin_shufflevector(t0[0], t0[1], 0, 2, 4, 6, 8, 10, 12, 14);
        v8f b = __builtin_shufflevector(t0[0], t0[1], 1, 3, 5, 7, 9, 11, 13, 15);
        v8f c = __builtin_shufflevector(t1[0], t1[1], 0, 2, 4, 6, 8, 10, 12, 14);
        v8f d = __builtin_shufflevector(t1[0], t1[1], 1, 3, 5, 7, 9, 11, 13, 15);
        v8f m = a;
        m = select8(b > m, b, m);
        m = select8(c > m, c, m);
        m = select8(d > m, d, m);
        v8i ea = a == m, eb = b == m, ec = c == m, zero = {0};
        v8i ta = ea, tb = eb & ~ea, tc = ec & ~(ea | eb), td = ~(ea | eb | ec);
        if (relu) /* relu_backward's own comparison, on the element that takes the gradient */
            ta &= a > 0.0f, tb &= b > 0.0f, tc &= c > 0.0f, td &= d > 0.0f;
        v8f ga = select8(ta, gv[0], (v8f)zero), gb = select8(tb, gv[0], (v8f)zero);
        v8f gc = select8(tc, gv[0], (v8f)zero), gd = select8(td, gv[0], (v8f)zero);
        v8f o0[2] = {__builtin_shufflevector(ga, gb, 0, 8, 1, 9, 2, 10, 3, 11),
                     __builtin_shufflevector(ga, gb, 4, 12, 5, 13, 6, 14, 7, 15)};
        v8f o1[2] = {__builtin_shufflevector(gc, gd, 0, 8, 1, 9, 2, 10, 3, 11),
                     __builtin_shufflevector(gc, gd, 4, 12, 5, 13, 6, 14, 7, 15)};
        store16(d0 + 2 * xo, o0, 2 * n);
        store16(d1 + 2 * xo, o1, 2 * n);
    }
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
