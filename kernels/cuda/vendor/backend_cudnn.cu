/* "--backend cudnn": the cnn's convolutions (forward, backward data, backward
 * filter, bias gradient) and 2x2 max pooling through cuDNN, every GEMM through
 * cuBLAS (kernels/cuda/vendor/backend_cublas.cu), the rest shared with "cuda".
 * A comparison backend.
 *
 * Layouts match ours as they are: tensors NCHW (CUDNN_TENSOR_NCHW), filters
 * [OC][C][K][K] (cuDNN's KCRS, CUDNN_TENSOR_NCHW for filters), cross-correlation
 * (CUDNN_CROSS_CORRELATION), stride 1, `pad` zeros on every side, bias [OC]
 * added as a 1 x OC x 1 x 1 tensor. Algorithms: cuDNN's heuristic choice
 * (the _v7 queries), restricted to deterministic ones for the backward passes.
 *
 * Max pooling: ours is TensorFlow's 'SAME' 2x2/2, which pools an odd last row
 * or column on its own. cuDNN pads symmetrically, so it cannot match that:
 * odd heights or widths are refused when the model is built (the cnn pools
 * 28x28 and 14x14 only). CUDNN_POOLING_MAX_DETERMINISTIC for the backward
 * pass; which element of a tied window receives the gradient is cuDNN's
 * choice (ours: the first in row-major order); the GPU check shows whether
 * they agree. cuDNN's backward needs the forward output, which our interface
 * does not pass: it is recomputed into the context's library scratch, sized
 * when the model's convolutions are (conv2d_workspace), so that a captured
 * step never allocates.
 *
 * Descriptors are made and destroyed per call (host work only). */
#include "vendor.cuh"

#ifndef __CUDACC_RTC__
#include <cudnn.h>
#include <mutex>
#include <stdio.h>
#include <string.h>

namespace {
struct cudnn_api {
    decltype(&cudnnCreate) create;
    decltype(&cudnnDestroy) destroy;
    decltype(&cudnnSetStream) set_stream;
    decltype(&cudnnGetErrorString) error_string;
    decltype(&cudnnGetVersion) get_version;
    decltype(&cudnnCreateTensorDescriptor) create_tensor;
    decltype(&cudnnSetTensor4dDescriptor) set_tensor;
    decltype(&cudnnDestroyTensorDescriptor) destroy_tensor;
    decltype(&cudnnCreateFilterDescriptor) create_filter;
    decltype(&cudnnSetFilter4dDescriptor) set_filter;
    decltype(&cudnnDestroyFilterDescriptor) destroy_filter;
    decltype(&cudnnCreateConvolutionDescriptor) create_conv;
    decltype(&cudnnSetConvolution2dDescriptor) set_conv;
    decltype(&cudnnDestroyConvolutionDescriptor) destroy_conv;
    decltype(&cudnnGetConvolutionForwardAlgorithm_v7) fwd_algos;
    decltype(&cudnnGetConvolutionForwardWorkspaceSize) fwd_ws;
    decltype(&cudnnConvolutionForward) fwd;
    decltype(&cudnnGetConvolutionBackwardDataAlgorithm_v7) bwd_data_algos;
    decltype(&cudnnGetConvolutionBackwardDataWorkspaceSize) bwd_data_ws;
    decltype(&cudnnConvolutionBackwardData) bwd_data;
    decltype(&cudnnGetConvolutionBackwardFilterAlgorithm_v7) bwd_filter_algos;
    decltype(&cudnnGetConvolutionBackwardFilterWorkspaceSize) bwd_filter_ws;
    decltype(&cudnnConvolutionBackwardFilter) bwd_filter;
    decltype(&cudnnConvolutionBackwardBias) bwd_bias;
    decltype(&cudnnAddTensor) add_tensor;
    decltype(&cudnnCreatePoolingDescriptor) create_pool;
    decltype(&cudnnSetPooling2dDescriptor) set_pool;
    decltype(&cudnnDestroyPoolingDescriptor) destroy_pool;
    decltype(&cudnnPoolingForward) pool_fwd;
    decltype(&cudnnPoolingBackward) pool_bwd;
} api;
std::once_flag once;
int loaded = 0;
char load_error[512];

void load() {
    char soname[64];
    snprintf(soname, sizeof soname, "libcudnn.so.%d", CUDNN_MAJOR);
    const char *const names[] = {soname, "libcudnn.so", NULL};
    void *h = dmz_vendor::open_library(names, load_error, sizeof load_error);
    if (!h) return;
#define SYM(field, name)                                                                                              \
    api.field = (decltype(api.field))dlsym(h, #name);                                                                 \
    if (!api.field) {                                                                                                 \
        snprintf(load_error, sizeof load_error, "%s has no %s", soname, #name);                                       \
        return;                                                                                                       \
    }
    SYM(create, cudnnCreate) SYM(destroy, cudnnDestroy) SYM(set_stream, cudnnSetStream)
    SYM(error_string, cudnnGetErrorString) SYM(get_version, cudnnGetVersion)
    SYM(create_tensor, cudnnCreateTensorDescriptor) SYM(set_tensor, cudnnSetTensor4dDescriptor)
    SYM(destroy_tensor, cudnnDestroyTensorDescriptor) SYM(create_filter, cudnnCreateFilterDescriptor)
    SYM(set_filter, cudnnSetFilter4dDescriptor) SYM(destroy_filter, cudnnDestroyFilterDescriptor)
    SYM(create_conv, cudnnCreateConvolutionDescriptor) SYM(set_conv, cudnnSetConvolution2dDescriptor)
    SYM(destroy_conv, cudnnDestroyConvolutionDescriptor) SYM(fwd_algos, cudnnGetConvolutionForwardAlgorithm_v7)
    SYM(fwd_ws, cudnnGetConvolutionForwardWorkspaceSize) SYM(fwd, cudnnConvolutionForward)
    SYM(bwd_data_algos, cudnnGetConvolutionBackwardDataAlgorithm_v7)
    SYM(bwd_data_ws, cudnnGetConvolutionBackwardDataWorkspaceSize) SYM(bwd_data, cudnnConvolutionBackwardData)
    SYM(bwd_filter_algos, cudnnGetConvolutionBackwardFilterAlgorithm_v7)
    SYM(bwd_filter_ws, cudnnGetConvolutionBackwardFilterWorkspaceSize)
    SYM(bwd_filter, cudnnConvolutionBackwardFilter) SYM(bwd_bias, cudnnConvolutionBackwardBias)
    SYM(add_tensor, cudnnAddTensor) SYM(create_pool, cudnnCreatePoolingDescriptor)
    SYM(set_pool, cudnnSetPooling2dDescriptor) SYM(destroy_pool, cudnnDestroyPoolingDescriptor)
    SYM(pool_fwd, cudnnPoolingForward) SYM(pool_bwd, cudnnPoolingBackward)
#undef SYM
    loaded = 1;
}

int cudnn_load(char *why, size_t len) {
    std::call_once(once, load);
    if (!loaded) snprintf(why, len, "cuDNN could not be loaded: %s", load_error);
    return loaded;
}

void check(cudnnStatus_t st, const char *what, int line) {
    if (st == CUDNN_STATUS_SUCCESS) return;
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, api.error_string ? api.error_string(st) : "cuDNN error");
    DMZ_CUDA_NS::fail(msg, cudaErrorUnknown, __FILE__, line);
}
#define CK(call) check((call), #call, __LINE__)

void destroy_handle(void *h) { api.destroy((cudnnHandle_t)h); }

int attach(DMZ_CUDA_NS::context *c, char *err, size_t len) {
    if (!cudnn_load(err, len)) return 0;
    cudnnHandle_t h;
    cudnnStatus_t st = api.create(&h);
    if (st != CUDNN_STATUS_SUCCESS) {
        snprintf(err, len, "cudnnCreate: %s", api.error_string(st));
        return 0;
    }
    CK(api.set_stream(h, c->stream));
    c->vendor[1] = h;
    c->vendor_free[1] = destroy_handle;
    return 1;
}

cudnnHandle_t handle() {
    DMZ_CUDA_NS::context *c = DMZ_CUDA_NS::current();
    if (!c->vendor[1]) {
        char err[512];
        if (!attach(c, err, sizeof err)) {
            fprintf(stderr, "cudnn backend: %s\n", err);
            abort();
        }
    }
    return (cudnnHandle_t)c->vendor[1];
}

/* The descriptors of one convolution shape. */
struct conv_desc {
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    conv_desc(dmz_conv_shape s) {
        CK(api.create_tensor(&x)), CK(api.create_tensor(&y)), CK(api.create_tensor(&b));
        CK(api.create_filter(&w)), CK(api.create_conv(&conv));
        CK(api.set_tensor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.B, s.C, s.H, s.W));
        CK(api.set_tensor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.B, s.OC, dmz_conv_out_h(s), dmz_conv_out_w(s)));
        CK(api.set_tensor(b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.OC, 1, 1));
        CK(api.set_filter(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.OC, s.C, s.K, s.K));
        CK(api.set_conv(conv, s.pad, s.pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    }
    ~conv_desc() {
        api.destroy_tensor(x), api.destroy_tensor(y), api.destroy_tensor(b);
        api.destroy_filter(w), api.destroy_conv(conv);
    }
    cudnnConvolutionFwdAlgo_t fwd_algo() {
        cudnnConvolutionFwdAlgoPerf_t perf[8];
        int n = 0;
        CK(api.fwd_algos(handle(), x, w, conv, y, 8, &n, perf));
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i].algo;
        return CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    }
    cudnnConvolutionBwdDataAlgo_t bwd_data_algo() {
        cudnnConvolutionBwdDataAlgoPerf_t perf[8];
        int n = 0;
        CK(api.bwd_data_algos(handle(), w, y, conv, x, 8, &n, perf));
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC) return perf[i].algo;
        return CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    }
    cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo() {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[8];
        int n = 0;
        CK(api.bwd_filter_algos(handle(), x, y, conv, w, 8, &n, perf));
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC) return perf[i].algo;
        return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    }
};

size_t conv_workspace(dmz_conv_shape s) {
    conv_desc d(s);
    size_t a = 0, b = 0, c = 0;
    CK(api.fwd_ws(handle(), d.x, d.w, d.conv, d.y, d.fwd_algo(), &a));
    CK(api.bwd_data_ws(handle(), d.w, d.y, d.conv, d.x, d.bwd_data_algo(), &b));
    CK(api.bwd_filter_ws(handle(), d.x, d.y, d.conv, d.w, d.bwd_filter_algo(), &c));
    /* the pooled output of this layer's output, for the pooling backward (see the top) */
    size_t pooled = (size_t)s.B * s.OC * ((dmz_conv_out_h(s) + 1) / 2) * ((dmz_conv_out_w(s) + 1) / 2) * sizeof(float);
    DMZ_CUDA_NS::vendor_scratch(pooled);
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* The workspace the model allocated holds at least what conv_workspace said. */
size_t workspace_bytes(dmz_conv_shape s) { return conv_workspace(s); }

void conv_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s, float *work) {
    conv_desc d(s);
    const float one = 1.0f, zero = 0.0f;
    CK(api.fwd(handle(), &one, d.x, inp, d.w, w, d.conv, d.fwd_algo(), work, workspace_bytes(s), &zero, d.y, out));
    if (bias) CK(api.add_tensor(handle(), &one, d.b, bias, &one, d.y, out));
    DMZ_CUDA_NS::after_launch("cudnnConvolutionForward", __FILE__, __LINE__);
}

void conv_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
    conv_desc d(s);
    const float one = 1.0f, zero = 0.0f;
    CK(api.bwd_data(handle(), &one, d.w, w, d.y, dout, d.conv, d.bwd_data_algo(), work, workspace_bytes(s), &zero, d.x,
                    dinp));
    DMZ_CUDA_NS::after_launch("cudnnConvolutionBackwardData", __FILE__, __LINE__);
}

void conv_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s, float *work) {
    conv_desc d(s);
    const float one = 1.0f, zero = 0.0f;
    CK(api.bwd_filter(handle(), &one, d.x, inp, d.y, dout, d.conv, d.bwd_filter_algo(), work, workspace_bytes(s), &zero,
                      d.w, dw));
    if (dbias) CK(api.bwd_bias(handle(), &one, d.y, dout, &zero, d.b, dbias));
    DMZ_CUDA_NS::after_launch("cudnnConvolutionBackwardFilter", __FILE__, __LINE__);
}

struct pool_desc {
    cudnnTensorDescriptor_t x, y;
    cudnnPoolingDescriptor_t p;
    pool_desc(int B, int C, int H, int W) {
        if (H % 2 || W % 2) {
            fprintf(stderr, "cudnn backend: 2x2 max pooling of %dx%d: cuDNN cannot pool an odd size as TensorFlow's "
                            "'SAME' does (use --backend cuda)\n", H, W);
            abort(); /* the model refuses such shapes when it is built (maxpool2x2_supports) */
        }
        CK(api.create_tensor(&x)), CK(api.create_tensor(&y)), CK(api.create_pool(&p));
        CK(api.set_tensor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, B, C, H, W));
        CK(api.set_tensor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, B, C, H / 2, W / 2));
        CK(api.set_pool(p, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2));
    }
    ~pool_desc() { api.destroy_tensor(x), api.destroy_tensor(y), api.destroy_pool(p); }
};

void pool_forward(float *out, const float *inp, int B, int C, int H, int W) {
    pool_desc d(B, C, H, W);
    const float one = 1.0f, zero = 0.0f;
    CK(api.pool_fwd(handle(), d.p, &one, d.x, inp, &zero, d.y, out));
    DMZ_CUDA_NS::after_launch("cudnnPoolingForward", __FILE__, __LINE__);
}

void pool_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    pool_desc d(B, C, H, W);
    const float one = 1.0f, zero = 0.0f;
    float *y = (float *)DMZ_CUDA_NS::vendor_scratch((size_t)B * C * (H / 2) * (W / 2) * sizeof(float));
    CK(api.pool_fwd(handle(), d.p, &one, d.x, inp, &zero, d.y, y));
    CK(api.pool_bwd(handle(), d.p, &one, d.y, y, d.y, dout, d.x, inp, &zero, d.x, dinp));
    DMZ_CUDA_NS::after_launch("cudnnPoolingBackward", __FILE__, __LINE__);
}

int pool_supports(int H, int W, char *why, size_t len) {
    if (H % 2 == 0 && W % 2 == 0) return 1;
    snprintf(why, len, "cuDNN cannot pool %dx%d as TensorFlow's 'SAME' 2x2 pooling does (odd sizes pool their last "
                       "row or column alone; cuDNN pads both sides): use --backend cuda", H, W);
    return 0;
}

void *cudnn_context_create(char *err) {
    void *c = dmz_backend_cuda.context_create(err);
    if (!c) return NULL;
    if (!dmz_vendor::cublas_attach((DMZ_CUDA_NS::context *)c, err, 512) || !attach((DMZ_CUDA_NS::context *)c, err, 512)) {
        dmz_backend_cuda.context_destroy(c);
        return NULL;
    }
    return c;
}

void cudnn_describe(char *out, size_t len) {
    char base[400];
    dmz_backend_cuda.describe(base, sizeof base);
    size_t v = api.get_version ? api.get_version() : 0;
    snprintf(out, len, "cudnn (convolutions and pooling through cuDNN %zu.%zu.%zu, GEMMs through cuBLAS %s) on %s",
             v / 10000, v / 100 % 100, v % 100, dmz_vendor::cublas_version(),
             strncmp(base, "cuda: ", 6) == 0 ? base + 6 : base);
}

dmz_backend table;
std::once_flag table_once;
} // namespace

extern "C" const dmz_backend *dmz_cudnn_backend(char *reason, size_t len) {
    if (!dmz_cuda_available(reason, len)) return NULL;
    if (!dmz_vendor::cublas_load(reason, len) || !cudnn_load(reason, len)) return NULL;
    std::call_once(table_once, [] {
        table = dmz_backend_cuda;
        table.name = "cudnn";
        table.describe = cudnn_describe;
        table.dense_forward = dmz_vendor::dense_forward;
        table.dense_forward_relu = dmz_vendor::dense_forward_relu;
        table.dense_backward = dmz_vendor::dense_backward;
        table.conv2d_workspace = conv_workspace;
        table.conv2d_forward = conv_forward;
        table.conv2d_forward_relu = NULL; /* cuda's is our own kernel: the model adds relu_forward instead */
        table.conv2d_backward_data = conv_backward_data;
        table.conv2d_backward_filter = conv_backward_filter;
        table.maxpool2x2_forward = pool_forward;
        table.maxpool2x2_backward = pool_backward;
        table.maxpool2x2_backward_relu = NULL; /* cuDNN's pooling, then the ReLU's backward */
        table.maxpool2x2_supports = pool_supports;
        table.context_create = cudnn_context_create;
    });
    return &table;
}
#endif
