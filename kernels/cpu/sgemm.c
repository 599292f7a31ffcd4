/* SGEMM on the cpu: C = [C +] A @ B, cache-blocked and register-tiled in the
 * classic Goto/BLIS shape, shared by dense and convolution.
 *
 *   for jc in N by NC:         B block (KC x NC, packed into NR-wide strips) in L3/L2
 *     for pc in K by KC:       one slice of the reduction dimension, in order
 *       for ic in M by MC:     A block (MC x KC, packed into MR-tall strips) in L2
 *         for each MR x NR tile of the block: the micro-kernel (accumulators in registers)
 *
 * The micro-kernel is written with GCC vector types (16 floats, one AVX-512
 * register, where the host has it; 8 floats with AVX; 4 floats and 6 x 8 tiles
 * without AVX, PORTABLE=1) so that gcc emits packed multiply-adds: MR x 2
 * vector accumulators, 2 loads of B and MR broadcasts of A per step of k.
 * MR is 8 with AVX-512 (16 of its 32 registers; 10 loads per 16 multiply-adds,
 * where 6 rows took 8 per 12: the cnn's fc1 products 5-10% faster here) and 6
 * otherwise (12 of AVX2's 16). This file is compiled with -ffp-contract=fast
 * (Makefile), so on an FMA machine each step is a fused multiply-add.
 *
 * Threads: each thread owns a rectangle of C (whole register tiles) and runs
 * the blocked loops on it with its own pack buffers: no barrier inside.
 *
 * Determinism: threads split the tiles of C (each tile belongs to one thread),
 * never the reduction dimension. Every element is summed over k in the same
 * order (KC blocks in turn, k in turn within a block) whatever the thread
 * count (and whatever the vector width: each element is its own lane), so
 * results are bit-identical across thread counts and ISAs with FMA. */
#include "cpu_ops.h"
#include "vec8.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* MR: rows of a tile; at most 8 (the packing transposes 8 x 8) */
#if defined(__AVX512F__)
#define MR 8
#define VW 16 /* floats per vector register: AVX-512 zmm, 8 x 32 tiles */
#elif defined(__AVX__)
#define MR 6
#define VW 8 /* floats per vector register: AVX ymm */
#else
#define MR 6
#define VW 4 /* SSE xmm (PORTABLE=1): 6 x 8 tiles, 12 accumulators still fit 16 registers */
#endif
#define NR (2 * VW)
#define KC 256
#define MC 120 /* a multiple of MR; the mlp's batch of 100 is one block */
#define NC 2048
#define PACK_FLOATS ((size_t)MC * KC + (size_t)KC * NC + (size_t)MC / MR * KC) /* A, B, A's k lists */

typedef float vf __attribute__((vector_size(VW * sizeof(float))));

/* Unaligned one-vector load and store. Macros, not functions: a function taking or
 * returning a 32-byte vector has no ABI without AVX (gcc -Wpsabi, PORTABLE=1). */
#define loadv(p) ({ vf v_; memcpy(&v_, (p), sizeof v_); v_; })
#define storev(p, v)                      \
    do {                                  \
        vf s_ = (v);                      \
        memcpy((p), &s_, sizeof s_);      \
    } while (0)

/* Where one MR x NR tile reads its operands: A as a packed strip ap[kc][MR]
 * (zero-padded), or in place through MR row pointers arow (A(i, k) = arow[i][k]);
 * B as a packed strip bp[kc][NR] (zero-padded), optionally picked by the k list
 * kidx (ap then holds only the listed steps, the others were zero in every row
 * of the strip). */
typedef struct tile_operands {
    const float *ap, *arow[MR];
    const float *bp;
    const int *kidx;
    /* cpu_sgemm_strided: A(i, k) = as[i*a_is + k*a_ks], B(k, j) = bs[k*b_ks + j] in place, unaligned */
    const float *as, *bs;
    ptrdiff_t a_is, a_ks, b_ks;
} tile_operands;

/* One step of k: two vectors of B, MR broadcasts of A, 2 MR multiply-adds
 * into the accumulators acc[i][0..1] (kept in registers: fully unrolled). */
#define MK_STEP(A, brow)                                       \
    do {                                                       \
        vf b0 = loadv(brow), b1 = loadv((brow) + VW);          \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; i++) { \
            float a = A(i);                                    \
            cc[i][0] += a * b0, cc[i][1] += a * b1;            \
        }                                                      \
    } while (0)
#define A_PACKED(i) ap[i]
#define A_IN_PLACE(i) ar[i][k]
#define A_STRIDED(i) as[(i) * a_is]

/* One MR x NR tile: c[0..mr)[0..nr) = (acc ? c : 0) + A B over kc steps. */
static void micro_kernel(int kc, const tile_operands *o, float *restrict c, ptrdiff_t ldc, int mr, int nr, int acc) {
    vf cc[MR][2] = {{{0}}};
    const float *restrict ap = o->ap, *restrict bp = __builtin_assume_aligned(o->bp, VW * sizeof(float));
    if (o->bs) {
        const float *restrict as = o->as, *restrict bs = o->bs;
        ptrdiff_t a_is = o->a_is, a_ks = o->a_ks, b_ks = o->b_ks;
        for (int k = 0; k < kc; k++, as += a_ks, bs += b_ks) MK_STEP(A_STRIDED, bs);
    } else if (o->kidx) {
        const int *restrict kidx = o->kidx;
        for (int t = 0; t < kc; t++, ap += MR) MK_STEP(A_PACKED, bp + kidx[t] * NR);
    } else if (!ap) {
        const float *restrict ar[MR];
        for (int i = 0; i < MR; i++) ar[i] = o->arow[i];
        for (int k = 0; k < kc; k++, bp += NR) MK_STEP(A_IN_PLACE, bp);
    } else {
        for (int k = 0; k < kc; k++, ap += MR, bp += NR) MK_STEP(A_PACKED, bp);
    }
    if (mr == MR && nr == NR) {
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            if (acc) {
                storev(ci, loadv(ci) + cc[i][0]);
                storev(ci + VW, loadv(ci + VW) + cc[i][1]);
            } else {
                storev(ci, cc[i][0]);
                storev(ci + VW, cc[i][1]);
            }
        }
        return;
    }
    float t[MR][NR];
    memcpy(t, cc, sizeof t);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

typedef struct gemm_args {
    int M, N, K;
    const float *a;
    ptrdiff_t a_rs, a_cs;
    const float *b;
    ptrdiff_t b_rs, b_cs;
    float *c;
    ptrdiff_t ldc;
    int acc;
    const float *a_packed; /* A already in cpu_sgemm_pack_a's layout, or NULL */
    int skip_zero_a;       /* drop the k at which a whole strip of A is zero */
    const ptrdiff_t *a_row_off; /* A read in place, A(i, k) = a[a_row_off[i] + k], or NULL */
    const ptrdiff_t *b_row_off; /* B by row offsets, B(k, j) = b[b_row_off[k] + j] (pack_b_rows), or NULL */
} gemm_args;

/* K in equal slices of at most KC (800 = 4 x 200, not 3 x 256 + 32): a
 * function of K alone, so the summation order stays fixed. */
static int slice_len(int K) {
    int slices = (K + KC - 1) / KC;
    return slices ? (K + slices - 1) / slices : 1;
}

/* MR full rows of a row-major A, 8 steps of k from src: the 8 columns, each
 * MR values (and 8 - MR zeros), in o. */
static void load_columns8(v8f o[8], const float *src, ptrdiff_t a_rs) {
    v8f r[8] = {{0}};
    for (int i = 0; i < MR; i++) memcpy(&r[i], src + i * a_rs, sizeof r[i]);
    transpose8(o, r);
}

/* A rows [i0, i0+MR) x k [p0, p0+kc) into ap[kc][MR], zero past row `rows`. */
static void pack_a_strip(const gemm_args *g, int i0, int rows, int p0, int kc, float *ap) {
    const float *src = g->a + (ptrdiff_t)i0 * g->a_rs + (ptrdiff_t)p0 * g->a_cs;
    int k = 0;
    if (g->a_rs == 1 && rows == MR) { /* A^T: the MR values of one k lie together */
        for (; k < kc; k++)
            for (int i = 0; i < MR; i++) ap[k * MR + i] = src[k * g->a_cs + i];
        return;
    }
    if (g->a_cs == 1 && rows == MR) /* row-major A: transposed 8 k at a time */
        for (; k + 8 <= kc; k += 8) {
            v8f o[8];
            load_columns8(o, src + k, g->a_rs);
            for (int t = 0; t < 8; t++) memcpy(ap + (k + t) * MR, &o[t], MR * sizeof(float));
        }
    for (int i = 0; i < MR; i++)
        for (int kk = k; kk < kc; kk++) ap[kk * MR + i] = i < rows ? src[i * g->a_rs + kk * g->a_cs] : 0.0f;
}

/* pack_a_strip keeping only the k at which some row is non-zero: their
 * indices into kidx; returns how many. Which k drop depends only on A and the
 * strip (fixed by the shapes), and a dropped step adds exactly zero. */
static int pack_a_strip_sparse(const gemm_args *g, int i0, int rows, int p0, int kc, float *ap, int *kidx) {
    const float *src = g->a + (ptrdiff_t)i0 * g->a_rs + (ptrdiff_t)p0 * g->a_cs;
    int n = 0, k = 0;
    if (g->a_cs == 1 && rows == MR) /* row-major A (pixels, activations): 8 k at a time */
        for (; k + 8 <= kc; k += 8) {
            v8f o[8];
            load_columns8(o, src + k, g->a_rs);
            v8i nz = {0};
            for (int i = 0; i < MR; i++) {
                v8f row;
                memcpy(&row, src + i * g->a_rs + k, sizeof row);
                nz |= row != 0.0f;
            }
            for (int t = 0; t < 8; t++) {
                if (!nz[t]) continue;
                memcpy(ap + n * MR, &o[t], MR * sizeof(float));
                kidx[n++] = k + t;
            }
        }
    for (; k < kc; k++) {
        float v[MR];
        int any = 0;
        for (int i = 0; i < MR; i++) {
            v[i] = i < rows ? src[i * g->a_rs + k * g->a_cs] : 0.0f;
            any |= v[i] != 0.0f;
        }
        if (!any) continue;
        for (int i = 0; i < MR; i++) ap[n * MR + i] = v[i];
        kidx[n++] = k;
    }
    return n;
}

/* B k [p0, p0+kc) x columns [j0, j0+NR) into bp[kc][NR], zero past column `cols`. */
static void pack_b_strip(const gemm_args *g, int p0, int kc, int j0, int cols, float *bp) {
    const float *src = g->b + (ptrdiff_t)p0 * g->b_rs + (ptrdiff_t)j0 * g->b_cs;
    if (g->b_cs == 1) { /* row-major B: NR values of one k lie together */
        if (cols == NR) {
            for (int k = 0; k < kc; k++) {
                const float *row = src + k * g->b_rs;
                storev(bp + k * NR, loadv(row));
                storev(bp + k * NR + VW, loadv(row + VW));
            }
            return;
        }
        for (int k = 0; k < kc; k++) {
            float *dst = bp + k * NR;
            const float *row = src + k * g->b_rs;
            for (int j = 0; j < cols; j++) dst[j] = row[j];
            for (int j = cols; j < NR; j++) dst[j] = 0.0f;
        }
        return;
    }
    if (g->b_rs == 1) /* B^T: the kc values of one column lie together */
        cpu_transpose(bp, NR, src, g->b_cs, cols, kc);
    for (int j = 0; j < NR; j++) {
        if (j >= cols) {
            for (int k = 0; k < kc; k++) bp[k * NR + j] = 0.0f;
            continue;
        }
        for (int k = 0; g->b_rs != 1 && k < kc; k++) bp[k * NR + j] = src[j * g->b_cs + k * g->b_rs];
    }
}

/* B given by row offsets: k [p0, p0+kc) x columns [j0, j0+NR) into bp[kc][NR],
 * NR floats of each row whole (readable that far by contract; what lies past
 * column N only reaches columns of C that are not stored). Plain vector copies:
 * cheap beside the product, and the micro-kernel's loads of B stay aligned,
 * where in-place rows at any offset would split cache lines. */
static void pack_b_rows(const gemm_args *g, int p0, int kc, int j0, float *bp) {
    const float *src = g->b + j0;
    const ptrdiff_t *off = g->b_row_off + p0;
    for (int k = 0; k < kc; k++) {
        storev(bp + k * NR, loadv(src + off[k]));
        storev(bp + k * NR + VW, loadv(src + off[k] + VW));
    }
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* The operands of the tile at rows [i0, i0+rows) and columns j0 of the block
 * at k slice pc, strip ir of the packed A block ablk, strip jr of the packed B. */
static tile_operands tile_at(const gemm_args *g, int pc, int kc, int i0, int rows, int j0, const float *ablk, int ir,
                             const float *bp, int jr, const int *kidx) {
    tile_operands o = {.kidx = kidx};
    if (g->a_row_off)
        for (int i = 0; i < MR; i++) o.arow[i] = g->a + g->a_row_off[i0 + (i < rows ? i : 0)] + pc;
    else o.ap = ablk + (size_t)ir * kc * MR;
    o.bp = bp + (size_t)jr * kc * NR;
    return o;
}

/* C rows [m0, m1) x columns [n0, n1), by one thread with its own pack buffer. */
static void gemm_block(const gemm_args *g, int m0, int m1, int n0, int n1, float *pack) {
    float *ap = pack, *bp = pack + (size_t)MC * KC;
    int *kidx = (int *)(bp + (size_t)KC * NC), nk[MC / MR];
    int sparse = g->skip_zero_a && !g->a_packed && !g->a_row_off;
    int pack_a = !g->a_packed && !g->a_row_off;
    if (g->K == 0) {
        if (!g->acc)
            for (int i = m0; i < m1; i++) memset(g->c + i * g->ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        return;
    }
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = min_int(n1 - jc, NC), n_jr = (nc + NR - 1) / NR;
        int kc_even = slice_len(g->K), m_pad = (g->M + MR - 1) / MR * MR;
        for (int pc = 0; pc < g->K; pc += kc_even) {
            int kc = min_int(g->K - pc, kc_even), acc = g->acc || pc > 0;
            for (int jr = 0; jr < n_jr; jr++) {
                float *dst = bp + (size_t)jr * kc * NR;
                if (g->b_row_off) pack_b_rows(g, pc, kc, jc + jr * NR, dst);
                else pack_b_strip(g, pc, kc, jc + jr * NR, min_int(nc - jr * NR, NR), dst);
            }
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = min_int(m1 - ic, MC), n_ir = (mc + MR - 1) / MR;
                /* the slice at pc holds kc x m_pad floats; strips of MR rows in it */
                const float *ablk = g->a_packed ? g->a_packed + (size_t)pc * m_pad + (size_t)ic * kc : ap;
                for (int ir = 0; pack_a && ir < n_ir; ir++) {
                    int i0 = ic + ir * MR, rows = min_int(mc - ir * MR, MR);
                    float *dst = ap + (size_t)ir * kc * MR;
                    if (sparse) nk[ir] = pack_a_strip_sparse(g, i0, rows, pc, kc, dst, kidx + (size_t)ir * KC);
                    else pack_a_strip(g, i0, rows, pc, kc, dst);
                }
                for (int jr = 0; jr < n_jr; jr++)
                    for (int ir = 0; ir < n_ir; ir++) {
                        int i0 = ic + ir * MR, j0 = jc + jr * NR, rows = min_int(m1 - i0, MR);
                        tile_operands o = tile_at(g, pc, kc, i0, rows, j0, ablk, ir, bp, jr,
                                                  sparse ? kidx + (size_t)ir * KC : NULL);
                        micro_kernel(sparse ? nk[ir] : kc, &o, g->c + i0 * g->ldc + j0, g->ldc, rows,
                                     min_int(n1 - j0, NR), acc);
                    }
            }
        }
    }
}

/* Part `part` of `parts`: C split into rectangles along whichever dimension has
 * more register tiles, on tile boundaries; but a C taller than wide with tiles
 * enough for every thread is split by rows: split by columns, each thread
 * would pack all of A (the cnn's fc1 weight gradient: 3136 x 100 of inputs,
 * copied again by every thread, and each thread writing half of every row of
 * a 12.8 MB C). Every element's sum is the same whatever the split, so the
 * split may follow the thread count. */
static void gemm_part(const gemm_args *g, int part, int parts) {
    int n_ir = (g->M + MR - 1) / MR, n_jr = (g->N + NR - 1) / NR;
    int along_n = (n_jr >= n_ir || n_jr >= 4 * parts) && !(g->M > g->N && n_ir >= 4 * parts);
    int strips = along_n ? n_jr : n_ir, unit = along_n ? NR : MR;
    int s0 = (int)((long)strips * part / parts), s1 = (int)((long)strips * (part + 1) / parts);
    if (s0 == s1) return;
    int lo = s0 * unit, hi = along_n ? min_int(s1 * unit, g->N) : min_int(s1 * unit, g->M);
    if (along_n) gemm_block(g, 0, g->M, lo, hi, cpu_sgemm_pack_buffer());
    else gemm_block(g, lo, hi, 0, g->N, cpu_sgemm_pack_buffer());
}

int cpu_sgemm_strip_cols(void) { return NR; }

size_t cpu_sgemm_packed_a_floats(int M, int K) { return (size_t)((M + MR - 1) / MR * MR) * (size_t)K; }

void cpu_sgemm_pack_a(int M, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, float *packed) {
    gemm_args g = {.M = M, .K = K, .a = a, .a_rs = a_rs, .a_cs = a_cs};
    int kc_even = slice_len(K), m_pad = (M + MR - 1) / MR * MR;
    for (int pc = 0; pc < K; pc += kc_even) {
        int kc = min_int(K - pc, kc_even);
        for (int i0 = 0; i0 < M; i0 += MR)
            pack_a_strip(&g, i0, min_int(M - i0, MR), pc, kc, packed + (size_t)pc * m_pad + (size_t)i0 * kc);
    }
}

/* Every thread of a new team, or the caller alone where the product is small
 * (not worth waking the team; the same result either way) or the caller is
 * already inside a parallel region. */
static void gemm_run(const gemm_args *g) {
    if (g->M <= 0 || g->N <= 0) return;
    int parallel = (double)g->M * g->N * (g->K > 0 ? g->K : 1) >= 65536.0 && !omp_in_parallel();
#pragma omp parallel if (parallel)
    gemm_part(g, omp_get_thread_num(), omp_get_num_threads());
}

void cpu_sgemm_packed(int M, int N, int K, const float *packed_a, const float *b, ptrdiff_t b_rs, ptrdiff_t b_cs,
                      float *c, ptrdiff_t ldc, int accumulate) {
    gemm_args g = {.M = M, .N = N, .K = K, .b = b, .b_rs = b_rs, .b_cs = b_cs, .c = c, .ldc = ldc,
                   .acc = accumulate, .a_packed = packed_a};
    gemm_run(&g);
}

void cpu_sgemm_packed_rows_b(int M, int N, int K, const float *packed_a, const float *b, const ptrdiff_t *b_row_off,
                             float *c, ptrdiff_t ldc, int accumulate) {
    gemm_args g = {.M = M, .N = N, .K = K, .b = b, .c = c, .ldc = ldc, .acc = accumulate, .a_packed = packed_a,
                   .b_row_off = b_row_off};
    gemm_run(&g);
}

/* Every thread's pack buffer stays listed here for the life of the process:
 * an OpenMP thread that exits when a later team is smaller takes its
 * thread-local pointer with it, and the buffer would be reported as a leak. */
typedef struct pack_node { struct pack_node *next; } pack_node;
static _Atomic(pack_node *) pack_buffers;

float *cpu_sgemm_pack_buffer(void) {
    static _Thread_local float *pack;
    if (!pack) {
        pack_node *n = aligned_alloc(64, 64 + PACK_FLOATS * sizeof(float));
        if (!n) abort();
        n->next = atomic_load(&pack_buffers);
        while (!atomic_compare_exchange_weak(&pack_buffers, &n->next, n)) {
        }
        pack = (float *)((char *)n + 64);
    }
    return pack;
}

void cpu_sgemm_team(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                    ptrdiff_t b_rs, ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate) {
    gemm_args g = {M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, NULL, 0, NULL, NULL};
    if (M <= 0 || N <= 0) return;
    gemm_part(&g, omp_get_thread_num(), omp_get_num_threads());
}

void cpu_sgemm_rows_a(int M, int N, int K, const float *a, const ptrdiff_t *a_row_off, const float *b, ptrdiff_t b_rs,
                      ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate) {
    gemm_args g = {.M = M, .N = N, .K = K, .a = a, .b = b, .b_rs = b_rs, .b_cs = b_cs, .c = c, .ldc = ldc,
                   .acc = accumulate, .a_row_off = a_row_off};
    if (M <= 0 || N <= 0) return;
    gemm_part(&g, 0, 1);
}

void cpu_sgemm(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
               ptrdiff_t b_rs, ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate) {
    gemm_args g = {M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, NULL, 0, NULL, NULL};
    gemm_run(&g);
}

void cpu_sgemm_strided(int M, int N, int K, const float *a, ptrdiff_t a_is, ptrdiff_t a_ks, const float *b,
                       ptrdiff_t b_ks, float *c, ptrdiff_t ldc, int accumulate) {
    for (int i0 = 0; i0 < M; i0 += MR)
        for (int j0 = 0; j0 < N; j0 += NR) {
            int rows = min_int(M - i0, MR);
            tile_operands o = {.as = a + i0 * a_is, .bs = b + j0, .a_is = a_is, .a_ks = a_ks, .b_ks = b_ks};
            micro_kernel(K, &o, c + (ptrdiff_t)i0 * ldc + j0, ldc, rows, min_int(N - j0, NR), accumulate);
        }
}

void cpu_sgemm_sparse_a(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                        ptrdiff_t b_rs, ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate) {
    gemm_args g = {M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, NULL, 1, NULL, NULL};
    gemm_run(&g);
}
