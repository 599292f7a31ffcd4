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

/* Edges as whole 8 x 8 blocks that overlap the last full one (the overlap is
 * written twice with the same values): no scalar tail where both sides have
 * 8 or more. */
void cpu_transpose(float *dst, ptrdiff_t ld_dst, const float *src, ptrdiff_t ld_src, int rows, int cols) {
    if (rows >= 8 && cols >= 8) {
        for (int r = 0; r < rows; r += 8) {
            int r0 = r + 8 <= rows ? r : rows - 8;
            for (int c = 0; c < cols; c += 8) {
                int c0 = c + 8 <= cols ? c : cols - 8;
                transpose8x8(dst + c0 * ld_dst + r0, ld_dst, src + r0 * ld_src + c0, ld_src);
            }
        }
        return;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[c * ld_dst + r] = src[r * ld_src + c];
}
