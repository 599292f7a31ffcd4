/* kernels/cuda/vendor/vendor.cuh — what the comparison backends share: the
 * cuBLAS GEMMs (both backends run their dense layers through cublasSgemm) and
 * loading NVIDIA's libraries at run time.
 *
 * The libraries are opened with dlopen, not linked: dmzbench and the GPU
 * bundle run where they are missing (a driver-only machine), and there
 * `--backend cublas|cudnn` says which library it could not load. Built only by
 * nvcc, only when the Makefile found the headers (DMZ_HAVE_CUBLAS,
 * DMZ_HAVE_CUDNN); never for the emulator (cuBLAS and cuDNN cannot run there). */
#ifndef DMZ_CUDA_VENDOR_CUH
#define DMZ_CUDA_VENDOR_CUH

#include "kernels/cuda/context.cuh"

#include <cublas_v2.h>
#include <dlfcn.h>

namespace dmz_vendor {

/* dlopen of the first name that loads; NULL with the dlerror()s in why. */
void *open_library(const char *const *names, char *why, size_t len);

/* cuBLAS, loaded once: 1, or 0 with the reason. */
int cublas_load(char *why, size_t len);
/* The current context's cuBLAS handle, bound to its stream (made when the
 * context is: a handle cannot be made while a graph is being captured). */
cublasHandle_t cublas_handle();
/* Makes the handle of context c (from a backend's context_create). */
int cublas_attach(DMZ_CUDA_NS::context *c, char *err, size_t len);
const char *cublas_version();

/* Dense layers through cublasSgemm, row-major [C][OC] weights as the cuda backend's. */
void dense_forward(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC);
void dense_forward_relu(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC);
void dense_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int B,
                    int C, int OC);

} // namespace dmz_vendor

#endif
