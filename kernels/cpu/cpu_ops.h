/* kernels/cpu/cpu_ops.h — the cpu backend's ops, one file each (the reference
 * every other backend is compared with). Private to kernels/. */
#ifndef DMZ_CPU_OPS_H
#define DMZ_CPU_OPS_H

#include "kernels/backend.h"

void cpu_u8_to_float(float *out, const uint8_t *in, size_t n, float scale);
void cpu_dense_forward(float *out, const float *inp, const float *w, const float *bias,
                       int B, int C, int OC);
void cpu_dense_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int B, int C, int OC);
void cpu_relu_forward(float *out, const float *inp, size_t n);
void cpu_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
void cpu_softmax_xent_forward(float *probs, float *losses, const float *logits,
                              const int32_t *labels, int B, int V);
void cpu_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                               int B, int V);
void cpu_reduce_sum(float *out, const float *in, size_t n);
void cpu_count_correct(float *out, const float *probs, const int32_t *labels, int B, int V);
void cpu_adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                     dmz_adam_params hp);

#endif
