/* Out-of-place transpose, dst[c][r] = src[r][c], in 8 x 8 blocks of vector
 * shuffles (a strided scalar copy costs a cycle or more per float; the SGEMM's
 * packing of a transposed operand and the convolutions' wide dout^T use it). */
#include "cpu_ops.h"
#include "vec8.h"

#include <string.h>

static void transpose8x8(float *dst, ptrdiff_t ld_dst, const float *src, ptrdiff_t ld_src) {
    v8f r[8], o[8];
    for (int i = 0; i < 8; i++) memcpy(&r[i], src + i * ld_src, sizeof r[i]);
    transpose8(o, r);
    for (int i = 0; i < 8; i++) memcpy(dst + i * ld_dst, &o[i], sizeof o[i]);
}

void cpu_transpose(float *dst, ptrdiff_t ld_dst, const float *src, ptrdiff_t ld_src, int rows, int cols) {
    int r8 = rows & ~7, c8 = cols & ~7;
    for (int r = 0; r < r8; r += 8) {
        for (int c = 0; c < c8; c += 8) transpose8x8(dst + c * ld_dst + r, ld_dst, src + r * ld_src + c, ld_src);
        for (int c = c8; c < cols; c++)
            for (int i = 0; i < 8; i++) dst[c * ld_dst + r + i] = src[(r + i) * ld_src + c];
    }
    for (int r = r8; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[c * ld_dst + r] = src[r * ld_src + c];
}
