/* The training step that stays on the device (the optional step ops of
 * kernels/backend.h, the model's resident path, the runner's device loop),
 * against the cpu reference; graph replay against the plain device step; two
 * models on two threads; the launches and blocking host calls of one step of
 * the paper's mlp, counted by the emulator; a fault naming its kernel.
 *
 * Built twice from this file, as tests/test_cuda_ops is:
 *   tests/test_cuda_step      (always)    on the CPU emulator ("cuda-emu");
 *   tests/test_cuda_step_gpu  (with nvcc) on the GPU; every test skips, saying
 *                                         why, when no device answers.
 * Comparisons: |got - want| <= atol + rtol*|want|, first mismatches printed. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/train.h"
#include "common/dmz.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/model.h"

#include "tests/cuda_device.h"

/* ---------------------------------------------------------------- the ops */
/* gather_batch: the batch at cursor + offset of the order, as the host gathers and converts it. */
static void test_gather_batch(void **state) {
    (void)state;
    require_device();
    enum { COUNT = 37, PIX = 29, N = 9, OFFSET = 3 };
    dmz_rng rng;
    dmz_rng_seed(&rng, 3);
    uint8_t images[COUNT * PIX], labels[COUNT];
    uint32_t order[COUNT];
    for (int i = 0; i < COUNT * PIX; i++) images[i] = (uint8_t)dmz_rng_below(&rng, 256);
    for (int i = 0; i < COUNT; i++) labels[i] = (uint8_t)dmz_rng_below(&rng, 47), order[i] = (uint32_t)i;
    dmz_rng_shuffle(&rng, order, COUNT);
    dmz_step_state st = {5, 11};
    void *d_img = dev_copy(images, sizeof images), *d_lab = dev_copy(labels, sizeof labels);
    void *d_ord = dev_copy(order, sizeof order), *d_st = dev_copy(&st, sizeof st);
    float *d_in = DEV->alloc(N * PIX * sizeof(float));
    int32_t *d_y = DEV->alloc(N * sizeof(int32_t));
    DEV->gather_batch(d_in, d_y, d_img, d_lab, d_ord, d_st, OFFSET, N, PIX, 1.0f / 255.0f);
    float *got = host_from_dev(d_in, N * PIX), want[N * PIX];
    int32_t y[N];
    DEV->download(y, d_y, sizeof y);
    uint8_t pix[N * PIX];
    for (int i = 0; i < N; i++) {
        uint32_t k = order[st.cursor + OFFSET + i];
        memcpy(pix + i * PIX, images + k * PIX, PIX);
        assert_int_equal(y[i], labels[k]);
    }
    CPU->u8_to_float(want, pix, N * PIX, 1.0f / 255.0f);
    assert_int_equal(mismatches("gather", got, want, N * PIX, 0, 0), 0); /* the same product: exact */
    free(got);
    DEV->free(d_img), DEV->free(d_lab), DEV->free(d_ord), DEV->free(d_st), DEV->free(d_in), DEV->free(d_y);
}

/* softmax_xent_train: the gradient and the summed loss of the two-op reference, and the step state moved on. */
static void check_loss_head(int B, int V) {
    dmz_rng rng;
    dmz_rng_seed(&rng, (uint64_t)(B * 1000 + V));
    float *z = malloc((size_t)B * V * sizeof(float)), *probs = malloc((size_t)B * V * sizeof(float));
    float *dz = malloc((size_t)B * V * sizeof(float)), *losses = malloc((size_t)B * sizeof(float));
    int32_t *y = malloc((size_t)B * sizeof(int32_t));
    for (int i = 0; i < B * V; i++) z[i] = (float)(dmz_rng_uniform(&rng) * 20.0 - 10.0);
    for (int b = 0; b < B; b++) y[b] = (int32_t)dmz_rng_below(&rng, (uint32_t)V);
    z[0] = -60.0f, z[1] = 60.0f, y[0] = 0; /* a clipped row: probs[y] < 1e-10, zero gradient */
    CPU->softmax_xent_forward(probs, losses, z, y, B, V);
    CPU->softmax_xent_backward(dz, probs, y, B, V);
    float want_loss;
    CPU->reduce_sum(&want_loss, losses, (size_t)B);
    enum { LOG = 4 };
    dmz_step_state st = {6, 40};
    float *d_z = dev_copy(z, (size_t)B * V * sizeof(float)), *d_dz = DEV->alloc((size_t)B * V * sizeof(float));
    int32_t *d_y = dev_copy(y, (size_t)B * sizeof(int32_t));
    float *d_log = DEV->alloc(LOG * sizeof(float));
    dmz_step_state *d_st = dev_copy(&st, sizeof st);
    DEV->softmax_xent_train(d_dz, d_log, LOG, d_z, d_y, d_st, 13, B, V);
    float *got = host_from_dev(d_dz, (size_t)B * V), log_[LOG];
    DEV->download(log_, d_log, sizeof log_);
    DEV->download(&st, d_st, sizeof st);
    assert_int_equal(mismatches("loss head dlogits", got, dz, (size_t)B * V, 1e-6, 1e-5), 0);
    assert_int_equal(mismatches("loss head loss", &log_[6 % LOG], &want_loss, 1, 1e-4, 1e-5), 0);
    assert_int_equal(st.t, 7);
    assert_int_equal(st.cursor, 53);
    free(got), free(z), free(probs), free(dz), free(losses), free(y);
    DEV->free(d_z), DEV->free(d_dz), DEV->free(d_y), DEV->free(d_log), DEV->free(d_st);
}

static void test_softmax_xent_train(void **state) {
    (void)state;
    require_device();
    check_loss_head(3, 5);
    check_loss_head(100, 47); /* the paper's: more rows than the block's 32 warps */
    check_loss_head(37, 70);
}

/* adam_update_step reads t on the device: the same as adam_update with that t. */
static void test_adam_update_step(void **state) {
    (void)state;
    require_device();
    enum { N = 1031 };
    dmz_rng rng;
    dmz_rng_seed(&rng, 9);
    float p[N], g[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) p[i] = (float)dmz_rng_uniform(&rng), g[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    float *dp = dev_copy(p, sizeof p), *dg = dev_copy(g, sizeof g), *dm = dev_copy(m, sizeof m), *dv = dev_copy(v, sizeof v);
    dmz_adam_params hp = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .t = 0};
    for (int t = 1; t <= 3; t++) {
        dmz_step_state st = {t, 0};
        dmz_step_state *dst = dev_copy(&st, sizeof st);
        hp.t = t;
        CPU->adam_update(p, g, m, v, N, hp);
        hp.t = 999; /* ignored */
        DEV->adam_update_step(dp, dg, dm, dv, N, hp, dst);
        DEV->free(dst);
    }
    float *gp = host_from_dev(dp, N);
    assert_int_equal(mismatches("adam_update_step params", gp, p, N, 1e-7, 1e-6), 0);
    free(gp);
    DEV->free(dp), DEV->free(dg), DEV->free(dm), DEV->free(dv);
}

/* dense_forward_relu: the reference's dense then relu, at odd sizes and at the
 * paper's first layer (split along k). */
static void check_dense_relu(int B, int C, int OC) {
    dmz_rng rng;
    dmz_rng_seed(&rng, (uint64_t)(B + 7 * C + 13 * OC));
    size_t ni = (size_t)B * C, nw = (size_t)C * OC, no = (size_t)B * OC;
    float *x = malloc(ni * sizeof(float)), *w = malloc(nw * sizeof(float)), *b = malloc(OC * sizeof(float));
    float *want = malloc(no * sizeof(float));
    for (size_t i = 0; i < ni; i++) x[i] = (float)dmz_rng_uniform(&rng);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(dmz_rng_uniform(&rng) - 0.5) * 0.1f;
    for (int i = 0; i < OC; i++) b[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    CPU->dense_forward(want, x, w, b, B, C, OC);
    CPU->relu_forward(want, want, no);
    float *dx = dev_copy(x, ni * sizeof(float)), *dw = dev_copy(w, nw * sizeof(float)), *db = dev_copy(b, OC * sizeof(float));
    float *dout = DEV->alloc(no * sizeof(float));
    DEV->dense_forward_relu(dout, dx, dw, db, B, C, OC);
    float *got = host_from_dev(dout, no);
    char what[64];
    snprintf(what, sizeof what, "dense_forward_relu %dx%dx%d", B, C, OC);
    assert_int_equal(mismatches(what, got, want, no, 1e-5, 1e-4), 0);
    /* twice: the split-K counters were left at zero for the next product */
    DEV->dense_forward_relu(dout, dx, dw, db, B, C, OC);
    float *again = host_from_dev(dout, no);
    assert_int_equal(memcmp(again, got, no * sizeof(float)), 0);
    free(x), free(w), free(b), free(want), free(got), free(again);
    DEV->free(dx), DEV->free(dw), DEV->free(db), DEV->free(dout);
}

static void test_dense_forward_relu(void **state) {
    (void)state;
    require_device();
    check_dense_relu(5, 37, 9);
    check_dense_relu(33, 300, 47);
    check_dense_relu(100, 784, 100);
}

/* cuda_bias_act is reached through the cublas backend; on the emulator through
 * dense_forward's own epilogue it has no entry, so it is checked where it runs
 * (below, with the comparison backends). */

/* ---------------------------------------------------------------- the comparison backends (GPU) */
#if defined(DMZ_TEST_CUDA_GPU) && defined(DMZ_HAVE_CUBLAS)
/* Each op of `be` against cpu on random inputs, |got - want| <= atol + rtol |want|. */
static void compare_dense(const dmz_backend *be, int B, int C, int OC) {
    dmz_rng rng;
    dmz_rng_seed(&rng, (uint64_t)(B * 31 + C * 7 + OC));
    size_t ni = (size_t)B * C, nw = (size_t)C * OC, no = (size_t)B * OC;
    float *x = malloc(ni * 4), *w = malloc(nw * 4), *b = malloc((size_t)OC * 4), *g = malloc(no * 4);
    for (size_t i = 0; i < ni; i++) x[i] = (float)dmz_rng_uniform(&rng);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    for (int i = 0; i < OC; i++) b[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < no; i++) g[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    float *y = malloc(no * 4), *dx = malloc(ni * 4), *dw = malloc(nw * 4), *db = malloc((size_t)OC * 4);
    CPU->dense_forward(y, x, w, b, B, C, OC);
    CPU->dense_backward(dx, dw, db, g, x, w, B, C, OC);
    float *d_x = be->alloc(ni * 4), *d_w = be->alloc(nw * 4), *d_b = be->alloc((size_t)OC * 4), *d_g = be->alloc(no * 4);
    float *d_y = be->alloc(no * 4), *d_dx = be->alloc(ni * 4), *d_dw = be->alloc(nw * 4), *d_db = be->alloc((size_t)OC * 4);
    be->upload(d_x, x, ni * 4), be->upload(d_w, w, nw * 4), be->upload(d_b, b, (size_t)OC * 4), be->upload(d_g, g, no * 4);
    be->dense_forward(d_y, d_x, d_w, d_b, B, C, OC);
    be->dense_backward(d_dx, d_dw, d_db, d_g, d_x, d_w, B, C, OC);
    float *hy = malloc(no * 4), *hdx = malloc(ni * 4), *hdw = malloc(nw * 4), *hdb = malloc((size_t)OC * 4);
    be->download(hy, d_y, no * 4), be->download(hdx, d_dx, ni * 4), be->download(hdw, d_dw, nw * 4);
    be->download(hdb, d_db, (size_t)OC * 4);
    char what[96];
    snprintf(what, sizeof what, "%s dense %dx%dx%d", be->name, B, C, OC);
    assert_int_equal(mismatches(what, hy, y, no, 1e-4, 1e-4), 0);
    assert_int_equal(mismatches(what, hdx, dx, ni, 1e-4, 1e-4), 0);
    assert_int_equal(mismatches(what, hdw, dw, nw, 1e-4, 1e-4), 0);
    assert_int_equal(mismatches(what, hdb, db, (size_t)OC, 1e-4, 1e-4), 0);
    void *bufs[] = {d_x, d_w, d_b, d_g, d_y, d_dx, d_dw, d_db};
    for (int i = 0; i < 8; i++) be->free(bufs[i]);
    free(x), free(w), free(b), free(g), free(y), free(dx), free(dw), free(db), free(hy), free(hdx), free(hdw), free(hdb);
}

static const dmz_backend *vendor_or_skip(const char *name) {
    char err[DMZ_ERR_LEN] = "";
    const dmz_backend *be = dmz_backend_get(name, err);
    if (!be) {
        fprintf(stderr, "%s backend cannot run here: %s: skipping\n", name, err);
        skip();
    }
    return be;
}

static void test_cublas_dense_matches_cpu(void **state) {
    (void)state;
    const dmz_backend *be = vendor_or_skip("cublas");
    compare_dense(be, 5, 37, 9);
    compare_dense(be, 100, 784, 100);
    compare_dense(be, 100, 100, 47);
}

#ifdef DMZ_HAVE_CUDNN
static void compare_conv_pool(const dmz_backend *be, dmz_conv_shape s) {
    dmz_rng rng;
    dmz_rng_seed(&rng, (uint64_t)(s.B + s.C * 3 + s.H * 5 + s.OC * 7));
    int OH = dmz_conv_out_h(s), OW = dmz_conv_out_w(s);
    size_t ni = (size_t)s.B * s.C * s.H * s.W, nw = (size_t)s.OC * s.C * s.K * s.K, no = (size_t)s.B * s.OC * OH * OW;
    size_t np = (size_t)s.B * s.OC * (OH / 2) * (OW / 2);
    float *x = malloc(ni * 4), *w = malloc(nw * 4), *b = malloc((size_t)s.OC * 4), *g = malloc(no * 4), *gp = malloc(np * 4);
    for (size_t i = 0; i < ni; i++) x[i] = (float)dmz_rng_uniform(&rng);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    for (int i = 0; i < s.OC; i++) b[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < no; i++) g[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < np; i++) gp[i] = (float)(dmz_rng_uniform(&rng) - 0.5);
    size_t cw = CPU->conv2d_workspace(s), dwb = be->conv2d_workspace(s);
    float *work = malloc(cw ? cw : 1);
    float *y = malloc(no * 4), *dx = malloc(ni * 4), *dw = malloc(nw * 4), *db = malloc((size_t)s.OC * 4);
    float *py = malloc(np * 4), *pdx = malloc(no * 4);
    CPU->conv2d_forward(y, x, w, b, s, work);
    CPU->conv2d_backward_data(dx, g, w, s, work);
    CPU->conv2d_backward_filter(dw, db, g, x, s, work);
    CPU->maxpool2x2_forward(py, y, s.B, s.OC, OH, OW);
    CPU->maxpool2x2_backward(pdx, gp, y, s.B, s.OC, OH, OW);
    float *d_x = be->alloc(ni * 4), *d_w = be->alloc(nw * 4), *d_b = be->alloc((size_t)s.OC * 4), *d_g = be->alloc(no * 4);
    float *d_gp = be->alloc(np * 4), *d_y = be->alloc(no * 4), *d_dx = be->alloc(ni * 4), *d_dw = be->alloc(nw * 4);
    float *d_db = be->alloc((size_t)s.OC * 4), *d_py = be->alloc(np * 4), *d_pdx = be->alloc(no * 4);
    float *d_work = be->alloc(dwb);
    be->upload(d_x, x, ni * 4), be->upload(d_w, w, nw * 4), be->upload(d_b, b, (size_t)s.OC * 4);
    be->upload(d_g, g, no * 4), be->upload(d_gp, gp, np * 4);
    be->conv2d_forward(d_y, d_x, d_w, d_b, s, d_work);
    be->conv2d_backward_data(d_dx, d_g, d_w, s, d_work);
    be->conv2d_backward_filter(d_dw, d_db, d_g, d_x, s, d_work);
    be->upload(d_y, y, no * 4); /* pool the reference's output: ties as the cpu sees them */
    be->maxpool2x2_forward(d_py, d_y, s.B, s.OC, OH, OW);
    be->maxpool2x2_backward(d_pdx, d_gp, d_y, s.B, s.OC, OH, OW);
    float *h = malloc(no * 4 > ni * 4 ? no * 4 : ni * 4);
    char what[96];
    snprintf(what, sizeof what, "cudnn %dx%dx%dx%d K%d OC%d", s.B, s.C, s.H, s.W, s.K, s.OC);
    float *hy = malloc(no * 4);
    be->download(hy, d_y, no * 4);
    (void)hy;
    be->conv2d_forward(d_y, d_x, d_w, d_b, s, d_work);
    be->download(h, d_y, no * 4);
    assert_int_equal(mismatches(what, h, y, no, 1e-3, 1e-4), 0);
    be->download(h, d_dx, ni * 4);
    assert_int_equal(mismatches(what, h, dx, ni, 1e-3, 1e-4), 0);
    be->download(h, d_dw, nw * 4);
    assert_int_equal(mismatches(what, h, dw, nw, 1e-3, 1e-4), 0);
    be->download(h, d_db, (size_t)s.OC * 4);
    assert_int_equal(mismatches(what, h, db, (size_t)s.OC, 1e-3, 1e-4), 0);
    be->download(h, d_py, np * 4);
    assert_int_equal(mismatches("cudnn maxpool forward", h, py, np, 0, 0), 0);
    be->download(h, d_pdx, no * 4);
    assert_int_equal(mismatches("cudnn maxpool backward", h, pdx, no, 0, 0), 0);
    void *bufs[] = {d_x, d_w, d_b, d_g, d_gp, d_y, d_dx, d_dw, d_db, d_py, d_pdx, d_work};
    for (int i = 0; i < 12; i++) be->free(bufs[i]);
    free(x), free(w), free(b), free(g), free(gp), free(work), free(y), free(dx), free(dw), free(db), free(py), free(pdx);
    free(h), free(hy);
}

static void test_cudnn_ops_match_cpu(void **state) {
    (void)state;
    const dmz_backend *be = vendor_or_skip("cudnn");
    compare_conv_pool(be, (dmz_conv_shape){.B = 3, .C = 2, .H = 10, .W = 12, .OC = 5, .K = 3, .pad = 1});
    compare_conv_pool(be, (dmz_conv_shape){.B = 100, .C = 1, .H = 28, .W = 28, .OC = 32, .K = 5, .pad = 2});
    compare_conv_pool(be, (dmz_conv_shape){.B = 100, .C = 32, .H = 14, .W = 14, .OC = 64, .K = 5, .pad = 2});
    char why[256];
    assert_int_equal(be->maxpool2x2_supports(7, 7, why, sizeof why), 0); /* odd: refused, with the reason */
    printf("  odd pooling refused: %s\n", why);
}
#endif
#endif

/* ---------------------------------------------------------------- the model's resident step */
enum { IN = 784, HID = 100, CLASSES = 10, BATCH = 20, COUNT = 60, STEPS = 12 };

typedef struct toy_data {
    uint8_t images[COUNT * IN], labels[COUNT];
    uint32_t order[2][COUNT]; /* two epochs */
} toy_data;

static void make_data(toy_data *d) {
    dmz_rng rng;
    dmz_rng_seed(&rng, 21);
    for (int i = 0; i < COUNT * IN; i++) d->images[i] = dmz_rng_below(&rng, 3) ? 0 : (uint8_t)dmz_rng_below(&rng, 256);
    for (int i = 0; i < COUNT; i++) {
        d->labels[i] = (uint8_t)dmz_rng_below(&rng, CLASSES);
        d->images[i * IN + d->labels[i]] = 255;
    }
    for (int e = 0; e < 2; e++) {
        for (int i = 0; i < COUNT; i++) d->order[e][i] = (uint32_t)i;
        dmz_rng_shuffle(&rng, d->order[e], COUNT);
    }
}

static dmz_model *make_model(const dmz_backend *be) {
    dmz_model_config cfg = {.kind = "mlp", .inputs = IN, .hidden = HID, .classes = CLASSES, .max_batch = BATCH};
    char err[DMZ_ERR_LEN];
    dmz_model *m = NULL;
    int rc = dmz_model_create(be, &cfg, 5, &m, err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, DMZ_OK);
    return m;
}

/* Epoch e of the toy data: COUNT / BATCH steps. */
#define STEPS_PER_EPOCH (COUNT / BATCH)

/* The device path, plain or replayed from a graph: losses of STEPS steps. */
static void resident_losses(const toy_data *d, int graph, float *losses) {
    dmz_model *m = make_model(DEV);
    char err[DMZ_ERR_LEN];
    assert_true(dmz_model_resident(m));
    assert_int_equal(dmz_model_load_data(m, d->images, d->labels, COUNT, err), DMZ_OK);
    dmz_model_set_order(m, d->order[0], COUNT);
    if (graph) assert_int_equal(dmz_model_capture_step(m, 0, BATCH, BATCH, 0.01f, 0.9f, 0.999f, 1e-8f, err), DMZ_OK);
    for (int s = 0; s < STEPS; s++) {
        if (s > 0 && s % STEPS_PER_EPOCH == 0) dmz_model_set_order(m, d->order[(s / STEPS_PER_EPOCH) % 2], COUNT);
        if (graph) {
            dmz_model_replay_step(m);
        } else {
            dmz_model_gather(m, 0, BATCH, BATCH);
            dmz_model_forward_train(m);
            dmz_model_backward(m);
            dmz_model_update(m, 0.01f, 0.9f, 0.999f, 1e-8f);
        }
    }
    assert_int_equal(dmz_model_step_losses(m, 0, STEPS, losses), 0);
    dmz_model_destroy(m);
}

/* The cpu model on the same batches, through the plain path. */
static void cpu_losses(const toy_data *d, float *losses) {
    dmz_model *m = make_model(CPU);
    uint8_t img[BATCH * IN], lab[BATCH];
    for (int s = 0; s < STEPS; s++) {
        const uint32_t *order = d->order[(s / STEPS_PER_EPOCH) % 2];
        for (int i = 0; i < BATCH; i++) {
            uint32_t k = order[(s % STEPS_PER_EPOCH) * BATCH + i];
            memcpy(img + i * IN, d->images + k * IN, IN);
            lab[i] = d->labels[k];
        }
        dmz_model_set_batch(m, img, lab, BATCH);
        dmz_model_forward(m);
        losses[s] = dmz_model_loss(m);
        dmz_model_backward(m);
        dmz_model_update(m, 0.01f, 0.9f, 0.999f, 1e-8f);
    }
    dmz_model_destroy(m);
}

static void test_resident_step_matches_cpu(void **state) {
    (void)state;
    require_device();
    toy_data *d = malloc(sizeof *d);
    make_data(d);
    float dev[STEPS], cpu[STEPS];
    resident_losses(d, 0, dev);
    cpu_losses(d, cpu);
    printf("  step losses cpu %.5f .. %.5f, %s %.5f .. %.5f\n", cpu[0], cpu[STEPS - 1], DEV_NAME, dev[0], dev[STEPS - 1]);
    assert_int_equal(mismatches("resident step loss", dev, cpu, STEPS, 1e-3, 1e-4), 0);
    free(d);
}

/* A graph replayed STEPS times (across an epoch's new order) gives the plain device step's losses, bit for bit. */
static void test_graph_replay_matches_plain(void **state) {
    (void)state;
    require_device();
    toy_data *d = malloc(sizeof *d);
    make_data(d);
    float plain[STEPS], replayed[STEPS];
    resident_losses(d, 0, plain);
    resident_losses(d, 1, replayed);
    assert_int_equal(mismatches("graph-replayed loss", replayed, plain, STEPS, 0, 0), 0);
    assert_int_equal(memcmp(plain, replayed, sizeof plain), 0);
    free(d);
}

/* ---------------------------------------------------------------- two models, two threads */
enum { SUM_N = 5000, TRIES = 300 };
typedef struct sum_job {
    const float *in;
    float want;
    int wrong;
} sum_job;

static void *sum_thread(void *p) {
    sum_job *j = p;
    char err[DMZ_ERR_LEN];
    void *ctx = DEV->context_create(err); /* as a model does */
    if (!ctx) {
        fprintf(stderr, "%s\n", err);
        j->wrong = -1;
        return NULL;
    }
    DEV->context_use(ctx);
    float *d_in = DEV->alloc(SUM_N * sizeof(float)), *d_out = DEV->alloc(sizeof(float));
    DEV->upload(d_in, j->in, SUM_N * sizeof(float));
    for (int t = 0; t < TRIES; t++) {
        float got;
        DEV->reduce_sum(d_out, d_in, SUM_N); /* several blocks: partials in the context's scratch */
        DEV->download(&got, d_out, sizeof got);
        if (memcmp(&got, &j->want, sizeof got) != 0) j->wrong++;
    }
    DEV->free(d_in), DEV->free(d_out);
    DEV->context_use(NULL);
    DEV->context_destroy(ctx);
    return NULL;
}

static void test_two_contexts_two_threads(void **state) {
    (void)state;
    require_device();
    static float a[SUM_N], b[SUM_N];
    dmz_rng rng;
    dmz_rng_seed(&rng, 77);
    for (int i = 0; i < SUM_N; i++) a[i] = (float)dmz_rng_uniform(&rng), b[i] = -3.0f * (float)dmz_rng_uniform(&rng);
    sum_job jobs[2] = {{a, 0, 0}, {b, 0, 0}};
    for (int k = 0; k < 2; k++) { /* each sum alone first */
        float *d_in = dev_copy(jobs[k].in, SUM_N * sizeof(float)), *d_out = DEV->alloc(sizeof(float));
        DEV->reduce_sum(d_out, d_in, SUM_N);
        DEV->download(&jobs[k].want, d_out, sizeof(float));
        DEV->free(d_in), DEV->free(d_out);
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, sum_thread, &jobs[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    printf("  wrong sums: %d and %d of %d each\n", jobs[0].wrong, jobs[1].wrong, TRIES);
    assert_int_equal(jobs[0].wrong, 0);
    assert_int_equal(jobs[1].wrong, 0);
}

typedef struct train_job {
    const toy_data *d;
    float losses[STEPS];
} train_job;

static void *train_thread(void *p) {
    train_job *j = p;
    resident_losses(j->d, 0, j->losses);
    return NULL;
}

/* Two models trained at once on two threads give the losses one gives alone. */
static void test_two_models_two_threads(void **state) {
    (void)state;
    require_device();
    toy_data *d = malloc(sizeof *d);
    make_data(d);
    float alone[STEPS];
    resident_losses(d, 0, alone);
    train_job jobs[2] = {{.d = d}, {.d = d}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, train_thread, &jobs[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) assert_int_equal(memcmp(jobs[k].losses, alone, sizeof alone), 0);
    free(d);
}

/* ---------------------------------------------------------------- the runner on the device */
static int run_train(const dmz_backend *be, int graph, int log_every, dmz_rep_result *r) {
    char err[DMZ_ERR_LEN];
    dmz_train_config cfg;
    dmz_train_config_default(&cfg);
    cfg.steps = 14, cfg.warmup = 2, cfg.seed = 3, cfg.eval_every = 7, cfg.batch = 20;
    cfg.graph = graph, cfg.log_every = log_every;
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.synthetic_train = 100, opt.synthetic_test = 40, opt.synthetic_seed = 5; /* 5 steps an epoch */
    opt.allow_fallback = false;
    dmz_dataset ds;
    int rc = dmz_dataset_load("synthetic", &opt, &ds, err);
    assert_int_equal(rc, DMZ_OK);
    dmz_model_config mc;
    dmz_model_config_default(&mc, "mlp", ds.num_classes, cfg.batch);
    dmz_model *m;
    rc = dmz_model_create(be, &mc, cfg.seed, &m, err);
    dmz_train_role role = dmz_role_single(&cfg);
    if (!rc) rc = dmz_train_repetition(m, dmz_comm_single(), &ds, &cfg, &role, 0, NULL, NULL, r, err);
    if (rc) fprintf(stderr, "%s\n", err);
    dmz_model_destroy(m);
    dmz_dataset_free(&ds);
    return rc;
}

/* dmz_train_repetition on the device (event-timed, losses read every 5 steps,
 * and with --graph) against the cpu backend's host-timed loop. */
static void test_runner_device_path(void **state) {
    (void)state;
    require_device();
    dmz_rep_result c, g, x;
    assert_int_equal(run_train(CPU, 0, 1, &c), DMZ_OK);
    assert_int_equal(run_train(DEV, 0, 5, &g), DMZ_OK);
    assert_int_equal(run_train(DEV, 1, 5, &x), DMZ_OK);
    assert_int_equal(g.n_steps, c.n_steps);
    assert_int_equal(x.n_steps, c.n_steps);
    int bad = 0;
    for (int i = 0; i < c.n_steps; i++) {
        double lc = c.steps[i].loss, lg = g.steps[i].loss, lx = x.steps[i].loss;
        if (fabs(lg - lc) > 1e-3 + 1e-4 * fabs(lc) || memcmp(&lg, &lx, sizeof lg) != 0) {
            fprintf(stderr, "  step %d: loss cpu %.7g, %s %.7g, graph %.7g\n", i + 1, lc, DEV_NAME, lg, lx);
            bad++;
        }
        assert_true(g.steps[i].fwd_s >= 0 && g.steps[i].step_s >= 0); /* from events */
        assert_true(isnan(x.steps[i].fwd_s) && x.steps[i].step_s >= 0);
    }
    assert_int_equal(bad, 0);
    assert_true(fabs(g.test_accuracy - c.test_accuracy) <= 0.05);
    printf("  test accuracy cpu %.3f, %s %.3f, graph %.3f\n", c.test_accuracy, DEV_NAME, g.test_accuracy, x.test_accuracy);
    dmz_rep_result_free(&c), dmz_rep_result_free(&g), dmz_rep_result_free(&x);
}

/* ---------------------------------------------------------------- launches and blocking calls (emulator) */
#ifndef DMZ_TEST_CUDA_GPU
/* One step of the paper's mlp (784-100-47, batch 100): the plain path as the
 * runner took it before (upload the batch, sync, forward, read the loss,
 * backward, sync, update, sync), the resident step, and a replayed graph. */
static void test_launches_per_step(void **state) {
    (void)state;
    enum { B = 100, V = 47, N = 300 };
    dmz_model_config cfg = {.kind = "mlp", .inputs = 784, .hidden = 100, .classes = V, .max_batch = B};
    char err[DMZ_ERR_LEN];
    dmz_model *m;
    assert_int_equal(dmz_model_create(DEV, &cfg, 1, &m, err), DMZ_OK);
    static uint8_t images[N * 784], labels[N];
    uint32_t order[N];
    for (int i = 0; i < N * 784; i++) images[i] = (uint8_t)(i * 7);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % V), order[i] = (uint32_t)i;
    assert_int_equal(dmz_model_load_data(m, images, labels, N, err), DMZ_OK);
    dmz_model_set_order(m, order, N);
    dmz_cuda_emu_counts a, b;

    dmz_cuda_emu_counts_get(&a);
    dmz_model_set_count_correct(m, 1); /* as the old loop counted every step */
    dmz_model_set_batch(m, images, labels, B);
    DEV->sync();
    dmz_model_forward(m);
    (void)dmz_model_loss(m);
    dmz_model_backward(m);
    DEV->sync();
    dmz_model_update(m, 0.01f, 0.9f, 0.999f, 1e-8f);
    DEV->sync();
    dmz_cuda_emu_counts_get(&b);
    long plain_l = b.launches - a.launches, plain_b = b.blocking - a.blocking;

    dmz_cuda_emu_counts_get(&a);
    dmz_model_gather(m, 0, B, B);
    dmz_model_forward_train(m);
    dmz_model_backward(m);
    dmz_model_update(m, 0.01f, 0.9f, 0.999f, 1e-8f);
    dmz_cuda_emu_counts_get(&b);
    long dev_l = b.launches - a.launches, dev_b = b.blocking - a.blocking, dev_a = b.allocs - a.allocs;

    assert_int_equal(dmz_model_capture_step(m, 0, B, B, 0.01f, 0.9f, 0.999f, 1e-8f, err), DMZ_OK);
    dmz_cuda_emu_counts_get(&a);
    dmz_model_replay_step(m);
    dmz_cuda_emu_counts_get(&b);
    long graph_l = b.launches - a.launches, graph_g = b.graph_launches - a.graph_launches;
    long graph_k = b.kernels_run - a.kernels_run, graph_b = b.blocking - a.blocking;

    printf("  one mlp step (784-100-47, batch 100) on %s:\n"
           "    plain path (upload, 3 syncs, loss read): %ld launches, %ld blocking host calls\n"
           "    resident step:                            %ld launches, %ld blocking, %ld allocations\n"
           "    graph replay:                             %ld launch calls (%ld graph launch, %ld kernels run), "
           "%ld blocking\n",
           DEV_NAME, plain_l, plain_b, dev_l, dev_b, dev_a, graph_l + graph_g, graph_g, graph_k, graph_b);
    assert_int_equal(dev_b, 0);
    assert_int_equal(dev_a, 0);
    assert_true(dev_l < plain_l);
    assert_int_equal(graph_l, 0);
    assert_int_equal(graph_g, 1);
    assert_int_equal(graph_k, dev_l);
    assert_int_equal(graph_b, 0);
    float l[3];
    assert_int_equal(dmz_model_step_losses(m, 0, 3, l), 0);
    dmz_model_destroy(m);
}

/* A bad launch names its kernel and the launches before it. */
static void bad_launch(void) {
    float x;
    /* 3 million rows: a grid taller than 65535 blocks, refused at launch */
    DEV->dense_forward(&x, &x, &x, &x, 3000000, 8, 8);
}

static void faulting_child(void) {
    setenv("DMZ_CUDA_CHECK", "1", 1);
    float *d = DEV->alloc(64 * sizeof(float)), *o = DEV->alloc(sizeof(float));
    DEV->reduce_sum(o, d, 64);
    bad_launch();
}

static void test_fault_names_kernel(void **state) {
    (void)state;
    char buf[4096];
    int status = run_in_child(faulting_child, buf, sizeof buf);
    const char *named = "launch of kernel sgemm_nn failed: invalid configuration argument";
    const char *recent = "sum_kernel, sgemm_nn\n"; /* the newest last (the ring holds the parent's before them) */
    if (!strstr(buf, named) || !strstr(buf, recent) || strstr(buf, "DMZ_CUDA_CHECK=1 checks"))
        fprintf(stderr, "  child stderr:\n%s\n", buf);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(buf, named));
    assert_non_null(strstr(buf, "last kernels launched (oldest first): "));
    assert_non_null(strstr(buf, recent));
    assert_null(strstr(buf, "DMZ_CUDA_CHECK=1 checks")); /* the hint is for runs without it */
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_batch),
        cmocka_unit_test(test_softmax_xent_train),
        cmocka_unit_test(test_adam_update_step),
        cmocka_unit_test(test_dense_forward_relu),
        cmocka_unit_test(test_resident_step_matches_cpu),
        cmocka_unit_test(test_graph_replay_matches_plain),
        cmocka_unit_test(test_two_contexts_two_threads),
        cmocka_unit_test(test_two_models_two_threads),
        cmocka_unit_test(test_runner_device_path),
#if defined(DMZ_TEST_CUDA_GPU) && defined(DMZ_HAVE_CUBLAS)
        cmocka_unit_test(test_cublas_dense_matches_cpu),
#ifdef DMZ_HAVE_CUDNN
        cmocka_unit_test(test_cudnn_ops_match_cpu),
#endif
#endif
#ifndef DMZ_TEST_CUDA_GPU
        cmocka_unit_test(test_launches_per_step),
        cmocka_unit_test(test_fault_names_kernel),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
