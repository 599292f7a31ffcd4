/* kernels/cuda/context.cuh — the execution context behind the cuda backend's
 * ops (kernels/cuda/context.cu): private to kernels/cuda/ (the backend files,
 * and the cublas/cudnn comparison backends in kernels/cuda/vendor/). */
#ifndef DMZ_CUDA_CONTEXT_CUH
#define DMZ_CUDA_CONTEXT_CUH

#include "common.cuh"

#ifndef __CUDACC_RTC__
namespace DMZ_CUDA_NS {

enum {
    STAGING_SLOTS = 4,                 /* pinned upload/download buffers, used round robin */
    STAGING_BYTES = 256 << 10,         /* each: a batch of the paper's pixels (78,400 bytes) fits */
    SCRATCH_FLOATS = 1 << 20,          /* reduction partials and split-K partial tiles */
    SCRATCH_COUNTERS = 4096,           /* split-K tile semaphores */
    VENDOR_SLOTS = 2,                  /* 0: cuBLAS handle, 1: cuDNN handle */
};

struct context {
    cudaStream_t stream;               /* non-blocking: no implicit sync with the legacy stream */
    float *scratch;                    /* device, SCRATCH_FLOATS */
    unsigned *counters;                /* device, SCRATCH_COUNTERS, kept 0 between ops */
    unsigned char *staging[STAGING_SLOTS]; /* pinned host memory */
    cudaEvent_t staged[STAGING_SLOTS]; /* the copy that last used each slot */
    int next_slot;
    void *vendor[VENDOR_SLOTS];        /* library handles bound to this stream, made on first use */
    void (*vendor_free[VENDOR_SLOTS])(void *);
    void *vendor_memory[VENDOR_SLOTS]; /* device memory a handle holds (cuBLAS's workspace), freed with it */
    void *vendor_scratch;              /* device memory a library call needs beyond `work` */
    size_t vendor_scratch_bytes;
    int graphs;                        /* graphs captured on this context that are still alive */
};

/* A new context on the selected device, or NULL with the reason. */
context *create(char *err, size_t len);
void destroy(context *c);
/* The calling thread's ops go to c from now on (NULL: the default context). */
void use(context *c);

/* Transfers on the current context's stream, through the pinned staging
 * slots when they fit: upload returns once the source may be reused,
 * download once the data is there (one blocking call). */
void upload(void *dst, const void *src, size_t bytes);
void download(void *dst, const void *src, size_t bytes);
void copy(void *dst, const void *src, size_t bytes);
void sync();

/* The device this process uses: with several ranks on a node, the local rank
 * (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID,
 * MV2_COMM_WORLD_LOCAL_RANK, PMI_LOCAL_RANK) modulo the devices. Chosen once;
 * every thread that uses a context is set to it. Returns -1 with the reason
 * when there is none. */
int device(char *reason, size_t len);

/* Device memory of at least `bytes` for a library call, grown when needed
 * (never during a capture, never once a graph holds the old one). */
void *vendor_scratch(size_t bytes);

} // namespace DMZ_CUDA_NS
#endif
#endif
