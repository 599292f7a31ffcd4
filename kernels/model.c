/* The paper's mlp on any backend: dense(784->100)+ReLU -> dense(100->C) ->
 * softmax + clipped cross-entropy summed over the batch, Adam. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

#define MAX_LAYERS 4

typedef struct dense_layer {
    int in, out;
    size_t w_off, b_off;   /* offsets into the flat parameter buffer */
    float init_stddev;     /* truncated normal; biases start at zero */
    int relu;              /* ReLU after this layer */
    float *act;            /* backend: [B][out], activations after ReLU if any */
    float *dact;           /* backend: [B][out], gradient w.r.t. act */
} dense_layer;

struct dmz_model {
    const dmz_backend *be;
    dmz_model_config cfg;
    int n_layers;
    dense_layer layers[MAX_LAYERS];
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v; /* backend, n_params each */
    int step;                                /* Adam's t */
    int batch;                               /* rows in the current batch */
    uint8_t *pixels;                         /* backend: [max_batch][inputs] */
    float *input;                            /* backend: [max_batch][inputs] */
    int32_t *labels;                         /* backend: [max_batch] */
    float *probs, *losses;                   /* backend: [B][classes], [B] */
    float *scalars;                          /* backend: [0] loss sum, [1] correct */
    int32_t *host_labels;
};

void dmz_model_config_default(dmz_model_config *cfg, const char *kind, int classes, int max_batch) {
    cfg->kind = kind ? kind : "mlp";
    cfg->inputs = 784;
    cfg->hidden = 100;
    cfg->classes = classes;
    cfg->max_batch = max_batch;
}

static void add_dense(dmz_model *m, int in, int out, float stddev, int relu) {
    dense_layer *l = &m->layers[m->n_layers++];
    l->in = in;
    l->out = out;
    l->init_stddev = stddev;
    l->relu = relu;
    l->w_off = m->n_params;
    l->b_off = l->w_off + (size_t)in * out;
    m->n_params = l->b_off + (size_t)out;
}

/* TensorFlow's mnist_replica: hidden stddev 1/IMAGE_PIXELS (=1/sqrt(784)),
 * softmax stddev 1/sqrt(hidden_units). */
static int build_layers(dmz_model *m, char *err) {
    const dmz_model_config *c = &m->cfg;
    if (strcmp(c->kind, "mlp") != 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "--model: '%s' is not built yet (this build has the paper's mlp)", c->kind);
    if (c->inputs <= 0 || c->hidden <= 0 || c->classes < 2 || c->max_batch <= 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "model: bad shape inputs=%d hidden=%d classes=%d batch=%d",
                          c->inputs, c->hidden, c->classes, c->max_batch);
    add_dense(m, c->inputs, c->hidden, 1.0f / sqrtf((float)c->inputs), 1);
    add_dense(m, c->hidden, c->classes, 1.0f / sqrtf((float)c->hidden), 0);
    return DMZ_OK;
}

static void *balloc(dmz_model *m, size_t bytes, int *failed) {
    void *p = m->be->alloc(bytes);
    if (!p) *failed = 1;
    return p;
}

static int alloc_buffers(dmz_model *m, char *err) {
    int failed = 0;
    size_t B = (size_t)m->cfg.max_batch, P = m->n_params * sizeof(float);
    m->params = balloc(m, P, &failed);
    m->grads = balloc(m, P, &failed);
    m->adam_m = balloc(m, P, &failed);
    m->adam_v = balloc(m, P, &failed);
    m->pixels = balloc(m, B * (size_t)m->cfg.inputs, &failed);
    m->input = balloc(m, B * (size_t)m->cfg.inputs * sizeof(float), &failed);
    m->labels = balloc(m, B * sizeof(int32_t), &failed);
    m->probs = balloc(m, B * (size_t)m->cfg.classes * sizeof(float), &failed);
    m->losses = balloc(m, B * sizeof(float), &failed);
    m->scalars = balloc(m, 2 * sizeof(float), &failed);
    for (int i = 0; i < m->n_layers; i++) {
        dense_layer *l = &m->layers[i];
        l->act = balloc(m, B * (size_t)l->out * sizeof(float), &failed);
        l->dact = balloc(m, B * (size_t)l->out * sizeof(float), &failed);
    }
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
    void *bufs[] = {m->params, m->grads, m->adam_m, m->adam_v, m->pixels, m->input,
                    m->labels, m->probs, m->losses, m->scalars};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) m->be->free(bufs[i]);
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].act) m->be->free(m->layers[i].act);
        if (m->layers[i].dact) m->be->free(m->layers[i].dact);
    }
    free(m->host_labels);
    free(m);
}

void dmz_model_reset(dmz_model *m, uint64_t seed) {
    float *host = calloc(m->n_params, sizeof(float));
    if (!host) abort();
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_layers; i++) {
        const dense_layer *l = &m->layers[i];
        size_t nw = (size_t)l->in * l->out;
        for (size_t k = 0; k < nw; k++) host[l->w_off + k] = dmz_rng_truncated_normal(&rng, l->init_stddev);
    }
    m->be->upload(m->params, host, m->n_params * sizeof(float));
    memset(host, 0, m->n_params * sizeof(float));
    m->be->upload(m->grads, host, m->n_params * sizeof(float));
    m->be->upload(m->adam_m, host, m->n_params * sizeof(float));
    m->be->upload(m->adam_v, host, m->n_params * sizeof(float));
    m->be->sync();
    free(host);
    m->step = 0;
}

size_t dmz_model_num_params(const dmz_model *m) { return m->n_params; }
const dmz_backend *dmz_model_backend(const dmz_model *m) { return m->be; }
float *dmz_model_params(dmz_model *m) { return m->params; }
float *dmz_model_grads(dmz_model *m) { return m->grads; }

void dmz_model_set_batch(dmz_model *m, const uint8_t *images, const uint8_t *labels, int n) {
    if (n > m->cfg.max_batch) abort(); /* a caller bug, not an input error */
    size_t pixels = (size_t)n * m->cfg.inputs;
    for (int i = 0; i < n; i++) m->host_labels[i] = labels[i];
    m->be->upload(m->pixels, images, pixels);
    m->be->upload(m->labels, m->host_labels, (size_t)n * sizeof(int32_t));
    m->be->u8_to_float(m->input, m->pixels, pixels, 1.0f / 255.0f);
    m->batch = n;
}

void dmz_model_forward(dmz_model *m) {
    const dmz_backend *be = m->be;
    const float *x = m->input;
    for (int i = 0; i < m->n_layers; i++) {
        dense_layer *l = &m->layers[i];
        be->dense_forward(l->act, x, m->params + l->w_off, m->params + l->b_off, m->batch, l->in, l->out);
        if (l->relu) be->relu_forward(l->act, l->act, (size_t)m->batch * l->out);
        x = l->act;
    }
    be->softmax_xent_forward(m->probs, m->losses, x, m->labels, m->batch, m->cfg.classes);
    be->reduce_sum(&m->scalars[0], m->losses, (size_t)m->batch);
    be->count_correct(&m->scalars[1], m->probs, m->labels, m->batch, m->cfg.classes);
}

void dmz_model_backward(dmz_model *m) {
    const dmz_backend *be = m->be;
    int last = m->n_layers - 1;
    be->softmax_xent_backward(m->layers[last].dact, m->probs, m->labels, m->batch, m->cfg.classes);
    for (int i = last; i >= 0; i--) {
        dense_layer *l = &m->layers[i];
        if (l->relu) be->relu_backward(l->dact, l->dact, l->act, (size_t)m->batch * l->out);
        const float *inp = i > 0 ? m->layers[i - 1].act : m->input;
        float *dinp = i > 0 ? m->layers[i - 1].dact : NULL;
        be->dense_backward(dinp, m->grads + l->w_off, m->grads + l->b_off, l->dact, inp,
                           m->params + l->w_off, m->batch, l->in, l->out);
    }
}

void dmz_model_update(dmz_model *m, float lr, float beta1, float beta2, float eps) {
    m->step++;
    dmz_adam_params hp = {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .t = m->step};
    m->be->adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, hp);
}

float dmz_model_loss(dmz_model *m) {
    float v;
    m->be->download(&v, &m->scalars[0], sizeof v);
    return v;
}

int dmz_model_correct(dmz_model *m) {
    float v;
    m->be->download(&v, &m->scalars[1], sizeof v);
    return (int)v;
}

void dmz_model_get_params(dmz_model *m, float *host) {
    m->be->download(host, m->params, m->n_params * sizeof(float));
}

void dmz_model_set_params(dmz_model *m, const float *host) {
    m->be->upload(m->params, host, m->n_params * sizeof(float));
}

void dmz_model_get_grads(dmz_model *m, float *host) {
    m->be->download(host, m->grads, m->n_params * sizeof(float));
}

void dmz_model_evaluate(dmz_model *m, const uint8_t *images, const uint8_t *labels, size_t n,
                        dmz_eval *out) {
    double loss = 0.0;
    size_t correct = 0, B = (size_t)m->cfg.max_batch;
    for (size_t start = 0; start < n; start += B) {
        int rows = (int)(n - start < B ? n - start : B);
        dmz_model_set_batch(m, images + start * (size_t)m->cfg.inputs, labels + start, rows);
        dmz_model_forward(m);
        loss += dmz_model_loss(m);
        correct += (size_t)dmz_model_correct(m);
    }
    out->samples = n;
    out->loss = n ? loss / (double)n : NAN;
    out->accuracy = n ? (double)correct / (double)n : NAN;
}
