/* tests/bench_kernels.h — the cases of `make bench-kernels` (tests/bench_kernels.c)
 * and its GPU half (tests/bench_kernels_gpu.cu: our cuda kernels and cuBLAS/cuDNN,
 * built only by nvcc with the cuBLAS and cuDNN headers; DMZ_BENCH_GPU). */
#ifndef DMZ_BENCH_KERNELS_H
#define DMZ_BENCH_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    BK_DENSE_FWD,       /* out[B][OC] = inp[B][C] @ w + bias */
    BK_DENSE_BWD,       /* dw, dbias, dinp */
    BK_CONV_FWD,        /* conv + bias + ReLU (ours: conv2d_forward_relu, the model's call) */
    BK_CONV_BWD_DATA,
    BK_CONV_BWD_FILTER, /* dw and dbias */
    BK_POOL_FWD,        /* maxpool 2x2 */
    BK_POOL_BWD,
    /* cpu only (what the cpu backend's model runs; the cuda backends run the
     * ops apart): never passed to the GPU half */
    BK_CONV_RELU_POOL_FWD,      /* conv + bias + ReLU + maxpool 2x2, and the pool's codes */
    BK_CONV_BWD_FILTER_POOLED,  /* dw and dbias from the pool's dout and codes */
} bk_op;

/* dense: C inputs, OC outputs (H = W = K = 1); conv: the dmz_conv_shape fields;
 * pool: B, C, H, W. */
typedef struct {
    bk_op op;
    const char *layer; /* "mlp.fc1", "cnn.conv2", ... */
    int B, C, H, W, OC, K, pad;
} bk_case;

/* The GPU half. 1 when a device answers and the cuda backend runs; else 0 and why. */
int bk_gpu_open(char *why, size_t len);
/* Which library the vendor column of this op uses ("cublas" or "cudnn"). */
const char *bk_gpu_vendor(bk_op op);
/* Seconds per call, back to back on the device between two device-wide syncs,
 * of our kernel (vendor = 0) or cuBLAS/cuDNN's (vendor = 1); < 0 with the reason
 * in why when it cannot run (e.g. the library is not on this machine). */
double bk_gpu_time(const bk_case *c, int vendor, char *why, size_t len);

#ifdef __cplusplus
}
#endif

#endif
