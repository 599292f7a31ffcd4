/* im2col / col2im for stride-1 convolution with zero padding (shared by the
 * three conv2d ops). For one sample img [C][H][W] and K x K filters:
 *   col [C*K*K][OH*OW], col[(c*K + ky)*K + kx][y*OW + x] = img[c][y+ky-pad][x+kx-pad]
 * (0 outside the image), so that conv = w[OC][C*K*K] @ col. */
#include "cpu_ops.h"

#include <string.h>

void cpu_im2col(float *col, const float *img, int C, int H, int W, int K, int pad) {
    cpu_im2col_rows(col, img, C, H, W, K, pad, 0, C * K * K);
}

/* Rows [r0, r1) of col into col[0 .. r1-r0). Rows are short (14 or 28 floats
 * for the cnn): plain loops, no memcpy calls. */
void cpu_im2col_rows(float *col, const float *img, int C, int H, int W, int K, int pad, int r0, int r1) {
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    (void)C;
    for (int r = r0; r < r1; r++) {
                int c = r / (K * K), ky = r / K % K, kx = r % K;
                float *row = col + (size_t)(r - r0) * OH * OW;
                /* output x whose input column x+kx-pad lies inside [0, W) */
                int x0 = pad - kx > 0 ? pad - kx : 0, x1 = W + pad - kx < OW ? W + pad - kx : OW;
                if (x1 < x0) x1 = x0;
                for (int y = 0; y < OH; y++) {
                    float *dst = row + (size_t)y * OW;
                    int iy = y + ky - pad;
                    if (iy < 0 || iy >= H) {
                        for (int x = 0; x < OW; x++) dst[x] = 0.0f;
                        continue;
                    }
                    const float *src = img + ((size_t)c * H + iy) * W + (kx - pad);
                    for (int x = 0; x < x0; x++) dst[x] = 0.0f;
                    for (int x = x0; x < x1; x++) dst[x] = src[x];
                    for (int x = x1; x < OW; x++) dst[x] = 0.0f;
                }
    }
}

/* The adjoint, as a gather: img[c][iy][ix] = sum over (ky, kx), in that order,
 * of col[(c*K + ky)*K + kx][(iy-ky+pad)*OW + (ix-kx+pad)] where that output
 * position exists. Each image element is written once (no scatter). */
void cpu_col2im(float *img, const float *col, int C, int H, int W, int K, int pad) {
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    for (int c = 0; c < C; c++) {
        float *plane = img + (size_t)c * H * W;
        memset(plane, 0, sizeof(float) * (size_t)H * W);
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *row = col + ((size_t)(c * K + ky) * K + kx) * OH * OW;
                int x0 = pad - kx > 0 ? pad - kx : 0, x1 = W + pad - kx < OW ? W + pad - kx : OW;
                for (int y = 0; y < OH; y++) {
                    int iy = y + ky - pad;
                    if (iy < 0 || iy >= H) continue;
                    float *dst = plane + (size_t)iy * W + (x0 + kx - pad);
                    const float *src = row + (size_t)y * OW;
                    for (int x = x0; x < x1; x++) dst[x - x0] += src[x];
                }
            }
    }
}
