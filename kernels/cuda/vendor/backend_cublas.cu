/* "--backend cublas": the cuda backend with every GEMM through cuBLAS's
 * cublasSgemm (dense forward, dw, dinp); everything else (the bias and ReLU
 * epilogue as a kernel of ours, reductions, softmax, Adam, the resident step,
 * graphs) shared with "cuda". A comparison backend: it says how far our
 * hand-written SGEMM is from NVIDIA's.
 *
 * Layouts: our tensors are row-major, cuBLAS is column-major. A row-major
 * X[r][c] is the column-major X^T with leading dimension c, so (with inp
 * [B][C], w [C][OC], out [B][OC]):
 *   out = inp @ w      <=>  out^T  = w^T @ inp^T:   Sgemm(N, N, m=OC, n=B, k=C,  w, OC,  inp, C,   out, OC)
 *   dw  = inp^T @ dout <=>  dw^T   = dout^T @ inp:  Sgemm(N, T, m=OC, n=C, k=B,  dout, OC, inp, C,  dw, OC)
 *   dinp = dout @ w^T  <=>  dinp^T = w @ dout^T:    Sgemm(T, N, m=C,  n=B, k=OC, w, OC,  dout, OC,  dinp, C)
 * cuBLAS's default math mode keeps FP32 (no TF32) for cublasSgemm. */
#include "vendor.cuh"

#ifndef __CUDACC_RTC__
#include <mutex>
#include <stdio.h>
#include <string.h>

namespace dmz_vendor {
namespace {
struct cublas_api {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSgemm_v2) sgemm;
    decltype(&cublasGetVersion_v2) get_version;
    decltype(&cublasSetWorkspace_v2) set_workspace; /* may be NULL (older cuBLAS) */
} api;
std::once_flag once;
int loaded = 0;
char load_error[512];
char version[32] = "?";

void load() {
    char soname[64];
    snprintf(soname, sizeof soname, "libcublas.so.%d", CUBLAS_VER_MAJOR);
    const char *const names[] = {soname, "libcublas.so", NULL};
    void *h = open_library(names, load_error, sizeof load_error);
    if (!h) return;
#define SYM(field, name)                                                                                              \
    api.field = (decltype(api.field))dlsym(h, name);                                                                  \
    if (!api.field) {                                                                                                 \
        snprintf(load_error, sizeof load_error, "%s has no %s", soname, name);                                        \
        return;                                                                                                       \
    }
    SYM(create, "cublasCreate_v2")
    SYM(destroy, "cublasDestroy_v2")
    SYM(set_stream, "cublasSetStream_v2")
    SYM(sgemm, "cublasSgemm_v2")
    SYM(get_version, "cublasGetVersion_v2")
#undef SYM
    api.set_workspace = (decltype(api.set_workspace))dlsym(h, "cublasSetWorkspace_v2");
    loaded = 1;
}

void check(cublasStatus_t st, const char *what, int line) {
    if (st == CUBLAS_STATUS_SUCCESS) return;
    char msg[160];
    snprintf(msg, sizeof msg, "%s (cublasStatus_t %d)", what, (int)st);
    DMZ_CUDA_NS::fail(msg, cudaErrorUnknown, __FILE__, line);
}

void destroy_handle(void *h) { api.destroy((cublasHandle_t)h); }

enum { BLAS_WORKSPACE = 4 << 20 }; /* fixed, so that a captured GEMM never allocates */
} // namespace

void *open_library(const char *const *names, char *why, size_t len) {
    size_t used = 0;
    why[0] = 0;
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        const char *e = dlerror();
        used += (size_t)snprintf(why + used, used < len ? len - used : 0, "%s%s", i ? "; " : "", e ? e : names[i]);
    }
    return NULL;
}

int cublas_load(char *why, size_t len) {
    std::call_once(once, load);
    if (!loaded) snprintf(why, len, "cuBLAS could not be loaded: %s", load_error);
    return loaded;
}

const char *cublas_version() { return version; }

int cublas_attach(DMZ_CUDA_NS::context *c, char *err, size_t len) {
    if (!cublas_load(err, len)) return 0;
    cublasHandle_t h;
    cublasStatus_t st = api.create(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, len, "cublasCreate: status %d", (int)st);
        return 0;
    }
    check(api.set_stream(h, c->stream), "cublasSetStream", __LINE__);
    if (api.set_workspace) {
        void *ws = NULL;
        DMZ_CUDA_CHECK(cudaMalloc(&ws, BLAS_WORKSPACE));
        c->vendor_memory[0] = ws;
        check(api.set_workspace(h, ws, BLAS_WORKSPACE), "cublasSetWorkspace", __LINE__);
    }
    int v = 0;
    if (api.get_version(h, &v) == CUBLAS_STATUS_SUCCESS)
        snprintf(version, sizeof version, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    c->vendor[0] = h;
    c->vendor_free[0] = destroy_handle;
    return 1;
}

cublasHandle_t cublas_handle() {
    DMZ_CUDA_NS::context *c = DMZ_CUDA_NS::current();
    if (!c->vendor[0]) {
        char err[512];
        if (!cublas_attach(c, err, sizeof err)) {
            fprintf(stderr, "cublas backend: %s\n", err);
            abort();
        }
    }
    return (cublasHandle_t)c->vendor[0];
}

static void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc) {
    const float one = 1.0f, zero = 0.0f;
    check(api.sgemm(cublas_handle(), ta, tb, m, n, k, &one, A, lda, B, ldb, &zero, C, ldc), "cublasSgemm", __LINE__);
    DMZ_CUDA_NS::after_launch("cublasSgemm", __FILE__, __LINE__);
}

void dense_forward(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    if (B <= 0 || OC <= 0) return;
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, OC, B, C, w, OC, inp, C, out, OC);
    cuda_bias_act(out, bias, B, OC, 0);
}

void dense_forward_relu(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC) {
    if (B <= 0 || OC <= 0) return;
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, OC, B, C, w, OC, inp, C, out, OC);
    cuda_bias_act(out, bias, B, OC, 1);
}

void dense_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int B,
                    int C, int OC) {
    if (C > 0 && OC > 0) gemm(CUBLAS_OP_N, CUBLAS_OP_T, OC, C, B, dout, OC, inp, C, dw, OC);
    if (dbias) cuda_dense_bias_grad(dbias, dout, B, OC);
    if (dinp && B > 0 && C > 0) gemm(CUBLAS_OP_T, CUBLAS_OP_N, C, B, OC, w, OC, dout, OC, dinp, C);
}

} // namespace dmz_vendor

/* ---------------------------------------------------------------- the table */
static void *cublas_context_create(char *err) {
    void *c = dmz_backend_cuda.context_create(err);
    if (c && !dmz_vendor::cublas_attach((DMZ_CUDA_NS::context *)c, err, 512)) {
        dmz_backend_cuda.context_destroy(c);
        return NULL;
    }
    return c;
}

static void cublas_describe(char *out, size_t len) {
    char base[400];
    dmz_backend_cuda.describe(base, sizeof base);
    snprintf(out, len, "cublas (every GEMM through cuBLAS %s) on %s", dmz_vendor::cublas_version(),
             strncmp(base, "cuda: ", 6) == 0 ? base + 6 : base);
}

static dmz_backend cublas_table;
static std::once_flag table_once;

extern "C" const dmz_backend *dmz_cublas_backend(char *reason, size_t len) {
    if (!dmz_cuda_available(reason, len)) return NULL;
    if (!dmz_vendor::cublas_load(reason, len)) return NULL;
    std::call_once(table_once, [] {
        cublas_table = dmz_backend_cuda;
        cublas_table.name = "cublas";
        cublas_table.describe = cublas_describe;
        cublas_table.dense_forward = dmz_vendor::dense_forward;
        cublas_table.dense_forward_relu = dmz_vendor::dense_forward_relu;
        cublas_table.dense_backward = dmz_vendor::dense_backward;
        cublas_table.context_create = cublas_context_create;
    });
    return &cublas_table;
}
#endif
