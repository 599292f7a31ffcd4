/* Softmax followed by TensorFlow's clipped cross-entropy, the loss of the
 * paper's model: loss_b = -log(clip(softmax(logits_b)[label_b], 1e-10, 1)). */
#include "cpu_ops.h"

#include <math.h>

void cpu_softmax_xent_forward(float *probs, float *losses, const float *logits,
                              const int32_t *labels, int B, int V) {
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * V;
        float *p = probs + (size_t)b * V;
        float maxz = z[0];
        for (int i = 1; i < V; i++) maxz = z[i] > maxz ? z[i] : maxz;
        float sum = 0.0f;
        for (int i = 0; i < V; i++) {
            p[i] = expf(z[i] - maxz);
            sum += p[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < V; i++) p[i] *= inv;
        float pl = p[labels[b]];
        if (pl < DMZ_PROB_CLIP_MIN) pl = DMZ_PROB_CLIP_MIN;
        if (pl > 1.0f) pl = 1.0f;
        losses[b] = -logf(pl);
    }
}

/* d(-log p_y)/dz_i = p_i - [i == y]. TensorFlow's clip_by_value passes the
 * gradient only where p_y lies inside [1e-10, 1]; below it the row gets none. */
void cpu_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                               int B, int V) {
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * V;
        float *d = dlogits + (size_t)b * V;
        int y = labels[b];
        if (p[y] < DMZ_PROB_CLIP_MIN) {
            for (int i = 0; i < V; i++) d[i] = 0.0f;
            continue;
        }
        for (int i = 0; i < V; i++) d[i] = p[i];
        d[y] -= 1.0f;
    }
}
