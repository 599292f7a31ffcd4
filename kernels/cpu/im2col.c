/* The implicit im2col of the stride-1 convolutions, and col2im. For one sample
 * img [C][H][W] and K x K filters with zero padding, the im2col matrix
 *   col [C*K*K][OH*OW], col[(c*K + ky)*K + kx][y*OW + x] = img[c][y+ky-pad][x+kx-pad]
 * (0 outside the image) makes conv = w[OC][C*K*K] @ col. It is never written
 * out. The image is zero-padded into pimg, each row `pad` zeros then its W
 * values (row stride Ws = W + pad, see row_stride: the zeros that open a row
 * also close the row above), with `pad` zero rows above and below each plane. The output is
 * computed "wide", at q = y*Ws + x for all x < Ws (the Ws - OW last of each row
 * are discarded). Then row r = (c, ky, kx) of col is the contiguous run
 * pimg + tap_off[r] .. + OH*Ws, tap_off[r] = (c*(H + 2 pad) + ky)*Ws + kx:
 * a tap that reads past a row's end wraps into the next row's opening zeros.
 * The SGEMM takes it by offsets (cpu_sgemm_packed_rows_b, cpu_sgemm_rows_a). */
#include "cpu_ops.h"

#include <string.h>

/* W + pad, or OW where that is wider (a pad of K or more): the zeros then also
 * fill the row's end. */
static int row_stride(dmz_conv_shape s) {
    int ow = dmz_conv_out_w(s);
    return s.W + s.pad > ow ? s.W + s.pad : ow;
}

int cpu_conv_wide_row(dmz_conv_shape s) { return row_stride(s); }

int cpu_conv_wide_cols(dmz_conv_shape s) { return dmz_conv_out_h(s) * row_stride(s); }

/* The runs of the last rows reach pad + K - 1 floats past the padded image, and
 * the SGEMM reads a partial strip of them whole. */
size_t cpu_conv_padded_floats(dmz_conv_shape s) {
    size_t n = (size_t)s.C * (s.H + 2 * s.pad) * row_stride(s) + (size_t)(s.pad + s.K) + (size_t)cpu_sgemm_strip_cols();
    return (n + 15) / 16 * 16;
}

void cpu_conv_tap_offsets(ptrdiff_t *tap_off, dmz_conv_shape s) {
    int Hp = s.H + 2 * s.pad, Ws = row_stride(s);
    for (int c = 0; c < s.C; c++)
        for (int ky = 0; ky < s.K; ky++)
            for (int kx = 0; kx < s.K; kx++) tap_off[(c * s.K + ky) * s.K + kx] = ((ptrdiff_t)c * Hp + ky) * Ws + kx;
}

void cpu_conv_pad_image(float *pimg, const float *img, dmz_conv_shape s) {
    int Ws = row_stride(s);
    size_t plane = (size_t)(s.H + 2 * s.pad) * Ws, total = cpu_conv_padded_floats(s);
    for (int c = 0; c < s.C; c++) {
        float *dst = pimg + c * plane;
        const float *src = img + (size_t)c * s.H * s.W;
        memset(dst, 0, sizeof(float) * (size_t)s.pad * Ws);
        for (int y = 0; y < s.H; y++) {
            float *row = dst + (size_t)(y + s.pad) * Ws;
            for (int x = 0; x < s.pad; x++) row[x] = 0.0f;
            memcpy(row + s.pad, src + (size_t)y * s.W, sizeof(float) * (size_t)s.W);
            for (int x = s.pad + s.W; x < Ws; x++) row[x] = 0.0f;
        }
        memset(dst + (size_t)(s.pad + s.H) * Ws, 0, sizeof(float) * (size_t)s.pad * Ws);
    }
    memset(pimg + s.C * plane, 0, sizeof(float) * (total - s.C * plane));
}

/* The adjoint of the implicit im2col on the wide layout: img = sum over taps r,
 * in order, of dcol_wide row r added into the padded image at tap_off[r] (what
 * lands on padding is dropped), i.e. for each image element the sum over
 * (ky, kx) in that order, as col2im makes it. The discarded columns of
 * dcol_wide must be zero: they land on image elements too. pimg is scratch of
 * cpu_conv_padded_floats. */
void cpu_col2im_wide(float *img, const float *dcol_wide, const ptrdiff_t *tap_off, dmz_conv_shape s, float *pimg) {
    int Ws = row_stride(s), Q = cpu_conv_wide_cols(s), KK = s.K * s.K;
    size_t plane = (size_t)(s.H + 2 * s.pad) * Ws;
    for (int c = 0; c < s.C; c++) {
        float *p = pimg + c * plane;
        /* this plane's taps reach K - 1 + pad floats into the next one */
        memset(p, 0, sizeof(float) * (plane + (size_t)(s.pad + s.K)));
        for (int t = 0; t < KK; t++) {
            int r = c * KK + t;
            float *dst = pimg + tap_off[r];
            const float *src = dcol_wide + (size_t)r * Q;
            for (int q = 0; q < Q; q++) dst[q] += src[q];
        }
        for (int y = 0; y < s.H; y++)
            memcpy(img + ((size_t)c * s.H + y) * s.W, p + (size_t)(y + s.pad) * Ws + s.pad, sizeof(float) * (size_t)s.W);
    }
}
