/* datasets/synthetic.c — a deterministic, learnable stand-in with EMNIST's shapes.
 *
 * Each class is a fixed prototype of a few thick pen strokes drawn from the
 * seed; each sample is its class's prototype shifted by up to 2 px, with its ink
 * scaled, its stroke pixels jittered and a few faint specks in the background.
 * Sample i depends only on (seed, i), so the set is the same on every machine
 * and whatever the number of threads. Integer arithmetic after the prototypes. */
#include "datasets/internal.h"
#include "common/dmz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { STROKES = 3, MAX_SHIFT = 2 };

static double distance_to_segment(double px, double py, const double s[4]) {
    double dx = s[2] - s[0], dy = s[3] - s[1];
    double len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? ((px - s[0]) * dx + (py - s[1]) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = px - (s[0] + t * dx), ey = py - (s[1] + t * dy);
    return sqrt(ex * ex + ey * ey);
}

/* A pen of radius ~1.5 px with a soft one-pixel edge. */
static void draw_prototype(dmz_rng *rng, uint8_t *img) {
    double strokes[STROKES][4];
    for (int s = 0; s < STROKES; s++)
        for (int k = 0; k < 4; k++) strokes[s][k] = 5 + 18 * dmz_rng_uniform(rng);
    for (int y = 0; y < DMZ_IMG_SIDE; y++)
        for (int x = 0; x < DMZ_IMG_SIDE; x++) {
            double d = 1e9;
            for (int s = 0; s < STROKES; s++) {
                double ds = distance_to_segment(x, y, strokes[s]);
                if (ds < d) d = ds;
            }
            double ink = d <= 1.0 ? 1.0 : d >= 2.0 ? 0.0 : 2.0 - d;
            img[y * DMZ_IMG_SIDE + x] = (uint8_t)lround(255.0 * ink);
        }
}

static uint8_t *make_prototypes(uint64_t seed, int num_classes) {
    uint8_t *protos = malloc((size_t)num_classes * DMZ_IMG_PIXELS);
    if (!protos) return NULL;
    dmz_rng rng;
    dmz_rng_seed(&rng, seed ^ 0x5eed0f9707077e5ULL);
    for (int c = 0; c < num_classes; c++) draw_prototype(&rng, protos + (size_t)c * DMZ_IMG_PIXELS);
    return protos;
}

static void make_sample(uint64_t seed, size_t i, int num_classes, const uint8_t *protos, uint8_t *img,
                        uint8_t *label) {
    dmz_rng rng;
    dmz_rng_seed(&rng, seed * 0x9E3779B97F4A7C15ULL + i);
    int c = (int)dmz_rng_below(&rng, (uint32_t)num_classes);
    int dx = (int)dmz_rng_below(&rng, 2 * MAX_SHIFT + 1) - MAX_SHIFT;
    int dy = (int)dmz_rng_below(&rng, 2 * MAX_SHIFT + 1) - MAX_SHIFT;
    int gain = 160 + (int)dmz_rng_below(&rng, 96); /* ink strength, /256 */
    const uint8_t *proto = protos + (size_t)c * DMZ_IMG_PIXELS;
    uint64_t bits = 0;
    for (int p = 0; p < DMZ_IMG_PIXELS; p++) {
        if (p % 8 == 0) bits = dmz_rng_next(&rng);
        int noise = (int)(bits & 0xff);
        bits >>= 8;
        int y = p / DMZ_IMG_SIDE - dy, x = p % DMZ_IMG_SIDE - dx;
        bool inside = y >= 0 && y < DMZ_IMG_SIDE && x >= 0 && x < DMZ_IMG_SIDE;
        int v = inside ? proto[y * DMZ_IMG_SIDE + x] * gain / 256 : 0;
        if (v > 0) v += (noise & 31) - 16;            /* uneven ink */
        else if (noise < 6) v = 8 * (noise + 1);      /* a faint speck, 6 in 256 pixels */
        img[p] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    *label = (uint8_t)c;
}

/* Out of memory leaves out empty (images NULL): the caller reports it. */
void dmz_synthetic_make(uint64_t seed, size_t count, int num_classes, dmz_owned_split *out) {
    memset(out, 0, sizeof *out);
    if (num_classes < 1) num_classes = 1;
    if (num_classes > 256) num_classes = 256;
    out->images = malloc(count * DMZ_IMG_PIXELS + 1);
    out->labels = malloc(count + 1);
    uint8_t *protos = make_prototypes(seed, num_classes);
    if (!out->images || !out->labels || !protos) {
        free(protos);
        dmz_split_free(out);
        return;
    }
    out->count = count;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++)
        make_sample(seed, i, num_classes, protos, out->images + i * DMZ_IMG_PIXELS, out->labels + i);
    free(protos);
}
