/* kernels/cuda/emu/cuda_emu.h — runs the project's CUDA C kernels on the CPU, so
 * that every kernel is tested in CI on machines without a GPU.
 *
 * The same .cu file is compiled by nvcc (for the GPU) and by g++ as C++17 with
 * this header force-included (`g++ -x c++ -include kernels/cuda/emu/cuda_emu.h
 * -DDMZ_CUDA_EMU`). What it provides:
 *
 *   - the qualifiers (__global__, __device__, __host__, __forceinline__, ...);
 *   - dim3/uint3, and threadIdx/blockIdx/blockDim/gridDim as macros reading the
 *     emulated thread that is running now;
 *   - __shared__ as `static thread_local`: the threads of a block are coroutines
 *     (ucontext) on one OS thread, so they all see the same variable; an OS
 *     thread runs one block at a time, so each block has it to itself;
 *   - __syncthreads(): a barrier over every (not exited) thread of the block;
 *     the calling coroutine yields to the block's scheduler until all arrived;
 *   - __syncwarp, __shfl*_sync, __ballot/any/all_sync: barriers scoped to the lanes
 *     named in the mask (never the whole block: a warp-level operation executed
 *     by some warps only must not wait for the others);
 *   - atomics, a few float intrinsics, and the runtime calls the backend uses
 *     (cudaMalloc/Free/Memcpy/Memset, device queries, errors) on host memory;
 *   - dmz_emu::launch, which DMZ_LAUNCH (kernels/cuda/common.cuh) calls where nvcc
 *     would use <<<grid, block, shmem>>>; dynamic shared memory comes through
 *     DMZ_EMU_DYNAMIC_SHARED (DMZ_DYNAMIC_SHARED in common.cuh).
 *
 * Stricter than a GPU where that is cheap: a launch with a bad configuration
 * sets the error cudaGetLastError reports; a deadlock (threads waiting at
 * barriers that can never complete), a warp operation whose mask names an
 * exited lane, or a lane calling a warp operation with a mask that leaves
 * itself out abort with the kernel, block and threads involved; cudaMemcpy
 * checks that device-side ranges lie inside one cudaMalloc'd buffer; new device
 * memory and dynamic shared memory are filled with 0xff bytes (NaN as floats),
 * so a kernel that reads what it never wrote is not saved by a lucky zero.
 *
 * Hazards, reported with kernel, block, threads, source lines and schedule
 * ("cuda-emu racecheck: ..."; the program goes on and exits with status 66):
 * threads meeting at different __syncthreads (divergent code); lanes meeting
 * in a warp operation from different call sites or in different operations;
 * a shuffle reading a lane outside its mask. Every barrier and warp operation
 * takes its call site from default arguments (__builtin_FILE/__builtin_LINE).
 * The race build (make test-race, kernels/cuda/emu/emu_race.cpp) adds, through
 * ThreadSanitizer: shared- and global-memory races between threads that no
 * barrier orders (a missing __syncthreads or __syncwarp; blocks run unordered
 * on two OS threads, so races between blocks show too), and reads of static or
 * dynamic shared memory that no thread of the block wrote.
 *
 * Schedules (environment): DMZ_EMU_SEED=N (0, the default: blocks in order,
 * even blocks' threads forward, odd ones backward; otherwise blocks shuffled
 * and each block's threads forward, backward or in a random order, chosen from
 * N and the launch number, printed in every report so that it reproduces);
 * DMZ_EMU_WORKERS=N OS threads run the blocks (default 0: the launching
 * thread; 2 in the race build); DMZ_EMU_WARP_RULES=pascal applies pre-Volta
 * warp rules (every lane of a __syncwarp at the same one; masks naming only
 * lanes that exist); DMZ_EMU_HALT=1 aborts at the first hazard.
 *
 * Streams, events and graphs (emu_runtime.cpp): every stream runs its work at
 * once on the calling thread, in order, so a stream is a name and a capture
 * flag; an event records the host clock when the stream reaches it (launches
 * run to completion, so that is when the work before it finished). Between
 * cudaStreamBeginCapture and cudaStreamEndCapture a stream records its launches,
 * copies, memsets and event records instead of running them (a synchronising
 * call then fails with cudaErrorStreamCaptureUnsupported and invalidates the
 * capture, as on a GPU); cudaGraphLaunch replays the record in order.
 * dmz_cuda_emu_counts_get() (kernels/cuda/cuda_backend.h) counts launches and
 * blocking calls.
 *
 * Not emulated: stream concurrency, textures, cooperative groups, dynamic
 * parallelism, the memory model beyond barriers (outside the race build every
 * write is visible at once), resource limits beyond threads per block and
 * dynamic shared memory (registers, static shared memory). Shuffles and votes
 * exchange values but order no memory, as in CUDA. Static __shared__
 * variables keep the previous block's values (a GPU leaves them undefined; the
 * race build reports reading them).
 */
#ifndef DMZ_CUDA_EMU_H
#define DMZ_CUDA_EMU_H

#ifndef __cplusplus
#error "cuda_emu.h is C++: compile .cu files with g++ -x c++"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---------------------------------------------------------------- qualifiers */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

/* ---------------------------------------------------------------- built-in types */
struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

constexpr int warpSize = 32;

namespace dmz_emu {
/* What a kernel can see of the thread and block running now. */
struct thread_info {
    uint3 tid;
    unsigned lane, warp; /* lane within the warp, warp within the block */
};
struct block_info {
    uint3 idx;
    dim3 dim, grid;
};
/* The thread and block running now. Functions, not `extern thread_local`
 * variables: GCC's UBSan null check on such a variable's address can misfire
 * after the linker relaxes the TLS access (the check reads flags that the
 * relaxed instruction no longer sets). `pure`: within a barrier-free stretch of
 * a kernel the compiler may reuse the answer; across a barrier it cannot. */
__attribute__((pure)) const thread_info *this_thread();
__attribute__((pure)) const block_info *this_block();
} // namespace dmz_emu

#define threadIdx (::dmz_emu::this_thread()->tid)
#define blockIdx (::dmz_emu::this_block()->idx)
#define blockDim (::dmz_emu::this_block()->dim)
#define gridDim (::dmz_emu::this_block()->grid)

/* ---------------------------------------------------------------- synchronisation */
namespace dmz_emu {
/* Where a barrier or warp operation was called from: the default arguments
 * below (__builtin_FILE/__builtin_LINE) are evaluated at the call site, so the
 * checks can name the line and compare the call sites of lanes that meet. */
enum warp_op { OP_SYNCWARP, OP_SHFL_IDX, OP_SHFL_UP, OP_SHFL_DOWN, OP_SHFL_XOR, OP_BALLOT, OP_ANY, OP_ALL };
struct site {
    const char *file;
    int line;
    int op; /* warp_op; -1 for __syncthreads */
};
void block_barrier(site s);
/* Waits until every existing lane named in mask has arrived (with the same mask). */
void warp_barrier(unsigned mask, site s);
/* Two-phase warp exchange: publish one value (up to 8 bytes), wait for the lanes
 * in mask, read the warp's slots; then warp_exchange_end, so that no lane
 * overwrites its slot before the others have read it. */
const uint64_t *warp_exchange_begin(unsigned mask, uint64_t mine, site s);
void warp_exchange_end(unsigned mask, site s);
/* Lanes of the current warp that exist (a block's last warp may be partial). */
unsigned warp_existing_lanes();
/* A shuffle reading lane src (not the caller) that is outside mask or does not
 * exist: reported (the value is undefined on a GPU). */
void bad_shuffle_source(unsigned mask, int src, site s);
void *dynamic_shared();

template <class T> inline T shuffle_from(unsigned mask, T var, int src, site s) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle: up to 8-byte plain values");
    uint64_t mine = 0;
    memcpy(&mine, &var, sizeof(T));
    const uint64_t *slots = warp_exchange_begin(mask, mine, s);
    T out = var; /* a source lane outside the warp or the mask: CUDA leaves it undefined; we return var */
    if (src >= 0 && src < 32 && (mask & warp_existing_lanes() & (1u << src))) memcpy(&out, &slots[src], sizeof(T));
    else if (src != (int)this_thread()->lane) bad_shuffle_source(mask, src, s);
    warp_exchange_end(mask, s);
    return out;
}
} // namespace dmz_emu

#define DMZ_EMU_SITE(op) ::dmz_emu::site{file, line, (op)}
#define DMZ_EMU_CALLER const char *file = __builtin_FILE(), int line = __builtin_LINE()

inline void __syncthreads(DMZ_EMU_CALLER) { dmz_emu::block_barrier(DMZ_EMU_SITE(-1)); }
inline void __syncwarp(unsigned mask = 0xffffffffu, DMZ_EMU_CALLER) {
    dmz_emu::warp_barrier(mask, DMZ_EMU_SITE(dmz_emu::OP_SYNCWARP));
}
#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer has no fences (and refuses to build them): in the race
 * build the ordering a fence gives comes from the atomics that follow it (a
 * split-K tile's counter), which it does track. */
inline void __threadfence() {}
inline void __threadfence_block() {}
#else
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
#endif

template <class T> inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize, DMZ_EMU_CALLER) {
    int lane = (int)dmz_emu::this_thread()->lane;
    return dmz_emu::shuffle_from(mask, var, (lane & ~(width - 1)) + (src_lane & (width - 1)),
                                 DMZ_EMU_SITE(dmz_emu::OP_SHFL_IDX));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, DMZ_EMU_CALLER) {
    int lane = (int)dmz_emu::this_thread()->lane;
    int src = (lane & (width - 1)) < (int)delta ? lane : lane - (int)delta;
    return dmz_emu::shuffle_from(mask, var, src, DMZ_EMU_SITE(dmz_emu::OP_SHFL_UP));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize, DMZ_EMU_CALLER) {
    int lane = (int)dmz_emu::this_thread()->lane;
    int src = (lane & (width - 1)) + (int)delta >= width ? lane : lane + (int)delta;
    return dmz_emu::shuffle_from(mask, var, src, DMZ_EMU_SITE(dmz_emu::OP_SHFL_DOWN));
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize, DMZ_EMU_CALLER) {
    int lane = (int)dmz_emu::this_thread()->lane;
    int src = lane ^ lane_mask;
    if (src > (lane | (width - 1))) src = lane; /* later groups are out of reach */
    return dmz_emu::shuffle_from(mask, var, src, DMZ_EMU_SITE(dmz_emu::OP_SHFL_XOR));
}
namespace dmz_emu {
inline unsigned vote(unsigned mask, int pred, site s) {
    const uint64_t *slots = warp_exchange_begin(mask, pred != 0, s);
    unsigned lanes = mask & warp_existing_lanes(), out = 0;
    for (int i = 0; i < 32; i++)
        if ((lanes & (1u << i)) && slots[i]) out |= 1u << i;
    warp_exchange_end(mask, s);
    return out;
}
} // namespace dmz_emu
inline unsigned __ballot_sync(unsigned mask, int pred, DMZ_EMU_CALLER) {
    return dmz_emu::vote(mask, pred, DMZ_EMU_SITE(dmz_emu::OP_BALLOT));
}
inline int __any_sync(unsigned mask, int pred, DMZ_EMU_CALLER) {
    return dmz_emu::vote(mask, pred, DMZ_EMU_SITE(dmz_emu::OP_ANY)) != 0;
}
inline int __all_sync(unsigned mask, int pred, DMZ_EMU_CALLER) {
    return dmz_emu::vote(mask, pred, DMZ_EMU_SITE(dmz_emu::OP_ALL)) == (mask & dmz_emu::warp_existing_lanes());
}

/* ---------------------------------------------------------------- atomics */
template <class T> inline T dmz_emu_atomic_rmw(T *p, T v, T (*op)(T, T)) {
    T old, want;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do want = op(old, v);
    while (!__atomic_compare_exchange(p, &old, &want, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return old;
}
inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float *p, float v) {
    return dmz_emu_atomic_rmw<float>(p, v, [](float a, float b) { return a + b; });
}
inline double atomicAdd(double *p, double v) {
    return dmz_emu_atomic_rmw<double>(p, v, [](double a, double b) { return a + b; });
}
inline int atomicMax(int *p, int v) {
    return dmz_emu_atomic_rmw<int>(p, v, [](int a, int b) { return a > b ? a : b; });
}
inline int atomicMin(int *p, int v) {
    return dmz_emu_atomic_rmw<int>(p, v, [](int a, int b) { return a < b ? a : b; });
}
inline int atomicExch(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline int atomicCAS(int *p, int compare, int v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}
inline unsigned atomicCAS(unsigned *p, unsigned compare, unsigned v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}

/* ---------------------------------------------------------------- math intrinsics */
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
template <class T> inline T __ldg(const T *p) { return *p; }
template <class T> inline T __ldcg(const T *p) { return *p; }

/* ---------------------------------------------------------------- runtime API */
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoKernelImageForDevice = 209,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int major, minor;
    int multiProcessorCount;
};

/* C++ linkage on purpose: these never clash with libcudart's C symbols when a
 * binary links both the emulated and the real backend. */
cudaError_t cudaMalloc(void **ptr, size_t bytes);
template <class T> inline cudaError_t cudaMalloc(T **ptr, size_t bytes) {
    return cudaMalloc(reinterpret_cast<void **>(ptr), bytes);
}
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void *ptr, int value, size_t bytes);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char *cudaGetErrorString(cudaError_t err);
const char *cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaRuntimeGetVersion(int *version); /* 0: no CUDA runtime here */
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

/* Streams, events, pinned memory, graphs (see the top of this file). */
namespace dmz_emu {
struct stream;
struct event;
struct graph;
} // namespace dmz_emu
typedef dmz_emu::stream *cudaStream_t; /* nullptr: the default stream */
typedef dmz_emu::event *cudaEvent_t;
typedef dmz_emu::graph *cudaGraph_t;
typedef dmz_emu::graph *cudaGraphExec_t;
#define cudaStreamDefault 0x0u
#define cudaStreamNonBlocking 0x1u
#define cudaEventDefault 0x0u
#define cudaEventDisableTiming 0x2u
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
struct cudaFuncAttributes {
    size_t sharedSizeBytes, constSizeBytes, localSizeBytes;
    int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion;
};
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaMallocHost(void **ptr, size_t bytes);
cudaError_t cudaFreeHost(void *ptr);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
/* Every emulated kernel is "image present": the CPU runs them all. */
template <class F> inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F *) {
    if (!a) return cudaErrorInvalidValue;
    *a = cudaFuncAttributes{0, 0, 0, 1024, 0, 0, 0};
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *version);  /* 0: no driver here */

/* ---------------------------------------------------------------- launches */
namespace dmz_emu {
typedef void (*body_fn)(void *ctx);
/* Runs body(ctx) once per thread of every block; sets the last error instead on a
 * bad configuration (as a GPU launch would). */
void run_grid(const char *kernel_name, dim3 grid, dim3 block, size_t shmem, body_fn body, void *ctx);
/* Whether stream s is being captured; capture(s, op) appends op to its record
 * (emu_runtime.cpp). count_launch counts one launch call (launch_on). */
bool capturing(cudaStream_t s);
void capture(cudaStream_t s, std::function<void()> op);
void count_launch();

/* Arguments are converted to the kernel's parameter types once, at launch, and
 * every thread gets its own copy: by-value parameters as in CUDA. */
template <class... P, class... A>
void launch(const char *kernel_name, dim3 grid, dim3 block, size_t shmem, void (*kernel)(P...), A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    struct frame {
        void (*k)(P...);
        std::tuple<std::decay_t<P>...> args;
    } f{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    run_grid(kernel_name, grid, block, shmem,
             [](void *p) {
                 frame *fr = static_cast<frame *>(p);
                 std::apply(fr->k, fr->args);
             },
             &f);
}

/* launch on a stream (DMZ_LAUNCH): at once, or into the record of a stream
 * being captured, the arguments copied as they are now. */
template <class... P, class... A>
void launch_on(const char *kernel_name, dim3 grid, dim3 block, size_t shmem, cudaStream_t s, void (*kernel)(P...),
               A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    count_launch();
    if (!capturing(s)) {
        launch(kernel_name, grid, block, shmem, kernel, std::forward<A>(args)...);
        return;
    }
    auto saved = std::make_shared<std::tuple<std::decay_t<P>...>>(std::forward<A>(args)...);
    capture(s, [=] { std::apply([&](auto &...a) { launch(kernel_name, grid, block, shmem, kernel, a...); }, *saved); });
}
} // namespace dmz_emu

#define DMZ_EMU_DYNAMIC_SHARED(T, name) T *name = static_cast<T *>(::dmz_emu::dynamic_shared())

#endif
