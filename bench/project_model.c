/* bench/project_model.c — what one training step of each model asks of a
 * device: FLOPs, bytes moved to and from memory, and kernel launches, per op
 * of the layer graph (kernels/model.h), for the coarse projection that a run
 * without kernels.csv gets.
 *
 * Counts: a dense layer's forward is 2*B*in*out FLOPs (a multiply and an add
 * per weight per sample), its backward twice that (dX and dW; the first layer
 * needs no dX); a 'same' KxK convolution is 2*B*Cout*H*W*Cin*K*K, its two
 * backward passes the same each (conv1 has no input gradient). Bytes: each
 * operand read once and each result written once, in float32 (the input
 * pixels in 8 bits), as a kernel with perfect reuse would; im2col
 * workspaces, caches and recomputation are not counted. Adam reads the
 * parameters, gradients and both moments and writes three of them (28 bytes
 * and about 12 FLOPs per parameter). */
#include "bench/compare_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct op_list {
    prj_kernel *k;
    int n, cap;
} op_list;

static void add(op_list *l, const char *name, double calls, double flops, double bytes) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        prj_kernel *grown = realloc(l->k, (size_t)cap * sizeof *grown);
        if (!grown) return;
        l->k = grown, l->cap = cap;
    }
    prj_kernel *k = &l->k[l->n++];
    memset(k, 0, sizeof *k);
    rpt_copy(k->name, sizeof k->name, name);
    rpt_copy(k->kind, sizeof k->kind, "kernel");
    k->calls = calls, k->flops = flops, k->bytes = bytes;
}

static void dense(op_list *l, const char *name, double B, double in, double out, bool first) {
    char text[160];
    snprintf(text, sizeof text, "%s forward (dense %gx%g)", name, in, out);
    add(l, text, 2, 2 * B * in * out + B * out, 4 * (B * in + in * out + out + B * out));
    snprintf(text, sizeof text, "%s backward (dense %gx%g%s)", name, in, out, first ? ", no dX" : "");
    double flops = (first ? 2 : 4) * B * in * out + B * out;
    double bytes = 4 * (B * out + B * in + 2 * in * out + out + (first ? 0 : B * in + in * out));
    add(l, text, first ? 2 : 3, flops, bytes);
}

static void elementwise(op_list *l, const char *name, double n, double reads, double writes) {
    add(l, name, 1, n, 4 * n * (reads + writes));
}

static void conv(op_list *l, const char *name, double B, double cin, double cout, double h,
                 double w, double k, bool first) {
    char text[160];
    double flops = 2 * B * cout * h * w * cin * k * k;
    double bytes = 4 * (B * cin * h * w + cout * cin * k * k + cout + B * cout * h * w);
    snprintf(text, sizeof text, "%s forward (conv %gx%g %g->%g, %gx%g)", name, k, k, cin, cout, h, w);
    add(l, text, 2, flops + B * cout * h * w, bytes);
    snprintf(text, sizeof text, "%s backward filter", name);
    add(l, text, 2, flops + B * cout * h * w, bytes);
    if (!first) {
        snprintf(text, sizeof text, "%s backward data", name);
        add(l, text, 2, flops, bytes);
    }
}

static void pool(op_list *l, const char *name, double B, double c, double h, double w) {
    char text[160];
    double n = B * c * h * w;
    snprintf(text, sizeof text, "%s forward (maxpool 2x2)", name);
    add(l, text, 1, n, 4 * (n + n / 4));
    snprintf(text, sizeof text, "%s backward", name);
    add(l, text, 1, n, 4 * (n / 4 + 2 * n));
}

static void head(op_list *l, double B, double C) {
    add(l, "softmax_xent forward", 1, 5 * B * C, 4 * (2 * B * C + B) + 4 * B);
    add(l, "loss sum and correct count", 2, B + B * C, 4 * (B + B * C) + 4 * B);
    add(l, "softmax_xent backward", 1, B * C, 4 * 2 * B * C + 4 * B);
}

int prj_model_ops(const char *model, long batch, int classes, prj_kernel **out, int *n,
                  char *err) {
    op_list l = {0};
    double B = (double)batch, C = classes > 0 ? classes : 47, P;
    if (batch <= 0) return dmz_errorf(err, DMZ_EXIT_USAGE, "the run records no batch size");
    if (strcmp(model, "mlp") == 0) {
        const double I = 784, H = 100;
        add(&l, "u8_to_float (pixels / 255)", 1, B * I, 5 * B * I);
        dense(&l, "dense1", B, I, H, true);
        elementwise(&l, "relu forward", B * H, 1, 1);
        dense(&l, "dense2", B, H, C, false);
        head(&l, B, C);
        elementwise(&l, "relu backward", B * H, 2, 1);
        P = I * H + H + H * C + C;
    } else if (strcmp(model, "cnn") == 0) {
        add(&l, "u8_to_float (pixels / 255)", 1, B * 784, 5 * B * 784);
        conv(&l, "conv1", B, 1, 32, 28, 28, 5, true);
        elementwise(&l, "relu1 forward", B * 32 * 784, 1, 1);
        elementwise(&l, "relu1 backward", B * 32 * 784, 2, 1);
        pool(&l, "pool1", B, 32, 28, 28);
        conv(&l, "conv2", B, 32, 64, 14, 14, 5, false);
        elementwise(&l, "relu2 forward", B * 64 * 196, 1, 1);
        elementwise(&l, "relu2 backward", B * 64 * 196, 2, 1);
        pool(&l, "pool2", B, 64, 14, 14);
        dense(&l, "fc1", B, 3136, 1024, false);
        elementwise(&l, "relu3 forward", B * 1024, 1, 1);
        elementwise(&l, "relu3 backward", B * 1024, 2, 1);
        dense(&l, "fc2", B, 1024, C, false);
        head(&l, B, C);
        P = 32 * 25 + 32 + 64 * 32 * 25 + 64 + 3136 * 1024 + 1024 + 1024 * C + C;
    } else {
        return dmz_errorf(err, DMZ_EXIT_USAGE, "model '%s' has no known FLOP and byte counts "
                          "(known: mlp, cnn)", model[0] ? model : "(not recorded)");
    }
    add(&l, "adam_update", 1, 12 * P, 28 * P);
    if (!l.k) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    *out = l.k;
    *n = l.n;
    return DMZ_OK;
}
