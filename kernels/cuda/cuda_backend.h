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

extern const dmz_backend dmz_backend_cuda_emu;
int dmz_cuda_emu_available(char *reason, size_t len); /* always 1 */

#ifdef __cplusplus
}
#endif

#endif
