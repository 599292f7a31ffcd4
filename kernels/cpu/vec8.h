/* kernels/cpu/vec8.h — eight-float vectors (GCC vector types: one ymm with AVX,
 * two xmm without) and their 8 x 8 transpose, for the cpu ops that shuffle
 * (transpose.c, the SGEMM's packing, maxpool). Vectors go in and out of
 * functions through arrays only: a 32-byte vector by value has no ABI without
 * AVX (gcc -Wpsabi, PORTABLE=1). Private to kernels/cpu/. */
#ifndef DMZ_CPU_VEC8_H
#define DMZ_CPU_VEC8_H

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

#endif
