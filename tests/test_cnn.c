/* The cnn's cpu ops and the cnn itself: the SGEMM against a naive product at
 * odd sizes, conv2d and maxpool against their definitions and finite
 * differences (odd sizes, general padding), the whole cnn's gradient against
 * finite differences, bit-identical training across thread counts, a short
 * training whose loss falls, and a backend without conv ops refused. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/dmz.h"
#include "datasets/datasets.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/model.h"
#include "tests/gradcheck.h"

static const dmz_backend *be(void) { return &dmz_backend_cpu; }

/* |a-b| <= atol + rtol*|b|, printing the first few mismatches with their indices. */
/* ---------------------------------------------------------------- SGEMM */
static void check_sgemm(int M, int N, int K, int at, int bt, int acc, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    float *a = random_buffer(&rng, (size_t)M * K, 1), *b = random_buffer(&rng, (size_t)K * N, 1);
    int ldc = N + 3; /* a row stride wider than the row */
    float *c = random_buffer(&rng, (size_t)M * ldc, 1);
    double *want = malloc(sizeof(double) * M * ldc);
    ptrdiff_t ars = at ? 1 : K, acs = at ? M : 1, brs = bt ? 1 : N, bcs = bt ? K : 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            double s = acc || j >= N ? c[i * ldc + j] : 0.0;
            if (j < N)
                for (int k = 0; k < K; k++) s += (double)a[i * ars + k * acs] * b[k * brs + j * bcs];
            want[i * ldc + j] = s;
        }
    float *c2 = malloc(sizeof(float) * M * ldc);
    memcpy(c2, c, sizeof(float) * M * ldc);
    cpu_sgemm(M, N, K, a, ars, acs, b, brs, bcs, c, ldc, acc);
    char what[96];
    snprintf(what, sizeof what, "sgemm M=%d N=%d K=%d at=%d bt=%d acc=%d", M, N, K, at, bt, acc);
    assert_int_equal(count_mismatches(what, c, want, (size_t)M * ldc, 1e-5 * sqrt(K + 1.0), 1e-5), 0);
    /* A packed once beforehand: the same bits */
    float *packed = malloc(sizeof(float) * (cpu_sgemm_packed_a_floats(M, K) + 1));
    cpu_sgemm_pack_a(M, K, a, ars, acs, packed);
    cpu_sgemm_packed(M, N, K, packed, b, brs, bcs, c2, ldc, acc);
    assert_memory_equal(c, c2, sizeof(float) * M * ldc);
    free(a), free(b), free(c), free(c2), free(packed), free(want);
}

static void test_sgemm_odd_sizes(void **state) {
    (void)state;
    static const int sizes[][3] = {{1, 1, 1}, {5, 7, 3}, {6, 16, 256}, {7, 17, 257}, {13, 33, 600},
                                   {121, 19, 5}, {3, 2051, 9}, {100, 47, 100}, {2, 3, 0}};
    uint64_t seed = 10;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int acc = 0; acc < 2; acc++)
                check_sgemm(sizes[s][0], sizes[s][1], sizes[s][2], t & 1, t >> 1, acc, seed++);
}

/* A mostly zero (like pixels): skipping the all-zero steps of a strip gives the
 * same bits as the dense product, in both orientations dense layers use. */
static void test_sgemm_sparse_a(void **state) {
    (void)state;
    dmz_rng rng;
    dmz_rng_seed(&rng, 77);
    enum { M = 37, N = 29, K = 301 };
    float *a = random_buffer(&rng, (size_t)M * K, 1), *b = random_buffer(&rng, (size_t)K * N, 1);
    for (int i = 0; i < M * K; i++)
        if (dmz_rng_uniform(&rng) < 0.8 || (i % K) < 40) a[i] = 0.0f; /* and whole zero columns */
    float c1[M * N], c2[M * N];
    for (int t = 0; t < 2; t++) {
        ptrdiff_t ars = t ? 1 : K, acs = t ? M : 1;
        cpu_sgemm(M, N, K, a, ars, acs, b, N, 1, c1, N, 0);
        cpu_sgemm_sparse_a(M, N, K, a, ars, acs, b, N, 1, c2, N, 0);
        assert_memory_equal(c1, c2, sizeof c1);
    }
    free(a), free(b);
}

/* ---------------------------------------------------------------- conv2d */
static void conv_naive(double *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    for (int b = 0; b < s.B; b++)
        for (int o = 0; o < s.OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double sum = bias ? bias[o] : 0.0;
                    for (int c = 0; c < s.C; c++)
                        for (int ky = 0; ky < s.K; ky++)
                            for (int kx = 0; kx < s.K; kx++) {
                                int iy = y + ky - s.pad, ix = x + kx - s.pad;
                                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                                sum += (double)inp[((b * s.C + c) * s.H + iy) * s.W + ix] *
                                       w[((o * s.C + c) * s.K + ky) * s.K + kx];
                            }
                    out[((b * s.OC + o) * OH + y) * OW + x] = sum;
                }
}

typedef struct {
    dmz_conv_shape s;
    float *inp, *w, *bias, *R, *work;
} conv_case;

static size_t conv_out_n(dmz_conv_shape s) { return (size_t)s.B * s.OC * dmz_conv_out_h(s) * dmz_conv_out_w(s); }

/* L = sum(out * R): dL/dout = R */
static double conv_loss_v(const void *ctx) {
    const conv_case *c = ctx;
    size_t n = conv_out_n(c->s);
    float *out = malloc(n * sizeof(float));
    be()->conv2d_forward(out, c->inp, c->w, c->bias, c->s, c->work);
    double L = 0;
    for (size_t i = 0; i < n; i++) L += (double)out[i] * c->R[i];
    free(out);
    return L;
}

static const dmz_conv_shape conv_shapes[] = {
    {.B = 2, .C = 3, .H = 7, .W = 5, .OC = 4, .K = 3, .pad = 1},  /* odd sizes, 'same' */
    {.B = 3, .C = 2, .H = 6, .W = 9, .OC = 5, .K = 5, .pad = 2},  /* the cnn's 5x5 'same' */
    {.B = 1, .C = 2, .H = 5, .W = 6, .OC = 3, .K = 3, .pad = 0},  /* 'valid' */
    {.B = 2, .C = 1, .H = 4, .W = 3, .OC = 2, .K = 3, .pad = 2},  /* output larger than input */
    {.B = 2, .C = 3, .H = 3, .W = 4, .OC = 7, .K = 1, .pad = 0},  /* 1x1 */
    {.B = 11, .C = 2, .H = 5, .W = 5, .OC = 3, .K = 3, .pad = 1}, /* more samples than workspace slots */
};

static void conv_case_make(conv_case *c, dmz_conv_shape s, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    c->s = s;
    c->inp = random_buffer(&rng, (size_t)s.B * s.C * s.H * s.W, 1);
    c->w = random_buffer(&rng, (size_t)s.OC * s.C * s.K * s.K, 1);
    c->bias = random_buffer(&rng, (size_t)s.OC, 1);
    c->R = random_buffer(&rng, conv_out_n(s), 1);
    c->work = be()->alloc(be()->conv2d_workspace(s) + 1);
}

static void conv_case_free(conv_case *c) {
    free(c->inp), free(c->w), free(c->bias), free(c->R);
    be()->free(c->work);
}

static void test_conv2d_forward_definition(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++) {
        conv_case c;
        conv_case_make(&c, conv_shapes[i], 40 + i);
        size_t n = conv_out_n(c.s);
        float *out = malloc(n * sizeof(float));
        double *want = malloc(n * sizeof(double));
        be()->conv2d_forward(out, c.inp, c.w, c.bias, c.s, c.work);
        conv_naive(want, c.inp, c.w, c.bias, c.s);
        assert_int_equal(count_mismatches("conv2d_forward", out, want, n, 1e-5, 1e-5), 0);
        be()->conv2d_forward(out, c.inp, c.w, NULL, c.s, c.work); /* no bias */
        conv_naive(want, c.inp, c.w, NULL, c.s);
        assert_int_equal(count_mismatches("conv2d_forward (no bias)", out, want, n, 1e-5, 1e-5), 0);
        free(out), free(want);
        conv_case_free(&c);
    }
}

static void test_conv2d_gradients(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++) {
        conv_case c;
        conv_case_make(&c, conv_shapes[i], 60 + i);
        dmz_conv_shape s = c.s;
        size_t ni = (size_t)s.B * s.C * s.H * s.W, nw = (size_t)s.OC * s.C * s.K * s.K;
        float *dinp = malloc(ni * sizeof(float)), *dw = malloc(nw * sizeof(float)), *db = malloc(s.OC * sizeof(float));
        double *want = malloc((ni > nw ? ni : nw) * sizeof(double));
        /* garbage in the outputs: the ops must overwrite them */
        for (size_t k = 0; k < ni; k++) dinp[k] = 1e30f;
        for (size_t k = 0; k < nw; k++) dw[k] = 1e30f;
        be()->conv2d_backward_data(dinp, c.R, c.w, s, c.work);
        be()->conv2d_backward_filter(dw, db, c.R, c.inp, s, c.work);
        finite_diff(conv_loss_v, &c, c.inp, ni, want, 1e-2f);
        assert_int_equal(count_mismatches("conv2d dinp", dinp, want, ni, 1e-3, 1e-3), 0);
        finite_diff(conv_loss_v, &c, c.w, nw, want, 1e-2f);
        assert_int_equal(count_mismatches("conv2d dw", dw, want, nw, 1e-3, 1e-3), 0);
        finite_diff(conv_loss_v, &c, c.bias, (size_t)s.OC, want, 1e-2f);
        assert_int_equal(count_mismatches("conv2d dbias", db, want, (size_t)s.OC, 1e-3, 1e-3), 0);
        /* dbias NULL leaves dw the same */
        float *dw2 = malloc(nw * sizeof(float));
        be()->conv2d_backward_filter(dw2, NULL, c.R, c.inp, s, c.work);
        assert_memory_equal(dw, dw2, nw * sizeof(float));
        free(dinp), free(dw), free(db), free(dw2), free(want);
        conv_case_free(&c);
    }
}

/* ---------------------------------------------------------------- Winograd */
/* The shapes that take F(4x4, 5x5) (conv2d_winograd.c): 5x5 filters, 8 or
 * more channels each side; odd sizes (partial tiles at the right and bottom),
 * channel counts that are not a multiple of the vector width, every padding
 * from 'valid' to 4, more samples than tiles per block, and the cnn's conv2. */
static const dmz_conv_shape wino_shapes[] = {
    {.B = 3, .C = 9, .H = 7, .W = 11, .OC = 10, .K = 5, .pad = 2},
    {.B = 2, .C = 8, .H = 9, .W = 6, .OC = 17, .K = 5, .pad = 0},
    {.B = 2, .C = 12, .H = 5, .W = 5, .OC = 8, .K = 5, .pad = 4},
    {.B = 5, .C = 16, .H = 8, .W = 13, .OC = 9, .K = 5, .pad = 1},
    {.B = 1, .C = 8, .H = 6, .W = 7, .OC = 8, .K = 5, .pad = 3},
    {.B = 4, .C = 32, .H = 14, .W = 14, .OC = 64, .K = 5, .pad = 2},
};

static void conv_backward_naive(double *dinp, double *dw, const float *dout, const float *inp, const float *w,
                                dmz_conv_shape s) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    memset(dinp, 0, sizeof(double) * s.B * s.C * s.H * s.W);
    memset(dw, 0, sizeof(double) * s.OC * s.C * s.K * s.K);
    for (int b = 0; b < s.B; b++)
        for (int o = 0; o < s.OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double g = dout[((b * s.OC + o) * OH + y) * OW + x];
                    for (int c = 0; c < s.C; c++)
                        for (int ky = 0; ky < s.K; ky++)
                            for (int kx = 0; kx < s.K; kx++) {
                                int iy = y + ky - s.pad, ix = x + kx - s.pad;
                                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                                size_t ii = (((size_t)b * s.C + c) * s.H + iy) * s.W + ix;
                                size_t wi = (((size_t)o * s.C + c) * s.K + ky) * s.K + kx;
                                dinp[ii] += g * w[wi];
                                dw[wi] += g * inp[ii];
                            }
                }
}

/* Winograd's transforms scale values up (B^T d B and A dY A^T by more than
 * 100) and G divides them back down, so its rounding error is larger than the
 * direct sum's. Errors in units of sqrt(L) (L = the products in one output:
 * C*25 forward, OC*25 backward-data, B*OH*OW backward-filter; operands uniform
 * in [-1, 1]), the largest over these shapes, measured here with F(4x4, 5x5):
 * forward 8.5e-6, backward-data 8.1e-6, backward-filter 7.4e-6 (the implicit
 * GEMM's are printed beside them). The bounds allow about 4 times that. */
static const double wino_bound[3] = {3.5e-5, 3.5e-5, 3.5e-5};
static const char *const wino_op[3] = {"forward", "backward-data", "backward-filter"};

/* The three passes of the cpu backend on one case beside their definitions:
 * forward, backward-data, backward-filter, with L (the products in one output). */
typedef struct pass_results {
    float *got[3];
    double *want[3];
    size_t n[3];
    double L[3];
} pass_results;

static void run_passes(const conv_case *c, pass_results *r) {
    dmz_conv_shape s = c->s;
    size_t n[3] = {conv_out_n(s), (size_t)s.B * s.C * s.H * s.W, (size_t)s.OC * s.C * s.K * s.K};
    for (int k = 0; k < 3; k++)
        r->n[k] = n[k], r->got[k] = malloc(n[k] * sizeof(float)), r->want[k] = malloc(n[k] * sizeof(double));
    r->L[0] = (double)s.C * 25, r->L[1] = (double)s.OC * 25, r->L[2] = (double)s.B * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    be()->conv2d_forward(r->got[0], c->inp, c->w, c->bias, s, c->work);
    be()->conv2d_backward_data(r->got[1], c->R, c->w, s, c->work);
    be()->conv2d_backward_filter(r->got[2], NULL, c->R, c->inp, s, c->work);
    conv_naive(r->want[0], c->inp, c->w, c->bias, s);
    conv_backward_naive(r->want[1], r->want[2], c->R, c->inp, c->w, s);
}

/* Pass k's largest error, in units of sqrt(L). */
static double pass_error(const pass_results *r, int k) {
    double e = 0;
    for (size_t i = 0; i < r->n[k]; i++) e = fmax(e, fabs(r->got[k][i] - r->want[k][i]));
    return e / sqrt(r->L[k] + 1);
}

static void pass_results_free(pass_results *r) {
    for (int k = 0; k < 3; k++) free(r->got[k]), free(r->want[k]);
}

static void check_winograd(dmz_conv_shape s, uint64_t seed, double worst[3], double worst_direct[3]) {
    conv_case c;
    conv_case_make(&c, s, seed);
    assert_true(cpu_conv_winograd_fits(s));
    pass_results r;
    /* the implicit GEMM's errors beside them (DMZBENCH_CPU_CONV=direct) */
    dmz_cpu_set_direct_conv(1);
    run_passes(&c, &r);
    dmz_cpu_set_direct_conv(0);
    for (int k = 0; k < 3; k++) worst_direct[k] = fmax(worst_direct[k], pass_error(&r, k));
    pass_results_free(&r);
    run_passes(&c, &r);
    char what[160];
    for (int k = 0; k < 3; k++) {
        snprintf(what, sizeof what, "winograd %s B=%d C=%d H=%d W=%d OC=%d pad=%d", wino_op[k], s.B, s.C, s.H, s.W,
                 s.OC, s.pad);
        worst[k] = fmax(worst[k], pass_error(&r, k));
        double atol = wino_bound[k] * sqrt(r.L[k] + 1);
        assert_int_equal(count_mismatches(what, r.got[k], r.want[k], r.n[k], atol, 0), 0);
    }
    pass_results_free(&r);
    conv_case_free(&c);
}

static void test_conv2d_winograd_definition(void **state) {
    (void)state;
    double worst[3] = {0}, direct[3] = {0};
    for (size_t i = 0; i < sizeof wino_shapes / sizeof wino_shapes[0]; i++)
        check_winograd(wino_shapes[i], 80 + i, worst, direct);
    for (int k = 0; k < 3; k++)
        fprintf(stderr, "  winograd %-15s largest error %.2g * sqrt(L) (bound %.2g; implicit GEMM %.2g)\n", wino_op[k],
                worst[k], wino_bound[k], direct[k]);
}

/* Finite differences through the Winograd path. The loss is linear in each
 * operand, so central differences are exact for any step; a step of 0.25
 * keeps the forward pass's rounding (larger than the direct sum's) small
 * beside the difference. */
static void test_conv2d_winograd_gradients(void **state) {
    (void)state;
    dmz_conv_shape s = wino_shapes[0];
    conv_case c;
    conv_case_make(&c, s, 99);
    size_t ni = (size_t)s.B * s.C * s.H * s.W, nw = (size_t)s.OC * s.C * s.K * s.K;
    float *dinp = malloc(ni * sizeof(float)), *dw = malloc(nw * sizeof(float));
    double *want = malloc((ni > nw ? ni : nw) * sizeof(double));
    be()->conv2d_backward_data(dinp, c.R, c.w, s, c.work);
    be()->conv2d_backward_filter(dw, NULL, c.R, c.inp, s, c.work);
    finite_diff(conv_loss_v, &c, c.inp, ni, want, 0.25f);
    assert_int_equal(count_mismatches("winograd dinp", dinp, want, ni, 1e-3, 1e-3), 0);
    finite_diff(conv_loss_v, &c, c.w, nw, want, 0.25f);
    assert_int_equal(count_mismatches("winograd dw", dw, want, nw, 1e-3, 1e-3), 0);
    free(dinp), free(dw), free(want);
    conv_case_free(&c);
}

/* The same bits for 1, 2 and 3 threads: tiles, blocks and runs of blocks are
 * shared out, sums are not (one block, and 3 blocks in 3 runs). */
static void test_conv2d_winograd_same_bits_any_thread_count(void **state) {
    (void)state;
    dmz_conv_shape shapes[2] = {wino_shapes[0], wino_shapes[5]};
    int saved = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        dmz_conv_shape s = shapes[k];
        conv_case c;
        conv_case_make(&c, s, 100 + k);
        size_t ni = (size_t)s.B * s.C * s.H * s.W, nw = (size_t)s.OC * s.C * s.K * s.K, n = conv_out_n(s);
        float *out[3], *dinp[3], *dw[3];
        for (int nt = 1; nt <= 3; nt++) {
            omp_set_num_threads(nt);
            out[nt - 1] = malloc(n * sizeof(float)), dinp[nt - 1] = malloc(ni * sizeof(float));
            dw[nt - 1] = malloc(nw * sizeof(float));
            be()->conv2d_forward_relu(out[nt - 1], c.inp, c.w, c.bias, s, c.work);
            be()->conv2d_backward_data(dinp[nt - 1], c.R, c.w, s, c.work);
            be()->conv2d_backward_filter(dw[nt - 1], NULL, c.R, c.inp, s, c.work);
        }
        for (int t = 1; t < 3; t++) {
            assert_memory_equal(out[t], out[0], n * sizeof(float));
            assert_memory_equal(dinp[t], dinp[0], ni * sizeof(float));
            assert_memory_equal(dw[t], dw[0], nw * sizeof(float));
        }
        for (int t = 0; t < 3; t++) free(out[t]), free(dinp[t]), free(dw[t]);
        conv_case_free(&c);
    }
    omp_set_num_threads(saved);
}

/* ---------------------------------------------------------------- maxpool */
static void test_maxpool_definition(void **state) {
    (void)state;
    /* one 3x5 plane: SAME pooling gives 2x3, the last row and column partial */
    float x[15] = {1, 5, 2, 2, -1,  /* */
                   3, 4, 9, 0, -3,  /* */
                   -2, 7, 6, 8, -4};
    float out[6], dout[6] = {10, 20, 30, 40, 50, 60}, dx[15];
    be()->maxpool2x2_forward(out, x, 1, 1, 3, 5);
    float want[6] = {5, 9, -1, 7, 8, -4};
    assert_memory_equal(out, want, sizeof want);
    be()->maxpool2x2_backward(dx, dout, x, 1, 1, 3, 5);
    float wantd[15] = {0, 10, 0, 0, 30, 0, 0, 20, 0, 0, 0, 40, 0, 50, 60};
    assert_memory_equal(dx, wantd, sizeof wantd);
    /* ties: the first maximum in row-major order takes the gradient */
    float t[4] = {2, 2, 2, 2}, o, g = 1, dt[4];
    be()->maxpool2x2_forward(&o, t, 1, 1, 2, 2);
    be()->maxpool2x2_backward(dt, &g, t, 1, 1, 2, 2);
    float wantt[4] = {1, 0, 0, 0};
    assert_memory_equal(dt, wantt, sizeof wantt);
}

/* Long rows with many ties (values from {0, 1, 2}): every tie pattern, in the
 * vector chunks and their tails, against the rule written out by hand. */
static void test_maxpool_ties_in_long_rows(void **state) {
    (void)state;
    enum { H = 4, W = 38, OW = W / 2 }; /* 19 windows a row: two chunks of 8 and a tail of 3 */
    float x[H * W], g[H / 2 * OW], dx[H * W], want[H * W] = {0};
    dmz_rng rng;
    dmz_rng_seed(&rng, 11);
    for (int i = 0; i < H * W; i++) x[i] = (float)dmz_rng_below(&rng, 3);
    for (int i = 0; i < H / 2 * OW; i++) g[i] = (float)(i + 1);
    for (int y = 0; y < H / 2; y++)
        for (int xo = 0; xo < OW; xo++) {
            int at[4] = {2 * y * W + 2 * xo, 2 * y * W + 2 * xo + 1, (2 * y + 1) * W + 2 * xo,
                         (2 * y + 1) * W + 2 * xo + 1};
            int best = 0;
            for (int k = 1; k < 4; k++)
                if (x[at[k]] > x[at[best]]) best = k;
            want[at[best]] = g[y * OW + xo];
        }
    be()->maxpool2x2_backward(dx, g, x, 1, 1, H, W);
    assert_memory_equal(dx, want, sizeof want);
}

typedef struct { int B, C, H, W; float *inp, *R; } pool_case;

static double pool_loss_v(const void *ctx) {
    const pool_case *p = ctx;
    size_t n = (size_t)p->B * p->C * dmz_pool_out(p->H) * dmz_pool_out(p->W);
    float *out = malloc(n * sizeof(float));
    be()->maxpool2x2_forward(out, p->inp, p->B, p->C, p->H, p->W);
    double L = 0;
    for (size_t i = 0; i < n; i++) L += (double)out[i] * p->R[i];
    free(out);
    return L;
}

static void test_maxpool_gradients(void **state) {
    (void)state;
    dmz_rng rng;
    dmz_rng_seed(&rng, 5);
    pool_case p = {.B = 2, .C = 3, .H = 7, .W = 6};
    size_t ni = (size_t)p.B * p.C * p.H * p.W, no = (size_t)p.B * p.C * 4 * 3;
    p.inp = random_buffer(&rng, ni, 1), p.R = random_buffer(&rng, no, 1);
    float *dx = malloc(ni * sizeof(float));
    double *want = malloc(ni * sizeof(double));
    be()->maxpool2x2_backward(dx, p.R, p.inp, p.B, p.C, p.H, p.W);
    finite_diff(pool_loss_v, &p, p.inp, ni, want, 1e-4f); /* well inside the gaps between uniform values */
    assert_int_equal(count_mismatches("maxpool dinp", dx, want, ni, 1e-3, 1e-3), 0);
    free(p.inp), free(p.R), free(dx), free(want);
}

/* ---------------------------------------------------------------- conv + ReLU + pool fused */
/* conv2d_relu_pool_forward against conv2d_forward_relu then maxpool2x2_forward,
 * maxpool2x2_backward_codes against maxpool2x2_backward_relu over the
 * activation, conv2d_backward_filter_pooled against the codes' dout into
 * conv2d_backward_filter: the same bits, for the implicit GEMM and Winograd, partial
 * tiles and rows of windows that do not fill a vector, ties and NaN. */
static void check_relu_pool(dmz_conv_shape s, int ties, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    size_t ni = (size_t)s.B * s.C * s.H * s.W, nw = (size_t)s.OC * s.C * s.K * s.K, na = (size_t)s.B * s.OC * OH * OW,
           np = na / 4;
    float *x = random_buffer(&rng, ni, 1), *w = random_buffer(&rng, nw, 1), *bias = random_buffer(&rng, s.OC, 1);
    if (ties) { /* zero filters: every output is its bias, every window a four-way tie (kept and refused) */
        memset(w, 0, nw * sizeof(float));
        for (int o = 0; o < s.OC; o++) bias[o] = o % 3 == 0 ? 0.5f : o % 3 == 1 ? -0.5f : 0.0f;
    } else {
        x[ni / 3] = NAN; /* NaN through the ReLU: 0, and no gradient */
    }
    float *act = malloc(na * sizeof(float)), *pool = malloc(np * sizeof(float)), *fused = malloc(np * sizeof(float));
    float *g = random_buffer(&rng, np, 1), *d_apart = malloc(na * sizeof(float)), *d_fused = malloc(na * sizeof(float));
    uint8_t *code = malloc(np);
    void *work = malloc(be()->conv2d_workspace(s) + 64);
    be()->conv2d_forward_relu(act, x, w, bias, s, work);
    be()->maxpool2x2_forward(pool, act, s.B, s.OC, OH, OW);
    be()->maxpool2x2_backward_relu(d_apart, g, act, s.B, s.OC, OH, OW);
    be()->conv2d_relu_pool_forward(fused, code, x, w, bias, s, work);
    be()->maxpool2x2_backward_codes(d_fused, g, code, s.B, s.OC, OH, OW);
    char what[128];
    snprintf(what, sizeof what, "relu_pool C=%d H=%d W=%d OC=%d K=%d pad=%d ties=%d (%s)", s.C, s.H, s.W, s.OC, s.K,
             s.pad, ties, cpu_conv_winograd_fits(s) ? "winograd" : "implicit");
    if (memcmp(pool, fused, np * sizeof(float)) || memcmp(d_apart, d_fused, na * sizeof(float)))
        fail_msg("%s: fused forward or backward differs from the ops apart", what);
    /* the filter gradient straight from the pool's gradient and codes */
    float *dw1 = malloc(nw * sizeof(float)), *dw2 = malloc(nw * sizeof(float)), db1[64], db2[64];
    assert_true(s.OC <= 64);
    be()->conv2d_backward_filter(dw1, db1, d_apart, x, s, work);
    be()->conv2d_backward_filter_pooled(dw2, db2, g, code, x, s, work);
    if (memcmp(dw1, dw2, nw * sizeof(float)) || memcmp(db1, db2, (size_t)s.OC * sizeof(float)))
        fail_msg("%s: backward-filter from the codes differs from the ops apart", what);
    free(dw1), free(dw2);
    for (size_t i = 0; i < np; i++) assert_in_range(code[i], 0, CPU_POOL_NO_GRAD);
    if (ties) /* bias 0.5: the window's first input; -0.5 and 0: none */
        for (size_t i = 0; i < np; i++) {
            int o = (int)(i / ((size_t)(OH / 2) * (OW / 2))) % s.OC;
            assert_int_equal(code[i], o % 3 == 0 ? 0 : CPU_POOL_NO_GRAD);
        }
    free(x), free(w), free(bias), free(act), free(pool), free(fused), free(g), free(d_apart), free(d_fused);
    free(code), free(work);
}

static void test_conv_relu_pool_fused_same_bits(void **state) {
    (void)state;
    static const dmz_conv_shape shapes[] = {
        {.B = 3, .C = 1, .H = 28, .W = 28, .OC = 32, .K = 5, .pad = 2},  /* the cnn's conv1: 14 windows a row */
        {.B = 2, .C = 32, .H = 14, .W = 14, .OC = 64, .K = 5, .pad = 2}, /* conv2 (Winograd): 7, partial tiles */
        {.B = 2, .C = 3, .H = 10, .W = 12, .OC = 5, .K = 3, .pad = 1},   /* odd channel counts */
        {.B = 2, .C = 9, .H = 18, .W = 22, .OC = 20, .K = 5, .pad = 2},  /* Winograd, channels not a multiple of 16 */
        {.B = 1, .C = 8, .H = 39, .W = 35, .OC = 8, .K = 5, .pad = 0},   /* Winograd, no padding: 35 x 31 -> odd */
    };
    uint64_t seed = 400;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        dmz_conv_shape s = shapes[i];
        if (dmz_conv_out_h(s) % 2 || dmz_conv_out_w(s) % 2) { /* the op pools even sizes only */
            s.H += dmz_conv_out_h(s) % 2, s.W += dmz_conv_out_w(s) % 2;
        }
        for (int ties = 0; ties < 2; ties++) check_relu_pool(s, ties, seed++);
    }
}

/* ---------------------------------------------------------------- the cnn */
static dmz_model_config small_cnn(void) {
    /* 7x6 -> conv3x3x2 -> pool 4x3 -> conv3x3x3 -> pool 2x2 -> 12 -> dense 5 -> 4 */
    return (dmz_model_config){.kind = "cnn", .inputs = 42, .height = 7, .width = 6, .conv1 = 2, .conv2 = 3,
                              .kernel = 3, .hidden = 5, .classes = 4, .max_batch = 3};
}

static void test_cnn_gradient(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    dmz_model_config cfg = small_cnn();
    struct { dmz_model *m; uint8_t *images, *labels; int B; float *params; } c = {.B = 3};
    assert_int_equal(dmz_model_create(be(), &cfg, 7, &c.m, err), DMZ_OK);
    size_t n = dmz_model_num_params(c.m);
    assert_int_equal(n, (2 * 9 + 2) + (3 * 2 * 9 + 3) + (12 * 5 + 5) + (5 * 4 + 4));
    dmz_rng rng;
    dmz_rng_seed(&rng, 3);
    c.images = malloc(3 * 42), c.labels = malloc(3);
    for (int i = 0; i < 3 * 42; i++) c.images[i] = (uint8_t)dmz_rng_below(&rng, 256);
    for (int i = 0; i < 3; i++) c.labels[i] = (uint8_t)dmz_rng_below(&rng, 4);
    c.params = malloc(n * sizeof(float));
    dmz_model_get_params(c.m, c.params);
    for (size_t i = 0; i < n; i++) c.params[i] *= 4.0f; /* sizeable gradients in every layer */
    assert_int_equal(model_gradient_mismatches("cnn grad", c.m, c.images, c.labels, c.B, c.params), 0);
    free(c.params), free(c.images), free(c.labels);
    dmz_model_destroy(c.m);
}

static void test_cnn_shapes_and_init(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    dmz_model_config cfg;
    dmz_model_config_default(&cfg, "cnn", 47, 4);
    dmz_model *m;
    assert_int_equal(dmz_model_create(be(), &cfg, 42, &m, err), DMZ_OK);
    size_t n = dmz_model_num_params(m);
    size_t conv1 = 32 * 25 + 32, conv2 = 64 * 32 * 25 + 64, fc1 = 3136 * 1024 + 1024;
    assert_int_equal(n, conv1 + conv2 + fc1 + 1024 * 47 + 47);
    float *p = malloc(n * sizeof(float));
    dmz_model_get_params(m, p);
    double s2 = 0, maxabs = 0;
    for (size_t i = conv1 + conv2; i < conv1 + conv2 + 3136 * 1024; i++) {
        s2 += (double)p[i] * p[i];
        maxabs = fmax(maxabs, fabs(p[i]));
    }
    assert_true(fabs(sqrt(s2 / (3136.0 * 1024)) - 0.8796 * 0.1) < 0.001); /* truncated at 2 sigma */
    assert_true(maxabs <= 0.2 + 1e-6);
    for (size_t i = 32 * 25; i < conv1; i++) assert_float_equal(p[i], 0.1f, 0); /* biases 0.1 */
    assert_float_equal(p[n - 1], 0.1f, 0);
    assert_float_equal(dmz_model_default_lr("cnn"), 1e-3f, 0);
    assert_float_equal(dmz_model_default_lr("mlp"), 0.01f, 0);
    free(p);
    dmz_model_destroy(m);
    /* an even kernel has no 'same' padding */
    cfg.kernel = 4;
    assert_int_equal(dmz_model_create(be(), &cfg, 42, &m, err), DMZ_EXIT_USAGE);
}

/* n steps of Adam on fixed random batches; losses and final parameters out */
static void train_steps_on(const dmz_backend *backend, const dmz_model_config *cfg, int threads, int steps, float lr,
                           float *losses, float *params) {
    char err[DMZ_ERR_LEN];
    dmz_cpu_set_threads(threads);
    dmz_model *m;
    assert_int_equal(dmz_model_create(backend, cfg, 11, &m, err), DMZ_OK);
    dmz_owned_split data;
    dmz_synthetic_make(9, (size_t)steps * cfg->max_batch, cfg->classes, &data);
    assert_non_null(data.images);
    for (int s = 0; s < steps; s++) {
        size_t off = (size_t)s * cfg->max_batch;
        dmz_model_set_batch(m, data.images + off * cfg->inputs, data.labels + off, cfg->max_batch);
        dmz_model_forward(m);
        losses[s] = dmz_model_loss(m);
        dmz_model_backward(m);
        dmz_model_update(m, lr, 0.9f, 0.999f, 1e-8f);
    }
    if (params) dmz_model_get_params(m, params);
    dmz_split_free(&data);
    dmz_model_destroy(m);
    dmz_cpu_set_threads(0);
}

static void train_steps(const dmz_model_config *cfg, int threads, int steps, float lr, float *losses,
                        float *params) {
    train_steps_on(be(), cfg, threads, steps, lr, losses, params);
}

static size_t params_of(const dmz_model_config *cfg) {
    char err[DMZ_ERR_LEN];
    dmz_model *probe;
    assert_int_equal(dmz_model_create(be(), cfg, 1, &probe, err), DMZ_OK);
    size_t n = dmz_model_num_params(probe);
    dmz_model_destroy(probe);
    return n;
}

/* The real cnn's shapes: the model with the fused conv + ReLU + pool ops (and
 * the first layer's filter gradient from the pool's codes) trains to the same
 * bits as with the pool's backward from the codes apart, and with every op
 * apart. */
static void test_cnn_fused_pool_same_bits(void **state) {
    (void)state;
    enum { STEPS = 3 };
    dmz_model_config cfg;
    dmz_model_config_default(&cfg, "cnn", 10, 6);
    size_t n = params_of(&cfg);
    float la[STEPS], lb[STEPS], *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    train_steps(&cfg, 0, STEPS, 1e-3f, la, pa);
    dmz_backend apart = dmz_backend_cpu, codes_only = dmz_backend_cpu;
    apart.conv2d_relu_pool_forward = NULL, apart.maxpool2x2_backward_codes = NULL;
    apart.conv2d_backward_filter_pooled = NULL;
    codes_only.conv2d_backward_filter_pooled = NULL;
    const dmz_backend *others[] = {&apart, &codes_only};
    for (int k = 0; k < 2; k++) {
        train_steps_on(others[k], &cfg, 0, STEPS, 1e-3f, lb, pb);
        assert_memory_equal(la, lb, sizeof la);
        assert_memory_equal(pa, pb, n * sizeof(float));
    }
    free(pa), free(pb);
}

/* The real cnn's shapes (28x28, 32 and 64 filters, 1024 units), a small batch:
 * 1, 2 and 3 threads give the same bits. */
static void test_cnn_same_bits_any_thread_count(void **state) {
    (void)state;
    enum { STEPS = 2 };
    dmz_model_config cfg;
    dmz_model_config_default(&cfg, "cnn", 10, 6);
    size_t n = params_of(&cfg);
    float la[STEPS], lb[STEPS], *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    train_steps(&cfg, 1, STEPS, 1e-3f, la, pa);
    for (int t = 2; t <= 3; t++) {
        train_steps(&cfg, t, STEPS, 1e-3f, lb, pb);
        assert_memory_equal(la, lb, sizeof la);
        assert_memory_equal(pa, pb, n * sizeof(float));
    }
    free(pa), free(pb);
}

/* A reduced cnn learns the synthetic classes: the loss falls. */
static void test_cnn_training_loss_falls(void **state) {
    (void)state;
    enum { STEPS = 60 };
    dmz_model_config cfg;
    dmz_model_config_default(&cfg, "cnn", 10, 16);
    cfg.conv1 = 4, cfg.conv2 = 8, cfg.hidden = 32;
    float loss[STEPS];
    train_steps(&cfg, 0, STEPS, 3e-3f, loss, NULL);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) first += loss[i], last += loss[STEPS - 10 + i];
    fprintf(stderr, "cnn (4/8 filters, 32 units), batch 16: mean loss steps 1-10 %.3f, %d-%d %.3f\n",
            first / 10, STEPS - 9, STEPS, last / 10);
    assert_true(last < first / 2);
}

/* A backend without the conv ops (the cuda backend today) refuses the cnn with
 * a usage error that names the missing op. */
static void test_cnn_refused_without_conv_ops(void **state) {
    (void)state;
    dmz_backend partial = dmz_backend_cpu;
    partial.name = "partial";
    partial.conv2d_backward_data = NULL;
    dmz_model_config cfg = small_cnn();
    dmz_model *m = NULL;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_model_create(&partial, &cfg, 1, &m, err), DMZ_EXIT_USAGE);
    assert_null(m);
    assert_non_null(strstr(err, "conv2d_backward_data"));
    assert_non_null(strstr(err, "partial"));
    partial.conv2d_backward_data = dmz_backend_cpu.conv2d_backward_data;
    partial.maxpool2x2_forward = NULL;
    assert_int_equal(dmz_model_create(&partial, &cfg, 1, &m, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "maxpool2x2_forward"));
    /* the mlp needs none of them */
    dmz_model_config mlp = {.kind = "mlp", .inputs = 12, .hidden = 6, .classes = 4, .max_batch = 5};
    assert_int_equal(dmz_model_create(&partial, &mlp, 1, &m, err), DMZ_OK);
    dmz_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_odd_sizes),
        cmocka_unit_test(test_sgemm_sparse_a),
        cmocka_unit_test(test_conv2d_forward_definition),
        cmocka_unit_test(test_conv2d_gradients),
        cmocka_unit_test(test_conv2d_winograd_definition),
        cmocka_unit_test(test_conv2d_winograd_gradients),
        cmocka_unit_test(test_conv2d_winograd_same_bits_any_thread_count),
        cmocka_unit_test(test_maxpool_definition),
        cmocka_unit_test(test_maxpool_ties_in_long_rows),
        cmocka_unit_test(test_maxpool_gradients),
        cmocka_unit_test(test_conv_relu_pool_fused_same_bits),
        cmocka_unit_test(test_cnn_gradient),
        cmocka_unit_test(test_cnn_shapes_and_init),
        cmocka_unit_test(test_cnn_same_bits_any_thread_count),
        cmocka_unit_test(test_cnn_fused_pool_same_bits),
        cmocka_unit_test(test_cnn_training_loss_falls),
        cmocka_unit_test(test_cnn_refused_without_conv_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
