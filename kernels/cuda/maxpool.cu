/* 2x2 max pooling, stride 2, TensorFlow's 'SAME' (twin of kernels/cpu/maxpool.c):
 * OH = ceil(H/2), an odd last row or column pools the elements it has. One
 * thread per output element (forward) or per window (backward); windows do not
 * overlap, so the backward thread writes each of its window's inputs once (the
 * gradient to the maximum, 0 to the others) and covers dinp whole.
 *
 * The reference's rules, copied exactly so that results are bit-identical:
 * the maximum is found in row-major order with `>` (the first of equal
 * elements wins); the backward pass of a full window picks the first element
 * equal to that maximum, and the last one when none is (NaN), while a partial
 * window's picks its first maximum in row-major order. */
#include "common.cuh"

static __device__ __forceinline__ float max4(float a, float b, float c, float d) {
    float m = a;
    m = b > m ? b : m;
    m = c > m ? c : m;
    return d > m ? d : m;
}

/* A partial window [y0, y1) x [x0, x1) of plane x: its first maximum, row-major. */
static __device__ __forceinline__ int argmax_window(const float *x, int W, int y0, int y1, int x0, int x1) {
    int best = y0 * W + x0;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++)
            if (x[iy * W + ix] > x[best]) best = iy * W + ix;
    return best;
}

static __global__ void maxpool2x2_forward_kernel(float *out, const float *inp, size_t n, int H, int W, int OH,
                                                 int OW) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t pl = i / ((size_t)OH * OW);
        int q = (int)(i - pl * OH * OW), y = q / OW, xo = q - y * OW;
        const float *x = inp + pl * H * W;
        if (2 * y + 1 < H && 2 * xo + 1 < W) {
            const float *r0 = x + 2 * y * W + 2 * xo, *r1 = r0 + W;
            out[i] = max4(r0[0], r0[1], r1[0], r1[1]);
        } else {
            int y1 = 2 * y + 2 < H ? 2 * y + 2 : H, x1 = 2 * xo + 2 < W ? 2 * xo + 2 : W;
            out[i] = x[argmax_window(x, W, 2 * y, y1, 2 * xo, x1)];
        }
    }
}

static __global__ void maxpool2x2_backward_kernel(float *dinp, const float *dout, const float *inp, size_t n, int H,
                                                  int W, int OH, int OW, int relu) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t pl = i / ((size_t)OH * OW);
        int q = (int)(i - pl * OH * OW), y = q / OW, xo = q - y * OW;
        const float *x = inp + pl * H * W;
        float *dx = dinp + pl * H * W;
        float g = dout[i];
        if (2 * y + 1 < H && 2 * xo + 1 < W) {
            int o0 = 2 * y * W + 2 * xo, o1 = o0 + W;
            float a = x[o0], b = x[o0 + 1], c = x[o1], d = x[o1 + 1];
            float m = max4(a, b, c, d);
            int ta = a == m, tb = !ta && b == m, tc = !ta && !tb && c == m, td = !ta && !tb && !tc;
            if (relu) { /* relu_backward's own comparison, on the element that takes the gradient */
                ta = ta && a > 0.0f, tb = tb && b > 0.0f, tc = tc && c > 0.0f, td = td && d > 0.0f;
            }
            dx[o0] = ta ? g : 0.0f;
            dx[o0 + 1] = tb ? g : 0.0f;
            dx[o1] = tc ? g : 0.0f;
            dx[o1 + 1] = td ? g : 0.0f;
        } else {
            int y1 = 2 * y + 2 < H ? 2 * y + 2 : H, x1 = 2 * xo + 2 < W ? 2 * xo + 2 : W;
            int best = argmax_window(x, W, 2 * y, y1, 2 * xo, x1);
            if (relu && !(x[best] > 0.0f)) g = 0.0f;
            for (int iy = 2 * y; iy < y1; iy++)
                for (int ix = 2 * xo; ix < x1; ix++) dx[iy * W + ix] = iy * W + ix == best ? g : 0.0f;
        }
    }
}

#ifndef __CUDACC_RTC__ /* host code; NVRTC (make check-pascal) compiles only the kernels above */
void cuda_maxpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W) {
    int OH = dmz_pool_out(H), OW = dmz_pool_out(W);
    size_t n = (size_t)B * C * OH * OW;
    if (B <= 0 || C <= 0 || H <= 0 || W <= 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(maxpool2x2_forward_kernel, dmz_elementwise_blocks(n, threads), threads, 0, out, inp, n, H, W, OH, OW);
}

static void backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W, int relu) {
    int OH = dmz_pool_out(H), OW = dmz_pool_out(W);
    size_t n = (size_t)B * C * OH * OW;
    if (B <= 0 || C <= 0 || H <= 0 || W <= 0) return;
    const unsigned threads = 256;
    DMZ_LAUNCH(maxpool2x2_backward_kernel, dmz_elementwise_blocks(n, threads), threads, 0, dinp, dout, inp, n, H, W,
               OH, OW, relu);
}

void cuda_maxpool2x2_backward(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    backward(dinp, dout, inp, B, C, H, W, 0);
}

/* The pool of a ReLU's output with the ReLU's backward folded in: one launch for two. */
void cuda_maxpool2x2_backward_relu(float *dinp, const float *dout, const float *inp, int B, int C, int H, int W) {
    backward(dinp, dout, inp, B, C, H, W, 1);
}
#endif
