/* The cpu backend: host memory, C + OpenMP ops (the reference). */
#include "cpu_ops.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cpu_thread_count;

void dmz_cpu_set_threads(int n) {
    cpu_thread_count = n > 0 ? n : 0;
    if (n > 0) omp_set_num_threads(n);
}

int dmz_cpu_threads(void) { return cpu_thread_count > 0 ? cpu_thread_count : omp_get_max_threads(); }

/* -1: not yet read from DMZBENCH_CPU_CONV */
static int conv_direct = -1;

void dmz_cpu_set_direct_conv(int on) { conv_direct = on ? 1 : 0; }

int dmz_cpu_direct_conv(void) {
    if (conv_direct < 0) {
        const char *e = getenv("DMZBENCH_CPU_CONV");
        conv_direct = e && strcmp(e, "direct") == 0;
    }
    return conv_direct;
}

static void cpu_describe(char *out, size_t len) {
    snprintf(out, len, "cpu (C + OpenMP, %d threads; convolutions: %s)", dmz_cpu_threads(),
             dmz_cpu_direct_conv() ? "implicit GEMM (DMZBENCH_CPU_CONV=direct)"
                                   : "Winograd F(4x4,5x5) for 5x5 with 8+ channels, implicit GEMM elsewhere");
}

static void *cpu_alloc(size_t bytes) {
    void *p = NULL;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
    memset(p, 0, rounded);
    return p;
}

static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_sync(void) {}

const dmz_backend dmz_backend_cpu = {
    .name = "cpu",
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .u8_to_float = cpu_u8_to_float,
    .dense_forward = cpu_dense_forward,
    .dense_backward = cpu_dense_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .softmax_xent_forward = cpu_softmax_xent_forward,
    .softmax_xent_backward = cpu_softmax_xent_backward,
    .reduce_sum = cpu_reduce_sum,
    .count_correct = cpu_count_correct,
    .adam_update = cpu_adam_update,
    .conv2d_workspace = cpu_conv2d_workspace,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_forward_relu = cpu_conv2d_forward_relu,
    .conv2d_backward_data = cpu_conv2d_backward_data,
    .conv2d_backward_filter = cpu_conv2d_backward_filter,
    .maxpool2x2_forward = cpu_maxpool2x2_forward,
    .maxpool2x2_backward = cpu_maxpool2x2_backward,
    .maxpool2x2_backward_relu = cpu_maxpool2x2_backward_relu,
    .conv2d_relu_pool_forward = cpu_conv2d_relu_pool_forward,
    .maxpool2x2_backward_codes = cpu_maxpool2x2_backward_codes,
    .conv2d_backward_filter_pooled = cpu_conv2d_backward_filter_pooled,
};
