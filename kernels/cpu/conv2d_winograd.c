/* 5x5 convolutions (stride 1) on the cpu by Winograd's minimal filtering,
 * F(4x4, 5x5) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016): each 4x4 block of outputs from an 8x8 patch of input as
 *   Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * so that the products over channels become 64 small GEMMs (one per point xi
 * of the 8x8 transform): 64 multiply-adds for 16 outputs where the direct sum
 * does 400. The cnn's second layer (32 -> 64 channels, 14x14: 4x4 tiles of
 * which the last row and column are half used) spends two thirds of the cnn's
 * arithmetic here; conv2d_forward.c's implicit GEMM takes every other shape.
 *
 * Matrices: Toom-Cook at the points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity
 * (derived exactly with sympy, checked on integers: y_i = sum_k d_{i+k} g_k):
 *   A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 0;
 *          0 1 1 4 4 1/4 1/4 0; 0 1 -1 8 -8 1/8 -1/8 1]
 *   G   = the table G below (rows -1 0 0 0 0, -2/9 x5, ..., 0 0 0 0 1)
 *   B^T = [-1 0 21/4 0 -21/4 0 1 0; 0 1 1 -17/4 -17/4 1 1 0;
 *          0 -1 1 17/4 -17/4 -1 1 0; 0 1/2 1/4 -5/2 -5/4 2 1 0;
 *          0 -1/2 1/4 5/2 -5/4 -2 1 0; 0 2 4 -5/2 -5 1/2 1 0;
 *          0 -2 4 5/2 -5 -1/2 1 0; 0 -1 0 21/4 0 -21/4 0 1]
 * (B^T is F(6x6, 3x3)'s: the same points.) Measured here against F(2x2, 5x5)
 * (0, +-1, +-2, infinity; 6x6 patches): the cnn's conv2 passes 4.3/4.8/5.6 ms
 * with 2x2 tiles, 3.1/3.3/3.9 with 4x4, rounding errors 5e-6 -> 8.5e-6 sqrt(L)
 * forward, 1.6e-5 -> 7.4e-6 backward-filter (fewer tiles to sum).
 *
 * Layout: activations go to channels-last (NHWC, channels padded to CV with
 * zeros) so that every transform works on CV channels at once in vectors; the
 * transformed tiles of a block of TB tiles sit as V[xi][tile][channel] and
 * M[xi][tile][out channel], read and written by cpu_sgemm_strided in place.
 *
 * The three passes:
 * - forward: V from the input, U = G g G^T from the filters, M = V U per xi,
 *   Y = A^T M A (+ bias, ReLU; and the 2x2 pool, which a 4x4 tile holds whole,
 *   for cpu_conv_winograd_forward_pool);
 * - backward-data: the forward pass over dout with the filters flipped and
 *   transposed (w'[c][oc] = w[oc][c] rotated 180 degrees, pad K-1-pad);
 * - backward-filter: dU[xi] = sum over tiles of (A dY A^T)[xi]^T V[xi], then
 *   dw = G^T dU G (the adjoint of U = G g G^T and Y = A^T M A).
 *
 * Determinism: forward and backward-data give each tile to one thread;
 * backward-filter sums its blocks of TB_F tiles in NCHUNK runs of consecutive
 * blocks (one thread each, blocks in order), then adds the runs' partial sums
 * in order. Block sizes and runs depend on the shape alone, so results are
 * bit-identical for any thread count. The rounding differs from the direct
 * sum's (the transforms scale values up and G brings them back); tests bound
 * it (tests/test_cnn.c). */
#include "cpu_ops.h"

#include <omp.h>
#include <string.h>

#define CV 16         /* channels per vector, and the channel padding */
#define WM 4          /* outputs per tile side */
#define WA (WM + 4)   /* inputs per tile side: 8 */
#define NXI (WA * WA) /* points of the 8x8 transform */
/* Tiles per block in forward / backward-data (a multiple of the SGEMM's 6 or 8
 * rows; 16 and 48 ran the same here) and in backward-filter (the K of its
 * products; 32 and 48 ran the same, 96 slower: its V and dM outgrew L2). */
#define TB 24
#define TB_F 48
#define NCHUNK 16 /* backward-filter's partial sums (runs of blocks), added in order at the end */

typedef float vc __attribute__((vector_size(CV * sizeof(float))));
typedef int vci __attribute__((vector_size(CV * sizeof(int))));

#define loadc(p) ({ vc v_; memcpy(&v_, (p), sizeof v_); v_; })
/* mask ? yes : no, lane by lane (C has no vector ?:) */
#define seli(mask, yes, no) (((mask) & (yes)) | (~(mask) & (no)))
#define selc(mask, yes, no) ((vc)seli((mask), (vci)(yes), (vci)(no)))
#define storec(p, v)                 \
    do {                             \
        vc s_ = (v);                 \
        memcpy((p), &s_, sizeof s_); \
    } while (0)

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

typedef struct geom {
    int B, Cin, Cout, H, W, pad; /* input B x Cin x H x W, output B x Cout x OH x OW */
    int OH, OW, ty, tx;          /* WM x WM output tiles: ty x tx per image */
    int Hp, Wp, Cinp, Coutp;     /* padded channels-last input: Hp x Wp x Cinp */
    size_t tiles;
} geom;

static geom geom_of(int B, int Cin, int Cout, int H, int W, int pad) {
    geom g = {.B = B, .Cin = Cin, .Cout = Cout, .H = H, .W = W, .pad = pad};
    g.OH = H + 2 * pad - 4, g.OW = W + 2 * pad - 4;
    g.ty = (g.OH + WM - 1) / WM, g.tx = (g.OW + WM - 1) / WM;
    g.Hp = WM * g.ty + 4, g.Wp = WM * g.tx + 4;
    g.Cinp = (int)round_up((size_t)Cin, CV), g.Coutp = (int)round_up((size_t)Cout, CV);
    g.tiles = (size_t)B * g.ty * g.tx;
    return g;
}

static geom forward_geom(dmz_conv_shape s) { return geom_of(s.B, s.C, s.OC, s.H, s.W, s.pad); }
static geom backward_data_geom(dmz_conv_shape s) {
    return geom_of(s.B, s.OC, s.C, dmz_conv_out_h(s), dmz_conv_out_w(s), s.K - 1 - s.pad);
}

static bool shape_fits(dmz_conv_shape s) {
    return s.K == 5 && s.pad >= 0 && s.pad <= 4 && s.C >= 8 && s.OC >= 8 && s.B > 0 && dmz_conv_out_h(s) > 0 &&
           dmz_conv_out_w(s) > 0;
}

bool cpu_conv_winograd_fits(dmz_conv_shape s) { return !dmz_cpu_direct_conv() && shape_fits(s); }

/* At most CPU_CONV_SLOTS threads: the workspace holds that many blocks. */
static int team_size(void) {
    int nt = omp_get_max_threads();
    return nt < CPU_CONV_SLOTS ? nt : CPU_CONV_SLOTS;
}

/* ---------------------------------------------------------------- workspace */
/* The slack after each buffer: cpu_sgemm_strided reads whole strips past its
 * last row and column. */
#define SLACK 64

static size_t du_floats(geom g) { return (size_t)NXI * g.Coutp * g.Cinp; }
static size_t u_floats(geom g) { return round_up((size_t)NXI * g.Cinp * g.Coutp + SLACK, CV); }
static size_t x_floats(geom g) { return round_up((size_t)g.B * g.Hp * g.Wp * g.Cinp, CV); }
static size_t y_floats(geom g) { return round_up((size_t)g.B * g.OH * g.OW * g.Coutp, CV); }
static size_t block_floats(geom g, int tb) { return round_up((size_t)NXI * tb * (g.Cinp + g.Coutp) + 2 * SLACK, CV); }
/* backward-filter: dY channels-last, tiles whole (WM ty x WM tx, zero past OH x OW) */
static size_t dy_floats(geom g) { return round_up((size_t)g.B * WM * g.ty * WM * g.tx * g.Coutp, CV); }

static size_t pass_floats(geom g) {
    return u_floats(g) + x_floats(g) + y_floats(g) + (size_t)CPU_CONV_SLOTS * block_floats(g, TB);
}

/* Whatever the algorithm chosen now: it may change before the ops run. */
size_t cpu_conv_winograd_workspace(dmz_conv_shape s) {
    if (!shape_fits(s)) return 0;
    geom f = forward_geom(s), d = backward_data_geom(s);
    size_t fwd = pass_floats(f), bwd_data = pass_floats(d);
    size_t bwd_filter = round_up(NCHUNK * du_floats(f) + SLACK, CV) + x_floats(f) + dy_floats(f) +
                        (size_t)CPU_CONV_SLOTS * (block_floats(f, TB_F) + cpu_conv2d_dout_floats(s));
    size_t most = fwd > bwd_data ? fwd : bwd_data;
    return (most > bwd_filter ? most : bwd_filter) * sizeof(float);
}

/* ---------------------------------------------------------------- layouts */
/* Sample b of an NCHW tensor into the padded channels-last buffer: zero
 * borders and channel padding, the image at (pad, pad). */
static void to_padded_nhwc(float *xp, const float *x, geom g, int b) {
    float *dst = xp + (size_t)b * g.Hp * g.Wp * g.Cinp;
    const float *src = x + (size_t)b * g.Cin * g.H * g.W;
    size_t row = (size_t)g.Wp * g.Cinp;
    int y_end = g.pad + g.H < g.Hp ? g.pad + g.H : g.Hp;
    for (int yy = 0; yy < g.Hp; yy++) {
        float *r = dst + yy * row;
        if (yy < g.pad || yy >= y_end) {
            memset(r, 0, row * sizeof(float));
            continue;
        }
        int x_end = g.pad + g.W < g.Wp ? g.pad + g.W : g.Wp;
        memset(r, 0, (size_t)g.pad * g.Cinp * sizeof(float));
        memset(r + (size_t)x_end * g.Cinp, 0, (size_t)(g.Wp - x_end) * g.Cinp * sizeof(float));
        for (int xx = g.pad; g.Cinp > g.Cin && xx < x_end; xx++)
            memset(r + (size_t)xx * g.Cinp + g.Cin, 0, (size_t)(g.Cinp - g.Cin) * sizeof(float));
        cpu_transpose(r + (size_t)g.pad * g.Cinp, g.Cinp, src + (size_t)(yy - g.pad) * g.W, (ptrdiff_t)g.H * g.W, g.Cin,
                      x_end - g.pad);
    }
}

/* Sample b of the channels-last result into NCHW: one transpose of its
 * OH*OW x Cout plane. */
static void from_nhwc(float *out, const float *y, geom g, int b) {
    size_t plane = (size_t)g.OH * g.OW;
    cpu_transpose(out + (size_t)b * g.Cout * plane, (ptrdiff_t)plane, y + (size_t)b * plane * g.Coutp, g.Coutp,
                  (int)plane, g.Cout);
}

/* Sample b's pooled values and codes, channels-last, into NCHW. */
static void pooled_to_nchw(float *out, uint8_t *code, const float *pooled, const uint8_t *pooled_code, geom g, int b) {
    size_t plane = (size_t)(g.OH / 2) * (g.OW / 2), at = (size_t)b * plane * g.Coutp;
    float *o = out + (size_t)b * g.Cout * plane;
    uint8_t *k = code + (size_t)b * g.Cout * plane;
    cpu_transpose(o, (ptrdiff_t)plane, pooled + at, g.Coutp, (int)plane, g.Cout);
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < g.Cout; c++) k[(size_t)c * plane + p] = pooled_code[at + p * g.Coutp + c];
}

/* ---------------------------------------------------------------- transforms */
/* o = B^T i (i and o: 8 vectors at stride si / so) */
static inline void bt8(vc *o, ptrdiff_t so, const vc *i, ptrdiff_t si) {
    vc d0 = i[0], d1 = i[si], d2 = i[2 * si], d3 = i[3 * si], d4 = i[4 * si], d5 = i[5 * si], d6 = i[6 * si],
       d7 = i[7 * si];
    vc e1 = d2 + d6 - 4.25f * d4, o1 = d1 + d5 - 4.25f * d3;            /* rows 1, 2 */
    vc e3 = 0.25f * d2 - 1.25f * d4 + d6, o3 = 0.5f * d1 - 2.5f * d3 + 2 * d5; /* rows 3, 4 */
    vc e5 = 4 * d2 - 5 * d4 + d6, o5 = 2 * d1 - 2.5f * d3 + 0.5f * d5;   /* rows 5, 6 */
    o[0] = (d6 - d0) + 5.25f * (d2 - d4);
    o[so] = e1 + o1, o[2 * so] = e1 - o1;
    o[3 * so] = e3 + o3, o[4 * so] = e3 - o3;
    o[5 * so] = e5 + o5, o[6 * so] = e5 - o5;
    o[7 * so] = (d7 - d1) + 5.25f * (d3 - d5);
}

/* o = A^T i: 4 from 8 */
static inline void at8(vc *o, ptrdiff_t so, const vc *i, ptrdiff_t si) {
    vc m0 = i[0], m7 = i[7 * si];
    vc p12 = i[si] + i[2 * si], q12 = i[si] - i[2 * si];
    vc p34 = i[3 * si] + i[4 * si], q34 = i[3 * si] - i[4 * si];
    vc p56 = i[5 * si] + i[6 * si], q56 = i[5 * si] - i[6 * si];
    o[0] = m0 + p12 + p34 + p56;
    o[so] = q12 + 2 * q34 + 0.5f * q56;
    o[2 * so] = p12 + 4 * p34 + 0.25f * p56;
    o[3 * so] = q12 + 8 * q34 + 0.125f * q56 + m7;
}

/* o = A i: 8 from 4 */
static inline void a8(vc *o, ptrdiff_t so, const vc *i, ptrdiff_t si) {
    vc y0 = i[0], y1 = i[si], y2 = i[2 * si], y3 = i[3 * si];
    vc e1 = y0 + y2, o1 = y1 + y3, e2 = y0 + 4 * y2, o2 = 2 * y1 + 8 * y3, e3 = y0 + 0.25f * y2,
       o3 = 0.5f * y1 + 0.125f * y3;
    o[0] = y0;
    o[so] = e1 + o1, o[2 * so] = e1 - o1;
    o[3 * so] = e2 + o2, o[4 * so] = e2 - o2;
    o[5 * so] = e3 + o3, o[6 * so] = e3 - o3;
    o[7 * so] = y3;
}

/* The tile at global index t: its sample and its top-left output position. */
static void tile_pos(geom g, size_t t, int *b, int *y0, int *x0) {
    size_t per = (size_t)g.ty * g.tx, r = t % per;
    *b = (int)(t / per), *y0 = WM * (int)(r / (size_t)g.tx), *x0 = WM * (int)(r % (size_t)g.tx);
}

/* V[xi][slot][c] = (B^T d B)[xi] for the 8x8 patch of tile t, every channel. */
static void input_transform(float *v, size_t xi_stride, const float *xp, geom g, size_t t) {
    int b, y0, x0;
    tile_pos(g, t, &b, &y0, &x0);
    const float *patch = xp + (((size_t)b * g.Hp + y0) * g.Wp + x0) * g.Cinp;
    for (int c = 0; c < g.Cinp; c += CV) {
        vc tmp[NXI]; /* one pass's result; each column and row in registers */
        for (int j = 0; j < WA; j++) { /* columns: B^T d */
            vc col[WA];
            for (int i = 0; i < WA; i++) col[i] = loadc(patch + ((size_t)i * g.Wp + j) * g.Cinp + c);
            bt8(tmp + j, WA, col, 1);
        }
        for (int i = 0; i < WA; i++) { /* rows: (B^T d) B */
            vc row[WA];
            bt8(row, 1, tmp + i * WA, 1);
            for (int j = 0; j < WA; j++) storec(v + (i * WA + j) * xi_stride + c, row[j]);
        }
    }
}

/* The output transform's first pass for channels [c, c + CV): tmp = A^T M
 * (WM x WA), a column at a time. */
static inline void output_columns(vc tmp[WM * WA], const float *m, size_t xi_stride, int c) {
    for (int j = 0; j < WA; j++) {
        vc col[WA];
        for (int i = 0; i < WA; i++) col[i] = loadc(m + (i * WA + j) * xi_stride + c);
        at8(tmp + j, WA, col, 1);
    }
}

/* Y = A^T M A for tile t, + bias, ReLU, into the channels-last output (the
 * part of the tile inside OH x OW). */
static void output_transform(float *y, const float *m, size_t xi_stride, const float *bias_p, int relu, geom g,
                             size_t t) {
    int b, y0, x0;
    tile_pos(g, t, &b, &y0, &x0);
    for (int c = 0; c < g.Coutp; c += CV) {
        vc tmp[WM * WA];
        output_columns(tmp, m, xi_stride, c);
        vc bias = bias_p ? loadc(bias_p + c) : (vc){0};
        for (int i = 0; i < WM; i++) {
            vc row[WM];
            at8(row, 1, tmp + i * WA, 1);
            for (int j = 0; j < WM; j++) {
                if (y0 + i >= g.OH || x0 + j >= g.OW) continue;
                vc r = row[j] + bias;
                if (relu) r = (vc)((vci)r & (r > 0)); /* relu_forward's own comparison: x > 0 ? x : 0 */
                storec(y + (((size_t)b * g.OH + y0 + i) * g.OW + x0 + j) * g.Coutp + c, r);
            }
        }
    }
}

/* Y = A^T M A for tile t, + bias, ReLU, then its 2x2 windows pooled (an even
 * output size: a tile holds 2 x 2 whole windows, those inside OH x OW kept):
 * the pooled values and codes channels-last, [b][OH/2][OW/2][Coutp]. The
 * comparisons are maxpool.c's (max4's order, the first maximum takes the
 * gradient, none where it is not > 0). */
static void output_transform_pool(float *pooled, uint8_t *code, const float *m, size_t xi_stride,
                                  const float *bias_p, geom g, size_t t) {
    typedef uint8_t vcb __attribute__((vector_size(CV)));
    int b, y0, x0;
    tile_pos(g, t, &b, &y0, &x0);
    int OH2 = g.OH / 2, OW2 = g.OW / 2;
    for (int c = 0; c < g.Coutp; c += CV) {
        vc tmp[WM * WA], r[WM * WM];
        output_columns(tmp, m, xi_stride, c);
        vc bias = bias_p ? loadc(bias_p + c) : (vc){0};
        for (int i = 0; i < WM; i++) {
            at8(r + i * WM, 1, tmp + i * WA, 1);
            for (int j = 0; j < WM; j++) {
                vc v = r[i * WM + j] + bias;
                r[i * WM + j] = (vc)((vci)v & (v > 0)); /* relu_forward's x > 0 ? x : 0 */
            }
        }
        for (int i = 0; i < WM; i += 2)
            for (int j = 0; j < WM; j += 2) {
                int py = (y0 + i) / 2, px = (x0 + j) / 2;
                if (py >= OH2 || px >= OW2) continue;
                vc a = r[i * WM + j], bb = r[i * WM + j + 1], cc = r[(i + 1) * WM + j], d = r[(i + 1) * WM + j + 1];
                vc mx = a;
                mx = selc(bb > mx, bb, mx);
                mx = selc(cc > mx, cc, mx);
                mx = selc(d > mx, d, mx);
                vci k = seli(cc == mx, (vci){0} + 2, (vci){0} + 3);
                k = seli(bb == mx, (vci){0} + 1, k);
                k = seli(a == mx, (vci){0}, k);
                k = seli(mx > 0, k, (vci){0} + CPU_POOL_NO_GRAD);
                size_t at = (((size_t)b * OH2 + py) * OW2 + px) * g.Coutp + c;
                storec(pooled + at, mx);
                vcb kb = __builtin_convertvector(k, vcb);
                memcpy(code + at, &kb, sizeof kb);
            }
    }
}

static const double G[WA][5] = {
    {-1, 0, 0, 0, 0},
    {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
    {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
    {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45},
    {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45},
    {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45},
    {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45},
    {0, 0, 0, 0, 1},
};

/* U[xi][ci][co] = G g G^T (in double, then rounded once) with g the 5x5 filter
 * from input channel ci to output channel co: w[co][ci] (forward) or
 * w[ci][co] rotated 180 degrees (backward-data, where the pass's input
 * channels are the layer's outputs). Zero in the padding. */
static void filter_transform(float *u, const float *w, geom g, int flipped) {
#pragma omp single
    memset(u, 0, u_floats(g) * sizeof(float));
#pragma omp for schedule(static)
    for (int ci = 0; ci < g.Cin; ci++)
        for (int co = 0; co < g.Cout; co++) {
            const float *f = w + (size_t)(flipped ? ci * g.Cout + co : co * g.Cin + ci) * 25;
            double gg[5][5], t[WA][5];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) gg[i][j] = flipped ? f[(4 - i) * 5 + 4 - j] : f[i * 5 + j];
            for (int r = 0; r < WA; r++)
                for (int j = 0; j < 5; j++) {
                    double s = 0;
                    for (int i = 0; i < 5; i++) s += G[r][i] * gg[i][j];
                    t[r][j] = s;
                }
            for (int r = 0; r < WA; r++)
                for (int c = 0; c < WA; c++) {
                    double s = 0;
                    for (int j = 0; j < 5; j++) s += t[r][j] * G[c][j];
                    u[((size_t)(r * WA + c) * g.Cinp + ci) * g.Coutp + co] = (float)s;
                }
        }
}

/* ---------------------------------------------------------------- forward */
/* out (NCHW) = conv(x, the filters transformed into u) + bias, ReLU if asked.
 * Called by every thread of a team. */
static void winograd_pass(float *out, uint8_t *code, const float *x, const float *w, int flipped, const float *bias,
                          int relu, geom g, float *work) {
    float *u = work, *xp = u + u_floats(g), *y = xp + x_floats(g), *blocks = y + y_floats(g);
    float *v = blocks + (size_t)omp_get_thread_num() * block_floats(g, TB), *m = v + (size_t)NXI * TB * g.Cinp + SLACK;
    /* pooling: the pooled values channels-last in y's first quarter, their codes after them */
    uint8_t *pooled_code = (uint8_t *)(y + (size_t)g.B * (g.OH / 2) * (g.OW / 2) * g.Coutp);
    float bias_p[g.Coutp + 1];
    for (int c = 0; c < g.Coutp; c++) bias_p[c] = bias && c < g.Cout ? bias[c] : 0.0f;
    filter_transform(u, w, g, flipped);
#pragma omp for schedule(static)
    for (int b = 0; b < g.B; b++) to_padded_nhwc(xp, x, g, b);
    size_t nblocks = (g.tiles + TB - 1) / TB;
#pragma omp for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t t0 = blk * TB;
        int n = (int)(g.tiles - t0 < TB ? g.tiles - t0 : TB);
        for (int i = 0; i < n; i++) input_transform(v + (size_t)i * g.Cinp, (size_t)TB * g.Cinp, xp, g, t0 + i);
        for (int xi = 0; xi < NXI; xi++)
            cpu_sgemm_strided(n, g.Coutp, g.Cinp, v + (size_t)xi * TB * g.Cinp, g.Cinp, 1,
                              u + (size_t)xi * g.Cinp * g.Coutp, g.Coutp, m + (size_t)xi * TB * g.Coutp, g.Coutp, 0);
        for (int i = 0; i < n; i++)
            if (code) output_transform_pool(y, pooled_code, m + (size_t)i * g.Coutp, (size_t)TB * g.Coutp, bias_p, g,
                                            t0 + i);
            else output_transform(y, m + (size_t)i * g.Coutp, (size_t)TB * g.Coutp, bias_p, relu, g, t0 + i);
    }
#pragma omp for schedule(static)
    for (int b = 0; b < g.B; b++)
        if (code) pooled_to_nchw(out, code, y, pooled_code, g, b);
        else from_nhwc(out, y, g, b);
}

void cpu_conv_winograd_forward(float *out, const float *inp, const float *w, const float *bias, int relu,
                               dmz_conv_shape s, float *work) {
#pragma omp parallel num_threads(team_size())
    winograd_pass(out, NULL, inp, w, 0, bias, relu, forward_geom(s), work);
}

void cpu_conv_winograd_forward_pool(float *out, uint8_t *code, const float *inp, const float *w, const float *bias,
                                    dmz_conv_shape s, float *work) {
#pragma omp parallel num_threads(team_size())
    winograd_pass(out, code, inp, w, 0, bias, 1, forward_geom(s), work);
}

void cpu_conv_winograd_backward_data(float *dinp, const float *dout, const float *w, dmz_conv_shape s, float *work) {
#pragma omp parallel num_threads(team_size())
    winograd_pass(dinp, NULL, dout, w, 1, NULL, 0, backward_data_geom(s), work);
}

/* ---------------------------------------------------------------- backward-filter */
/* dY of sample b (src: its dout, NCHW) channels-last, tiles whole: WM ty x
 * WM tx x Coutp, zero past the output and in the channel padding. */
static void dy_nhwc(float *dy, const float *src, geom g, int b) {
    int Hd = WM * g.ty, Wd = WM * g.tx;
    size_t row = (size_t)Wd * g.Coutp;
    float *dst = dy + (size_t)b * Hd * row;
    for (int r = 0; r < g.OH; r++) { /* the transpose fills channels < Cout of columns < OW; zero the rest */
        float *d = dst + (size_t)r * row;
        for (int x = 0; g.Coutp > g.Cout && x < g.OW; x++)
            memset(d + (size_t)x * g.Coutp + g.Cout, 0, (size_t)(g.Coutp - g.Cout) * sizeof(float));
        memset(d + (size_t)g.OW * g.Coutp, 0, (size_t)(Wd - g.OW) * g.Coutp * sizeof(float));
        cpu_transpose(d, g.Coutp, src + (size_t)r * g.OW, (ptrdiff_t)g.OH * g.OW, g.Cout, g.OW);
    }
    memset(dst + (size_t)g.OH * row, 0, (size_t)(Hd - g.OH) * row * sizeof(float));
}

/* dM[xi][slot][oc] = (A dY A^T)[xi] for tile t. */
static void grad_transform(float *dm, size_t xi_stride, const float *dy, geom g, size_t t) {
    int b, y0, x0;
    tile_pos(g, t, &b, &y0, &x0);
    int Wd = WM * g.tx;
    const float *tile = dy + (((size_t)b * WM * g.ty + y0) * Wd + x0) * g.Coutp;
    for (int c = 0; c < g.Coutp; c += CV) {
        vc tmp[WA * WM];
        for (int j = 0; j < WM; j++) { /* columns: A dY, WA x WM */
            vc col[WM];
            for (int i = 0; i < WM; i++) col[i] = loadc(tile + ((size_t)i * Wd + j) * g.Coutp + c);
            a8(tmp + j, WM, col, 1);
        }
        for (int i = 0; i < WA; i++) {
            vc row[WA];
            a8(row, 1, tmp + i * WM, 1);
            for (int j = 0; j < WA; j++) storec(dm + (i * WA + j) * xi_stride + c, row[j]);
        }
    }
}

/* dw[oc][c] = G^T dU[.][oc][c] G */
static void filter_gradient(float *dw, const float *du, geom g) {
#pragma omp for schedule(static)
    for (int oc = 0; oc < g.Cout; oc++)
        for (int c = 0; c < g.Cin; c++) {
            double d[WA][WA], t[5][WA];
            for (int xi = 0; xi < NXI; xi++) d[xi / WA][xi % WA] = du[((size_t)xi * g.Coutp + oc) * g.Cinp + c];
            for (int i = 0; i < 5; i++)
                for (int col = 0; col < WA; col++) {
                    double s = 0;
                    for (int r = 0; r < WA; r++) s += G[r][i] * d[r][col];
                    t[i][col] = s;
                }
            float *f = dw + ((size_t)oc * g.Cin + c) * 25;
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) {
                    double s = 0;
                    for (int col = 0; col < WA; col++) s += t[i][col] * G[col][j];
                    f[i * 5 + j] = (float)s;
                }
        }
}

/* The tile blocks of backward-filter in NCHUNK runs (fewer when there are
 * fewer blocks): a function of the shape alone, never of the thread count. */
static size_t chunk_count(geom g) {
    size_t nblocks = (g.tiles + TB_F - 1) / TB_F;
    return nblocks < NCHUNK ? nblocks : NCHUNK;
}

/* dU of the blocks [blk0, blk1) into du (a partial sum): blocks in order. */
static void chunk_gradient(float *du, size_t blk0, size_t blk1, const float *xp, const float *dy, geom g, float *v) {
    float *dm = v + (size_t)NXI * TB_F * g.Cinp + SLACK;
    for (size_t blk = blk0; blk < blk1; blk++) {
        size_t t0 = blk * TB_F;
        int n = (int)(g.tiles - t0 < TB_F ? g.tiles - t0 : TB_F);
        for (int i = 0; i < n; i++) {
            input_transform(v + (size_t)i * g.Cinp, (size_t)TB_F * g.Cinp, xp, g, t0 + i);
            grad_transform(dm + (size_t)i * g.Coutp, (size_t)TB_F * g.Coutp, dy, g, t0 + i);
        }
        for (int xi = 0; xi < NXI; xi++)
            cpu_sgemm_strided(g.Cout, g.Cin, n, dm + (size_t)xi * TB_F * g.Coutp, 1, g.Coutp,
                              v + (size_t)xi * TB_F * g.Cinp, g.Cinp, du + (size_t)xi * g.Coutp * g.Cinp, g.Cinp,
                              blk > blk0);
    }
}

void cpu_conv_winograd_backward_filter(float *dw, float *bias_lanes, const cpu_conv_dout *d, const float *inp,
                                       dmz_conv_shape s, float *work) {
    geom g = forward_geom(s);
    size_t chunks = chunk_count(g), nblocks = (g.tiles + TB_F - 1) / TB_F;
    float *partial = work, *xp = partial + round_up(chunks * du_floats(g) + SLACK, CV), *dy = xp + x_floats(g);
    float *blocks = dy + dy_floats(g);
#pragma omp parallel num_threads(team_size())
    {
        float *v = blocks + (size_t)omp_get_thread_num() * (block_floats(g, TB_F) + cpu_conv2d_dout_floats(s));
        float *room = v + block_floats(g, TB_F);
#pragma omp for schedule(static)
        for (int b = 0; b < g.B; b++) {
            const float *dout_b = cpu_conv2d_sample_dout(d, b, room);
            if (bias_lanes) cpu_conv2d_bias_lanes(bias_lanes + (size_t)b * s.OC * 8, dout_b, s);
            to_padded_nhwc(xp, inp, g, b);
            dy_nhwc(dy, dout_b, g, b);
        }
#pragma omp for schedule(static)
        for (size_t k = 0; k < chunks; k++)
            chunk_gradient(partial + k * du_floats(g), nblocks * k / chunks, nblocks * (k + 1) / chunks, xp, dy, g, v);
        /* the partial sums added in chunk order, each element by one thread */
        size_t n = du_floats(g);
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i += CV) {
            vc sum = loadc(partial + i);
            for (size_t k = 1; k < chunks; k++) sum += loadc(partial + k * n + i);
            storec(partial + i, sum);
        }
        filter_gradient(dw, partial, g);
    }
}
