/* tests/bench_kernels_gpu.cu — the GPU half of `make bench-kernels`
 * (tests/bench_kernels.h): our kernels through the cuda backend's table, and the
 * same ops through cuBLAS (cublasSgemm) and cuDNN (cudnnConvolutionForward,
 * ...BackwardData, ...BackwardFilter, cudnnPoolingForward/Backward).
 *
 * cuBLAS and cuDNN are loaded with dlopen when first needed, not linked: the
 * GPU bundle (make gpu-bundle) must stay under 64 MiB and cuBLAS alone is
 * larger, so on a machine without them the vendor rows say so and the rest
 * runs. The function types come from the headers (decltype), so nvcc checks
 * every call against the installed cublas_v2.h and cudnn.h. Host code only;
 * built by nvcc when the headers are there (the Makefile's DMZ_BENCH_GPU).
 * APIs used exist in CUDA 11.8+ and cuDNN 8 and 9 (the *_v7 algorithm
 * queries). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda/cuda_backend.h"
#include "tests/bench_kernels.h"

/* ---------------------------------------------------------------- the libraries */
#define API(name) decltype(&name) name##_
struct vendor_api {
    int tried, cublas_ok, cudnn_ok;
    char cublas_why[256], cudnn_why[256];
    API(cublasCreate_v2);
    API(cublasSgemm_v2);
    API(cudnnCreate);
    API(cudnnGetErrorString);
    API(cudnnCreateTensorDescriptor);
    API(cudnnSetTensor4dDescriptor);
    API(cudnnCreateFilterDescriptor);
    API(cudnnSetFilter4dDescriptor);
    API(cudnnCreateConvolutionDescriptor);
    API(cudnnSetConvolution2dDescriptor);
    API(cudnnGetConvolutionForwardAlgorithm_v7);
    API(cudnnGetConvolutionForwardWorkspaceSize);
    API(cudnnConvolutionForward);
    API(cudnnGetConvolutionBackwardDataAlgorithm_v7);
    API(cudnnGetConvolutionBackwardDataWorkspaceSize);
    API(cudnnConvolutionBackwardData);
    API(cudnnGetConvolutionBackwardFilterAlgorithm_v7);
    API(cudnnGetConvolutionBackwardFilterWorkspaceSize);
    API(cudnnConvolutionBackwardFilter);
    API(cudnnCreatePoolingDescriptor);
    API(cudnnSetPooling2dDescriptor);
    API(cudnnPoolingForward);
    API(cudnnPoolingBackward);
    cublasHandle_t blas;
    cudnnHandle_t dnn;
};
static vendor_api api;

static void *open_first(const char *const *names, char *why, size_t len) {
    for (const char *const *n = names; *n; n++) {
        void *h = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    snprintf(why, len, "not found on this machine (dlopen %s: %s)", names[0], dlerror());
    return NULL;
}

#define LOAD(lib, name, why)                                                                                          \
    do {                                                                                                              \
        *(void **)&api.name##_ = dlsym(lib, #name);                                                                    \
        if (!api.name##_) {                                                                                           \
            snprintf(why, sizeof why, "symbol %s missing", #name);                                                    \
            ok = 0;                                                                                                   \
        }                                                                                                             \
    } while (0)

static void load_vendors(void) {
    if (api.tried) return;
    api.tried = 1;
    static const char *const blas_names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
                                             NULL};
    static const char *const dnn_names[] = {"libcudnn.so", "libcudnn.so.9", "libcudnn.so.8", NULL};
    void *blas = open_first(blas_names, api.cublas_why, sizeof api.cublas_why);
    if (blas) {
        int ok = 1;
        LOAD(blas, cublasCreate_v2, api.cublas_why);
        LOAD(blas, cublasSgemm_v2, api.cublas_why);
        if (ok && api.cublasCreate_v2_(&api.blas) != CUBLAS_STATUS_SUCCESS) {
            snprintf(api.cublas_why, sizeof api.cublas_why, "cublasCreate failed");
            ok = 0;
        }
        api.cublas_ok = ok;
    }
    void *dnn = open_first(dnn_names, api.cudnn_why, sizeof api.cudnn_why);
    if (dnn) {
        int ok = 1;
        LOAD(dnn, cudnnCreate, api.cudnn_why);
        LOAD(dnn, cudnnGetErrorString, api.cudnn_why);
        LOAD(dnn, cudnnCreateTensorDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnSetTensor4dDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnCreateFilterDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnSetFilter4dDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnCreateConvolutionDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnSetConvolution2dDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnGetConvolutionForwardAlgorithm_v7, api.cudnn_why);
        LOAD(dnn, cudnnGetConvolutionForwardWorkspaceSize, api.cudnn_why);
        LOAD(dnn, cudnnConvolutionForward, api.cudnn_why);
        LOAD(dnn, cudnnGetConvolutionBackwardDataAlgorithm_v7, api.cudnn_why);
        LOAD(dnn, cudnnGetConvolutionBackwardDataWorkspaceSize, api.cudnn_why);
        LOAD(dnn, cudnnConvolutionBackwardData, api.cudnn_why);
        LOAD(dnn, cudnnGetConvolutionBackwardFilterAlgorithm_v7, api.cudnn_why);
        LOAD(dnn, cudnnGetConvolutionBackwardFilterWorkspaceSize, api.cudnn_why);
        LOAD(dnn, cudnnConvolutionBackwardFilter, api.cudnn_why);
        LOAD(dnn, cudnnCreatePoolingDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnSetPooling2dDescriptor, api.cudnn_why);
        LOAD(dnn, cudnnPoolingForward, api.cudnn_why);
        LOAD(dnn, cudnnPoolingBackward, api.cudnn_why);
        if (ok && api.cudnnCreate_(&api.dnn) != CUDNN_STATUS_SUCCESS) {
            snprintf(api.cudnn_why, sizeof api.cudnn_why, "cudnnCreate failed");
            ok = 0;
        }
        api.cudnn_ok = ok;
    }
}

/* ---------------------------------------------------------------- the cases */
extern "C" int bk_gpu_open(char *why, size_t len) {
    if (!dmz_cuda_available(why, len)) return 0;
    char desc[400];
    dmz_backend_cuda.describe(desc, sizeof desc);
    snprintf(why, len, "%s", desc);
    return 1;
}

extern "C" const char *bk_gpu_vendor(bk_op op) { return op <= BK_DENSE_BWD ? "cublas" : "cudnn"; }

typedef struct {
    float *inp, *w, *bias, *out, *dout, *dinp, *dw, *dbias, *work;
    size_t work_bytes;
} dev_bufs;

static float *dev_random(size_t n) {
    const dmz_backend *be = &dmz_backend_cuda;
    float *host = (float *)malloc((n ? n : 1) * sizeof(float));
    if (!host) abort();
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) x = x * 1664525u + 1013904223u, host[i] = (float)(x >> 8) / 8388608.0f - 1.0f;
    float *d = (float *)be->alloc((n ? n : 1) * sizeof(float));
    if (!d) abort();
    be->upload(d, host, n * sizeof(float));
    free(host);
    return d;
}

static dmz_conv_shape conv_of(const bk_case *c) {
    dmz_conv_shape s = {c->B, c->C, c->H, c->W, c->OC, c->K, c->pad};
    return s;
}

/* cuDNN's descriptors for a case (NCHW, float) */
typedef struct {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnPoolingDescriptor_t pool;
} dnn_desc;

#define DNN(call)                                                                                                     \
    do {                                                                                                              \
        cudnnStatus_t st_ = (call);                                                                                   \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                                            \
            snprintf(why, len, "%s: %s", #call, api.cudnnGetErrorString_(st_));                                       \
            return -1;                                                                                                \
        }                                                                                                             \
    } while (0)

static int dnn_setup(const bk_case *c, dnn_desc *d, char *why, size_t len) {
    dmz_conv_shape s = conv_of(c);
    DNN(api.cudnnCreateTensorDescriptor_(&d->x));
    DNN(api.cudnnCreateTensorDescriptor_(&d->y));
    DNN(api.cudnnSetTensor4dDescriptor_(d->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, c->B, c->C, c->H, c->W));
    if (c->op >= BK_POOL_FWD) {
        DNN(api.cudnnCreatePoolingDescriptor_(&d->pool));
        /* 'SAME' for 2x2 stride 2 on even sizes is padding 0 (the cnn's 28 and 14) */
        DNN(api.cudnnSetPooling2dDescriptor_(d->pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2));
        DNN(api.cudnnSetTensor4dDescriptor_(d->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, c->B, c->C,
                                            dmz_pool_out(c->H), dmz_pool_out(c->W)));
        return 0;
    }
    DNN(api.cudnnCreateFilterDescriptor_(&d->w));
    DNN(api.cudnnSetFilter4dDescriptor_(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c->OC, c->C, c->K, c->K));
    DNN(api.cudnnCreateConvolutionDescriptor_(&d->conv));
    DNN(api.cudnnSetConvolution2dDescriptor_(d->conv, c->pad, c->pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT));
    DNN(api.cudnnSetTensor4dDescriptor_(d->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, c->B, c->OC, dmz_conv_out_h(s),
                                        dmz_conv_out_w(s)));
    return 0;
}

typedef struct {
    const bk_case *c;
    dev_bufs *b;
    dnn_desc d;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
} call_ctx;

static const float one = 1.0f, zero = 0.0f;

static int ours(call_ctx *x) {
    const dmz_backend *be = &dmz_backend_cuda;
    const bk_case *c = x->c;
    dev_bufs *b = x->b;
    dmz_conv_shape s = conv_of(c);
    switch (c->op) {
    case BK_DENSE_FWD: be->dense_forward(b->out, b->inp, b->w, b->bias, c->B, c->C, c->OC); break;
    case BK_DENSE_BWD: be->dense_backward(b->dinp, b->dw, b->dbias, b->dout, b->inp, b->w, c->B, c->C, c->OC); break;
    case BK_CONV_FWD: be->conv2d_forward_relu(b->out, b->inp, b->w, b->bias, s, b->work); break;
    case BK_CONV_BWD_DATA: be->conv2d_backward_data(b->dinp, b->dout, b->w, s, b->work); break;
    case BK_CONV_BWD_FILTER: be->conv2d_backward_filter(b->dw, b->dbias, b->dout, b->inp, s, b->work); break;
    case BK_POOL_FWD: be->maxpool2x2_forward(b->out, b->inp, c->B, c->C, c->H, c->W); break;
    case BK_POOL_BWD: be->maxpool2x2_backward(b->dinp, b->dout, b->inp, c->B, c->C, c->H, c->W); break;
    default: break; /* cpu-only ops: bk_gpu_time refuses them */
    }
    return 0;
}

/* Row-major products through column-major cuBLAS: a row-major [R][C] matrix is
 * its column-major transpose, so C = A @ B becomes C^T = B^T @ A^T. */
static int vendor(call_ctx *x, char *why, size_t len) {
    const bk_case *c = x->c;
    dev_bufs *b = x->b;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    switch (c->op) {
    case BK_DENSE_FWD: /* out^T[OC][B] = w^T[OC][C] @ inp^T[C][B] */
        st = api.cublasSgemm_v2_(api.blas, CUBLAS_OP_N, CUBLAS_OP_N, c->OC, c->B, c->C, &one, b->w, c->OC, b->inp,
                                 c->C, &zero, b->out, c->OC);
        break;
    case BK_DENSE_BWD: /* dw^T[OC][C] = dout^T @ inp; dinp^T[C][B] = w @ dout^T */
        st = api.cublasSgemm_v2_(api.blas, CUBLAS_OP_N, CUBLAS_OP_T, c->OC, c->C, c->B, &one, b->dout, c->OC, b->inp,
                                 c->C, &zero, b->dw, c->OC);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = api.cublasSgemm_v2_(api.blas, CUBLAS_OP_T, CUBLAS_OP_N, c->C, c->B, c->OC, &one, b->w, c->OC,
                                     b->dout, c->OC, &zero, b->dinp, c->C);
        break;
    case BK_CONV_FWD:
        DNN(api.cudnnConvolutionForward_(api.dnn, &one, x->d.x, b->inp, x->d.w, b->w, x->d.conv, x->fwd, b->work,
                                         b->work_bytes, &zero, x->d.y, b->out));
        break;
    case BK_CONV_BWD_DATA:
        DNN(api.cudnnConvolutionBackwardData_(api.dnn, &one, x->d.w, b->w, x->d.y, b->dout, x->d.conv, x->bwd_data,
                                              b->work, b->work_bytes, &zero, x->d.x, b->dinp));
        break;
    case BK_CONV_BWD_FILTER:
        DNN(api.cudnnConvolutionBackwardFilter_(api.dnn, &one, x->d.x, b->inp, x->d.y, b->dout, x->d.conv,
                                                x->bwd_filter, b->work, b->work_bytes, &zero, x->d.w, b->dw));
        break;
    case BK_POOL_FWD:
        DNN(api.cudnnPoolingForward_(api.dnn, x->d.pool, &one, x->d.x, b->inp, &zero, x->d.y, b->out));
        break;
    case BK_POOL_BWD:
        DNN(api.cudnnPoolingBackward_(api.dnn, x->d.pool, &one, x->d.y, b->out, x->d.y, b->dout, x->d.x, b->inp,
                                      &zero, x->d.x, b->dinp));
        break;
    default: break; /* cpu-only ops: bk_gpu_time refuses them */
    }
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, len, "cublasSgemm failed (status %d)", (int)st);
        return -1;
    }
    return 0;
}

/* The algorithms cuDNN ranks first for the shape, and the workspace they need. */
static int dnn_algos(call_ctx *x, char *why, size_t len) {
    int n = 0;
    size_t bytes = 0;
    switch (x->c->op) {
    case BK_CONV_FWD: {
        cudnnConvolutionFwdAlgoPerf_t p;
        DNN(api.cudnnGetConvolutionForwardAlgorithm_v7_(api.dnn, x->d.x, x->d.w, x->d.conv, x->d.y, 1, &n, &p));
        x->fwd = p.algo;
        DNN(api.cudnnGetConvolutionForwardWorkspaceSize_(api.dnn, x->d.x, x->d.w, x->d.conv, x->d.y, x->fwd, &bytes));
        break;
    }
    case BK_CONV_BWD_DATA: {
        cudnnConvolutionBwdDataAlgoPerf_t p;
        DNN(api.cudnnGetConvolutionBackwardDataAlgorithm_v7_(api.dnn, x->d.w, x->d.y, x->d.conv, x->d.x, 1, &n, &p));
        x->bwd_data = p.algo;
        DNN(api.cudnnGetConvolutionBackwardDataWorkspaceSize_(api.dnn, x->d.w, x->d.y, x->d.conv, x->d.x, x->bwd_data,
                                                              &bytes));
        break;
    }
    case BK_CONV_BWD_FILTER: {
        cudnnConvolutionBwdFilterAlgoPerf_t p;
        DNN(api.cudnnGetConvolutionBackwardFilterAlgorithm_v7_(api.dnn, x->d.x, x->d.y, x->d.conv, x->d.w, 1, &n, &p));
        x->bwd_filter = p.algo;
        DNN(api.cudnnGetConvolutionBackwardFilterWorkspaceSize_(api.dnn, x->d.x, x->d.y, x->d.conv, x->d.w,
                                                                x->bwd_filter, &bytes));
        break;
    }
    default: break;
    }
    if (bytes > x->b->work_bytes) {
        dmz_backend_cuda.free(x->b->work);
        x->b->work = (float *)dmz_backend_cuda.alloc(bytes);
        x->b->work_bytes = bytes;
        if (!x->b->work) {
            snprintf(why, len, "no memory for cuDNN's workspace (%zu bytes)", bytes);
            return -1;
        }
    }
    return 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int run(call_ctx *x, int use_vendor, char *why, size_t len) {
    return use_vendor ? vendor(x, why, len) : ours(x);
}

extern "C" double bk_gpu_time(const bk_case *c, int use_vendor, char *why, size_t len) {
    const dmz_backend *be = &dmz_backend_cuda;
    if (c->op > BK_POOL_BWD) { /* the cpu backend's fused ops: the cuda backends run them apart */
        snprintf(why, len, "no such op on the GPU: its model runs the conv, ReLU and pool apart");
        return -1;
    }
    if (use_vendor) {
        load_vendors();
        int ok = c->op <= BK_DENSE_BWD ? api.cublas_ok : api.cudnn_ok;
        if (!ok) {
            snprintf(why, len, "%s", c->op <= BK_DENSE_BWD ? api.cublas_why : api.cudnn_why);
            return -1;
        }
    }
    dmz_conv_shape s = conv_of(c);
    int is_pool = c->op >= BK_POOL_FWD, is_dense = c->op <= BK_DENSE_BWD;
    size_t in = (size_t)c->B * c->C * c->H * c->W, w = (size_t)c->OC * c->C * c->K * c->K;
    size_t out = is_pool ? (size_t)c->B * c->C * dmz_pool_out(c->H) * dmz_pool_out(c->W)
                         : (size_t)c->B * c->OC * dmz_conv_out_h(s) * dmz_conv_out_w(s);
    dev_bufs b = {dev_random(in), dev_random(w), dev_random((size_t)c->OC), dev_random(out), dev_random(out),
                  dev_random(in), dev_random(w), dev_random((size_t)c->OC), NULL, 0};
    b.work_bytes = is_dense || is_pool ? 0 : be->conv2d_workspace(s);
    b.work = (float *)be->alloc(b.work_bytes);
    call_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c, x.b = &b;
    double result = -1;
    if (use_vendor && !is_dense && (dnn_setup(c, &x.d, why, len) || dnn_algos(&x, why, len))) goto done;
    /* warm-up, one timed call to size the batch of calls, then the batch */
    if (run(&x, use_vendor, why, len)) goto done;
    cudaDeviceSynchronize(); /* the device, not one stream: cuBLAS/cuDNN run on the default stream */
    {
        double t0 = now_s();
        run(&x, use_vendor, why, len);
        cudaDeviceSynchronize();
        double one_call = now_s() - t0;
        int reps = one_call > 0 ? (int)(0.1 / one_call) : 1000;
        reps = reps < 3 ? 3 : reps > 2000 ? 2000 : reps;
        t0 = now_s();
        for (int i = 0; i < reps; i++) run(&x, use_vendor, why, len);
        cudaDeviceSynchronize();
        result = (now_s() - t0) / reps;
    }
done:
    float *all[] = {b.inp, b.w, b.bias, b.out, b.dout, b.dinp, b.dw, b.dbias, b.work};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) be->free(all[i]);
    return result;
}
