/* Out-of-place transpose, dst[c][r] = src[r][c], in 8 x 8 blocks of vector
 * shuffles (a strided scalar copy costs a cycle or more per float; the SGEMM's
 * packing of a transposed operand and the convolutions' wide dout^T use it). */
#include "cpu_ops.h"

#include <string.h>

typedef float v8f __attribute__((vector_size(8 * sizeof(float))));

#define LO_PAIRS 0, 8, 1, 9, 4, 12, 5, 13
#define HI_PAIRS 2, 10, 3, 11, 6, 14, 7, 15
#define LO_QUADS 0, 1, 8, 9, 4, 5, 12, 13
#define HI_QUADS 2, 3, 10, 11, 6, 7, 14, 15
#define LO_HALVES 0, 1, 2, 3, 8, 9, 10, 11
#define HI_HALVES 4, 5, 6, 7, 12, 13, 14, 15

static void transpose8x8(float *dst, ptrdiff_t ld_dst, const float *src, ptrdiff_t ld_src) {
    v8f r[8], t[8], u[8], o[8];
    for (int i = 0; i < 8; i++) memcpy(&r[i], src + i * ld_src, sizeof r[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], LO_PAIRS);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], HI_PAIRS);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], LO_QUADS);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], HI_QUADS);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], LO_QUADS);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], HI_QUADS);
    }
    for (int i = 0; i < 4; i++) {
        o[i] = __builtin_shufflevector(u[i], u[i + 4], LO_HALVES);
        o[i + 4] = __builtin_shufflevector(u[i], u[i + 4], HI_HALVES);
    }
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
