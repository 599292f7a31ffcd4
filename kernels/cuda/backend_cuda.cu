/* The cuda backend's table (kernels/backend.h): device memory from cudaMalloc,
 * transfers with cudaMemcpyAsync through pinned staging, the ops from the
 * other .cu files of this folder. Compiled by nvcc it is dmz_backend_cuda
 * ("cuda"); compiled for the CPU emulator it is dmz_backend_cuda_emu
 * ("cuda-emu"), used by the tests only.
 *
 * Every op and copy is queued on the calling thread's context's non-blocking
 * stream (kernels/cuda/context.cu: one per model); sync waits for that stream.
 * A failed CUDA call aborts with file, line, host, the runtime's message and
 * the last kernels launched: the interface has no error path for a broken
 * device. */
#include "context.cuh"

#ifndef __CUDACC_RTC__ /* all host code; NVRTC (make check-pascal) sees nothing here */
#include <math.h>
#include <string.h>

#ifdef DMZ_CUDA_EMU
#define dmz_backend_cuda dmz_backend_cuda_emu
#define dmz_cuda_available dmz_cuda_emu_available
#define BACKEND_NAME "cuda-emu"
#else
#define BACKEND_NAME "cuda"
#endif

#ifndef DMZ_NVCC_VERSION
#define DMZ_NVCC_VERSION "?"
#endif
#ifndef DMZ_CUDA_ARCH
#define DMZ_CUDA_ARCH "?"
#endif

/* A kernel that does nothing: its attributes say whether this binary holds code the device can run. */
static __global__ void probe_kernel(int *p) {
    if (p) *p = 0;
}

/* Whether the binary has code for the device; else the reason, saying how to rebuild. */
static int code_for_device(int dev, char *reason, size_t len) {
    cudaFuncAttributes a;
    cudaError_t e = cudaFuncGetAttributes(&a, probe_kernel);
    if (e == cudaSuccess) return 1;
    cudaGetLastError();
    cudaDeviceProp p;
    int major = 0, minor = 0;
    char name[256] = "?";
    if (cudaGetDeviceProperties(&p, dev) == cudaSuccess) {
        major = p.major, minor = p.minor;
        snprintf(name, sizeof name, "%s", p.name);
    } else {
        cudaGetLastError();
    }
    if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction)
        snprintf(reason, len,
                 "this binary has no code for compute capability %d.%d (%s): it was built by nvcc %s for CUDA_ARCH=\"%s\"; "
                 "rebuild with %s and CUDA_ARCH=%d%d (%s)",
                 major, minor, name, DMZ_NVCC_VERSION, DMZ_CUDA_ARCH, major * 10 + minor < 75 ? "CUDA 12.x (or 11.8)" : "this toolkit",
                 major, minor, cudaGetErrorName(e));
    else
        snprintf(reason, len, "cudaFuncGetAttributes on device %d (%s): %s (%s)", dev, name, cudaGetErrorString(e),
                 cudaGetErrorName(e));
    return 0;
}

int dmz_cuda_available(char *reason, size_t len) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: leave no error for the next check */
        snprintf(reason, len, "%s (cudaGetDeviceCount: %s)", cudaGetErrorString(e), cudaGetErrorName(e));
        return 0;
    }
    if (count == 0) {
        snprintf(reason, len, "cudaGetDeviceCount found no device");
        return 0;
    }
    int dev = DMZ_CUDA_NS::device(reason, len); /* by local rank when several ranks share the node */
    if (dev < 0) return 0;
    return code_for_device(dev, reason, len);
}

static void cuda_describe(char *out, size_t len) {
    int dev = 0;
    cudaDeviceProp p;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&p, dev);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(out, len, "%s: no device (%s)", BACKEND_NAME, cudaGetErrorString(e));
        return;
    }
#ifdef DMZ_CUDA_EMU
    snprintf(out, len, "%s: the cuda kernels on the %s, no GPU", BACKEND_NAME, p.name);
#else
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    snprintf(out, len, "%s: device %d %s (compute capability %d.%d, %d SMs, %.1f GiB; CUDA runtime %d.%d, driver %d.%d)",
             BACKEND_NAME, dev, p.name, p.major, p.minor, p.multiProcessorCount,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), runtime / 1000, runtime % 1000 / 10,
             driver / 1000, driver % 1000 / 10);
#endif
}

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1; /* a distinct, freeable pointer, as the cpu backend gives */
    DMZ_CUDA_NS::current(); /* the device chosen and the stream made before the first allocation */
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* out of memory is reported by returning NULL */
        return NULL;
    }
    /* Anything else is not a lack of memory: an earlier kernel's fault (sticky) surfacing here. */
    if (e != cudaSuccess) DMZ_CUDA_NS::fail("cudaMalloc (not out of memory: an earlier asynchronous fault)", e, __FILE__, __LINE__);
    DMZ_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, DMZ_CUDA_NS::current_stream()));
    return p;
}

static void cuda_free(void *p) { DMZ_CUDA_CHECK(cudaFree(p)); }
static void cuda_upload(void *dst, const void *host_src, size_t bytes) { DMZ_CUDA_NS::upload(dst, host_src, bytes); }
static void cuda_download(void *host_dst, const void *src, size_t bytes) { DMZ_CUDA_NS::download(host_dst, src, bytes); }
static void cuda_copy(void *dst, const void *src, size_t bytes) { DMZ_CUDA_NS::copy(dst, src, bytes); }
static void cuda_sync(void) { DMZ_CUDA_NS::sync(); }

/* ---------------------------------------------------------------- contexts, events, graphs */
static void *cuda_context_create(char *err) { return DMZ_CUDA_NS::create(err, 512); }
static void cuda_context_destroy(void *ctx) { DMZ_CUDA_NS::destroy((DMZ_CUDA_NS::context *)ctx); }
static void cuda_context_use(void *ctx) { DMZ_CUDA_NS::use((DMZ_CUDA_NS::context *)ctx); }

static void *cuda_event_create(void) {
    cudaEvent_t e;
    DMZ_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDefault));
    return (void *)e;
}
static void cuda_event_destroy(void *ev) { DMZ_CUDA_CHECK(cudaEventDestroy((cudaEvent_t)ev)); }
static void cuda_event_record(void *ev) { DMZ_CUDA_CHECK(cudaEventRecord((cudaEvent_t)ev, DMZ_CUDA_NS::current_stream())); }
static double cuda_event_elapsed(void *a, void *b) {
    float ms = 0;
    cudaError_t e = cudaEventElapsedTime(&ms, (cudaEvent_t)a, (cudaEvent_t)b);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return NAN;
    }
    return ms * 1e-3;
}

static int cuda_graph_begin(char *err) {
    cudaError_t e = cudaStreamBeginCapture(DMZ_CUDA_NS::current_stream(), cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) return 0;
    cudaGetLastError();
    snprintf(err, 512, "--graph: cudaStreamBeginCapture: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return 1;
}

/* cudaGraphInstantiateWithFlags has the same signature in CUDA 11.4 to 13.x
 * (cudaGraphInstantiate's changed in 12.0). */
static void *cuda_graph_end(char *err) {
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    const char *what = "cudaStreamEndCapture";
    cudaError_t e = cudaStreamEndCapture(DMZ_CUDA_NS::current_stream(), &g);
    if (e == cudaSuccess) what = "cudaGraphInstantiateWithFlags", e = cudaGraphInstantiateWithFlags(&x, g, 0);
    if (g) cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(err, 512, "--graph: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
        return NULL;
    }
    DMZ_CUDA_NS::current()->graphs++;
    return (void *)x;
}

static void cuda_graph_launch(void *graph) {
    DMZ_CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, DMZ_CUDA_NS::current_stream()));
    DMZ_CUDA_NS::after_launch("(graph: one training step)", __FILE__, __LINE__);
}

static void cuda_graph_destroy(void *graph) {
    DMZ_CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
    DMZ_CUDA_NS::current()->graphs--;
}

/* In the order of struct dmz_backend (positional: C++17 has no designated initialisers). */
extern "C" const dmz_backend dmz_backend_cuda = {
    BACKEND_NAME,
    cuda_describe,
    cuda_alloc,
    cuda_free,
    cuda_upload,
    cuda_download,
    cuda_copy,
    cuda_sync,
    cuda_u8_to_float,
    cuda_dense_forward,
    cuda_dense_backward,
    cuda_relu_forward,
    cuda_relu_backward,
    cuda_softmax_xent_forward,
    cuda_softmax_xent_backward,
    cuda_reduce_sum,
    cuda_count_correct,
    cuda_adam_update,
    cuda_conv2d_workspace,
    cuda_conv2d_forward,
    cuda_conv2d_forward_relu,
    cuda_conv2d_backward_data,
    cuda_conv2d_backward_filter,
    cuda_maxpool2x2_forward,
    cuda_maxpool2x2_backward,

    /* the device-resident step */
    cuda_context_create,
    cuda_context_destroy,
    cuda_context_use,
    cuda_dense_forward_relu,
    cuda_gather_batch,
    cuda_softmax_xent_train,
    cuda_adam_update_step,
    cuda_event_create,
    cuda_event_destroy,
    cuda_event_record,
    cuda_event_elapsed,
    cuda_graph_begin,
    cuda_graph_end,
    cuda_graph_launch,
    cuda_graph_destroy,
    NULL, /* maxpool2x2_supports: every size */
    cuda_maxpool2x2_backward_relu,
    NULL, /* conv2d_relu_pool_forward: the activations' round trip that it saves is a */
    NULL, /* maxpool2x2_backward_codes: cpu memory-bandwidth matter; the ops run apart */
    NULL, /* conv2d_backward_filter_pooled */
};

#ifndef DMZ_CUDA_EMU
/* Provenance for meta.json. Clocks, power and temperature come from NVML
 * (not built yet): cudaDeviceProp lost its clock fields in CUDA 13. */
extern "C" void *dmz_cuda_current_stream(void) { return (void *)DMZ_CUDA_NS::current_stream(); }

extern "C" int dmz_cuda_device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
}

extern "C" int dmz_cuda_gpu_info(int device, dmz_gpu_info *g, char *reason, size_t len) {
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(reason, len, "cudaGetDeviceProperties(%d): %s", device, cudaGetErrorString(e));
        return 0;
    }
    memset(g, 0, sizeof *g);
    g->index = device;
    snprintf(g->name, sizeof g->name, "%s", p.name);
    g->cc_major = p.major;
    g->cc_minor = p.minor;
    g->sms = p.multiProcessorCount;
    g->memory_bytes = (double)p.totalGlobalMem;
    g->l2_bytes = p.l2CacheSize;
    g->memory_bus_bits = p.memoryBusWidth;
    if (cudaDeviceGetPCIBusId(g->pci_bus_id, (int)sizeof g->pci_bus_id, device) != cudaSuccess) {
        cudaGetLastError();
        snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "unavailable");
    }
    cudaRuntimeGetVersion(&g->runtime_version);
    cudaDriverGetVersion(&g->driver_version);
    return 1;
}
#endif
#endif
