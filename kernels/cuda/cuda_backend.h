/* kernels/cuda/cuda_backend.h — the cuda backend: the ops of kernels/backend.h as
 * hand-written CUDA kernels (the .cu files of kernels/cuda/), device memory from cudaMalloc.
 *
 * dmz_backend_cuda exists in builds made with nvcc (the Makefile defines
 * DMZ_HAVE_CUDA then); kernels/backend.c hands it out for "cuda" only when
 * dmz_cuda_available() finds a device.
 *
 * dmz_backend_cuda_emu is the same .cu sources compiled for the CPU emulator
 * (kernels/cuda/emu): it is built everywhere, named "cuda-emu", and linked only
 * into the tests (tests/test_cuda_ops), which compare it op by op with cpu. */
#ifndef DMZ_CUDA_BACKEND_H
#define DMZ_CUDA_BACKEND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/backend.h"

extern const dmz_backend dmz_backend_cuda;
/* 1 when a CUDA device can be used; else 0 and the runtime's reason in reason. */
int dmz_cuda_available(char *reason, size_t len);

/* What meta.json records of a device (nvcc builds only). */
typedef struct dmz_gpu_info {
    int index;
    char name[256];
    int cc_major, cc_minor, sms;
    double memory_bytes;
    int l2_bytes, memory_bus_bits;
    char pci_bus_id[32];
    int runtime_version, driver_version; /* e.g. 12040 = 12.4 */
} dmz_gpu_info;
int dmz_cuda_device_count(void);
/* The cudaStream_t the calling thread's cuda ops go to (its model's context),
 * for timing events that must land between those ops. */
void *dmz_cuda_current_stream(void);
/* 1 and *g filled, or 0 with the reason. */
int dmz_cuda_gpu_info(int device, dmz_gpu_info *g, char *reason, size_t len);

/* The comparison backends (nvcc builds with the headers: DMZ_HAVE_CUBLAS,
 * DMZ_HAVE_CUDNN; kernels/cuda/vendor/): "cublas" (every GEMM through
 * cuBLAS) and "cudnn" (convolutions and pooling through cuDNN, GEMMs through
 * cuBLAS), the rest shared with "cuda". The libraries are loaded at run time:
 * NULL with the reason (no device, library missing) when they cannot run. */
const dmz_backend *dmz_cublas_backend(char *reason, size_t len);
const dmz_backend *dmz_cudnn_backend(char *reason, size_t len);

extern const dmz_backend dmz_backend_cuda_emu;
int dmz_cuda_emu_available(char *reason, size_t len); /* always 1 */

/* What the emulator's runtime has seen so far (all threads together): the
 * tests count a training step's launches and blocking host calls with it. */
typedef struct dmz_cuda_emu_counts {
    long launches;       /* kernel launch calls (DMZ_LAUNCH), captured ones included */
    long graph_launches; /* cudaGraphLaunch calls */
    long kernels_run;    /* grids executed (a replayed graph runs its kernels) */
    long blocking;       /* host calls that wait for the device: cudaMemcpy, cudaMemcpyAsync
                            to or from pageable memory, cudaDeviceSynchronize,
                            cudaStreamSynchronize, cudaEventSynchronize */
    long allocs;         /* cudaMalloc and cudaMallocHost calls */
} dmz_cuda_emu_counts;
void dmz_cuda_emu_counts_get(dmz_cuda_emu_counts *c);

#ifdef __cplusplus
}
#endif

#endif
