#include "tests/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

float *random_buffer(dmz_rng *rng, size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((dmz_rng_uniform(rng) * 2.0 - 1.0) * scale);
    return x;
}

void finite_diff(double (*loss)(const void *), const void *ctx, float *x, size_t n, double *grad, float eps) {
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        grad[i] = (lp - lm) / (2.0 * eps);
    }
}

int count_mismatches(const char *what, const float *got, const double *want, size_t n, double atol, double rtol) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i])) continue;
        if (bad++ < 5) fprintf(stderr, "%s[%zu]: got %.7g, want %.7g\n", what, i, got[i], want[i]);
    }
    return bad;
}

typedef struct model_case {
    dmz_model *m;
    const uint8_t *images, *labels;
    int B;
    const float *params;
} model_case;

static double model_loss(const void *ctx) {
    const model_case *c = ctx;
    dmz_model_set_params(c->m, c->params);
    dmz_model_set_batch(c->m, c->images, c->labels, c->B);
    dmz_model_forward(c->m);
    return dmz_model_loss(c->m);
}

int model_gradient_mismatches(const char *what, dmz_model *m, const uint8_t *images, const uint8_t *labels, int B,
                              float *params) {
    size_t n = dmz_model_num_params(m);
    model_case c = {.m = m, .images = images, .labels = labels, .B = B, .params = params};
    model_loss(&c);
    dmz_model_backward(m);
    float *grad = malloc(n * sizeof(float));
    double *want = malloc(n * sizeof(double));
    dmz_model_get_grads(m, grad);
    finite_diff(model_loss, &c, params, n, want, 1e-3f);
    int bad = count_mismatches(what, grad, want, n, 5e-3, 1e-2);
    free(grad), free(want);
    return bad;
}
