/* kernels/cpu/vec8.h — eight-float vectors (GCC vector types: one ymm with AVX,
 * two xmm without) and their 8 x 8 transpose, for the cpu ops that shuffle
 * (transpose.c, the SGEMM's packing, maxpool); exact-length loads and stores
 * of up to 16 floats (masked with AVX-512) for rows that do not fill a
 * vector. Vectors go in and out of functions through arrays only: a 32-byte
 * vector by value has no ABI without AVX (gcc -Wpsabi, PORTABLE=1). Private
 * to kernels/cpu/. */
#ifndef DMZ_CPU_VEC8_H
#define DMZ_CPU_VEC8_H

#include <string.h>
#if defined(__AVX512VL__)
#include <immintrin.h>
#endif

typedef float v8f __attribute__((vector_size(8 * sizeof(float))));
typedef int v8i __attribute__((vector_size(8 * sizeof(int))));

/* o[c] = (r[0][c], r[1][c], ..., r[7][c]) */
static inline void transpose8(v8f o[8], const v8f r[8]) {
    v8f t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; i++) {
        o[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        o[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

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

#endif
