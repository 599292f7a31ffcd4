/* tests/bench_kernels.c — `make bench-kernels`: every op of the models at the
 * paper's and the cnn's shapes (batch 100, 256, 1024), ours (the cuda backend)
 * beside cuBLAS/cuDNN and the cpu backend. A benchmark, not a test.
 *
 *   build/tests/bench_kernels [--batches 100,256,1024] [--seconds S]
 *
 * One row per op, shape and implementation (nccl-tests style: '#' header lines,
 * a units row, aligned columns):
 *   time_us  median of timed calls (cpu: each call timed alone, after one warm-up,
 *            until S seconds or 7 calls; GPU: calls back to back between two device
 *            syncs, after a warm-up, about S/4 seconds' worth, divided by the count;
 *            no L2 flush: at batch 100 a layer's operands stay in L2 in training too)
 *   GFLOP/s  2 flops per multiply-add of the op's products (backward: both
 *            products; convolutions count the padded taps of the direct sum,
 *            also where the cpu runs Winograd: an effective rate); pooling: -
 *   GB/s     the op's minimum traffic: every operand read once, every result written once
 *   ratio    time / the cuda row's time for the same op and shape (below 1: faster
 *            than ours); "-" without a GPU
 * Without a GPU (or in a build without nvcc, cuBLAS and cuDNN) only the cpu rows
 * run, and a header line says why the GPU columns are missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dmz.h"
#include "kernels/backend.h"
#include "tests/bench_kernels.h"

static const char *const op_names[] = {"dense_forward",         "dense_backward",         "conv2d_forward_relu",
                                       "conv2d_backward_data",  "conv2d_backward_filter", "maxpool2x2_forward",
                                       "maxpool2x2_backward",   "conv2d_relu_pool_forward", "conv2d_backward_filter_pooled"};

static int is_pool_op(bk_op op) { return op == BK_POOL_FWD || op == BK_POOL_BWD; }
static int cpu_only(bk_op op) { return op > BK_POOL_BWD; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static dmz_conv_shape conv_of(const bk_case *c) {
    return (dmz_conv_shape){.B = c->B, .C = c->C, .H = c->H, .W = c->W, .OC = c->OC, .K = c->K, .pad = c->pad};
}

/* flops and minimum bytes of one call */
static void cost(const bk_case *c, double *flops, double *bytes) {
    double B = c->B, C = c->C, OC = c->OC;
    dmz_conv_shape s = conv_of(c);
    double P = (double)dmz_conv_out_h(s) * dmz_conv_out_w(s), HW = (double)c->H * c->W, KK = (double)c->K * c->K;
    double in = B * C * HW, w = OC * C * KK, out = B * OC * P;
    double pooled = B * C * dmz_pool_out(c->H) * dmz_pool_out(c->W);
    switch (c->op) {
    case BK_DENSE_FWD: *flops = 2 * B * C * OC, *bytes = 4 * (B * C + C * OC + OC + B * OC); break;
    case BK_DENSE_BWD:
        *flops = 4 * B * C * OC + B * OC;
        *bytes = 4 * (B * OC + B * C + C * OC + C * OC + OC + B * C);
        break;
    case BK_CONV_FWD: *flops = 2 * out * C * KK, *bytes = 4 * (in + w + OC + out); break;
    case BK_CONV_BWD_DATA: *flops = 2 * out * C * KK, *bytes = 4 * (out + w + in); break;
    case BK_CONV_BWD_FILTER: *flops = 2 * out * C * KK + out, *bytes = 4 * (out + in + w + OC); break;
    case BK_POOL_FWD: *flops = 0, *bytes = 4 * (in + pooled); break;
    case BK_POOL_BWD: *flops = 0, *bytes = 4 * (in + pooled + in); break;
    case BK_CONV_RELU_POOL_FWD: *flops = 2 * out * C * KK, *bytes = 4 * (in + w + OC + out / 4) + out / 4; break;
    case BK_CONV_BWD_FILTER_POOLED: *flops = 2 * out * C * KK + out, *bytes = 4 * (out / 4 + in + w + OC) + out / 4; break;
    }
}

/* ---------------------------------------------------------------- the cpu column */
typedef struct {
    float *inp, *w, *bias, *out, *dout, *dinp, *dw, *dbias, *work;
    uint8_t *code; /* the pooled ops: the pool's codes */
} cpu_bufs;

static float *randoms(dmz_rng *rng, size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    if (!x) abort();
    for (size_t i = 0; i < n; i++) x[i] = (float)dmz_rng_uniform(rng) * 2.0f - 1.0f;
    return x;
}

static void cpu_call(const bk_case *c, cpu_bufs *b) {
    const dmz_backend *be = &dmz_backend_cpu;
    dmz_conv_shape s = conv_of(c);
    switch (c->op) {
    case BK_DENSE_FWD: be->dense_forward(b->out, b->inp, b->w, b->bias, c->B, c->C, c->OC); break;
    case BK_DENSE_BWD: be->dense_backward(b->dinp, b->dw, b->dbias, b->dout, b->inp, b->w, c->B, c->C, c->OC); break;
    case BK_CONV_FWD: be->conv2d_forward_relu(b->out, b->inp, b->w, b->bias, s, b->work); break;
    case BK_CONV_BWD_DATA: be->conv2d_backward_data(b->dinp, b->dout, b->w, s, b->work); break;
    case BK_CONV_BWD_FILTER: be->conv2d_backward_filter(b->dw, b->dbias, b->dout, b->inp, s, b->work); break;
    case BK_POOL_FWD: be->maxpool2x2_forward(b->out, b->inp, c->B, c->C, c->H, c->W); break;
    case BK_POOL_BWD: be->maxpool2x2_backward(b->dinp, b->dout, b->inp, c->B, c->C, c->H, c->W); break;
    case BK_CONV_RELU_POOL_FWD: be->conv2d_relu_pool_forward(b->out, b->code, b->inp, b->w, b->bias, s, b->work); break;
    case BK_CONV_BWD_FILTER_POOLED:
        be->conv2d_backward_filter_pooled(b->dw, b->dbias, b->dout, b->code, b->inp, s, b->work);
        break;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_time(const bk_case *c, double seconds) {
    dmz_rng rng;
    dmz_rng_seed(&rng, 1);
    int is_conv = c->op >= BK_CONV_FWD && c->op <= BK_CONV_BWD_FILTER, is_pool = is_pool_op(c->op);
    int pooled = c->op == BK_CONV_RELU_POOL_FWD || c->op == BK_CONV_BWD_FILTER_POOLED;
    dmz_conv_shape s = conv_of(c);
    size_t in = (size_t)c->B * c->C * c->H * c->W, w = (size_t)c->OC * c->C * c->K * c->K;
    size_t out = is_pool ? (size_t)c->B * c->C * dmz_pool_out(c->H) * dmz_pool_out(c->W)
                         : (size_t)c->B * c->OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    if (pooled) out /= 4;
    cpu_bufs b = {randoms(&rng, in), randoms(&rng, w), randoms(&rng, (size_t)c->OC), randoms(&rng, out),
                  randoms(&rng, out), randoms(&rng, in), randoms(&rng, w), randoms(&rng, (size_t)c->OC), NULL, NULL};
    if (is_conv || pooled) {
        b.work = dmz_backend_cpu.alloc(dmz_backend_cpu.conv2d_workspace(s));
        if (!b.work) abort();
    }
    if (pooled) { /* codes from a real forward pass */
        b.code = malloc(out);
        if (!b.code) abort();
        dmz_backend_cpu.conv2d_relu_pool_forward(b.out, b.code, b.inp, b.w, b.bias, s, b.work);
    }
    double t[7];
    int n = 0;
    cpu_call(c, &b); /* warm-up */
    double start = now_s();
    while (n < 7 && (n < 1 || now_s() - start < seconds)) {
        double t0 = now_s();
        cpu_call(c, &b);
        t[n++] = now_s() - t0;
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    float *all[] = {b.inp, b.w, b.bias, b.out, b.dout, b.dinp, b.dw, b.dbias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    if (b.work) dmz_backend_cpu.free(b.work);
    free(b.code);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ---------------------------------------------------------------- the table */
static void shape_text(const bk_case *c, char *out, size_t len) {
    if (c->op <= BK_DENSE_BWD) snprintf(out, len, "B=%d %d->%d", c->B, c->C, c->OC);
    else if (is_pool_op(c->op)) snprintf(out, len, "B=%d %dx%dx%d", c->B, c->C, c->H, c->W);
    else snprintf(out, len, "B=%d %dx%dx%d->%d K%d p%d", c->B, c->C, c->H, c->W, c->OC, c->K, c->pad);
}

static void row(const bk_case *c, const char *impl, double t, double ref) {
    char shape[64], ratio[16] = "-", gf[16] = "-";
    double flops = 0, bytes = 0;
    shape_text(c, shape, sizeof shape);
    cost(c, &flops, &bytes);
    if (ref > 0) snprintf(ratio, sizeof ratio, "%.2f", t / ref);
    if (flops > 0) snprintf(gf, sizeof gf, "%.1f", flops / t * 1e-9);
    printf("  %-29s %-10s %-26s %-7s %11.1f %9s %8.2f %6s\n", op_names[c->op], c->layer, shape, impl, t * 1e6, gf,
           bytes / t * 1e-9, ratio);
    fflush(stdout);
}

static int cases_for(int B, bk_case *out) {
    const bk_case list[] = {
        {BK_DENSE_FWD, "mlp.fc1", B, 784, 1, 1, 100, 1, 0},         {BK_DENSE_FWD, "mlp.fc2", B, 100, 1, 1, 47, 1, 0},
        {BK_DENSE_FWD, "cnn.fc1", B, 3136, 1, 1, 1024, 1, 0},       {BK_DENSE_FWD, "cnn.fc2", B, 1024, 1, 1, 47, 1, 0},
        {BK_DENSE_BWD, "mlp.fc1", B, 784, 1, 1, 100, 1, 0},         {BK_DENSE_BWD, "mlp.fc2", B, 100, 1, 1, 47, 1, 0},
        {BK_DENSE_BWD, "cnn.fc1", B, 3136, 1, 1, 1024, 1, 0},       {BK_DENSE_BWD, "cnn.fc2", B, 1024, 1, 1, 47, 1, 0},
        {BK_CONV_FWD, "cnn.conv1", B, 1, 28, 28, 32, 5, 2},         {BK_CONV_FWD, "cnn.conv2", B, 32, 14, 14, 64, 5, 2},
        {BK_CONV_BWD_DATA, "cnn.conv2", B, 32, 14, 14, 64, 5, 2},   {BK_CONV_BWD_FILTER, "cnn.conv1", B, 1, 28, 28, 32, 5, 2},
        {BK_CONV_BWD_FILTER, "cnn.conv2", B, 32, 14, 14, 64, 5, 2}, {BK_POOL_FWD, "cnn.pool1", B, 32, 28, 28, 0, 0, 0},
        {BK_POOL_FWD, "cnn.pool2", B, 64, 14, 14, 0, 0, 0},         {BK_POOL_BWD, "cnn.pool1", B, 32, 28, 28, 0, 0, 0},
        {BK_POOL_BWD, "cnn.pool2", B, 64, 14, 14, 0, 0, 0},
        {BK_CONV_RELU_POOL_FWD, "cnn.conv1", B, 1, 28, 28, 32, 5, 2},
        {BK_CONV_RELU_POOL_FWD, "cnn.conv2", B, 32, 14, 14, 64, 5, 2},
        {BK_CONV_BWD_FILTER_POOLED, "cnn.conv1", B, 1, 28, 28, 32, 5, 2},
    };
    memcpy(out, list, sizeof list);
    return (int)(sizeof list / sizeof list[0]);
}

int main(int argc, char **argv) {
    char batches[256] = "100,256,1024";
    double seconds = 0.5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batches") && i + 1 < argc) snprintf(batches, sizeof batches, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--batches 100,256,1024] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    char why[512] = "";
#ifdef DMZ_BENCH_GPU
    int gpu = bk_gpu_open(why, sizeof why);
#else
    int gpu = 0;
    snprintf(why, sizeof why, "this build has no GPU half (it needs nvcc, libcudart, and the cuBLAS and cuDNN headers; see make config)");
#endif
    char desc[256];
    dmz_backend_cpu.describe(desc, sizeof desc);
    printf("# dmzbench bench-kernels: ours (cuda) vs cuBLAS/cuDNN vs %s\n", desc);
    if (gpu) printf("# GPU: %s\n", why);
    else printf("# GPU columns (cuda, cublas/cudnn): need a device: %s\n", why);
    printf("# vendor rows: cuBLAS = the SGEMMs only (no bias, no dbias); cuDNN = the convolution only (no bias, no ReLU)\n");
    printf("# conv2d_relu_pool_forward, conv2d_backward_filter_pooled: the cpu model's conv + ReLU + pool in one op\n"
           "# (cpu only: the cuda backends run the three apart); the pool's output and codes replace the conv's\n");
    printf("# GFLOP/s counts the direct sum's flops; the cpu's 5x5 convolutions with 8+ channels run Winograd F(4x4,5x5)%s,\n"
           "# so theirs is an effective rate that the machine's peak does not bound\n",
           dmz_cpu_direct_conv() ? " (not now: DMZBENCH_CPU_CONV=direct)" : "");
    printf("# %-29s %-10s %-26s %-7s %11s %9s %8s %6s\n", "op", "layer", "shape", "impl", "time", "GFLOP/s", "GB/s", "ratio");
    printf("# %-29s %-10s %-26s %-7s %11s %9s %8s %6s\n", "", "", "", "", "us", "", "", "/cuda");
    for (char *tok = strtok(batches, ","); tok; tok = strtok(NULL, ",")) {
        int B = atoi(tok);
        if (B <= 0) {
            fprintf(stderr, "bench_kernels: bad batch '%s'\n", tok);
            return 2;
        }
        bk_case cases[32];
        int n = cases_for(B, cases);
        for (int i = 0; i < n; i++) {
            const bk_case *c = &cases[i];
            double ours = -1;
#ifdef DMZ_BENCH_GPU
            if (gpu && !cpu_only(c->op)) {
                char e[256] = "";
                ours = bk_gpu_time(c, 0, e, sizeof e);
                if (ours > 0) row(c, "cuda", ours, ours);
                else printf("  %-29s %-10s cuda: %s\n", op_names[c->op], c->layer, e);
                double v = bk_gpu_time(c, 1, e, sizeof e);
                if (v > 0) row(c, bk_gpu_vendor(c->op), v, ours);
                else printf("  %-29s %-10s %s: %s\n", op_names[c->op], c->layer, bk_gpu_vendor(c->op), e);
            }
#endif
            row(c, "cpu", cpu_time(c, seconds), ours);
        }
    }
    return 0;
}
