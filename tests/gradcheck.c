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
