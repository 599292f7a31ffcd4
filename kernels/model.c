/* Models as a small layer graph on any backend (as llm.c writes GPT-2): each
 * layer is a record (kind, shapes, offsets into the flat parameter buffer, its
 * activation buffers); the forward pass runs the list in order, the backward
 * pass runs it reversed. ReLU and flatten work in place on their input's
 * buffers, so the mlp makes exactly the op calls it always made. A conv2d
 * followed by a ReLU runs both in one op (conv2d_forward_relu) where the
 * backend has it; the ReLU's backward uses the post-ReLU output as before.
 * A conv, ReLU and 2x2 pool over an even size run as one op where the backend
 * has conv2d_relu_pool_forward: the conv's full-size output is never written,
 * and the pool's backward spreads its gradient by the codes that op kept (for
 * the first layer, straight into the conv's filter gradient). */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

#define MAX_LAYERS 16

typedef enum { L_DENSE, L_CONV2D, L_MAXPOOL, L_RELU, L_FLATTEN, L_SOFTMAX_XENT } layer_kind;

static const char *const kind_names[] = {"dense", "conv2d", "maxpool", "relu", "flatten", "softmax_xent"};

typedef struct layer {
    layer_kind kind;
    int c, h, w;          /* input shape per sample: C x H x W (dense: features x 1 x 1) */
    int oc, oh, ow;       /* output shape per sample */
    int k, pad;           /* conv2d: K x K filters, zero padding */
    size_t w_off, b_off;  /* dense, conv2d: offsets into the flat parameter buffer */
    size_t n_w, n_b;
    float w_stddev;       /* truncated normal (2 sigma) */
    float b_init;         /* constant */
    int in_place;         /* relu, flatten: out/dout are the input's buffers */
    int fused;            /* conv2d: applies the next layer's ReLU itself (conv2d_forward_relu);
                           * relu: done by the conv2d before it (its backward still runs) */
    uint8_t *pool_code;   /* conv2d followed by ReLU and maxpool run as one op (conv2d_relu_pool_forward):
                           * the pool's codes, backend [max_batch][oc*oh*ow/4]; NULL otherwise */
    float *out, *dout;    /* backend [max_batch][oc*oh*ow] and its gradient (a pooled conv: out unused) */
} layer;

struct dmz_model {
    const dmz_backend *be;
    dmz_model_config cfg;
    int n_layers;
    layer layers[MAX_LAYERS];
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v; /* backend, n_params each */
    int step;                                /* Adam's t */
    int batch;                               /* rows in the current batch */
    uint8_t *pixels;                         /* backend: [max_batch][inputs] */
    float *input;                            /* backend: [max_batch][inputs] */
    int32_t *labels;                         /* backend: [max_batch] */
    float *losses;                           /* backend: [B] */
    float *scalars;                          /* backend: [0] loss sum, [1] correct */
    float *work;                             /* backend: conv scratch (largest layer's) */
    size_t work_bytes;
    int32_t *host_labels;
    int count_correct;                       /* forward counts right predictions (default 1) */
    /* the device-resident step (backends with the optional step ops) */
    void *ctx;                               /* the backend's execution context, or NULL */
    dmz_step_state *state;                   /* backend: Adam's t and the data cursor */
    float *loss_log;                         /* backend: [DMZ_MODEL_LOSS_LOG] step losses */
    uint8_t *data_images, *data_labels;      /* backend: the resident training split */
    uint32_t *data_order;                    /* backend: its order for this epoch */
    size_t data_count;
    int advance;                             /* samples the cursor moves per step (the global batch) */
    int train_head;                          /* forward_train computed the loss head's gradient */
    void *graph;                             /* a captured step, or NULL */
};

/* Makes the model's context current on the calling thread (backends with contexts). */
static void use(dmz_model *m) {
    if (m->ctx) m->be->context_use(m->ctx);
}

void dmz_model_config_default(dmz_model_config *cfg, const char *kind, int classes, int max_batch) {
    *cfg = (dmz_model_config){0};
    cfg->kind = kind ? kind : "mlp";
    cfg->inputs = 784;
    cfg->hidden = strcmp(cfg->kind, "cnn") == 0 ? 1024 : 100;
    cfg->classes = classes;
    cfg->max_batch = max_batch;
}

float dmz_model_default_lr(const char *kind) { return kind && strcmp(kind, "cnn") == 0 ? 1e-3f : 0.01f; }

static size_t size_out(const layer *l) { return (size_t)l->oc * l->oh * l->ow; }

/* Appends a layer whose input is the previous layer's output (or the image). */
static layer *push(dmz_model *m, layer_kind kind, int c, int h, int w) {
    layer *l = &m->layers[m->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    if (m->n_layers > 1) {
        const layer *p = l - 1;
        l->c = p->oc, l->h = p->oh, l->w = p->ow;
    } else {
        l->c = c, l->h = h, l->w = w;
    }
    l->oc = l->c, l->oh = l->h, l->ow = l->w;
    return l;
}

static void add_params(dmz_model *m, layer *l, size_t n_w, size_t n_b, float stddev, float b_init) {
    l->n_w = n_w, l->n_b = n_b;
    l->w_off = m->n_params;
    l->b_off = l->w_off + n_w;
    m->n_params = l->b_off + n_b;
    l->w_stddev = stddev, l->b_init = b_init;
}

static void add_dense(dmz_model *m, int out, float stddev, float b_init) {
    layer *l = push(m, L_DENSE, m->cfg.inputs, 1, 1);
    l->c = l->c * l->h * l->w, l->h = l->w = 1;
    l->oc = out;
    add_params(m, l, (size_t)l->c * out, (size_t)out, stddev, b_init);
}

static void add_conv(dmz_model *m, int out, int k, float stddev, float b_init) {
    layer *l = push(m, L_CONV2D, 1, m->cfg.height, m->cfg.width);
    l->k = k, l->pad = (k - 1) / 2;
    l->oc = out, l->oh = l->h + 2 * l->pad - k + 1, l->ow = l->w + 2 * l->pad - k + 1;
    add_params(m, l, (size_t)out * l->c * k * k, (size_t)out, stddev, b_init);
}

static void add_simple(dmz_model *m, layer_kind kind) {
    layer *l = push(m, kind, 1, 1, 1);
    if (kind == L_MAXPOOL) l->oh = dmz_pool_out(l->h), l->ow = dmz_pool_out(l->w);
    if (kind == L_FLATTEN) l->oc = l->c * l->h * l->w, l->oh = l->ow = 1;
    l->in_place = kind == L_RELU || kind == L_FLATTEN;
}

/* TensorFlow's mnist_replica: hidden stddev 1/IMAGE_PIXELS (=1/sqrt(784)),
 * softmax stddev 1/sqrt(hidden_units), zero biases. */
static int build_mlp(dmz_model *m, char *err) {
    const dmz_model_config *c = &m->cfg;
    if (c->inputs <= 0 || c->hidden <= 0 || c->classes < 2 || c->max_batch <= 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "model: bad shape inputs=%d hidden=%d classes=%d batch=%d",
                          c->inputs, c->hidden, c->classes, c->max_batch);
    add_dense(m, c->hidden, 1.0f / sqrtf((float)c->inputs), 0.0f);
    add_simple(m, L_RELU);
    add_dense(m, c->classes, 1.0f / sqrtf((float)c->hidden), 0.0f);
    add_simple(m, L_SOFTMAX_XENT);
    return DMZ_OK;
}

/* The Deep MNIST tutorial's weight_variable / bias_variable: truncated normal
 * stddev 0.1, constant 0.1. */
static int build_cnn(dmz_model *m, char *err) {
    dmz_model_config *c = &m->cfg;
    if (!c->height) c->height = 28;
    if (!c->width) c->width = 28;
    if (!c->conv1) c->conv1 = 32;
    if (!c->conv2) c->conv2 = 64;
    if (!c->kernel) c->kernel = 5;
    if (c->height <= 0 || c->width <= 0 || c->height * c->width != c->inputs || c->kernel % 2 == 0 ||
        c->conv1 <= 0 || c->conv2 <= 0 || c->hidden <= 0 || c->classes < 2 || c->max_batch <= 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "model cnn: bad shape %dx%d (inputs=%d) kernel=%d filters=%d,%d hidden=%d classes=%d "
                          "batch=%d (the kernel must be odd)",
                          c->height, c->width, c->inputs, c->kernel, c->conv1, c->conv2, c->hidden, c->classes,
                          c->max_batch);
    add_conv(m, c->conv1, c->kernel, 0.1f, 0.1f);
    add_simple(m, L_RELU);
    add_simple(m, L_MAXPOOL);
    add_conv(m, c->conv2, c->kernel, 0.1f, 0.1f);
    add_simple(m, L_RELU);
    add_simple(m, L_MAXPOOL);
    add_simple(m, L_FLATTEN);
    add_dense(m, c->hidden, 0.1f, 0.1f);
    add_simple(m, L_RELU);
    add_dense(m, c->classes, 0.1f, 0.1f);
    add_simple(m, L_SOFTMAX_XENT);
    return DMZ_OK;
}

/* The first op a layer needs that this backend lacks, or NULL. */
static const char *missing_op(const dmz_backend *be, layer_kind kind) {
    switch (kind) {
    case L_CONV2D:
        if (!be->conv2d_workspace) return "conv2d_workspace";
        if (!be->conv2d_forward) return "conv2d_forward";
        if (!be->conv2d_backward_data) return "conv2d_backward_data";
        if (!be->conv2d_backward_filter) return "conv2d_backward_filter";
        return NULL;
    case L_MAXPOOL:
        if (!be->maxpool2x2_forward) return "maxpool2x2_forward";
        if (!be->maxpool2x2_backward) return "maxpool2x2_backward";
        return NULL;
    default: return NULL; /* the mlp's ops: every backend has them */
    }
}

static int build_layers(dmz_model *m, char *err) {
    int rc;
    if (strcmp(m->cfg.kind, "mlp") == 0) rc = build_mlp(m, err);
    else if (strcmp(m->cfg.kind, "cnn") == 0) rc = build_cnn(m, err);
    else return dmz_errorf(err, DMZ_EXIT_USAGE, "--model: unknown model '%s' (known: mlp, cnn)", m->cfg.kind);
    if (rc) return rc;
    for (int i = 0; i < m->n_layers; i++) {
        const layer *l = &m->layers[i];
        char why[256];
        if (l->kind == L_MAXPOOL && m->be->maxpool2x2_supports && !m->be->maxpool2x2_supports(l->h, l->w, why, sizeof why))
            return dmz_errorf(err, DMZ_EXIT_USAGE, "--model %s on the %s backend: layer %d (maxpool): %s", m->cfg.kind,
                              m->be->name, i, why);
        const char *op = missing_op(m->be, m->layers[i].kind);
        if (op)
            return dmz_errorf(err, DMZ_EXIT_USAGE,
                              "--model %s: the %s backend has no %s op yet (layer %d, %s); "
                              "use --backend cpu", m->cfg.kind, m->be->name, op, i, kind_names[m->layers[i].kind]);
    }
    for (int i = 0; i + 1 < m->n_layers; i++)
        if (m->layers[i].kind == L_CONV2D && m->layers[i + 1].kind == L_RELU && m->be->conv2d_forward_relu)
            m->layers[i].fused = m->layers[i + 1].fused = 1;
    return DMZ_OK;
}

/* conv2d, ReLU, maxpool over an even size, on a backend with the fused pair:
 * one op forward, the pool's backward from its codes. */
static int pools_in_conv(const dmz_model *m, int i) {
    const layer *l = &m->layers[i];
    return l->kind == L_CONV2D && i + 2 < m->n_layers && l[1].kind == L_RELU && l[2].kind == L_MAXPOOL &&
           l->oh % 2 == 0 && l->ow % 2 == 0 && m->be->conv2d_relu_pool_forward && m->be->maxpool2x2_backward_codes;
}

static dmz_conv_shape conv_shape(const layer *l, int B) {
    return (dmz_conv_shape){.B = B, .C = l->c, .H = l->h, .W = l->w, .OC = l->oc, .K = l->k, .pad = l->pad};
}

static void *balloc(dmz_model *m, size_t bytes, int *failed) {
    void *p = m->be->alloc(bytes);
    if (!p) *failed = 1;
    return p;
}

static int alloc_buffers(dmz_model *m, char *err) {
    int failed = 0;
    if (m->be->context_create) {
        m->ctx = m->be->context_create(err);
        if (!m->ctx) return DMZ_EXIT_FAIL;
        use(m);
    }
    if (dmz_model_resident(m)) {
        m->state = balloc(m, sizeof(dmz_step_state), &failed);
        m->loss_log = balloc(m, DMZ_MODEL_LOSS_LOG * sizeof(float), &failed);
    }
    size_t B = (size_t)m->cfg.max_batch, P = m->n_params * sizeof(float);
    m->params = balloc(m, P, &failed);
    m->grads = balloc(m, P, &failed);
    m->adam_m = balloc(m, P, &failed);
    m->adam_v = balloc(m, P, &failed);
    m->pixels = balloc(m, B * (size_t)m->cfg.inputs, &failed);
    m->input = balloc(m, B * (size_t)m->cfg.inputs * sizeof(float), &failed);
    m->labels = balloc(m, B * sizeof(int32_t), &failed);
    m->losses = balloc(m, B * sizeof(float), &failed);
    m->scalars = balloc(m, 2 * sizeof(float), &failed);
    for (int i = 0; i < m->n_layers; i++) {
        layer *l = &m->layers[i];
        if (l->kind == L_CONV2D) {
            size_t w = m->be->conv2d_workspace(conv_shape(l, m->cfg.max_batch));
            if (w > m->work_bytes) m->work_bytes = w;
        }
        if (l->in_place) {
            l->out = l[-1].out, l->dout = l[-1].dout;
            continue;
        }
        l->out = balloc(m, B * size_out(l) * sizeof(float), &failed);
        l->dout = balloc(m, B * size_out(l) * sizeof(float), &failed);
        if (pools_in_conv(m, i)) l->pool_code = balloc(m, B * size_out(l) / 4, &failed);
    }
    if (m->work_bytes) m->work = balloc(m, m->work_bytes, &failed);
    m->host_labels = calloc(B, sizeof(int32_t));
    if (failed || !m->host_labels)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s backend: out of memory for the model (%zu parameters)",
                          m->be->name, m->n_params);
    return DMZ_OK;
}

int dmz_model_create(const dmz_backend *be, const dmz_model_config *cfg, uint64_t seed,
                     dmz_model **out, char *err) {
    dmz_model *m = calloc(1, sizeof *m);
    if (!m) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    m->be = be;
    m->cfg = *cfg;
    m->count_correct = 1;
    int rc = build_layers(m, err);
    if (rc == DMZ_OK) rc = alloc_buffers(m, err);
    if (rc != DMZ_OK) {
        dmz_model_destroy(m);
        return rc;
    }
    dmz_model_reset(m, seed);
    *out = m;
    return DMZ_OK;
}

void dmz_model_destroy(dmz_model *m) {
    if (!m) return;
    use(m);
    if (m->graph) m->be->graph_destroy(m->graph);
    void *bufs[] = {m->params, m->grads, m->adam_m, m->adam_v, m->pixels, m->input, m->labels, m->losses,
                    m->scalars, m->work, m->state, m->loss_log, m->data_images, m->data_labels, m->data_order};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) m->be->free(bufs[i]);
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].in_place) continue;
        if (m->layers[i].out) m->be->free(m->layers[i].out);
        if (m->layers[i].dout) m->be->free(m->layers[i].dout);
        if (m->layers[i].pool_code) m->be->free(m->layers[i].pool_code);
    }
    free(m->host_labels);
    if (m->ctx) {
        m->be->context_use(NULL);
        m->be->context_destroy(m->ctx);
    }
    free(m);
}

/* Weights from one seeded stream, layer by layer; then the constant biases. */
void dmz_model_reset(dmz_model *m, uint64_t seed) {
    use(m);
    float *host = calloc(m->n_params, sizeof(float));
    if (!host) abort();
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_layers; i++) {
        const layer *l = &m->layers[i];
        for (size_t k = 0; k < l->n_w; k++) host[l->w_off + k] = dmz_rng_truncated_normal(&rng, l->w_stddev);
        for (size_t k = 0; k < l->n_b; k++) host[l->b_off + k] = l->b_init;
    }
    m->be->upload(m->params, host, m->n_params * sizeof(float));
    memset(host, 0, m->n_params * sizeof(float));
    m->be->upload(m->grads, host, m->n_params * sizeof(float));
    m->be->upload(m->adam_m, host, m->n_params * sizeof(float));
    m->be->upload(m->adam_v, host, m->n_params * sizeof(float));
    m->step = 0;
    if (m->state) {
        dmz_step_state st = {0, 0};
        m->be->upload(m->state, &st, sizeof st);
    }
    m->be->sync();
    free(host);
}

size_t dmz_model_num_params(const dmz_model *m) { return m->n_params; }
const dmz_backend *dmz_model_backend(const dmz_model *m) { return m->be; }
float *dmz_model_params(dmz_model *m) { return m->params; }
float *dmz_model_grads(dmz_model *m) { return m->grads; }

void dmz_model_set_batch(dmz_model *m, const uint8_t *images, const uint8_t *labels, int n) {
    if (n > m->cfg.max_batch) abort(); /* a caller bug, not an input error */
    use(m);
    size_t pixels = (size_t)n * m->cfg.inputs;
    for (int i = 0; i < n; i++) m->host_labels[i] = labels[i];
    m->be->upload(m->pixels, images, pixels);
    m->be->upload(m->labels, m->host_labels, (size_t)n * sizeof(int32_t));
    m->be->u8_to_float(m->input, m->pixels, pixels, 1.0f / 255.0f);
    m->batch = n;
}

static void layer_forward(dmz_model *m, layer *l, const float *x) {
    const dmz_backend *be = m->be;
    const float *w = m->params + l->w_off, *b = m->params + l->b_off;
    int B = m->batch;
    switch (l->kind) {
    case L_DENSE: be->dense_forward(l->out, x, w, b, B, l->c, l->oc); break;
    case L_CONV2D:
        if (l->fused) be->conv2d_forward_relu(l->out, x, w, b, conv_shape(l, B), m->work);
        else be->conv2d_forward(l->out, x, w, b, conv_shape(l, B), m->work);
        break;
    case L_MAXPOOL: be->maxpool2x2_forward(l->out, x, B, l->c, l->h, l->w); break;
    case L_RELU:
        if (!l->fused) be->relu_forward(l->out, x, (size_t)B * size_out(l));
        break;
    case L_FLATTEN: break; /* NCHW is already flat */
    case L_SOFTMAX_XENT:
        be->softmax_xent_forward(l->out, m->losses, x, m->labels, B, l->oc);
        be->reduce_sum(&m->scalars[0], m->losses, (size_t)B);
        if (m->count_correct) be->count_correct(&m->scalars[1], l->out, m->labels, B, l->oc);
        break;
    }
}

/* dx is the gradient w.r.t. the layer's input, NULL for the first layer. */
static void layer_backward(dmz_model *m, layer *l, const float *x, float *dx) {
    const dmz_backend *be = m->be;
    const float *w = m->params + l->w_off;
    float *dw = m->grads + l->w_off, *db = m->grads + l->b_off;
    int B = m->batch;
    switch (l->kind) {
    case L_DENSE: be->dense_backward(dx, dw, db, l->dout, x, w, B, l->c, l->oc); break;
    case L_CONV2D:
        be->conv2d_backward_filter(dw, db, l->dout, x, conv_shape(l, B), m->work);
        if (dx) be->conv2d_backward_data(dx, l->dout, w, conv_shape(l, B), m->work);
        break;
    case L_MAXPOOL: be->maxpool2x2_backward(dx, l->dout, x, B, l->c, l->h, l->w); break;
    case L_RELU: be->relu_backward(dx, l->dout, l->out, (size_t)B * size_out(l)); break;
    case L_FLATTEN: break;
    case L_SOFTMAX_XENT: be->softmax_xent_backward(dx, l->out, m->labels, B, l->oc); break;
    }
}

/* The layers up to (not including) `end`; a dense layer followed by a ReLU
 * runs as one op where the backend fuses them (same bits). */
static void forward_layers(dmz_model *m, int end) {
    const float *x = m->input;
    for (int i = 0; i < end; i++) {
        layer *l = &m->layers[i];
        if (l->pool_code && i + 2 < end) { /* conv, ReLU and pool: the pool's output and codes */
            m->be->conv2d_relu_pool_forward(l[2].out, l->pool_code, x, m->params + l->w_off, m->params + l->b_off,
                                            conv_shape(l, m->batch), m->work);
            x = l[2].out;
            i += 2;
            continue;
        }
        if (l->kind == L_DENSE && i + 1 < end && l[1].kind == L_RELU && m->be->dense_forward_relu) {
            m->be->dense_forward_relu(l->out, x, m->params + l->w_off, m->params + l->b_off, m->batch, l->c, l->oc);
            x = l->out;
            i++; /* the ReLU ran in place, in the epilogue */
            continue;
        }
        layer_forward(m, l, x);
        x = l->out;
    }
}

void dmz_model_forward(dmz_model *m) {
    use(m);
    m->train_head = 0;
    forward_layers(m, m->n_layers);
}

void dmz_model_backward(dmz_model *m) {
    use(m);
    for (int i = m->n_layers - 1; i >= 0; i--) {
        layer *l = &m->layers[i];
        const float *x = i > 0 ? l[-1].out : m->input;
        float *dx = i > 0 ? l[-1].dout : NULL;
        if (!dx && l->kind != L_DENSE && l->kind != L_CONV2D) continue; /* nothing below to feed */
        if (l->kind == L_SOFTMAX_XENT && m->train_head) continue;    /* forward_train computed it */
        if (l->kind == L_MAXPOOL && i == 2 && l[-2].pool_code && m->be->conv2d_backward_filter_pooled) {
            /* the first layer's conv needs no input gradient: its filter gradient straight from the pool's */
            const layer *c = &l[-2];
            m->be->conv2d_backward_filter_pooled(m->grads + c->w_off, m->grads + c->b_off, l->dout, c->pool_code,
                                                 m->input, conv_shape(c, m->batch), m->work);
            break;
        }
        if (l->kind == L_MAXPOOL && i >= 2 && l[-2].pool_code) {
            /* the pool fused into the conv: its gradient spread by the codes into the conv's dout */
            m->be->maxpool2x2_backward_codes(l[-2].dout, l->dout, l[-2].pool_code, m->batch, l->c, l->h, l->w);
            i--;
            continue;
        }
        if (l->kind == L_MAXPOOL && i >= 2 && l[-1].kind == L_RELU && m->be->maxpool2x2_backward_relu) {
            /* the pool of a ReLU's output: both backward passes in one op, into the layer below the ReLU */
            m->be->maxpool2x2_backward_relu(l[-2].dout, l->dout, x, m->batch, l->c, l->h, l->w);
            i--;
            continue;
        }
        layer_backward(m, l, x, dx);
    }
}

void dmz_model_update(dmz_model *m, float lr, float beta1, float beta2, float eps) {
    use(m);
    m->step++;
    dmz_adam_params hp = {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .t = m->step};
    if (m->train_head) /* the step number is on the device: a captured step stays right when replayed */
        m->be->adam_update_step(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, hp, m->state);
    else
        m->be->adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, hp);
    m->train_head = 0;
}

float dmz_model_loss(dmz_model *m) {
    use(m);
    float v;
    m->be->download(&v, &m->scalars[0], sizeof v);
    return v;
}

int dmz_model_correct(dmz_model *m) {
    use(m);
    float v;
    m->be->download(&v, &m->scalars[1], sizeof v);
    return (int)v;
}

void dmz_model_set_count_correct(dmz_model *m, int on) { m->count_correct = on; }

/* ---------------------------------------------------------------- the device-resident step */
int dmz_model_resident(const dmz_model *m) {
    const dmz_backend *be = m->be;
    return be->context_create && be->gather_batch && be->softmax_xent_train && be->adam_update_step;
}

int dmz_model_load_data(dmz_model *m, const uint8_t *images, const uint8_t *labels, size_t count, char *err) {
    if (!dmz_model_resident(m))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s backend: no device-resident data path", m->be->name);
    use(m);
    const dmz_backend *be = m->be;
    if (m->data_images) be->free(m->data_images), be->free(m->data_labels), be->free(m->data_order);
    int failed = 0;
    size_t pixels = count * (size_t)m->cfg.inputs;
    m->data_images = balloc(m, pixels, &failed);
    m->data_labels = balloc(m, count, &failed);
    m->data_order = balloc(m, count * sizeof(uint32_t), &failed);
    m->data_count = count;
    if (failed)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s backend: out of memory for the resident data set (%zu samples, %zu bytes)",
                          be->name, count, pixels + count * 5);
    be->upload(m->data_images, images, pixels);
    be->upload(m->data_labels, labels, count);
    be->sync();
    return DMZ_OK;
}

size_t dmz_model_data_count(const dmz_model *m) { return m->data_images ? m->data_count : 0; }

void dmz_model_set_order(dmz_model *m, const uint32_t *order, size_t count) {
    if (count > m->data_count) abort(); /* a caller bug */
    use(m);
    dmz_step_state st = {m->step, 0};
    m->be->upload(m->data_order, order, count * sizeof(uint32_t));
    m->be->upload(m->state, &st, sizeof st);
}

void dmz_model_gather(dmz_model *m, int offset, int n, int advance) {
    if (n > m->cfg.max_batch || !m->data_images) abort(); /* a caller bug */
    use(m);
    m->be->gather_batch(m->input, m->labels, m->data_images, m->data_labels, m->data_order, m->state, offset, n,
                        m->cfg.inputs, 1.0f / 255.0f);
    m->batch = n;
    m->advance = advance;
}

void dmz_model_forward_train(dmz_model *m) {
    use(m);
    int last = m->n_layers - 1;
    const layer *head = &m->layers[last];
    forward_layers(m, last);
    m->be->softmax_xent_train(head[-1].dout, m->loss_log, DMZ_MODEL_LOSS_LOG, head[-1].out, m->labels, m->state,
                              m->advance, m->batch, head->oc);
    m->train_head = 1;
}

int dmz_model_step_losses(dmz_model *m, int first, int n, float *out) {
    if (n <= 0) return 0;
    if (n > DMZ_MODEL_LOSS_LOG || first < 0 || first + n > m->step) return -1;
    use(m);
    int k = first % DMZ_MODEL_LOSS_LOG, head = n < DMZ_MODEL_LOSS_LOG - k ? n : DMZ_MODEL_LOSS_LOG - k;
    m->be->download(out, m->loss_log + k, (size_t)head * sizeof(float));
    if (head < n) m->be->download(out + head, m->loss_log, (size_t)(n - head) * sizeof(float));
    return 0;
}

int dmz_model_capture_step(dmz_model *m, int offset, int n, int advance, float lr, float beta1, float beta2,
                           float eps, char *err) {
    const dmz_backend *be = m->be;
    if (!dmz_model_resident(m) || !be->graph_begin)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--graph: the %s backend cannot capture a step", be->name);
    use(m);
    if (m->graph) be->graph_destroy(m->graph), m->graph = NULL;
    int rc = be->graph_begin(err);
    if (rc) return rc;
    int step = m->step;
    dmz_model_gather(m, offset, n, advance);
    dmz_model_forward_train(m);
    dmz_model_backward(m);
    dmz_model_update(m, lr, beta1, beta2, eps);
    m->step = step; /* nothing ran: the captured ops run at each replay */
    m->graph = be->graph_end(err);
    return m->graph ? DMZ_OK : DMZ_EXIT_FAIL;
}

void dmz_model_replay_step(dmz_model *m) {
    if (!m->graph) abort(); /* a caller bug */
    use(m);
    m->be->graph_launch(m->graph);
    m->step++;
}

void dmz_model_sync(dmz_model *m) {
    use(m);
    m->be->sync();
}

void dmz_model_get_params(dmz_model *m, float *host) {
    use(m);
    m->be->download(host, m->params, m->n_params * sizeof(float));
}

void dmz_model_set_params(dmz_model *m, const float *host) {
    use(m);
    m->be->upload(m->params, host, m->n_params * sizeof(float));
}

void dmz_model_get_grads(dmz_model *m, float *host) {
    use(m);
    m->be->download(host, m->grads, m->n_params * sizeof(float));
}

void dmz_model_evaluate(dmz_model *m, const uint8_t *images, const uint8_t *labels, size_t n,
                        dmz_eval *out) {
    double loss = 0.0;
    size_t correct = 0, B = (size_t)m->cfg.max_batch;
    int counting = m->count_correct;
    m->count_correct = 1;
    for (size_t start = 0; start < n; start += B) {
        int rows = (int)(n - start < B ? n - start : B);
        dmz_model_set_batch(m, images + start * (size_t)m->cfg.inputs, labels + start, rows);
        dmz_model_forward(m);
        float sc[2]; /* loss sum and correct rows: one read back */
        m->be->download(sc, m->scalars, sizeof sc);
        loss += sc[0];
        correct += (size_t)(int)sc[1];
    }
    m->count_correct = counting;
    out->samples = n;
    out->loss = n ? loss / (double)n : NAN;
    out->accuracy = n ? (double)correct / (double)n : NAN;
}
