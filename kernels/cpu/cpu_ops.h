/* kernels/cpu/cpu_ops.h — the cpu backend's ops, one file each (the reference
 * every other backend is compared with). Private to kernels/. */
#ifndef DMZ_CPU_OPS_H
#define DMZ_CPU_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/backend.h"

/* C[M][N] (row stride ldc) = (accumulate ? C : 0) + A @ B, where
 * A(i,k) = a[i*a_rs + k*a_cs] and B(k,j) = b[k*b_rs + j*b_cs] (any layout,
 * transposes included). Bit-identical for any thread count (sgemm.c). */
void cpu_sgemm(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
               ptrdiff_t b_rs, ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate);
/* The same, called by every thread of an OpenMP team together (inside a
 * parallel region): each computes its own part, no barrier inside. Pack
 * buffers are per thread, allocated once (cpu_sgemm_pack_buffer). */
void cpu_sgemm_team(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                    ptrdiff_t b_rs, ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate);
float *cpu_sgemm_pack_buffer(void);
/* The width of C's register strips (NR: 32 with AVX-512, 16 with AVX, 8
 * without): a caller that splits N across threads starts its bands on one. */
int cpu_sgemm_strip_cols(void);
/* cpu_sgemm for a sparse A (input pixels, ReLU outputs): the k at which all
 * rows of a strip of A (6 or 8 rows) are zero are skipped (they add exactly zero, as
 * the old dense loop's `if (x == 0) continue` did). */
void cpu_sgemm_sparse_a(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                        ptrdiff_t b_rs, ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate);
/* For many products with one A (a convolution's weights, one product per
 * sample): pack A once into cpu_sgemm_packed_a_floats(M, K) floats, then
 * cpu_sgemm_packed is cpu_sgemm with that A (the same bits). */
size_t cpu_sgemm_packed_a_floats(int M, int K);
void cpu_sgemm_pack_a(int M, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, float *packed);
void cpu_sgemm_packed(int M, int N, int K, const float *packed_a, const float *b, ptrdiff_t b_rs, ptrdiff_t b_cs,
                      float *c, ptrdiff_t ldc, int accumulate);
/* Operands given by row offsets, for the implicit im2col (no col buffer), with
 * the same bits as cpu_sgemm on the same values:
 * - cpu_sgemm_packed_rows_b: B(k, j) = b[b_row_off[k] + j], each row readable
 *   cpu_sgemm_strip_cols() - 1 floats past column N (what is read there only
 *   reaches columns of C past N, which are not stored); rows are copied into
 *   the packed strips whole;
 * - cpu_sgemm_rows_a: A(i, k) = a[a_row_off[i] + k], read in place by the
 *   micro-kernel, on the calling thread alone. */
void cpu_sgemm_packed_rows_b(int M, int N, int K, const float *packed_a, const float *b, const ptrdiff_t *b_row_off,
                             float *c, ptrdiff_t ldc, int accumulate);
void cpu_sgemm_rows_a(int M, int N, int K, const float *a, const ptrdiff_t *a_row_off, const float *b, ptrdiff_t b_rs,
                      ptrdiff_t b_cs, float *c, ptrdiff_t ldc, int accumulate);

/* C[M][N] = (accumulate ? C : 0) + A @ B with nothing packed, on the calling
 * thread, for small K (the Winograd products): A(i, k) = a[i*a_is + k*a_ks]
 * taken as scalars, B(k, j) = b[k*b_ks + j] read in place as vectors. A must
 * be readable for whole strips of rows (8 with AVX-512, 6 otherwise) and every
 * row of B cpu_sgemm_strip_cols() - 1 floats past column N: what is read there
 * only reaches elements of C that are not stored. One element's sum runs over
 * k in order, then adds to C. */
void cpu_sgemm_strided(int M, int N, int K, const float *a, ptrdiff_t a_is, ptrdiff_t a_ks, const float *b,
                       ptrdiff_t b_ks, float *c, ptrdiff_t ldc, int accumulate);

/* dst[c][r] = src[r][c] for r < rows, c < cols (row strides ld_src, ld_dst). */
void cpu_transpose(float *dst, ptrdiff_t ld_dst, const float *src, ptrdiff_t ld_src, int rows, int cols);

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
/* convolution (NCHW, filters [OC][C][K][K], stride 1) and 2x2 max pooling */
#define CPU_CONV_SLOTS 8 /* samples in flight at once: the workspace holds this many */
/* The implicit im2col (im2col.c): the image zero-padded, the output computed
 * wide (cpu_conv_wide_cols positions, OH rows of cpu_conv_wide_row), and the
 * offset of each filter tap's run in the padded image. */
int cpu_conv_wide_row(dmz_conv_shape s);
int cpu_conv_wide_cols(dmz_conv_shape s);
size_t cpu_conv_padded_floats(dmz_conv_shape s);
void cpu_conv_pad_image(float *pimg, const float *img, dmz_conv_shape s);
void cpu_conv_tap_offsets(ptrdiff_t *tap_off, dmz_conv_shape s);
void cpu_col2im_wide(float *img, const float *dcol_wide, const ptrdiff_t *tap_off, dmz_conv_shape s, float *pimg);
size_t cpu_conv2d_backward_data_slot_floats(dmz_conv_shape s);
#define CPU_CONV_FILTER_RUNS 16 /* backward-filter's partial sums over runs of samples */
size_t cpu_conv2d_backward_filter_partial_floats(dmz_conv_shape s);
size_t cpu_conv2d_backward_filter_slot_floats(dmz_conv_shape s);
/* A backward-filter's dout: NCHW [B][OC][OH][OW], or with code the gradient
 * of the pool over the conv's ReLU ([B][OC][OH/2][OW/2], the pool's codes),
 * spread one sample at a time (cpu_conv2d_sample_dout, into room of
 * cpu_conv2d_dout_floats). */
typedef struct cpu_conv_dout {
    const float *dout;
    const uint8_t *code;
    dmz_conv_shape s;
} cpu_conv_dout;
size_t cpu_conv2d_dout_floats(dmz_conv_shape s);
const float *cpu_conv2d_sample_dout(const cpu_conv_dout *d, int b, float *room);
/* dbias's per-sample sums: lanes [OC][8] of sample b's dout (conv2d_backward_filter.c);
 * they live at the workspace's end (cpu_conv2d_bias_lanes_at). */
size_t cpu_conv2d_bias_lanes_floats(dmz_conv_shape s);
void cpu_conv2d_bias_lanes(float *lanes, const float *dout_b, dmz_conv_shape s);
float *cpu_conv2d_bias_lanes_at(dmz_conv_shape s, void *work);
/* Threads the conv ops use: at most one per workspace slot. */
int cpu_conv2d_threads(dmz_conv_shape s);
size_t cpu_conv2d_workspace(dmz_conv_shape s);
/* The workspace's parts: the tap offsets, the weights packed for the SGEMM
 * (forward: w, backward-data: w^T), and the rest, each op's scratch. */
typedef struct cpu_conv_work {
    ptrdiff_t *tap_off;
    float *packed_w, *scratch;
} cpu_conv_work;
cpu_conv_work cpu_conv2d_work(dmz_conv_shape s, void *work);
void cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                        float *work);
void cpu_conv2d_forward_relu(float *out, const float *inp, const float *w, const float *bias, dmz_conv_shape s,
                             float *work);
void cpu_conv2d_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work);
void cpu_conv2d_backward_filter(float *dw, float *dbias, const float *dout, const float *inp, dmz_conv_shape s,
                                float *work);
/* 5x5 filters, 8 channels or more each side: Winograd F(4x4, 5x5)
 * (conv2d_winograd.c), which the three conv ops take where it fits. */
bool cpu_conv_winograd_fits(dmz_conv_shape s);
size_t cpu_conv_winograd_workspace(dmz_conv_shape s); /* 0 where it does not fit */
void cpu_conv_winograd_forward(float *out, const float *inp, const float *w, const float *bias, int relu,
                               dmz_conv_shape s, float *work);
/* with the ReLU and a 2x2 pool (even output size): cpu_conv2d_relu_pool_forward */
void cpu_conv_winograd_forward_pool(float *out, uint8_t *code, const float *inp, const float *w, const float *bias,
                                    dmz_conv_shape s, float *work);
void cpu_conv_winograd_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work);
void cpu_conv_winograd_backward_filter(float *dw, float *bias_lanes, const cpu_conv_dout *d, const float *inp,
                                       dmz_conv_shape s, float *work);
void cpu_maxpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W);
void cpu_maxpool2x2_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W);
void cpu_maxpool2x2_backward_relu(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W);
/* Pooling fused into a convolution's epilogue (maxpool.c): n windows from two
 * rows of the conv's output x0, x1 (2n floats each): out[k] = the max of the
 * window's four relu(x + bias), code[k] = which of them takes the gradient
 * (0..3, row-major) or CPU_POOL_NO_GRAD. */
#define CPU_POOL_NO_GRAD 4
void cpu_relu_pool_rows(float *out, uint8_t *code, const float *x0, const float *x1, float bias, int n);
/* conv (+ bias) + ReLU + 2x2 max pool, for an even output size: out [B][OC][OH/2][OW/2]
 * and code, the same values as conv2d_forward_relu then maxpool2x2_forward. */
void cpu_conv2d_relu_pool_forward(float *out, uint8_t *code, const float *inp, const float *w, const float *bias,
                                  dmz_conv_shape s, float *work);
/* dinp [B][C][H][W] (H, W even) from the pool's dout and those codes: the same
 * bits as maxpool2x2_backward_relu over the activation. */
void cpu_maxpool2x2_backward_codes(float *dinp, const float *dout, const uint8_t *code, int B, int C, int H, int W);
/* the same for C planes on the calling thread (one sample) */
void cpu_maxpool2x2_backward_codes_planes(float *dinp, const float *dout, const uint8_t *code, int C, int H, int W);
/* conv2d_backward_filter from that pool's dout and codes (the same bits as the two ops) */
void cpu_conv2d_backward_filter_pooled(float *dw, float *dbias, const float *dpool, const uint8_t *code,
                                       const float *inp, dmz_conv_shape s, float *work);
void cpu_adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                     dmz_adam_params hp);

#endif
