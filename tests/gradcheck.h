/* tests/gradcheck.h — what the op and model tests share: random inputs, a
 * central-difference gradient, and a mixed-tolerance comparison. */
#ifndef DMZ_TEST_GRADCHECK_H
#define DMZ_TEST_GRADCHECK_H

#include <stddef.h>

#include "common/dmz.h"
#include "kernels/model.h"

/* n floats uniform in [-scale, scale) (malloc'd). */
float *random_buffer(dmz_rng *rng, size_t n, float scale);
/* grad[i] = (L(x + eps e_i) - L(x - eps e_i)) / 2 eps, x restored. */
void finite_diff(double (*loss)(const void *), const void *ctx, float *x, size_t n, double *grad, float eps);
/* Elements with |got - want| > atol + rtol |want|; prints the first few with their indices. */
int count_mismatches(const char *what, const float *got, const double *want, size_t n, double atol, double rtol);

/* The whole model's gradient at params (host, n floats) on a batch of B
 * samples, against central differences of its loss (eps 1e-3): the number of
 * parameters outside 5e-3 + 1e-2 |want|, the first few printed. */
int model_gradient_mismatches(const char *what, dmz_model *m, const uint8_t *images, const uint8_t *labels, int B,
                              float *params);

#endif
