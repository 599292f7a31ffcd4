/* kernels/cuda/emu/emu_runtime.cpp — the CUDA runtime calls the kernels and the
 * backend use, on host memory: cudaMalloc/Free/Memcpy/Memset with device-range
 * checks, errors, device queries. See cuda_emu.h. */
#include <map>
#include <mutex>

#include "emu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

namespace dmz_emu {
namespace detail {
namespace {
thread_local cudaError_t last_error = cudaSuccess;
} // namespace

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}
} // namespace detail
} // namespace dmz_emu

/* ---------------------------------------------------------------- runtime API on host memory */
namespace {

/* Live allocations (address -> size), to check the device side of copies. Never
 * destroyed: a cudaFree during static destruction must still find it. */
std::mutex &alloc_lock() {
    static std::mutex *m = new std::mutex;
    return *m;
}
std::map<uintptr_t, size_t> &allocations() {
    static std::map<uintptr_t, size_t> *m = new std::map<uintptr_t, size_t>;
    return *m;
}

/* Whether [p, p+bytes) lies inside one live allocation. */
bool is_device_range(const void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p;
    std::lock_guard<std::mutex> g(alloc_lock());
    auto &m = allocations();
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

} // namespace

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    if (!ptr) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes) != 0) return dmz_emu::detail::set_error(cudaErrorMemoryAllocation);
    memset(p, 0xff, bytes); /* device memory starts undefined */
    {
        std::lock_guard<std::mutex> g(alloc_lock());
        allocations()[(uintptr_t)p] = bytes;
    }
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    {
        std::lock_guard<std::mutex> g(alloc_lock());
        if (allocations().erase((uintptr_t)ptr) != 1) return dmz_emu::detail::set_error(cudaErrorInvalidDevicePointer);
    }
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return cudaSuccess;
    if (!dst || !src) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
        return dmz_emu::detail::set_error(cudaErrorInvalidMemcpyDirection);
    if ((dst_dev && !is_device_range(dst, bytes)) || (src_dev && !is_device_range(src, bytes)))
        return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    memcpy(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
    if (bytes == 0) return cudaSuccess;
    if (!is_device_range(ptr, bytes)) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; } /* launches run to completion */

cudaError_t cudaGetLastError() {
    cudaError_t e = dmz_emu::detail::last_error;
    dmz_emu::detail::last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError() { return dmz_emu::detail::last_error; }

const char *cudaGetErrorName(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

/* The runtime's own wording, so that messages read the same on a GPU. */
const char *cudaGetErrorString(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : dmz_emu::detail::set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (!prop) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    if (device != 0) return dmz_emu::detail::set_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CPU emulator (threads as coroutines)");
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    prop->totalGlobalMem = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
    if (!version) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *version = 0;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *version) {
    if (!version) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *version = 0;
    return cudaSuccess;
}
