/* kernels/cuda/emu/emu_runtime.cpp — the CUDA runtime calls the kernels and the
 * backend use, on host memory: cudaMalloc/Free/Memcpy/Memset with device-range
 * checks, errors, device queries. See cuda_emu.h. */
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "emu_internal.h"
#include "kernels/cuda/cuda_backend.h"

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

namespace {
std::atomic<long> n_sync_copies{0}, n_device_syncs{0}, n_mallocs{0};
}

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    if (!ptr) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    n_mallocs++;
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

namespace {
cudaError_t copy_checked(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
thread_local int captures_open = 0; /* streams this thread is capturing */
} // namespace

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return cudaSuccess;
    n_sync_copies++;
    if (captures_open) return dmz_emu::detail::set_error(cudaErrorStreamCaptureUnsupported);
    return copy_checked(dst, src, bytes, kind);
}

namespace {
cudaError_t copy_checked(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
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
} // namespace

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
    if (bytes == 0) return cudaSuccess;
    if (!is_device_range(ptr, bytes)) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { /* launches run to completion */
    n_device_syncs++;
    return captures_open ? dmz_emu::detail::set_error(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}

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
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
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
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
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

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    if (free_bytes) *free_bytes = p.totalGlobalMem;
    if (total_bytes) *total_bytes = p.totalGlobalMem;
    return cudaSuccess;
}

/* ---------------------------------------------------------------- streams, events, graphs, pinned memory */
namespace dmz_emu {
struct stream {
    unsigned flags;
    bool capturing, invalidated;
    std::vector<std::function<void()>> record;
};
struct event {
    unsigned flags;
    bool recorded;
    std::chrono::steady_clock::time_point when;
};
struct graph {
    std::vector<std::function<void()>> ops;
};
} // namespace dmz_emu

namespace {
std::atomic<long> n_launches{0}, n_graph_launches{0}, n_blocking{0}, n_allocs{0};

/* Pinned host allocations (address -> size): a copy from or to one does not block. */
std::map<uintptr_t, size_t> &pinned() {
    static std::map<uintptr_t, size_t> *m = new std::map<uintptr_t, size_t>;
    return *m;
}
bool is_pinned(const void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p;
    std::lock_guard<std::mutex> g(alloc_lock());
    auto &m = pinned();
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

/* A call that would wait for the device: counted; refused while s (or, for a
 * device-wide call, any stream of this thread) is being captured. */
cudaError_t blocking_call(cudaStream_t s) {
    n_blocking++;
    if ((s && s->capturing) || (!s && captures_open)) {
        if (s) s->invalidated = true;
        return dmz_emu::detail::set_error(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}
} // namespace

namespace dmz_emu {
bool capturing(cudaStream_t s) { return s && s->capturing; }
void capture(cudaStream_t s, std::function<void()> op) { s->record.push_back(std::move(op)); }
void count_launch() { n_launches++; }
} // namespace dmz_emu

extern "C" void dmz_cuda_emu_counts_get(dmz_cuda_emu_counts *c) {
    c->launches = n_launches.load();
    c->graph_launches = n_graph_launches.load();
    c->kernels_run = (long)dmz_emu::detail::kernels_run();
    c->blocking = n_blocking.load() + n_sync_copies.load() + n_device_syncs.load();
    c->allocs = n_allocs.load() + n_mallocs.load();
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    if (!s) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *s = new dmz_emu::stream{flags, false, false, {}};
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s) return dmz_emu::detail::set_error(cudaErrorInvalidResourceHandle);
    if (s->capturing) captures_open--;
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) { return blocking_call(s); }

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    if (!status) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *status = !s || !s->capturing ? cudaStreamCaptureStatusNone
              : s->invalidated    ? cudaStreamCaptureStatusInvalidated
                                  : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
    if (!s || s->capturing) return dmz_emu::detail::set_error(s ? cudaErrorInvalidValue : cudaErrorStreamCaptureUnsupported);
    s->capturing = true;
    s->invalidated = false;
    s->record.clear();
    captures_open++;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    if (!s || !s->capturing || !graph) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    s->capturing = false;
    captures_open--;
    *graph = nullptr;
    if (s->invalidated) {
        s->record.clear();
        return dmz_emu::detail::set_error(cudaErrorStreamCaptureInvalidated);
    }
    *graph = new dmz_emu::graph{std::move(s->record)};
    s->record.clear();
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    if (!exec || !graph) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *exec = new dmz_emu::graph{graph->ops};
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (!exec) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    n_graph_launches++;
    if (dmz_emu::capturing(s)) { /* a graph launched into a capture: its nodes join the record */
        for (auto &op : exec->ops) dmz_emu::capture(s, op);
        return cudaSuccess;
    }
    for (auto &op : exec->ops) op();
    return cudaPeekAtLastError();
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    if (bytes == 0) return cudaSuccess;
    /* A copy between pageable host memory and the device makes the host wait
     * (and cannot be captured). */
    bool pageable = (kind == cudaMemcpyHostToDevice && !is_pinned(src, bytes)) ||
                    (kind == cudaMemcpyDeviceToHost && !is_pinned(dst, bytes));
    if (pageable) {
        cudaError_t e = blocking_call(s);
        if (e != cudaSuccess) return e;
    }
    if (dmz_emu::capturing(s)) {
        dmz_emu::capture(s, [=] { copy_checked(dst, src, bytes, kind); });
        return cudaSuccess;
    }
    return copy_checked(dst, src, bytes, kind);
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t s) {
    if (dmz_emu::capturing(s)) {
        dmz_emu::capture(s, [=] { cudaMemset(ptr, value, bytes); });
        return cudaSuccess;
    }
    return cudaMemset(ptr, value, bytes);
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) {
    if (!ptr) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    n_allocs++;
    *ptr = nullptr;
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) return dmz_emu::detail::set_error(cudaErrorMemoryAllocation);
    {
        std::lock_guard<std::mutex> g(alloc_lock());
        pinned()[(uintptr_t)p] = bytes;
    }
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr) {
    if (!ptr) return cudaSuccess;
    {
        std::lock_guard<std::mutex> g(alloc_lock());
        if (pinned().erase((uintptr_t)ptr) != 1) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    }
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    if (!e) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    *e = new dmz_emu::event{flags, false, {}};
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (!e) return dmz_emu::detail::set_error(cudaErrorInvalidResourceHandle);
    auto mark = [e] {
        e->recorded = true;
        e->when = std::chrono::steady_clock::now();
    };
    if (dmz_emu::capturing(s)) dmz_emu::capture(s, mark);
    else mark();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    n_blocking++;
    return e ? cudaSuccess : dmz_emu::detail::set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    return e ? cudaSuccess : dmz_emu::detail::set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms || !start || !end) return dmz_emu::detail::set_error(cudaErrorInvalidValue);
    if (!start->recorded || !end->recorded || (start->flags | end->flags) & cudaEventDisableTiming)
        return dmz_emu::detail::set_error(cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return cudaSuccess;
}
