/* tests/bench_sgemm.c — the cpu SGEMM at the models' shapes: best-of-N time
 * and GFLOP/s per thread count (a benchmark, not a test; the machine is shared,
 * so the best of several runs is the number to read).
 *
 *   build/tests/bench_sgemm [repeats]  */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/dmz.h"
#include "kernels/cpu/cpu_ops.h"

typedef struct { const char *name; int M, N, K; int at, bt; } shape;

static const shape shapes[] = {
    {"mlp fc1 fwd   (100x784 @ 784x100)", 100, 100, 784, 0, 0},
    {"mlp fc1 dW    (784x100^T @ 100x100)", 784, 100, 100, 1, 0},
    {"cnn fc1 fwd   (100x3136 @ 3136x1024)", 100, 1024, 3136, 0, 0},
    {"cnn fc1 dW    (3136x100 @ 100x1024)", 3136, 1024, 100, 1, 0},
    {"cnn fc1 dX    (100x1024 @ 1024x3136^T)", 100, 3136, 1024, 0, 1},
    {"cnn fc1 dX shape, B not transposed", 100, 3136, 1024, 0, 0},
    {"cnn conv2 fwd (64x800 @ 800x196)/sample", 64, 196, 800, 0, 0},
    {"cnn conv2 dW  (64x196 @ 196x800^T)/sample", 64, 800, 196, 0, 1},
    {"cnn conv2 dX  (800x64^T @ 64x196)/sample", 800, 196, 64, 1, 0},
};

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    dmz_rng rng;
    dmz_rng_seed(&rng, 1);
    printf("# %-42s %7s %10s %9s\n", "shape", "threads", "best_ms", "GFLOP/s");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *sh = &shapes[s];
        size_t na = (size_t)sh->M * sh->K, nb = (size_t)sh->K * sh->N, nc = (size_t)sh->M * sh->N;
        float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4);
        for (size_t i = 0; i < na; i++) a[i] = (float)dmz_rng_uniform(&rng);
        for (size_t i = 0; i < nb; i++) b[i] = (float)dmz_rng_uniform(&rng);
        ptrdiff_t ars = sh->at ? 1 : sh->K, acs = sh->at ? sh->M : 1;
        ptrdiff_t brs = sh->bt ? 1 : sh->N, bcs = sh->bt ? sh->K : 1;
        int maxt = omp_get_max_threads();
        for (int t = 1; t <= maxt; t++) {
            omp_set_num_threads(t);
            double best = 1e30;
            int inner = 1 + (int)(2e8 / (2.0 * sh->M * sh->N * sh->K));
            for (int r = 0; r < reps; r++) {
                double t0 = dmz_now_s();
                for (int i = 0; i < inner; i++)
                    cpu_sgemm(sh->M, sh->N, sh->K, a, ars, acs, b, brs, bcs, c, sh->N, 0);
                double dt = (dmz_now_s() - t0) / inner;
                if (dt < best) best = dt;
            }
            printf("  %-42s %7d %10.4f %9.1f\n", sh->name, t, best * 1e3, 2.0 * sh->M * sh->N * sh->K / best / 1e9);
        }
        free(a), free(b), free(c);
    }
    return 0;
}
