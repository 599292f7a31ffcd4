/* tests/cuda_selftest.cu — kernels that exercise the CPU emulator itself
 * (kernels/cuda/emu): thread and block indices, warps that diverge around
 * shuffles and __syncthreads, half-warp masks, a partial last warp, dynamic
 * shared memory, bad launch configurations, the device-pointer checks of
 * cudaMemcpy, and a deadlock or an exited lane named in a shuffle mask being
 * diagnosed instead of hanging. Compiled for the emulator only (with the same
 * flags as the kernels of kernels/cuda/ there); tests/test_cuda_ops.c calls the extern "C"
 * functions at the bottom. */
#include "kernels/cuda/common.cuh"

#include <vector>

/* ---------------------------------------------------------------- indices */
static __global__ void index_kernel(int *out) {
    unsigned tx = threadIdx.x, ty = threadIdx.y, tz = threadIdx.z;
    unsigned in_block = tx + blockDim.x * (ty + blockDim.y * tz);
    unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    out[block * threads + in_block] = (int)(1000 * block + in_block);
}

/* ---------------------------------------------------------------- divergent warps */
/* 4 warps. Even warps reduce with shuffles while odd warps already wait at
 * __syncthreads; then odd warps reduce in two half-warp groups (their own masks,
 * the upper half going round twice) while even warps wait; a ballot at the end.
 * An emulator that turned shuffles into block-wide barriers would hang here. */
static __global__ void divergent_kernel(int *out) {
    __shared__ int stage[8];
    const int lane = (int)(threadIdx.x % 32), warp = (int)(threadIdx.x / 32);
    int v = lane + 100 * warp;
    if (warp % 2 == 0) {
        int s = v;
        for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_down_sync(DMZ_FULL_MASK, s, offset);
        if (lane == 0) stage[2 * warp] = s, stage[2 * warp + 1] = -1; /* every slot read below is written */
    }
    __syncthreads();
    if (warp % 2 == 1) {
        unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
        int rounds = lane < 16 ? 1 : 2;
        int m = v;
        for (int r = 0; r < rounds; r++)
            for (int offset = 8; offset > 0; offset >>= 1) {
                int o = __shfl_xor_sync(half, m, offset);
                m = o > m ? o : m;
            }
        if (lane == 0) stage[2 * warp] = m;
        if (lane == 16) stage[2 * warp + 1] = m;
    }
    __syncthreads();
    unsigned odd_lanes = __ballot_sync(DMZ_FULL_MASK, lane % 2);
    if (threadIdx.x < 8) out[threadIdx.x] = stage[threadIdx.x];
    if (threadIdx.x == 0) out[8] = (int)odd_lanes;
}

/* ---------------------------------------------------------------- partial warp + dynamic shared */
/* 48 threads: warp 1 has 16 lanes and reduces them with width-16 shuffles;
 * the block reverses n floats through dynamic shared memory. */
static __global__ void partial_warp_kernel(int *sums, float *data, int n) {
    DMZ_DYNAMIC_SHARED(float, buf);
    const int lane = (int)(threadIdx.x % 32), warp = (int)(threadIdx.x / 32);
    int s = lane + 1;
    if (warp == 1)
        for (int offset = 8; offset > 0; offset >>= 1) s += __shfl_down_sync(0x0000ffffu, s, offset, 16);
    else
        for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_down_sync(DMZ_FULL_MASK, s, offset);
    if (lane == 0) sums[warp] = s;
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x) buf[i] = data[i];
    __syncthreads();
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x) data[i] = buf[n - 1 - i];
}

/* ---------------------------------------------------------------- kernels that must be diagnosed */
/* Lane 0 waits at __syncthreads for lanes that wait for lane 0 in a shuffle. */
static __global__ void deadlock_kernel(int *out) {
    int v = (int)threadIdx.x;
    if (threadIdx.x == 0) __syncthreads();
    else v = __shfl_sync(DMZ_FULL_MASK, v, 0);
    out[threadIdx.x] = v;
}

/* Lanes 0..15 leave; the others name them in a full-mask shuffle. */
static __global__ void exited_lane_kernel(int *out) {
    if (threadIdx.x < 16) return;
    out[threadIdx.x] = __shfl_down_sync(DMZ_FULL_MASK, (int)threadIdx.x, 1);
}

/* ---------------------------------------------------------------- entry points */
static int *device_ints(size_t n) {
    int *d = NULL;
    DMZ_CUDA_CHECK(cudaMalloc(&d, n * sizeof(int)));
    DMZ_CUDA_CHECK(cudaMemset(d, 0, n * sizeof(int)));
    return d;
}

static void fetch_ints(int *host, int *d, size_t n) {
    DMZ_CUDA_CHECK(cudaMemcpy(host, d, n * sizeof(int), cudaMemcpyDeviceToHost));
    DMZ_CUDA_CHECK(cudaFree(d));
}

/* out: 2*3*1 blocks of 4*2*3 threads = 144 ints. */
extern "C" void dmz_emu_selftest_indices(int *out) {
    int *d = device_ints(144);
    DMZ_LAUNCH(index_kernel, dim3(2, 3, 1), dim3(4, 2, 3), 0, d);
    fetch_ints(out, d, 144);
}

/* out: 9 ints (see divergent_kernel). */
extern "C" void dmz_emu_selftest_divergent(int *out) {
    int *d = device_ints(9);
    DMZ_LAUNCH(divergent_kernel, 1, 128, 0, d);
    fetch_ints(out, d, 9);
}

/* sums: 2 ints; data: n floats, reversed in place. */
extern "C" void dmz_emu_selftest_partial_warp(int *sums, float *data, int n) {
    int *ds = device_ints(2);
    float *dd = NULL;
    DMZ_CUDA_CHECK(cudaMalloc(&dd, (size_t)n * sizeof(float)));
    DMZ_CUDA_CHECK(cudaMemcpy(dd, data, (size_t)n * sizeof(float), cudaMemcpyHostToDevice));
    DMZ_LAUNCH(partial_warp_kernel, 1, 48, (size_t)n * sizeof(float), ds, dd, n);
    DMZ_CUDA_CHECK(cudaMemcpy(data, dd, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
    DMZ_CUDA_CHECK(cudaFree(dd));
    fetch_ints(sums, ds, 2);
}

/* Bad configurations set the last error, which cudaGetLastError then clears.
 * Returns 0, or the number of the first check that failed. */
extern "C" int dmz_emu_selftest_launch_errors(void) {
    int *d = device_ints(2048);
    struct {
        dim3 grid, block;
        size_t shmem;
        cudaError_t want;
    } cases[] = {
        {dim3(1), dim3(2048), 0, cudaErrorInvalidConfiguration}, /* > 1024 threads */
        {dim3(1), dim3(32, 32, 2), 0, cudaErrorInvalidConfiguration},
        {dim3(0), dim3(32), 0, cudaErrorInvalidConfiguration}, /* empty grid */
        {dim3(1, 70000), dim3(32), 0, cudaErrorInvalidConfiguration},
        {dim3(1), dim3(32), 64 * 1024, cudaErrorInvalidValue}, /* over 48 KiB of dynamic shared memory */
        {dim3(2), dim3(1024), 0, cudaSuccess},
    };
    int check = 0;
    for (auto &c : cases) {
        ++check;
        dmz_emu::launch("index_kernel", c.grid, c.block, c.shmem, index_kernel, d);
        if (cudaGetLastError() != c.want) return check;
        if (cudaGetLastError() != cudaSuccess) return 100 + check; /* cleared by the first call */
    }
    DMZ_CUDA_CHECK(cudaFree(d));
    return 0;
}

/* cudaMemcpy/Memset/Free check the device side. Returns 0 or the failed check. */
extern "C" int dmz_emu_selftest_memcpy_checks(void) {
    float *d = NULL;
    std::vector<float> host(64, 1.0f);
    DMZ_CUDA_CHECK(cudaMalloc(&d, 64 * sizeof(float)));
    if (cudaMemcpy(d, host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) return 1;
    if (cudaMemcpy(d + 32, host.data(), 32 * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) return 2;
    if (cudaMemcpy(d + 33, host.data(), 32 * sizeof(float), cudaMemcpyHostToDevice) != cudaErrorInvalidValue) return 3;
    if (cudaMemcpy(host.data(), d, 64 * sizeof(float), cudaMemcpyHostToDevice) != cudaErrorInvalidValue) return 4;
    if (cudaMemcpy(host.data(), host.data() + 32, 32, cudaMemcpyDeviceToHost) != cudaErrorInvalidValue) return 5;
    if (cudaMemset(host.data(), 0, 4) != cudaErrorInvalidValue) return 6;
    if (cudaFree(host.data()) != cudaErrorInvalidDevicePointer) return 7;
    if (cudaGetLastError() != cudaErrorInvalidDevicePointer) return 8; /* the last error is the latest one */
    if (cudaGetLastError() != cudaSuccess) return 9;
    DMZ_CUDA_CHECK(cudaFree(d));
    return 0;
}

/* These abort (run them in a child process). */
extern "C" void dmz_emu_selftest_deadlock(void) {
    int *d = device_ints(32);
    DMZ_LAUNCH(deadlock_kernel, 1, 32, 0, d);
}

extern "C" void dmz_emu_selftest_exited_lane(void) {
    int *d = device_ints(32);
    DMZ_LAUNCH(exited_lane_kernel, 1, 32, 0, d);
}
