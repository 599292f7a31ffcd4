#include "cpu_ops.h"

void cpu_u8_to_float(float *out, const uint8_t *in, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) out[i] = (float)in[i] * scale;
}
