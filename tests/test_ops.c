/* Every cpu op against finite differences (and direct definitions), then the
 * whole mlp's gradient against finite differences of its loss. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/dmz.h"
#include "kernels/backend.h"
#include "kernels/model.h"
#include "tests/gradcheck.h"

static const dmz_backend *be(void) { return &dmz_backend_cpu; }

/* |a-b| <= atol + rtol*|b|, printing the first few mismatches. */
/* ---- dense: L = sum(out * R) so dL/dout = R ---- */
typedef struct { int B, C, OC; float *inp, *w, *bias, *R; } dense_case;

static double dense_loss(const dense_case *d) {
    float *out = malloc(sizeof(float) * d->B * d->OC);
    be()->dense_forward(out, d->inp, d->w, d->bias, d->B, d->C, d->OC);
    double L = 0;
    for (int i = 0; i < d->B * d->OC; i++) L += (double)out[i] * d->R[i];
    free(out);
    return L;
}

static double dense_loss_v(const void *ctx) { return dense_loss(ctx); }

static void test_dense_gradients(void **state) {
    (void)state;
    dmz_rng rng;
    dmz_rng_seed(&rng, 1);
    dense_case d = {.B = 3, .C = 7, .OC = 5};
    d.inp = random_buffer(&rng, 21, 1), d.w = random_buffer(&rng, 35, 1);
    d.bias = random_buffer(&rng, 5, 1), d.R = random_buffer(&rng, 15, 1);
    float dinp[21], dw[35], dbias[5];
    double want[35];
    be()->dense_backward(dinp, dw, dbias, d.R, d.inp, d.w, d.B, d.C, d.OC);
    finite_diff(dense_loss_v, &d, d.inp, 21, want, 1e-2f);
    assert_int_equal(count_mismatches("dinp", dinp, want, 21, 1e-3, 1e-3), 0);
    finite_diff(dense_loss_v, &d, d.w, 35, want, 1e-2f);
    assert_int_equal(count_mismatches("dw", dw, want, 35, 1e-3, 1e-3), 0);
    finite_diff(dense_loss_v, &d, d.bias, 5, want, 1e-2f);
    assert_int_equal(count_mismatches("dbias", dbias, want, 5, 1e-3, 1e-3), 0);
    /* dinp == NULL (the first layer) still gives the weight gradients */
    float dw2[35];
    be()->dense_backward(NULL, dw2, dbias, d.R, d.inp, d.w, d.B, d.C, d.OC);
    assert_memory_equal(dw, dw2, sizeof dw);
    free(d.inp), free(d.w), free(d.bias), free(d.R);
}

static void test_dense_forward_definition(void **state) {
    (void)state;
    float inp[2 * 3] = {1, 2, 3, 0, -1, 0.5f}, w[3 * 2] = {1, 0, 0, 1, 2, -1}, bias[2] = {0.5f, -0.5f};
    float out[4];
    be()->dense_forward(out, inp, w, bias, 2, 3, 2);
    float want[4] = {1 + 6 + 0.5f, 2 - 3 - 0.5f, 0 + 1 + 0.5f, -1 - 0.5f - 0.5f};
    assert_memory_equal(out, want, sizeof want);
}

/* ---- relu ---- */
static void test_relu(void **state) {
    (void)state;
    float x[6] = {-2, -0.5f, 0.25f, 3, -1e-3f, 7}, out[6], dout[6] = {1, 2, 3, 4, 5, 6}, dinp[6];
    be()->relu_forward(out, x, 6);
    float want[6] = {0, 0, 0.25f, 3, 0, 7};
    assert_memory_equal(out, want, sizeof want);
    be()->relu_backward(dinp, dout, out, 6);
    float wantd[6] = {0, 0, 3, 4, 0, 6}; /* the derivative of max(0,x): 1 where x > 0 */
    assert_memory_equal(dinp, wantd, sizeof wantd);
}

/* ---- softmax + clipped cross-entropy ---- */
typedef struct { int B, V; float *logits; int32_t *labels; } xent_case;

static double xent_loss_v(const void *ctx) {
    const xent_case *x = ctx;
    float *probs = malloc(sizeof(float) * x->B * x->V), *losses = malloc(sizeof(float) * x->B);
    be()->softmax_xent_forward(probs, losses, x->logits, x->labels, x->B, x->V);
    double L = 0;
    for (int b = 0; b < x->B; b++) L += losses[b];
    free(probs), free(losses);
    return L;
}

static void test_softmax_xent_gradients(void **state) {
    (void)state;
    dmz_rng rng;
    dmz_rng_seed(&rng, 2);
    int32_t labels[4] = {0, 3, 5, 2};
    xent_case x = {.B = 4, .V = 6, .logits = random_buffer(&rng, 24, 3), .labels = labels};
    float probs[24], losses[4], dlogits[24];
    double want[24];
    be()->softmax_xent_forward(probs, losses, x.logits, labels, 4, 6);
    for (int b = 0; b < 4; b++) {
        double s = 0;
        for (int v = 0; v < 6; v++) s += probs[b * 6 + v];
        assert_true(fabs(s - 1.0) < 1e-6);
        assert_true(fabs(losses[b] + log(probs[b * 6 + labels[b]])) < 1e-5);
    }
    be()->softmax_xent_backward(dlogits, probs, labels, 4, 6);
    finite_diff(xent_loss_v, &x, x.logits, 24, want, 1e-2f);
    assert_int_equal(count_mismatches("dlogits", dlogits, want, 24, 2e-3, 2e-3), 0);
    free(x.logits);
}

/* A row whose true-class probability underflows the clip: loss -log(1e-10),
 * no gradient (TensorFlow's clip_by_value passes none outside its range). */
static void test_softmax_xent_clip(void **state) {
    (void)state;
    float logits[3] = {0.0f, 60.0f, 0.0f}, probs[3], loss, dlogits[3];
    int32_t label = 0;
    be()->softmax_xent_forward(probs, &loss, logits, &label, 1, 3);
    assert_true(probs[0] < 1e-10f);
    assert_float_equal(loss, -logf(1e-10f), 1e-5);
    be()->softmax_xent_backward(dlogits, probs, &label, 1, 3);
    for (int i = 0; i < 3; i++) assert_float_equal(dlogits[i], 0.0f, 0.0);
}

static void test_reduce_and_count(void **state) {
    (void)state;
    float x[5] = {1, 2, 3, 4, 5.5f}, s;
    be()->reduce_sum(&s, x, 5);
    assert_float_equal(s, 15.5f, 0);
    float probs[3 * 3] = {0.2f, 0.5f, 0.3f, 0.4f, 0.4f, 0.2f, 0.1f, 0.1f, 0.8f};
    int32_t labels[3] = {1, 1, 0}; /* right, wrong (first max wins: 0), wrong */
    float c;
    be()->count_correct(&c, probs, labels, 3, 3);
    assert_float_equal(c, 1.0f, 0);
}

static void test_u8_to_float(void **state) {
    (void)state;
    uint8_t in[3] = {0, 128, 255};
    float out[3];
    be()->u8_to_float(out, in, 3, 1.0f / 255.0f);
    assert_float_equal(out[0], 0.0f, 0);
    assert_float_equal(out[1], 128.0f * (1.0f / 255.0f), 0);
    assert_float_equal(out[2], 1.0f, 1e-7);
}

/* Adam against the textbook bias-corrected form, which TensorFlow's
 * epsilon-hat form equals up to where eps enters. */
static void test_adam_matches_reference(void **state) {
    (void)state;
    enum { N = 4, STEPS = 5 };
    float p[N] = {1, -1, 0.5f, 0}, m[N] = {0}, v[N] = {0};
    double rp[N] = {1, -1, 0.5, 0}, rm[N] = {0}, rv[N] = {0};
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int t = 1; t <= STEPS; t++) {
        float g[N];
        for (int i = 0; i < N; i++) g[i] = (float)(0.3 * (i + 1) * (t % 2 ? 1 : -0.5));
        dmz_adam_params hp = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .t = t};
        be()->adam_update(p, g, m, v, N, hp);
        double lr_t = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
        for (int i = 0; i < N; i++) {
            rm[i] = b1 * rm[i] + (1 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1 - b2) * (double)g[i] * g[i];
            rp[i] -= lr_t * rm[i] / (sqrt(rv[i]) + eps);
        }
    }
    assert_int_equal(count_mismatches("adam params", p, rp, N, 1e-6, 1e-5), 0);
    /* first step moves every parameter by about lr against its gradient's sign */
    float q = 0, mm = 0, vv = 0, g = 5;
    be()->adam_update(&q, &g, &mm, &vv, 1, (dmz_adam_params){0.01f, 0.9f, 0.999f, 1e-8f, 1});
    assert_float_equal(q, -0.01f, 1e-6);
}

/* ---- the whole model ---- */
static void test_mlp_gradient(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    dmz_model_config cfg = {.kind = "mlp", .inputs = 12, .hidden = 6, .classes = 4, .max_batch = 5};
    struct { dmz_model *m; uint8_t *images, *labels; int B; float *params; } c = {.B = 5};
    assert_int_equal(dmz_model_create(be(), &cfg, 7, &c.m, err), DMZ_OK);
    dmz_rng rng;
    dmz_rng_seed(&rng, 3);
    c.images = malloc(5 * 12), c.labels = malloc(5);
    for (int i = 0; i < 60; i++) c.images[i] = (uint8_t)dmz_rng_below(&rng, 256);
    for (int i = 0; i < 5; i++) c.labels[i] = (uint8_t)dmz_rng_below(&rng, 4);
    size_t n = dmz_model_num_params(c.m);
    assert_int_equal(n, 12 * 6 + 6 + 6 * 4 + 4);
    c.params = malloc(n * sizeof(float));
    dmz_model_get_params(c.m, c.params);
    /* larger weights than the paper's init, so that every layer's gradient is sizeable */
    for (size_t i = 0; i < n; i++) c.params[i] = c.params[i] * 4.0f + 0.05f;
    assert_int_equal(model_gradient_mismatches("mlp grad", c.m, c.images, c.labels, c.B, c.params), 0);
    free(c.params), free(c.images), free(c.labels);
    dmz_model_destroy(c.m);
}

static void test_mlp_init_is_seeded_truncated_normal(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    dmz_model_config cfg;
    dmz_model_config_default(&cfg, "mlp", 47, 100);
    dmz_model *a, *b;
    assert_int_equal(dmz_model_create(be(), &cfg, 42, &a, err), DMZ_OK);
    assert_int_equal(dmz_model_create(be(), &cfg, 42, &b, err), DMZ_OK);
    size_t n = dmz_model_num_params(a);
    assert_int_equal(n, 784 * 100 + 100 + 100 * 47 + 47);
    float *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    dmz_model_get_params(a, pa), dmz_model_get_params(b, pb);
    assert_memory_equal(pa, pb, n * sizeof(float));
    double s2 = 0, maxabs = 0;
    for (size_t i = 0; i < 78400; i++) {
        s2 += (double)pa[i] * pa[i];
        maxabs = fmax(maxabs, fabs(pa[i]));
    }
    /* truncated at 2 sigma: sigma_t = 0.8796 sigma */
    assert_true(fabs(sqrt(s2 / 78400) - 0.8796 / 28.0) < 0.002);
    assert_true(maxabs <= 2.0 / 28.0 + 1e-6);
    for (size_t i = 78400; i < 78500; i++) assert_float_equal(pa[i], 0.0f, 0);
    free(pa), free(pb);
    dmz_model_destroy(a), dmz_model_destroy(b);
}

static void test_unknown_model_and_backend(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    dmz_model_config cfg;
    dmz_model_config_default(&cfg, "resnet", 10, 100);
    dmz_model *m = NULL;
    assert_int_equal(dmz_model_create(be(), &cfg, 1, &m, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "resnet"));
    assert_null(dmz_backend_get("tpu", err));
    assert_non_null(strstr(err, "tpu"));
    assert_ptr_equal(dmz_backend_get("cpu", err), &dmz_backend_cpu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_forward_definition),
        cmocka_unit_test(test_dense_gradients),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_softmax_xent_gradients),
        cmocka_unit_test(test_softmax_xent_clip),
        cmocka_unit_test(test_reduce_and_count),
        cmocka_unit_test(test_u8_to_float),
        cmocka_unit_test(test_adam_matches_reference),
        cmocka_unit_test(test_mlp_gradient),
        cmocka_unit_test(test_mlp_init_is_seeded_truncated_normal),
        cmocka_unit_test(test_unknown_model_and_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
