/* Every op of the cuda backend against the cpu reference, on random inputs of
 * odd sizes (not multiples of the 32-wide tiles and warps) and at the paper's
 * real sizes once per product; the convolutions and pooling at odd sizes and
 * the cnn's; then the whole mlp, and a small cnn, trained on both backends.
 *
 * Built twice from this file:
 *   tests/test_cuda_ops  (always)    the kernels compiled for the CPU emulator
 *                                    (dmz_backend_cuda_emu, "cuda-emu"), plus the
 *                                    emulator's own tests (tests/cuda_selftest.cu);
 *   tests/test_cuda_gpu  (with nvcc) the kernels compiled by nvcc (dmz_backend_cuda)
 *                                    on the GPU; every test skips, saying why, when
 *                                    no device answers.
 *
 * Comparisons use |got - want| <= atol + rtol*|want| (NaN only matches NaN), print
 * the first mismatches with their indices and fail the test. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/dmz.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/model.h"

#include "tests/cuda_device.h"

/* ---------------------------------------------------------------- helpers */
static float *random_floats(dmz_rng *rng, size_t n, float lo, float hi) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = lo + (float)dmz_rng_uniform(rng) * (hi - lo);
    return x;
}

static int32_t *random_labels(dmz_rng *rng, int B, int V) {
    int32_t *y = malloc((size_t)(B ? B : 1) * sizeof(int32_t));
    assert_non_null(y);
    for (int b = 0; b < B; b++) y[b] = (int32_t)dmz_rng_below(rng, (uint32_t)V);
    return y;
}

/* Pixel-like activations: the first layer sees u8/255 with many exact zeros. */
static float *pixel_floats(dmz_rng *rng, size_t n) {
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = dmz_rng_below(rng, 2) ? (float)dmz_rng_below(rng, 256) / 255.0f : 0.0f;
    return x;
}





/* ---------------------------------------------------------------- backend basics */
static void test_backend_basics(void **state) {
    (void)state;
    require_device();
    assert_string_equal(DEV->name, DEV_NAME);
    char desc[256] = "";
    DEV->describe(desc, sizeof desc);
    printf("  %s\n", desc);
    assert_non_null(strstr(desc, DEV_NAME));
    enum { N = 1001 };
    float *d = DEV->alloc(N * sizeof(float)), host[N];
    assert_non_null(d);
    DEV->download(host, d, sizeof host);
    for (int i = 0; i < N; i++) assert_true(host[i] == 0.0f); /* alloc zero-fills */
    for (int i = 0; i < N; i++) host[i] = (float)i - 500.5f;
    DEV->upload(d, host, sizeof host);
    float *d2 = DEV->alloc(N * sizeof(float)), back[N];
    DEV->copy(d2, d, sizeof host);
    DEV->sync();
    DEV->download(back, d2, sizeof back);
    assert_memory_equal(back, host, sizeof host);
    void *empty = DEV->alloc(0);
    assert_non_null(empty);
    DEV->free(empty);
    DEV->free(d), DEV->free(d2);
}

static void test_u8_to_float(void **state) {
    (void)state;
    require_device();
    dmz_rng rng;
    dmz_rng_seed(&rng, 11);
    size_t sizes[] = {1, 37, 4099};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint8_t *in = malloc(n);
        for (size_t i = 0; i < n; i++) in[i] = (uint8_t)dmz_rng_below(&rng, 256);
        float *want = malloc(n * sizeof(float));
        CPU->u8_to_float(want, in, n, 1.0f / 255.0f);
        uint8_t *din = dev_copy(in, n);
        float *dout = dev_zeros(n * sizeof(float));
        DEV->u8_to_float(dout, din, n, 1.0f / 255.0f);
        float *got = host_from_dev(dout, n);
        assert_int_equal(mismatches("u8_to_float", got, want, n, 0, 0), 0);
        DEV->free(din), DEV->free(dout);
        free(in), free(want), free(got);
    }
}

/* ---------------------------------------------------------------- dense */
typedef struct {
    int B, C, OC;
    int bias, dinp, dbias; /* which optional buffers to pass */
    int pixels;            /* inputs like the first layer's */
} dense_shape;

/* Float sums of K products in another order than the reference: with random
 * signs the rounding error grows like sqrt(K). The emulated kernels differ from
 * the reference by at most 3.1e-6 at K=784 (outputs of order 1); this allows
 * about 15 times that. */
static double dense_atol(int K) { return 2e-6 * sqrt((double)K + 1.0); }

static void check_dense_forward(const dense_shape *s, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t nin = (size_t)s->B * s->C, nw = (size_t)s->C * s->OC, nout = (size_t)s->B * s->OC;
    float *inp = s->pixels ? pixel_floats(&rng, nin) : random_floats(&rng, nin, -1, 1);
    float *w = random_floats(&rng, nw, -0.1f, 0.1f), *bias = random_floats(&rng, (size_t)s->OC, -1, 1);
    float *want = malloc((nout ? nout : 1) * sizeof(float));
    CPU->dense_forward(want, inp, w, s->bias ? bias : NULL, s->B, s->C, s->OC);
    float *dinp = dev_copy(inp, nin * sizeof(float)), *dw = dev_copy(w, nw * sizeof(float));
    float *db = dev_copy(bias, (size_t)s->OC * sizeof(float)), *dout = dev_zeros(nout * sizeof(float));
    DEV->dense_forward(dout, dinp, dw, s->bias ? db : NULL, s->B, s->C, s->OC);
    float *got = host_from_dev(dout, nout);
    char what[96];
    snprintf(what, sizeof what, "dense_forward B=%d C=%d OC=%d%s out", s->B, s->C, s->OC, s->bias ? "" : " (no bias)");
    assert_int_equal(mismatches(what, got, want, nout, dense_atol(s->C), 1e-5), 0);
    DEV->free(dinp), DEV->free(dw), DEV->free(db), DEV->free(dout);
    free(inp), free(w), free(bias), free(want), free(got);
}

static void check_dense_backward(const dense_shape *s, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t nin = (size_t)s->B * s->C, nw = (size_t)s->C * s->OC, nout = (size_t)s->B * s->OC;
    float *inp = s->pixels ? pixel_floats(&rng, nin) : random_floats(&rng, nin, -1, 1);
    float *w = random_floats(&rng, nw, -0.1f, 0.1f), *g = random_floats(&rng, nout, -1, 1);
    float *want_dinp = malloc((nin ? nin : 1) * sizeof(float)), *want_dw = malloc((nw ? nw : 1) * sizeof(float));
    float *want_db = malloc((size_t)s->OC * sizeof(float));
    CPU->dense_backward(s->dinp ? want_dinp : NULL, want_dw, s->dbias ? want_db : NULL, g, inp, w, s->B, s->C, s->OC);
    float *d_inp = dev_copy(inp, nin * sizeof(float)), *d_w = dev_copy(w, nw * sizeof(float));
    float *d_g = dev_copy(g, nout * sizeof(float));
    /* outputs start as garbage: the op must overwrite, not accumulate */
    size_t njunk = nin > nw ? nin : nw;
    if (njunk < (size_t)s->OC) njunk = (size_t)s->OC;
    float *junk = random_floats(&rng, njunk, 50, 60);
    float *d_dinp = dev_copy(junk, nin * sizeof(float)), *d_dw = dev_copy(junk, nw * sizeof(float));
    float *d_db = dev_copy(junk, (size_t)s->OC * sizeof(float));
    DEV->dense_backward(s->dinp ? d_dinp : NULL, d_dw, s->dbias ? d_db : NULL, d_g, d_inp, d_w, s->B, s->C, s->OC);
    char what[96];
    snprintf(what, sizeof what, "dense_backward B=%d C=%d OC=%d dw", s->B, s->C, s->OC);
    float *got = host_from_dev(d_dw, nw);
    assert_int_equal(mismatches(what, got, want_dw, nw, dense_atol(s->B), 1e-5), 0);
    free(got);
    if (s->dbias) {
        snprintf(what, sizeof what, "dense_backward B=%d C=%d OC=%d dbias", s->B, s->C, s->OC);
        got = host_from_dev(d_db, (size_t)s->OC);
        assert_int_equal(mismatches(what, got, want_db, (size_t)s->OC, dense_atol(s->B), 1e-5), 0);
        free(got);
    }
    if (s->dinp) {
        snprintf(what, sizeof what, "dense_backward B=%d C=%d OC=%d dinp", s->B, s->C, s->OC);
        got = host_from_dev(d_dinp, nin);
        assert_int_equal(mismatches(what, got, want_dinp, nin, dense_atol(s->OC), 1e-5), 0);
        free(got);
    }
    DEV->free(d_inp), DEV->free(d_w), DEV->free(d_g), DEV->free(d_dinp), DEV->free(d_dw), DEV->free(d_db);
    free(inp), free(w), free(g), free(want_dinp), free(want_dw), free(want_db), free(junk);
}

static const dense_shape odd_shapes[] = {
    {7, 37, 13, 1, 1, 1, 0},  {1, 1, 1, 1, 1, 1, 0},   {33, 65, 31, 1, 1, 1, 0}, {32, 32, 32, 1, 1, 1, 0},
    {5, 100, 47, 0, 0, 0, 0}, {2, 0, 3, 1, 1, 1, 0},   {0, 4, 3, 1, 1, 1, 0},    {70, 3, 66, 1, 1, 1, 1},
};

static void test_dense_forward_odd_sizes(void **state) {
    (void)state;
    require_device();
    for (size_t i = 0; i < sizeof odd_shapes / sizeof odd_shapes[0]; i++) check_dense_forward(&odd_shapes[i], 100 + i);
}

static void test_dense_backward_odd_sizes(void **state) {
    (void)state;
    require_device();
    for (size_t i = 0; i < sizeof odd_shapes / sizeof odd_shapes[0]; i++) check_dense_backward(&odd_shapes[i], 200 + i);
}

/* The paper's layers at their real sizes, once per product: forward (nn) of both
 * layers, dw (tn) of the 784x100 layer, dinp (nt) of the 100x47 layer. */
static void test_dense_real_sizes(void **state) {
    (void)state;
    require_device();
    dense_shape hidden = {100, 784, 100, 1, 0, 1, 1}, out = {100, 100, 47, 1, 1, 1, 0};
    check_dense_forward(&hidden, 300);
    check_dense_forward(&out, 301);
    check_dense_backward(&hidden, 302);
    check_dense_backward(&out, 303);
}

/* ---------------------------------------------------------------- relu */
static void test_relu(void **state) {
    (void)state;
    require_device();
    dmz_rng rng;
    dmz_rng_seed(&rng, 12);
    enum { N = 1003 };
    float *x = random_floats(&rng, N, -1, 1), *g = random_floats(&rng, N, -1, 1);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = NAN, x[3] = INFINITY, x[4] = -INFINITY;
    float want[N], wantd[N];
    CPU->relu_forward(want, x, N);
    CPU->relu_backward(wantd, g, want, N);
    float *dx = dev_copy(x, sizeof want), *dg = dev_copy(g, sizeof want), *dout = dev_zeros(sizeof want);
    float *dd = dev_zeros(sizeof want);
    DEV->relu_forward(dout, dx, N);
    DEV->relu_backward(dd, dg, dout, N);
    float *got = host_from_dev(dout, N), *gotd = host_from_dev(dd, N);
    assert_memory_equal(got, want, sizeof want); /* bit-identical, -0.0 and NaN included */
    assert_memory_equal(gotd, wantd, sizeof wantd);
    /* in place, as the model calls them */
    DEV->relu_forward(dx, dx, N);
    DEV->relu_backward(dg, dg, dx, N);
    free(got), free(gotd);
    got = host_from_dev(dx, N), gotd = host_from_dev(dg, N);
    assert_memory_equal(got, want, sizeof want);
    assert_memory_equal(gotd, wantd, sizeof wantd);
    DEV->free(dx), DEV->free(dg), DEV->free(dout), DEV->free(dd);
    free(x), free(g), free(got), free(gotd);
}

/* ---------------------------------------------------------------- softmax + cross-entropy */
static void check_softmax_xent(int B, int V, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t n = (size_t)B * V;
    float *logits = random_floats(&rng, n, -8, 8);
    int32_t *labels = random_labels(&rng, B, V);
    if (B >= 2 && V >= 3) { /* a row whose true class underflows the clip, and one that saturates */
        for (int i = 0; i < V; i++) logits[i] = 0.0f, logits[V + i] = -40.0f;
        logits[1] = 60.0f, labels[0] = 0;
        logits[V + 2] = 40.0f, labels[1] = 2;
    }
    float *want_p = malloc(n * sizeof(float)), *want_l = malloc((size_t)B * sizeof(float));
    float *want_d = malloc(n * sizeof(float));
    CPU->softmax_xent_forward(want_p, want_l, logits, labels, B, V);
    CPU->softmax_xent_backward(want_d, want_p, labels, B, V);

    float *d_logits = dev_copy(logits, n * sizeof(float)), *d_p = dev_zeros(n * sizeof(float));
    float *d_l = dev_zeros((size_t)B * sizeof(float)), *d_d = dev_zeros(n * sizeof(float));
    int32_t *d_y = dev_copy(labels, (size_t)B * sizeof(int32_t));
    DEV->softmax_xent_forward(d_p, d_l, d_logits, d_y, B, V);
    float *got_p = host_from_dev(d_p, n), *got_l = host_from_dev(d_l, (size_t)B);
    char what[64];
    snprintf(what, sizeof what, "softmax B=%d V=%d probs", B, V);
    assert_int_equal(mismatches(what, got_p, want_p, n, 1e-7, 1e-5), 0);
    snprintf(what, sizeof what, "softmax B=%d V=%d losses", B, V);
    assert_int_equal(mismatches(what, got_l, want_l, (size_t)B, 1e-5, 1e-5), 0);
    if (B >= 2 && V >= 3) assert_true(got_l[0] == -logf(DMZ_PROB_CLIP_MIN)); /* clipped: exactly */

    /* backward from the reference's probs: the same float ops, so bit-identical */
    DEV->upload(d_p, want_p, n * sizeof(float));
    DEV->softmax_xent_backward(d_d, d_p, d_y, B, V);
    float *got_d = host_from_dev(d_d, n);
    snprintf(what, sizeof what, "softmax B=%d V=%d dlogits", B, V);
    assert_int_equal(mismatches(what, got_d, want_d, n, 0, 0), 0);
    if (B >= 2 && V >= 3)
        for (int i = 0; i < V; i++) assert_true(got_d[i] == 0.0f); /* no gradient through the clip */

    DEV->free(d_logits), DEV->free(d_p), DEV->free(d_l), DEV->free(d_d), DEV->free(d_y);
    free(logits), free(labels), free(want_p), free(want_l), free(want_d), free(got_p), free(got_l), free(got_d);
}

static void test_softmax_xent(void **state) {
    (void)state;
    require_device();
    check_softmax_xent(7, 37, 400);
    check_softmax_xent(100, 47, 401); /* the paper's */
    check_softmax_xent(3, 100, 402);  /* several elements per lane */
    check_softmax_xent(9, 33, 403);
    check_softmax_xent(4, 1, 404);
    check_softmax_xent(1, 2, 405);
}

/* ---------------------------------------------------------------- reductions */
static void test_reduce_sum(void **state) {
    (void)state;
    require_device();
    dmz_rng rng;
    dmz_rng_seed(&rng, 13);
    size_t sizes[] = {0, 1, 100, 1025, 70001}; /* 70001: several blocks, then the partials pass */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = random_floats(&rng, n, -1, 2), want;
        CPU->reduce_sum(&want, x, n);
        float *dx = dev_copy(x, (n ? n : 1) * sizeof(float)), *dout = dev_copy(x, sizeof(float));
        DEV->reduce_sum(dout, dx, n);
        float *got = host_from_dev(dout, 1);
        char what[48];
        snprintf(what, sizeof what, "reduce_sum n=%zu", n);
        assert_int_equal(mismatches(what, got, &want, 1, 1e-6 * (double)(n + 1), 1e-6), 0);
        DEV->free(dx), DEV->free(dout);
        free(x), free(got);
    }
}

static void check_count_correct(int B, int V, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t n = (size_t)B * V;
    float *p = random_floats(&rng, n, 0, 1);
    int32_t *labels = random_labels(&rng, B, V);
    for (int b = 0; b < B; b++) {
        float *row = p + (size_t)b * V;
        switch (b % 6) {
        case 0: row[labels[b]] = 2.0f; break;                         /* right */
        case 1: row[labels[b]] = 2.0f, row[(labels[b] + 1) % V] = 2.0f; break; /* tie: first wins */
        case 2: for (int i = 0; i < V; i++) row[i] = 0.5f; break;     /* all equal: index 0 */
        case 3: row[0] = NAN; break;                                   /* NaN in column 0: index 0 */
        case 4: row[V - 1] = NAN; break;                               /* NaN elsewhere: ignored */
        default: break;
        }
    }
    float want, *got;
    CPU->count_correct(&want, p, labels, B, V);
    float *d_p = dev_copy(p, n * sizeof(float)), *d_out = dev_zeros(sizeof(float));
    int32_t *d_y = dev_copy(labels, (size_t)B * sizeof(int32_t));
    DEV->count_correct(d_out, d_p, d_y, B, V);
    got = host_from_dev(d_out, 1);
    char what[48];
    snprintf(what, sizeof what, "count_correct B=%d V=%d", B, V);
    assert_int_equal(mismatches(what, got, &want, 1, 0, 0), 0);
    DEV->free(d_p), DEV->free(d_out), DEV->free(d_y);
    free(p), free(labels), free(got);
}

static void test_count_correct(void **state) {
    (void)state;
    require_device();
    check_count_correct(7, 37, 500);
    check_count_correct(100, 47, 501);
    check_count_correct(1000, 10, 502); /* several blocks */
    check_count_correct(5, 70, 503);
    check_count_correct(3, 1, 504);
}

/* ---------------------------------------------------------------- adam */
static void test_adam(void **state) {
    (void)state;
    require_device();
    dmz_rng rng;
    dmz_rng_seed(&rng, 14);
    enum { N = 1003, STEPS = 3 };
    float *p = random_floats(&rng, N, -1, 1), *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
    float *d_p = dev_copy(p, N * sizeof(float)), *d_m = dev_zeros(N * sizeof(float)), *d_v = dev_zeros(N * sizeof(float));
    float *d_g = dev_zeros(N * sizeof(float));
    for (int t = 1; t <= STEPS; t++) {
        float *g = random_floats(&rng, N, -0.5f, 0.5f);
        g[0] = 0.0f;
        dmz_adam_params hp = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .t = t};
        CPU->adam_update(p, g, m, v, N, hp);
        DEV->upload(d_g, g, N * sizeof(float));
        DEV->adam_update(d_p, d_g, d_m, d_v, N, hp);
        free(g);
    }
    float *gp = host_from_dev(d_p, N), *gm = host_from_dev(d_m, N), *gv = host_from_dev(d_v, N);
    assert_int_equal(mismatches("adam params", gp, p, N, 1e-7, 1e-6), 0);
    assert_int_equal(mismatches("adam m", gm, m, N, 1e-9, 1e-6), 0);
    assert_int_equal(mismatches("adam v", gv, v, N, 1e-12, 1e-6), 0);
    DEV->free(d_p), DEV->free(d_m), DEV->free(d_v), DEV->free(d_g);
    free(p), free(m), free(v), free(gp), free(gm), free(gv);
}

/* ---------------------------------------------------------------- convolution and pooling */
typedef struct {
    double abs, rel; /* largest |got - want|, and |got - want| / |want| where |want| >= 0.01 */
} err_stats;

static err_stats error_of(const float *got, const float *want, size_t n) {
    err_stats e = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > e.abs) e.abs = d;
        if (fabs(want[i]) >= 0.01 && d / fabs(want[i]) > e.rel) e.rel = d / fabs(want[i]);
    }
    return e;
}

/* The largest errors seen per op over every shape, printed at the end of each test. */
static err_stats worst_fwd, worst_bwd_data, worst_bwd_filter, worst_bwd_bias;

static void note_error(err_stats *worst, const float *got, const float *want, size_t n) {
    err_stats e = error_of(got, want, n);
    if (e.abs > worst->abs) worst->abs = e.abs;
    if (e.rel > worst->rel) worst->rel = e.rel;
}

/* Sums of L products of operands uniform in [-1, 1] (sums of magnitude
 * sqrt(L)/3) in another order than the reference: the error grows like sqrt(L).
 * Measured on the emulator (the numbers test_conv2d_* print): at most 2.1e-6 *
 * sqrt(L) (backward-data of the cnn's second layer, L = 1600: 8.4e-5); the bound
 * allows about 5 times that, plus 1e-5 relative. */
static double conv_atol(double L) { return 1e-5 * sqrt(L + 1.0); }
#define CONV_RTOL 1e-5

static void conv_case_name(char *out, size_t len, const char *op, dmz_conv_shape s) {
    snprintf(out, len, "%s B=%d C=%d H=%d W=%d OC=%d K=%d pad=%d", op, s.B, s.C, s.H, s.W, s.OC, s.K, s.pad);
}

static void *cpu_work(dmz_conv_shape s) {
    size_t bytes = CPU->conv2d_workspace(s);
    void *w = CPU->alloc(bytes);
    assert_non_null(w);
    return w;
}

static void *dev_work(dmz_conv_shape s) {
    size_t bytes = DEV->conv2d_workspace(s);
    void *w = DEV->alloc(bytes);
    assert_non_null(w);
    return w;
}

static size_t conv_sizes(dmz_conv_shape s, size_t *nin, size_t *nw, size_t *nout) {
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    *nin = (size_t)s.B * s.C * s.H * s.W;
    *nw = (size_t)s.OC * s.C * s.K * s.K;
    *nout = OH > 0 && OW > 0 ? (size_t)s.B * s.OC * OH * OW : 0;
    return *nout;
}

static void check_conv_forward(dmz_conv_shape s, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t nin, nw, nout;
    conv_sizes(s, &nin, &nw, &nout);
    float *inp = random_floats(&rng, nin, -1, 1), *w = random_floats(&rng, nw, -1, 1);
    float *bias = random_floats(&rng, (size_t)s.OC, -1, 1);
    float *want = malloc((nout ? nout : 1) * sizeof(float)), *want_relu = malloc((nout ? nout : 1) * sizeof(float));
    float *cw = cpu_work(s);
    float *d_inp = dev_copy(inp, (nin ? nin : 1) * sizeof(float)), *d_w = dev_copy(w, (nw ? nw : 1) * sizeof(float));
    float *d_b = dev_copy(bias, (size_t)s.OC * sizeof(float)), *d_out = dev_zeros((nout ? nout : 1) * sizeof(float));
    float *d_relu = dev_zeros((nout ? nout : 1) * sizeof(float)), *dw = dev_work(s);
    char what[128];
    double atol = conv_atol((double)s.C * s.K * s.K);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        CPU->conv2d_forward(want, inp, w, with_bias ? bias : NULL, s, cw);
        CPU->conv2d_forward_relu(want_relu, inp, w, with_bias ? bias : NULL, s, cw);
        DEV->conv2d_forward(d_out, d_inp, d_w, with_bias ? d_b : NULL, s, dw);
        DEV->conv2d_forward_relu(d_relu, d_inp, d_w, with_bias ? d_b : NULL, s, dw);
        float *got = host_from_dev(d_out, nout), *got_relu = host_from_dev(d_relu, nout);
        conv_case_name(what, sizeof what, with_bias ? "conv2d_forward" : "conv2d_forward (no bias)", s);
        assert_int_equal(mismatches(what, got, want, nout, atol, CONV_RTOL), 0);
        note_error(&worst_fwd, got, want, nout);
        conv_case_name(what, sizeof what, "conv2d_forward_relu", s);
        assert_int_equal(mismatches(what, got_relu, want_relu, nout, atol, CONV_RTOL), 0);
        /* fused = forward then the relu op, bit for bit, on both backends */
        DEV->relu_forward(d_out, d_out, nout);
        float *relu_after = host_from_dev(d_out, nout);
        if (nout) assert_memory_equal(relu_after, got_relu, nout * sizeof(float));
        CPU->relu_forward(want, want, nout);
        if (nout) assert_memory_equal(want, want_relu, nout * sizeof(float));
        free(got), free(got_relu), free(relu_after);
    }
    DEV->free(d_inp), DEV->free(d_w), DEV->free(d_b), DEV->free(d_out), DEV->free(d_relu), DEV->free(dw);
    CPU->free(cw);
    free(inp), free(w), free(bias), free(want), free(want_relu);
}

static void check_conv_backward(dmz_conv_shape s, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t nin, nw, nout;
    conv_sizes(s, &nin, &nw, &nout);
    float *inp = random_floats(&rng, nin, -1, 1), *w = random_floats(&rng, nw, -1, 1);
    float *g = random_floats(&rng, nout, -1, 1);
    float *want_dinp = malloc((nin ? nin : 1) * sizeof(float)), *want_dw = malloc((nw ? nw : 1) * sizeof(float));
    float *want_db = malloc((size_t)s.OC * sizeof(float));
    float *cw = cpu_work(s);
    CPU->conv2d_backward_data(want_dinp, g, w, s, cw);
    CPU->conv2d_backward_filter(want_dw, want_db, g, inp, s, cw);
    float *d_inp = dev_copy(inp, (nin ? nin : 1) * sizeof(float)), *d_w = dev_copy(w, (nw ? nw : 1) * sizeof(float));
    float *d_g = dev_copy(g, (nout ? nout : 1) * sizeof(float)), *dwork = dev_work(s);
    /* outputs start as garbage: the ops must overwrite, not accumulate */
    size_t njunk = nin > nw ? nin : nw;
    if (njunk < (size_t)s.OC) njunk = (size_t)s.OC;
    float *junk = random_floats(&rng, njunk ? njunk : 1, 50, 60);
    float *d_dinp = dev_copy(junk, (nin ? nin : 1) * sizeof(float)), *d_dw = dev_copy(junk, (nw ? nw : 1) * sizeof(float));
    float *d_db = dev_copy(junk, (size_t)s.OC * sizeof(float));
    char what[128];
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);

    DEV->conv2d_backward_data(d_dinp, d_g, d_w, s, dwork);
    float *got = host_from_dev(d_dinp, nin);
    conv_case_name(what, sizeof what, "conv2d_backward_data", s);
    assert_int_equal(mismatches(what, got, want_dinp, nin, conv_atol((double)s.OC * s.K * s.K), CONV_RTOL), 0);
    note_error(&worst_bwd_data, got, want_dinp, nin);
    free(got);

    double L = (double)s.B * (OH > 0 ? OH : 0) * (OW > 0 ? OW : 0);
    DEV->conv2d_backward_filter(d_dw, d_db, d_g, d_inp, s, dwork);
    float *got_dw = host_from_dev(d_dw, nw), *got_db = host_from_dev(d_db, (size_t)s.OC);
    conv_case_name(what, sizeof what, "conv2d_backward_filter dw", s);
    assert_int_equal(mismatches(what, got_dw, want_dw, nw, conv_atol(L), CONV_RTOL), 0);
    note_error(&worst_bwd_filter, got_dw, want_dw, nw);
    conv_case_name(what, sizeof what, "conv2d_backward_filter dbias", s);
    assert_int_equal(mismatches(what, got_db, want_db, (size_t)s.OC, conv_atol(L), CONV_RTOL), 0);
    note_error(&worst_bwd_bias, got_db, want_db, (size_t)s.OC);
    /* run to run: the same bits (a fixed-order split sum, no atomics); dbias NULL is allowed */
    DEV->upload(d_dw, junk, (nw ? nw : 1) * sizeof(float));
    DEV->conv2d_backward_filter(d_dw, NULL, d_g, d_inp, s, dwork);
    float *again = host_from_dev(d_dw, nw);
    if (nw) assert_memory_equal(again, got_dw, nw * sizeof(float));
    free(got_dw), free(got_db), free(again);

    DEV->free(d_inp), DEV->free(d_w), DEV->free(d_g), DEV->free(dwork), DEV->free(d_dinp), DEV->free(d_dw);
    DEV->free(d_db), CPU->free(cw);
    free(inp), free(w), free(g), free(want_dinp), free(want_dw), free(want_db), free(junk);
}

static const dmz_conv_shape conv_odd_shapes[] = {
    {3, 3, 7, 9, 5, 3, 1},   /* odd everything, 'same' */
    {3, 3, 7, 9, 5, 3, 0},   /* pad 0 */
    {2, 2, 5, 6, 3, 5, 2},   /* K=5 'same' on a small image */
    {2, 3, 9, 8, 4, 5, 0},   /* K=5 pad 0 */
    {1, 1, 1, 1, 1, 1, 0},   /* one of everything */
    {2, 4, 3, 4, 3, 7, 3},   /* the filter larger than the image */
    {2, 2, 5, 4, 3, 3, 3},   /* a pad wider than the filter */
    {2, 5, 9, 7, 33, 3, 1},  /* OC past one 32-row tile */
    {1, 37, 4, 5, 2, 1, 0},  /* K=1: 37 taps, past one k step */
    {0, 2, 4, 4, 3, 3, 1},   /* an empty batch: dw and dbias are zeros */
};

static void print_worst(const char *op, const err_stats *e) {
    printf("  %-24s max |err| %.3g, max rel err %.3g (|ref| >= 0.01)\n", op, e->abs, e->rel);
}

static void test_conv2d_forward_odd_sizes(void **state) {
    (void)state;
    require_device();
    for (size_t i = 0; i < sizeof conv_odd_shapes / sizeof conv_odd_shapes[0]; i++)
        check_conv_forward(conv_odd_shapes[i], 600 + i);
    print_worst("conv2d_forward", &worst_fwd);
}

static void test_conv2d_backward_odd_sizes(void **state) {
    (void)state;
    require_device();
    for (size_t i = 0; i < sizeof conv_odd_shapes / sizeof conv_odd_shapes[0]; i++)
        check_conv_backward(conv_odd_shapes[i], 700 + i);
    print_worst("conv2d_backward_data", &worst_bwd_data);
    print_worst("conv2d_backward_filter", &worst_bwd_filter);
    print_worst("conv2d dbias", &worst_bwd_bias);
}

/* The cnn's two conv layers at their real sizes (batch 2: emulated kernels are slow). */
static void test_conv2d_real_sizes(void **state) {
    (void)state;
    require_device();
    dmz_conv_shape conv1 = {2, 1, 28, 28, 32, 5, 2}, conv2 = {2, 32, 14, 14, 64, 5, 2};
    check_conv_forward(conv1, 800);
    check_conv_forward(conv2, 801);
    check_conv_backward(conv1, 802);
    check_conv_backward(conv2, 803);
    print_worst("conv2d_forward", &worst_fwd);
    print_worst("conv2d_backward_data", &worst_bwd_data);
    print_worst("conv2d_backward_filter", &worst_bwd_filter);
    print_worst("conv2d dbias", &worst_bwd_bias);
}

/* Max pooling is exact: bit-identical to the reference, ties (few distinct
 * values), NaN, -0.0 and odd sizes included. */
static void check_maxpool(int B, int C, int H, int W, uint64_t seed) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * C * dmz_pool_out(H) * dmz_pool_out(W);
    float *x = malloc(nin * sizeof(float)), *g = random_floats(&rng, nout, -1, 1);
    for (size_t i = 0; i < nin; i++) {
        uint32_t k = dmz_rng_below(&rng, 40);
        x[i] = k == 0 ? NAN : k == 1 ? -0.0f : (float)(int)(k % 5) - 2.0f; /* many ties */
    }
    float *want = malloc(nout * sizeof(float)), *want_d = malloc(nin * sizeof(float));
    CPU->maxpool2x2_forward(want, x, B, C, H, W);
    CPU->maxpool2x2_backward(want_d, g, x, B, C, H, W);
    float *junk = random_floats(&rng, nin, 50, 60);
    float *d_x = dev_copy(x, nin * sizeof(float)), *d_g = dev_copy(g, nout * sizeof(float));
    float *d_out = dev_copy(junk, nout * sizeof(float)), *d_dx = dev_copy(junk, nin * sizeof(float));
    DEV->maxpool2x2_forward(d_out, d_x, B, C, H, W);
    DEV->maxpool2x2_backward(d_dx, d_g, d_x, B, C, H, W);
    float *got = host_from_dev(d_out, nout), *got_d = host_from_dev(d_dx, nin);
    if (memcmp(got, want, nout * sizeof(float)) || memcmp(got_d, want_d, nin * sizeof(float))) {
        fprintf(stderr, "  maxpool B=%d C=%d H=%d W=%d: not bit-identical\n", B, C, H, W);
        mismatches("maxpool forward", got, want, nout, 0, 0);
        mismatches("maxpool backward", got_d, want_d, nin, 0, 0);
        fail();
    }
    /* over a ReLU's output: the same bits as the backward pass then relu_backward (out = x) */
    CPU->relu_backward(want_d, want_d, x, nin);
    float *cpu_r = malloc(nin * sizeof(float));
    CPU->maxpool2x2_backward_relu(cpu_r, g, x, B, C, H, W);
    DEV->maxpool2x2_backward_relu(d_dx, d_g, d_x, B, C, H, W);
    float *got_r = host_from_dev(d_dx, nin);
    if (memcmp(cpu_r, want_d, nin * sizeof(float)) || memcmp(got_r, want_d, nin * sizeof(float))) {
        fprintf(stderr, "  maxpool backward + relu B=%d C=%d H=%d W=%d: not bit-identical\n", B, C, H, W);
        mismatches("maxpool_backward_relu (cpu)", cpu_r, want_d, nin, 0, 0);
        mismatches("maxpool_backward_relu", got_r, want_d, nin, 0, 0);
        fail();
    }
    DEV->free(d_x), DEV->free(d_g), DEV->free(d_out), DEV->free(d_dx);
    free(x), free(g), free(want), free(want_d), free(junk), free(got), free(got_d), free(cpu_r), free(got_r);
}

static void test_maxpool(void **state) {
    (void)state;
    require_device();
    check_maxpool(2, 3, 7, 9, 900);   /* odd rows and columns: partial windows */
    check_maxpool(1, 2, 8, 8, 901);
    check_maxpool(3, 1, 1, 1, 902);   /* a 1x1 window */
    check_maxpool(2, 2, 5, 4, 903);
    check_maxpool(1, 1, 2, 7, 904);
    check_maxpool(2, 32, 28, 28, 905); /* the cnn's */
    check_maxpool(2, 64, 14, 14, 906);
}

/* ---------------------------------------------------------------- the whole model */
/* The paper's mlp, narrower (emulated kernels are slow), trained 20 steps from
 * the same seed on the same batches by both backends: the loss of every step and
 * the parameters at the end agree to rounding grown through training. */
static void test_mlp_training_matches_cpu(void **state) {
    (void)state;
    require_device();
    enum { IN = 80, HID = 24, CLASSES = 10, BATCH = 20, STEPS = 20 };
    dmz_model_config cfg = {.kind = "mlp", .inputs = IN, .hidden = HID, .classes = CLASSES, .max_batch = BATCH};
    char err[DMZ_ERR_LEN];
    dmz_model *mc, *mg;
    assert_int_equal(dmz_model_create(CPU, &cfg, 5, &mc, err), DMZ_OK);
    assert_int_equal(dmz_model_create(DEV, &cfg, 5, &mg, err), DMZ_OK);
    size_t np = dmz_model_num_params(mc);
    dmz_rng rng;
    dmz_rng_seed(&rng, 15);
    uint8_t images[BATCH * IN], labels[BATCH];
    int bad = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < BATCH * IN; i++) images[i] = dmz_rng_below(&rng, 3) ? 0 : (uint8_t)dmz_rng_below(&rng, 256);
        for (int i = 0; i < BATCH; i++) {
            labels[i] = (uint8_t)dmz_rng_below(&rng, CLASSES);
            images[i * IN + labels[i]] = 255; /* something to learn */
        }
        float loss[2];
        int correct[2];
        dmz_model *ms[2] = {mc, mg};
        for (int k = 0; k < 2; k++) {
            dmz_model_set_batch(ms[k], images, labels, BATCH);
            dmz_model_forward(ms[k]);
            loss[k] = dmz_model_loss(ms[k]);
            correct[k] = dmz_model_correct(ms[k]);
            dmz_model_backward(ms[k]);
            dmz_model_update(ms[k], 0.01f, 0.9f, 0.999f, 1e-8f);
        }
        if (fabsf(loss[1] - loss[0]) > 1e-3f + 1e-4f * fabsf(loss[0]) || abs(correct[1] - correct[0]) > 1) {
            fprintf(stderr, "  step %d: loss %s %.7g vs cpu %.7g, correct %d vs %d\n", step, DEV_NAME, loss[1], loss[0],
                    correct[1], correct[0]);
            bad++;
        }
        if (step == STEPS - 1) printf("  after %d steps: loss cpu %.6f, %s %.6f\n", STEPS, loss[0], DEV_NAME, loss[1]);
    }
    assert_int_equal(bad, 0);
    float *pc = malloc(np * sizeof(float)), *pg = malloc(np * sizeof(float));
    dmz_model_get_params(mc, pc);
    dmz_model_get_params(mg, pg);
    assert_int_equal(mismatches("mlp params after training", pg, pc, np, 1e-4, 1e-3), 0);
    free(pc), free(pg);
    dmz_model_destroy(mc), dmz_model_destroy(mg);
}

/* The cnn, shrunk (12x12 images, 4 and 6 filters of 5x5, 16 hidden units, 5
 * classes, batch 6), trained 6 steps from the same seed on the same batches by
 * both backends: every step's loss within 1e-3 + 1e-4 relative, the parameters
 * at the end within 1e-4 + 1e-3 relative. The conv layers run fused with their
 * ReLU on both (conv2d_forward_relu). */
static void test_cnn_training_matches_cpu(void **state) {
    (void)state;
    require_device();
    enum { SIDE = 12, IN = SIDE * SIDE, CLASSES = 5, BATCH = 6, STEPS = 6 };
    dmz_model_config cfg = {.kind = "cnn", .inputs = IN, .hidden = 16, .classes = CLASSES, .max_batch = BATCH,
                            .height = SIDE, .width = SIDE, .conv1 = 4, .conv2 = 6, .kernel = 5};
    char err[DMZ_ERR_LEN];
    dmz_model *mc, *mg;
    assert_int_equal(dmz_model_create(CPU, &cfg, 7, &mc, err), DMZ_OK);
    assert_int_equal(dmz_model_create(DEV, &cfg, 7, &mg, err), DMZ_OK);
    size_t np = dmz_model_num_params(mc);
    dmz_rng rng;
    dmz_rng_seed(&rng, 16);
    uint8_t images[BATCH * IN], labels[BATCH];
    int bad = 0;
    double worst = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < BATCH * IN; i++) images[i] = dmz_rng_below(&rng, 3) ? 0 : (uint8_t)dmz_rng_below(&rng, 256);
        for (int i = 0; i < BATCH; i++) {
            labels[i] = (uint8_t)dmz_rng_below(&rng, CLASSES);
            for (int y = 0; y < 4; y++) images[i * IN + (2 * labels[i] + y) * SIDE + 3] = 255; /* something to learn */
        }
        float loss[2];
        dmz_model *ms[2] = {mc, mg};
        for (int k = 0; k < 2; k++) {
            dmz_model_set_batch(ms[k], images, labels, BATCH);
            dmz_model_forward(ms[k]);
            loss[k] = dmz_model_loss(ms[k]);
            dmz_model_backward(ms[k]);
            dmz_model_update(ms[k], 1e-3f, 0.9f, 0.999f, 1e-8f);
        }
        double d = fabs((double)loss[1] - loss[0]);
        worst = fmax(worst, d);
        if (d > 1e-3 + 1e-4 * fabs(loss[0])) {
            fprintf(stderr, "  step %d: loss %s %.7g vs cpu %.7g\n", step, DEV_NAME, loss[1], loss[0]);
            bad++;
        }
        if (step == 0 || step == STEPS - 1)
            printf("  step %d: loss cpu %.6f, %s %.6f\n", step, loss[0], DEV_NAME, loss[1]);
    }
    printf("  largest |loss difference| over %d steps: %.3g\n", STEPS, worst);
    assert_int_equal(bad, 0);
    float *pc = malloc(np * sizeof(float)), *pg = malloc(np * sizeof(float));
    dmz_model_get_params(mc, pc);
    dmz_model_get_params(mg, pg);
    assert_int_equal(mismatches("cnn params after training", pg, pc, np, 1e-4, 1e-3), 0);
    free(pc), free(pg);
    dmz_model_destroy(mc), dmz_model_destroy(mg);
}

/* ---------------------------------------------------------------- the registry */
static void test_registry(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN] = "";
    const dmz_backend *be = dmz_backend_get("cuda", err);
#ifdef DMZ_HAVE_CUDA
    char reason[512];
    if (dmz_cuda_available(reason, sizeof reason)) {
        assert_ptr_equal(be, &dmz_backend_cuda);
    } else {
        assert_null(be);
        assert_true(strncmp(err, "no CUDA device: ", 16) == 0);
        printf("  %s\n", err);
    }
#else
    assert_null(be);
    assert_non_null(strstr(err, "not in this build"));
#endif
}

/* ---------------------------------------------------------------- the emulator itself */
#ifndef DMZ_TEST_CUDA_GPU
void dmz_emu_selftest_indices(int *out);
void dmz_emu_selftest_divergent(int *out);
void dmz_emu_selftest_partial_warp(int *sums, float *data, int n);
int dmz_emu_selftest_launch_errors(void);
int dmz_emu_selftest_memcpy_checks(void);
void dmz_emu_selftest_deadlock(void);
void dmz_emu_selftest_exited_lane(void);

static void test_emu_indices(void **state) {
    (void)state;
    int out[144];
    dmz_emu_selftest_indices(out);
    for (int block = 0; block < 6; block++)
        for (int t = 0; t < 24; t++) assert_int_equal(out[block * 24 + t], 1000 * block + t);
}

static void test_emu_divergent_warps_do_not_deadlock(void **state) {
    (void)state;
    int out[9];
    dmz_emu_selftest_divergent(out);
    assert_int_equal(out[0], 496);        /* warp 0: sum of lanes */
    assert_int_equal(out[4], 496 + 32 * 200); /* warp 2: lanes + 200 each */
    assert_int_equal(out[2], 115);        /* warp 1, lanes 0..15: max */
    assert_int_equal(out[3], 131);        /* warp 1, lanes 16..31 */
    assert_int_equal(out[6], 315);
    assert_int_equal(out[7], 331);
    assert_int_equal((unsigned)out[8], 0xaaaaaaaau); /* ballot of odd lanes */
}

static void test_emu_partial_warp_and_dynamic_shared(void **state) {
    (void)state;
    enum { N = 1000 };
    int sums[2];
    float data[N];
    for (int i = 0; i < N; i++) data[i] = (float)i;
    dmz_emu_selftest_partial_warp(sums, data, N);
    assert_int_equal(sums[0], 528); /* 1 + ... + 32 */
    assert_int_equal(sums[1], 136); /* 1 + ... + 16: the 16 lanes of the last warp */
    for (int i = 0; i < N; i++) assert_true(data[i] == (float)(N - 1 - i));
}

static void test_emu_launch_errors(void **state) {
    (void)state;
    assert_int_equal(dmz_emu_selftest_launch_errors(), 0);
}

static void test_emu_memcpy_checks(void **state) {
    (void)state;
    assert_int_equal(dmz_emu_selftest_memcpy_checks(), 0);
}

/* Whether text holds one of the '|'-separated alternatives of expect. */
static int says_one_of(const char *text, const char *expect) {
    char alt[256];
    for (const char *p = expect; *p;) {
        size_t n = strcspn(p, "|");
        snprintf(alt, sizeof alt, "%.*s", (int)n, p);
        if (strstr(text, alt)) return 1;
        p += n + (p[n] == '|');
    }
    return 0;
}

/* Runs fn in a child; it must abort and say `expect` (or one of its
 * '|'-separated alternatives: what is seen first depends on DMZ_EMU_SEED) on stderr. */
static void expect_abort(void (*fn)(void), const char *expect) {
    char buf[4096];
    int status = run_in_child(fn, buf, sizeof buf); /* a hang would end as SIGALRM, not SIGABRT */
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !says_one_of(buf, expect))
        fprintf(stderr, "  child status 0x%x, stderr:\n%s\n", status, buf);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_true(says_one_of(buf, expect));
}

static void test_emu_deadlock_is_diagnosed(void **state) {
    (void)state;
    expect_abort(dmz_emu_selftest_deadlock, "deadlock_kernel, block (0,0,0): deadlock");
}

static void test_emu_exited_lane_is_diagnosed(void **state) {
    (void)state;
    expect_abort(dmz_emu_selftest_exited_lane,
                 "names lanes 0x0000ffff that have exited|exits while lane 16 of its warp waits for it");
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_basics),
        cmocka_unit_test(test_u8_to_float),
        cmocka_unit_test(test_dense_forward_odd_sizes),
        cmocka_unit_test(test_dense_backward_odd_sizes),
        cmocka_unit_test(test_dense_real_sizes),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_reduce_sum),
        cmocka_unit_test(test_count_correct),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_mlp_training_matches_cpu),
        cmocka_unit_test(test_conv2d_forward_odd_sizes),
        cmocka_unit_test(test_conv2d_backward_odd_sizes),
        cmocka_unit_test(test_conv2d_real_sizes),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_cnn_training_matches_cpu),
        cmocka_unit_test(test_registry),
#ifndef DMZ_TEST_CUDA_GPU
        cmocka_unit_test(test_emu_indices),
        cmocka_unit_test(test_emu_divergent_warps_do_not_deadlock),
        cmocka_unit_test(test_emu_partial_warp_and_dynamic_shared),
        cmocka_unit_test(test_emu_launch_errors),
        cmocka_unit_test(test_emu_memcpy_checks),
        cmocka_unit_test(test_emu_deadlock_is_diagnosed),
        cmocka_unit_test(test_emu_exited_lane_is_diagnosed),
#endif
    };
    /* the reference is the direct sum (the implicit GEMM), whose bounds are the
     * tight ones here; the cpu's Winograd path is checked against the
     * definition in tests/test_cnn */
    dmz_cpu_set_direct_conv(1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
