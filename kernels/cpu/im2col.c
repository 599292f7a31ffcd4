/* The implicit im2col of the stride-1 convolutions, and col2im. For one sample
 * img [C][H][W] and K x K filters with zero padding, the im2col matrix
 *   col [C*K*K][OH*OW], col[(c*K + ky)*K + kx][y*OW + x] = img[c][y+ky-pad][x+kx-pad]
 * (0 outside the image) makes conv = w[OC][C*K*K] @ col. It is never written
 * out. With the image zero-padded into pimg [C][Hp][Wp] (Hp = H + 2 pad,
 * Wp = W + 2 pad) and the output computed "wide", at q = y*Wp + x for all
 * x < Wp (the Wp - OW last of each row are discarded), row r = (c, ky, kx) of
 * col is the contiguous run pimg + tap_off[r] .. + OH*Wp, with
 * tap_off[r] = (c*Hp + ky)*Wp + kx: the SGEMM reads it in place. */
#include "cpu_ops.h"

#include <string.h>

int cpu_conv_wide_cols(dmz_conv_shape s) { return dmz_conv_out_h(s) * (s.W + 2 * s.pad); }

/* The runs of the last rows reach K - 1 floats past the padded image, and the
 * SGEMM reads a partial strip of them whole. */
size_t cpu_conv_padded_floats(dmz_conv_shape s) {
    size_t n = (size_t)s.C * (s.H + 2 * s.pad) * (s.W + 2 * s.pad) + (size_t)s.K + (size_t)cpu_sgemm_strip_cols();
    return (n + 15) / 16 * 16;
}

void cpu_conv_tap_offsets(ptrdiff_t *tap_off, dmz_conv_shape s) {
    int Hp = s.H + 2 * s.pad, Wp = s.W + 2 * s.pad;
    for (int c = 0; c < s.C; c++)
        for (int ky = 0; ky < s.K; ky++)
            for (int kx = 0; kx < s.K; kx++) tap_off[(c * s.K + ky) * s.K + kx] = ((ptrdiff_t)c * Hp + ky) * Wp + kx;
}

void cpu_conv_pad_image(float *pimg, const float *img, dmz_conv_shape s) {
    int Hp = s.H + 2 * s.pad, Wp = s.W + 2 * s.pad;
    size_t plane = (size_t)Hp * Wp, total = cpu_conv_padded_floats(s);
    for (int c = 0; c < s.C; c++) {
        float *dst = pimg + c * plane;
        const float *src = img + (size_t)c * s.H * s.W;
        memset(dst, 0, sizeof(float) * (size_t)s.pad * Wp);
        for (int y = 0; y < s.H; y++) {
            float *row = dst + (size_t)(y + s.pad) * Wp;
            for (int x = 0; x < s.pad; x++) row[x] = row[s.pad + s.W + x] = 0.0f;
            memcpy(row + s.pad, src + (size_t)y * s.W, sizeof(float) * (size_t)s.W);
        }
        memset(dst + (size_t)(s.pad + s.H) * Wp, 0, sizeof(float) * (size_t)s.pad * Wp);
    }
    memset(pimg + s.C * plane, 0, sizeof(float) * (total - s.C * plane));
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
