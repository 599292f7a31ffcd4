/* kernels/cuda/common.cuh — what every kernel file shares: the launch macro,
 * error checks, warp and block reductions, grid sizing.
 *
 * Every .cu file here is compiled twice: by nvcc for the GPU, and by g++ as C++
 * with kernels/cuda/emu/cuda_emu.h force-included and DMZ_CUDA_EMU defined, so
 * that the same kernels run on the CPU in CI. Kernels are therefore written in
 * the subset both understand: launches only through DMZ_LAUNCH, dynamic shared
 * memory only through DMZ_DYNAMIC_SHARED, warp operations with explicit masks
 * (*_sync), and blocks whose size is a multiple of 32 wherever warps cooperate. */
#ifndef DMZ_CUDA_COMMON_CUH
#define DMZ_CUDA_COMMON_CUH

#ifdef DMZ_CUDA_EMU
#include "kernels/cuda/emu/cuda_emu.h"
#elif !defined(__CUDACC_RTC__)
#include <cuda_runtime.h>
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels/cuda/cuda_ops.h"

/* NVRTC (make check-pascal, kernel-resources) compiles the device code of
 * each file alone: its system headers are the stubs in kernels/cuda/rtc/,
 * and the host code below and in every .cu file is out of its sight. */
#ifndef __CUDACC_RTC__
/* ---------------------------------------------------------------- contexts and errors */
/* The emulated and the nvcc build of these files link into one test binary:
 * their host-side helpers live in different namespaces. */
#ifdef DMZ_CUDA_EMU
#define DMZ_CUDA_NS dmz_cuda_emu_impl
#else
#define DMZ_CUDA_NS dmz_cuda_impl
#endif

namespace DMZ_CUDA_NS {
/* An execution context (kernels/cuda/context.cu): the non-blocking stream that
 * every launch and copy of the thread's ops goes to, the scratch those ops use,
 * pinned staging for uploads and downloads. Each model owns one (backend
 * context_create / context_use); ops called outside a model use the process's
 * default context. */
struct context;
context *current();
cudaStream_t current_stream();
/* Scratch of the current context: `floats` floats (at most scratch_floats())
 * and `counters` zeroed unsigned ints (at most scratch_counters()), the same
 * buffers for every op: ops run one after another on the context's stream, so
 * no two use them at once. An op that counts on the counters leaves them 0. */
float *scratch(size_t floats);
unsigned *scratch_counters(size_t counters);
size_t scratch_floats();
size_t scratch_counters_max();
/* Whether the current stream is being captured into a graph. */
bool capturing();
/* A failed CUDA call: file, line, host, the runtime's message and the last
 * kernels launched on this thread; then abort. */
[[noreturn]] void fail(const char *what, cudaError_t e, const char *file, int line);
/* After every launch: remembers the kernel (the last ones go into every error
 * message), checks the launch; with DMZ_CUDA_CHECK=1 also waits for the kernel
 * and checks that it ran, naming it when it faulted. */
void after_launch(const char *kernel, const char *file, int line);
} // namespace DMZ_CUDA_NS

#define DMZ_CUDA_CHECK(call)                                                                                          \
    do {                                                                                                              \
        cudaError_t dmz_err_ = (call);                                                                                \
        if (dmz_err_ != cudaSuccess) DMZ_CUDA_NS::fail(#call, dmz_err_, __FILE__, __LINE__);                          \
    } while (0)

#endif /* !__CUDACC_RTC__ */

/* The one way kernels are launched: <<<grid, block, shmem, stream>>> under nvcc,
 * the emulator otherwise, on the current context's stream; either way followed
 * by the launch check. */
#ifdef DMZ_CUDA_EMU
#define DMZ_LAUNCH(kernel, grid, block, shmem, ...)                                                                   \
    do {                                                                                                              \
        ::dmz_emu::launch_on(#kernel, (grid), (block), (shmem), DMZ_CUDA_NS::current_stream(), kernel, __VA_ARGS__);  \
        DMZ_CUDA_NS::after_launch(#kernel, __FILE__, __LINE__);                                                       \
    } while (0)
/* The same, for a kernel chosen at run time (a pointer) under a given name. */
#define DMZ_LAUNCH_NAMED(name, kernel, grid, block, shmem, ...)                                                       \
    do {                                                                                                              \
        ::dmz_emu::launch_on(name, (grid), (block), (shmem), DMZ_CUDA_NS::current_stream(), kernel, __VA_ARGS__);     \
        DMZ_CUDA_NS::after_launch(name, __FILE__, __LINE__);                                                          \
    } while (0)
#define DMZ_DYNAMIC_SHARED(T, name) DMZ_EMU_DYNAMIC_SHARED(T, name)
#else
#define DMZ_LAUNCH(kernel, grid, block, shmem, ...)                                                                   \
    do {                                                                                                              \
        kernel<<<(grid), (block), (shmem), DMZ_CUDA_NS::current_stream()>>>(__VA_ARGS__);                             \
        DMZ_CUDA_NS::after_launch(#kernel, __FILE__, __LINE__);                                                       \
    } while (0)
#define DMZ_LAUNCH_NAMED(name, kernel, grid, block, shmem, ...)                                                       \
    do {                                                                                                              \
        kernel<<<(grid), (block), (shmem), DMZ_CUDA_NS::current_stream()>>>(__VA_ARGS__);                             \
        DMZ_CUDA_NS::after_launch(name, __FILE__, __LINE__);                                                          \
    } while (0)
#define DMZ_DYNAMIC_SHARED(T, name)                                                                                   \
    extern __shared__ __align__(16) unsigned char dmz_dynamic_smem_[];                                                \
    T *name = reinterpret_cast<T *>(dmz_dynamic_smem_)
#endif

/* Loop unrolling is a hint for nvcc; g++ (the emulator) would warn about the pragma. */
#ifdef DMZ_CUDA_EMU
#define DMZ_UNROLL
#else
#define DMZ_UNROLL _Pragma("unroll")
#endif

/* ---------------------------------------------------------------- sizes */
#define DMZ_FULL_MASK 0xffffffffu

static inline unsigned dmz_ceil_div(size_t n, size_t d) { return (unsigned)((n + d - 1) / d); }

/* Blocks for an elementwise kernel over n items with a grid-stride loop: enough
 * to fill any current GPU, never more than the items need. */
static inline unsigned dmz_elementwise_blocks(size_t n, unsigned threads) {
    unsigned blocks = dmz_ceil_div(n, threads);
    const unsigned max_blocks = 4096;
    return blocks == 0 ? 1 : (blocks > max_blocks ? max_blocks : blocks);
}

/* ---------------------------------------------------------------- reductions */
static __device__ __forceinline__ float dmz_warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(DMZ_FULL_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ float dmz_warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(DMZ_FULL_MASK, v, offset));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024, y = z = 1);
 * every thread must call it; the result is valid in thread 0. A fixed tree:
 * the same inputs give the same bits on every run. */
static __device__ __forceinline__ float dmz_block_sum(float v) {
    __shared__ float warp_sums[32];
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = dmz_warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? warp_sums[lane] : 0.0f;
        v = dmz_warp_sum(v);
    }
    __syncthreads(); /* warp_sums is reused by the next call in the same kernel */
    return v;
}

#endif
