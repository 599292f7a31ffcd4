/* kernels/cuda/cuda_ops.h — the cuda backend's ops, one .cu file each (the
 * twins of kernels/cpu/cpu_ops.h). Private to kernels/cuda/; every pointer is
 * device memory; every op only queues work (the backend's sync waits).
 *
 * The emulated build (DMZ_CUDA_EMU) compiles the same sources again for the CPU;
 * its entry points get their own names so that one binary can link both builds. */
#ifndef DMZ_CUDA_OPS_H
#define DMZ_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cuda_backend.h"

#ifdef DMZ_CUDA_EMU
#define cuda_u8_to_float cuda_emu_u8_to_float
#define cuda_dense_forward cuda_emu_dense_forward
#define cuda_dense_backward cuda_emu_dense_backward
#define cuda_relu_forward cuda_emu_relu_forward
#define cuda_relu_backward cuda_emu_relu_backward
#define cuda_softmax_xent_forward cuda_emu_softmax_xent_forward
#define cuda_softmax_xent_backward cuda_emu_softmax_xent_backward
#define cuda_reduce_sum cuda_emu_reduce_sum
#define cuda_count_correct cuda_emu_count_correct
#define cuda_adam_update cuda_emu_adam_update
/* convolution and pooling (the cnn) */
#define cuda_conv2d_workspace cuda_emu_conv2d_workspace
#define cuda_conv2d_backward_filter_workspace cuda_emu_conv2d_backward_filter_workspace
#define cuda_conv2d_forward cuda_emu_conv2d_forward
#define cuda_conv2d_forward_relu cuda_emu_conv2d_forward_relu
#define cuda_conv2d_backward_data cuda_emu_conv2d_backward_data
#define cuda_conv2d_backward_filter cuda_emu_conv2d_backward_filter
#define cuda_maxpool2x2_forward cuda_emu_maxpool2x2_forward
#define cuda_maxpool2x2_backward cuda_emu_maxpool2x2_backward
#define cuda_maxpool2x2_backward_relu cuda_emu_maxpool2x2_backward_relu
/* the device-resident step */
#define cuda_dense_forward_relu cuda_emu_dense_forward_relu
#define cuda_dense_bias_grad cuda_emu_dense_bias_grad
#define cuda_gather_batch cuda_emu_gather_batch
#define cuda_softmax_xent_train cuda_emu_softmax_xent_train
#define cuda_adam_update_step cuda_emu_adam_update_step
#define cuda_bias_act cuda_emu_bias_act
#endif

void cuda_u8_to_float(float *out, const uint8_t *in, size_t n, float scale);
void cuda_dense_forward(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC);
void cuda_dense_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int B, int C, int OC);
void cuda_relu_forward(float *out, const float *inp, size_t n);
void cuda_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
void cuda_softmax_xent_forward(float *probs, float *losses, const float *logits, const int32_t *labels, int B, int V);
void cuda_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int B, int V);
void cuda_reduce_sum(float *out, const float *in, size_t n);
void cuda_count_correct(float *out, const float *probs, const int32_t *labels, int B, int V);
void cuda_adam_update(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp);

/* convolution (implicit GEMM: conv2d_igemm.cuh) and 2x2 max pooling */
size_t cuda_conv2d_workspace(dmz_conv_shape s);
size_t cuda_conv2d_backward_filter_workspace(dmz_conv_shape s); /* its partial sums */
void cuda_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                         float *work);
void cuda_conv2d_forward_relu(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                              float *work);
void cuda_conv2d_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work);
void cuda_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                 float *work);
void cuda_maxpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W);
void cuda_maxpool2x2_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W);
void cuda_maxpool2x2_backward_relu(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W);
/* the device-resident step (the optional entries of kernels/backend.h) */
void cuda_dense_forward_relu(float *out, const float *inp, const float *w, const float *bias, int B, int C, int OC);
/* dbias[OC] = column sums of dout[B][OC] (dense_backward's, for the cublas backend) */
void cuda_dense_bias_grad(float *dbias, const float *dout, int B, int OC);
void cuda_gather_batch(float *input, int32_t *labels, const uint8_t *images, const uint8_t *labels_all,
                       const uint32_t *order, const dmz_step_state *st, int offset, int n, int pixels, float scale);
void cuda_softmax_xent_train(float *dlogits, float *loss_log, int log_len, const float *logits, const int32_t *labels,
                             dmz_step_state *st, int advance, int B, int V);
void cuda_adam_update_step(float *params, const float *grads, float *m, float *v, size_t n, dmz_adam_params hp,
                           const dmz_step_state *st);
/* out[b][o] = act(out[b][o] + bias[o]), act = ReLU when relu (a GEMM's epilogue, for the cublas backend) */
void cuda_bias_act(float *out, const float *bias, int B, int OC, int relu);

#endif
