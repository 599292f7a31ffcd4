/* 2x2 max pooling, stride 2, TensorFlow's 'SAME' (an odd last row or column
 * pools what it has), on NCHW planes; one thread per plane. Windows do not
 * overlap, so the backward pass writes each input element once. Full windows
 * take a branch-free path (the comparisons are data-dependent coin flips). */
#include "cpu_ops.h"

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

void cpu_maxpool2x2_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
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
                    dx[argmax_window(x, W, 2 * y, 2 * y + 1, 2 * xo, x1)] = g[(size_t)y * OW + xo];
                }
                continue;
            }
            for (int xo = 0; xo < FW; xo++) {
                float a = r0[2 * xo], b = r0[2 * xo + 1], c = r1[2 * xo], d = r1[2 * xo + 1];
                float m = max4(a, b, c, d), gv = g[(size_t)y * OW + xo];
                /* bitwise, not &&: no branches, so gcc vectorises the loop */
                int ea = a == m, eb = b == m, ec = c == m;
                int ta = ea, tb = eb & !ea, tc = ec & !(ea | eb), td = !(ea | eb | ec);
                d0[2 * xo] = ta ? gv : 0.0f;
                d0[2 * xo + 1] = tb ? gv : 0.0f;
                d1[2 * xo] = tc ? gv : 0.0f;
                d1[2 * xo + 1] = td ? gv : 0.0f;
            }
            if (FW < OW) { /* the odd last column */
                d0[W - 1] = d1[W - 1] = 0.0f;
                dx[argmax_window(x, W, 2 * y, 2 * y + 2, W - 1, W)] = g[(size_t)y * OW + FW];
            }
        }
    }
}
