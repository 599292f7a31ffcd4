#include "cpu_ops.h"

void cpu_reduce_sum(float *out, const float *in, size_t n) {
    double s = 0.0; /* sequential, in double: the reference value */
    for (size_t i = 0; i < n; i++) s += in[i];
    out[0] = (float)s;
}

/* argmax takes the first maximum, as numpy and TensorFlow do. */
void cpu_count_correct(float *out, const float *probs, const int32_t *labels, int B, int V) {
    int correct = 0;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * V;
        int best = 0;
        for (int i = 1; i < V; i++)
            if (p[i] > p[best]) best = i;
        correct += best == labels[b];
    }
    out[0] = (float)correct;
}
