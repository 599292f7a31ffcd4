/* tests/race_kernels.cu — deliberately buggy kernels, one per kind of bug the
 * emulator must report (tests/test_race.c runs each in its own process and
 * checks that the report names the line marked `expect: NAME`). Each bug passes
 * silently on an emulator that runs threads to their next barrier in a fixed
 * order; the first two and the three marked (race build) need ThreadSanitizer
 * (`make test-race`), the others are caught by the scheduler in every build.
 * Plus two correct kernels that must stay quiet, and one that only the Pascal
 * warp rules reject. Compiled for the emulator only, with the same flags as
 * the kernels of kernels/cuda/. */
#include "kernels/cuda/common.cuh"

#include <string.h>

#define N 64 /* threads per block: two warps */

/* 1 (race build). Reads the neighbour's element with no __syncthreads between
 * its write and the read. */
static __global__ void neighbour_kernel(float *out) {
    __shared__ float s[N];
    unsigned t = threadIdx.x;
    s[t] = (float)t;
    out[t] = s[(t + 1) % N]; /* expect: neighbour */
}

/* 2 (race build). A block sum without a trailing barrier (what dmz_block_sum
 * was before review), called twice in one kernel: warp k's second write of
 * warp_sums races with warp 0's read of the first sum. */
static __device__ float block_sum_no_trailing_barrier(float v) {
    __shared__ float warp_sums[32];
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = dmz_warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? warp_sums[lane] : 0.0f;
        v = dmz_warp_sum(v);
    }
    return v;
}

static __global__ void block_sum_twice_kernel(float *out) {
    float a = block_sum_no_trailing_barrier((float)threadIdx.x);
    float b = block_sum_no_trailing_barrier(1.0f); /* expect: block-sum-twice */
    if (threadIdx.x == 0) out[0] = a + b;
}

/* 2b. The real dmz_block_sum twice in a row, no barrier between: must be quiet
 * (it ends with a barrier of its own). */
static __global__ void real_block_sum_twice_kernel(float *out) {
    float a = dmz_block_sum((float)threadIdx.x);
    float b = dmz_block_sum(1.0f);
    if (threadIdx.x == 0) out[0] = a + b;
}

/* 3. The two halves of a warp shuffle with the full mask from different lines. */
static __global__ void shuffle_sites_kernel(float *out) {
    float v = (float)threadIdx.x;
    if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(DMZ_FULL_MASK, v, 1); /* expect: shuffle-site-a */
    else v = __shfl_xor_sync(DMZ_FULL_MASK, v, 1);                     /* expect: shuffle-site-b */
    out[threadIdx.x] = v;
}

/* 4. The lower half-warp shuffles down by one with its own mask: lane 15 reads
 * lane 16, outside the mask. */
static __global__ void shuffle_source_kernel(float *out) {
    float v = (float)threadIdx.x;
    if (threadIdx.x % 32 < 16) v = __shfl_down_sync(0x0000ffffu, v, 1); /* expect: shuffle-source */
    out[threadIdx.x] = v;
}

/* 5 (race build). Thread 0 of every block adds to one global word, not atomically. */
static __global__ void blocks_race_kernel(float *out) {
    if (threadIdx.x == 0) out[0] += 1.0f; /* expect: blocks-race */
}

/* 6 (race build). The upper half of the block reads static shared memory only the
 * lower half wrote (the block never wrote the upper half). */
static __global__ void unwritten_shared_kernel(float *out) {
    __shared__ float s[N];
    unsigned t = threadIdx.x;
    if (t < N / 2) s[t] = 1.0f;
    __syncthreads();
    out[t] = s[t]; /* expect: unwritten-shared */
}

/* 7. __syncthreads in both branches of an if: two different barriers. */
static __global__ void divergent_sync_kernel(float *out) {
    unsigned t = threadIdx.x;
    if (t < N / 2) {
        out[t] = 1.0f;
        __syncthreads(); /* expect: divergent-a */
    } else {
        out[t] = 2.0f;
        __syncthreads(); /* expect: divergent-b */
    }
}

/* 8 (race build). Dynamic shared memory read where no thread wrote it. */
static __global__ void unwritten_dynamic_kernel(float *out) {
    DMZ_DYNAMIC_SHARED(float, s);
    unsigned t = threadIdx.x;
    if (t % 2 == 0) s[t] = 1.0f;
    __syncthreads();
    out[t] = s[t]; /* expect: unwritten-dynamic */
}

/* Pascal rules only: a __syncwarp whose halves arrive from different lines is
 * legal from Volta on, undefined on sm_6x. */
static __global__ void syncwarp_sites_kernel(float *out) {
    __shared__ float s[N];
    unsigned t = threadIdx.x;
    s[t] = (float)t;
    if (t % 32 < 16) __syncwarp(); /* expect: syncwarp-site-a */
    else __syncwarp();             /* expect: syncwarp-site-b */
    out[t] = s[t ^ 1];
}

/* Correct: the same patterns with their barriers (must report nothing). */
static __global__ void correct_kernel(float *out, float *word) {
    __shared__ float s[N];
    unsigned t = threadIdx.x;
    s[t] = (float)t;
    __syncthreads();
    float n = s[(t + 1) % N];
    float a = dmz_block_sum(n);
    __syncthreads();
    float b = dmz_block_sum(1.0f);
    float v = __shfl_xor_sync(DMZ_FULL_MASK, n, 1);
    if (t % 32 < 16) v += __shfl_down_sync(0x0000ffffu, v, 1, 16);
    out[blockIdx.x * N + t] = v;
    if (t == 0) {
        out[blockIdx.x * N] = a + b;
        atomicAdd(word, 1.0f);
    }
}

/* ---------------------------------------------------------------- entry points */
typedef void (*launcher)(float *out, float *word);

static void run_neighbour(float *out, float *) { DMZ_LAUNCH(neighbour_kernel, 1, N, 0, out); }
static void run_block_sum_twice(float *out, float *) { DMZ_LAUNCH(block_sum_twice_kernel, 1, N, 0, out); }
static void run_real_block_sum_twice(float *out, float *) { DMZ_LAUNCH(real_block_sum_twice_kernel, 1, N, 0, out); }
static void run_shuffle_sites(float *out, float *) { DMZ_LAUNCH(shuffle_sites_kernel, 1, N, 0, out); }
static void run_shuffle_source(float *out, float *) { DMZ_LAUNCH(shuffle_source_kernel, 1, N, 0, out); }
static void run_blocks_race(float *out, float *) { DMZ_LAUNCH(blocks_race_kernel, 2, N, 0, out); }
static void run_unwritten_shared(float *out, float *) { DMZ_LAUNCH(unwritten_shared_kernel, 1, N, 0, out); }
static void run_divergent_sync(float *out, float *) { DMZ_LAUNCH(divergent_sync_kernel, 1, N, 0, out); }
static void run_unwritten_dynamic(float *out, float *) {
    DMZ_LAUNCH(unwritten_dynamic_kernel, 1, N, N * sizeof(float), out);
}
static void run_syncwarp_sites(float *out, float *) { DMZ_LAUNCH(syncwarp_sites_kernel, 1, N, 0, out); }
static void run_correct(float *out, float *word) { DMZ_LAUNCH(correct_kernel, 4, N, 0, out, word); }

static const struct {
    const char *name;
    launcher run;
} cases[] = {
    {"neighbour", run_neighbour},
    {"block-sum-twice", run_block_sum_twice},
    {"real-block-sum-twice", run_real_block_sum_twice},
    {"shuffle-sites", run_shuffle_sites},
    {"shuffle-source", run_shuffle_source},
    {"blocks-race", run_blocks_race},
    {"unwritten-shared", run_unwritten_shared},
    {"divergent-sync", run_divergent_sync},
    {"unwritten-dynamic", run_unwritten_dynamic},
    {"syncwarp-sites", run_syncwarp_sites},
    {"correct", run_correct},
};

/* Runs the named case; returns 0, or -1 for an unknown name. */
extern "C" int dmz_race_case(const char *name) {
    for (const auto &c : cases) {
        if (strcmp(c.name, name) != 0) continue;
        float *out = NULL, *word = NULL;
        DMZ_CUDA_CHECK(cudaMalloc(&out, 4 * N * sizeof(float)));
        DMZ_CUDA_CHECK(cudaMalloc(&word, sizeof(float)));
        DMZ_CUDA_CHECK(cudaMemset(out, 0, 4 * N * sizeof(float)));
        DMZ_CUDA_CHECK(cudaMemset(word, 0, sizeof(float)));
        c.run(out, word);
        DMZ_CUDA_CHECK(cudaDeviceSynchronize());
        DMZ_CUDA_CHECK(cudaFree(out));
        DMZ_CUDA_CHECK(cudaFree(word));
        return 0;
    }
    return -1;
}
