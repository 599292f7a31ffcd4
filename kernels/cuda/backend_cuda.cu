/* The cuda backend's table (kernels/backend.h): device memory from cudaMalloc,
 * transfers with cudaMemcpy, the ops from the other .cu files of this folder.
 * Compiled by nvcc it is dmz_backend_cuda ("cuda"); compiled for the CPU
 * emulator it is dmz_backend_cuda_emu ("cuda-emu"), used by the tests only.
 *
 * Every op is queued on the default stream; sync waits for all of them.
 * A failed CUDA call aborts with file, line, host and the runtime's message:
 * the interface has no error path for a broken device. */
#include "common.cuh"

#ifndef __CUDACC_RTC__ /* all host code; NVRTC (make check-pascal) sees nothing here */
#include <string.h>

#ifdef DMZ_CUDA_EMU
#define dmz_backend_cuda dmz_backend_cuda_emu
#define dmz_cuda_available dmz_cuda_emu_available
#define BACKEND_NAME "cuda-emu"
#else
#define BACKEND_NAME "cuda"
#endif

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
    return 1;
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
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is reported by returning NULL */
        return NULL;
    }
    DMZ_CUDA_CHECK(cudaMemset(p, 0, bytes));
    return p;
}

static void cuda_free(void *p) { DMZ_CUDA_CHECK(cudaFree(p)); }

static void cuda_upload(void *dst, const void *host_src, size_t bytes) {
    if (bytes) DMZ_CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_download(void *host_dst, const void *src, size_t bytes) {
    if (bytes) DMZ_CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) DMZ_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

static void cuda_sync(void) { DMZ_CUDA_CHECK(cudaDeviceSynchronize()); }

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
};

#ifndef DMZ_CUDA_EMU
/* Provenance for meta.json. Clocks, power and temperature come from NVML
 * (not built yet): cudaDeviceProp lost its clock fields in CUDA 13. */
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
