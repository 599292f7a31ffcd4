/* The batch from a data set resident on the device (twin of the host gather in
 * bench/train_parts.c followed by kernels/cpu/convert.c): for i < n, with
 * k = order[st->cursor + offset + i],
 *   input[i][p] = images[k][p] * scale,   labels[i] = labels_all[k].
 * The cursor is read on the device, so a captured step gathers the right batch
 * at every replay (the loss head moves it on). One block per sample; its
 * threads stride over the pixels (consecutive threads, consecutive bytes). */
#include "common.cuh"

static __global__ void gather_kernel(float *input, int32_t *labels, const uint8_t *images, const uint8_t *labels_all,
                                     const uint32_t *order, const dmz_step_state *st, int offset, int pixels,
                                     float scale) {
    const int i = (int)blockIdx.x;
    const uint32_t k = order[st->cursor + offset + i];
    const uint8_t *src = images + (size_t)k * pixels;
    float *dst = input + (size_t)i * pixels;
    for (int p = (int)threadIdx.x; p < pixels; p += (int)blockDim.x) dst[p] = (float)src[p] * scale;
    if (threadIdx.x == 0) labels[i] = labels_all[k];
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_gather_batch(float *input, int32_t *labels, const uint8_t *images, const uint8_t *labels_all,
                       const uint32_t *order, const dmz_step_state *st, int offset, int n, int pixels, float scale) {
    if (n <= 0) return;
    DMZ_LAUNCH(gather_kernel, (unsigned)n, 256, 0, input, labels, images, labels_all, order, st, offset, pixels, scale);
}
#endif
