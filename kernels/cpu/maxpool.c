/* 2x2 max pooling, stride 2, TensorFlow's 'SAME' (an odd last row or column
 * pools what it has), on NCHW planes; one thread per plane. Windows do not
 * overlap, so the backward pass writes each input element once. */
#include "cpu_ops.h"

#include <string.h>

void cpu_maxpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W) {
    int OH = dmz_pool_out(H), OW = dmz_pool_out(W);
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < B * C; pl++) {
        const float *x = inp + (size_t)pl * H * W;
        float *o = out + (size_t)pl * OH * OW;
        for (int y = 0; y < OH; y++)
            for (int xo = 0; xo < OW; xo++) {
                int y1 = 2 * y + 1 < H ? 2 * y + 2 : H, x1 = 2 * xo + 1 < W ? 2 * xo + 2 : W;
                float m = x[(size_t)2 * y * W + 2 * xo];
                for (int iy = 2 * y; iy < y1; iy++)
                    for (int ix = 2 * xo; ix < x1; ix++) m = x[(size_t)iy * W + ix] > m ? x[(size_t)iy * W + ix] : m;
                o[(size_t)y * OW + xo] = m;
            }
    }
}

void cpu_maxpool2x2_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    int OH = dmz_pool_out(H), OW = dmz_pool_out(W);
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < B * C; pl++) {
        const float *x = inp + (size_t)pl * H * W;
        const float *g = dout + (size_t)pl * OH * OW;
        float *dx = dinp + (size_t)pl * H * W;
        memset(dx, 0, sizeof(float) * (size_t)H * W);
        for (int y = 0; y < OH; y++)
            for (int xo = 0; xo < OW; xo++) {
                int y1 = 2 * y + 1 < H ? 2 * y + 2 : H, x1 = 2 * xo + 1 < W ? 2 * xo + 2 : W;
                size_t best = (size_t)2 * y * W + 2 * xo; /* the first maximum, row-major */
                for (int iy = 2 * y; iy < y1; iy++)
                    for (int ix = 2 * xo; ix < x1; ix++)
                        if (x[(size_t)iy * W + ix] > x[best]) best = (size_t)iy * W + ix;
                dx[best] = g[(size_t)y * OW + xo];
            }
    }
}
