/* tests/bench_data.c — how fast data gets in: Kaggle CSV parse speed and
 * cache-load time at EMNIST Balanced's size (`make bench-data`).
 *
 * Writes an EMNIST-sized CSV pair (112,800 + 18,800 rows) from synthetic
 * images (mostly zeros, like EMNIST) into a temporary directory, times the
 * loads, checks that every path gave the same bytes, and deletes the files. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/dmz.h"
#include "datasets/datasets.h"

enum { TRAIN_ROWS = 112800, TEST_ROWS = 18800, REPEATS = 3 };

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Rows as Kaggle writes them: label, then the image transposed (EMNIST's order). */
static int write_csv(const char *path, const uint8_t *images, const uint8_t *labels, size_t rows) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char text[256][8], line[4 * (DMZ_IMG_PIXELS + 1) + 2];
    for (int v = 0; v < 256; v++) snprintf(text[v], sizeof text[v], ",%d", v);
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *img = images + r * DMZ_IMG_PIXELS;
        size_t n = (size_t)sprintf(line, "%d", labels[r]);
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) {
            const char *t = text[img[(p % DMZ_IMG_SIDE) * DMZ_IMG_SIDE + p / DMZ_IMG_SIDE]];
            size_t len = strlen(t);
            memcpy(line + n, t, len);
            n += len;
        }
        line[n++] = '\n';
        fwrite(line, 1, n, f);
    }
    return fclose(f);
}

static double file_mb(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
}

static double best_csv_parse(const char *train, const char *test, dmz_owned_split *keep) {
    double best = 1e30;
    for (int i = 0; i < REPEATS; i++) {
        dmz_owned_split a, b;
        char err[DMZ_ERR_LEN];
        double t = dmz_now_s();
        if (dmz_csv_read(train, 47, true, &a, err) || dmz_csv_read(test, 47, true, &b, err)) {
            fprintf(stderr, "bench_data: %s\n", err);
            exit(1);
        }
        t = dmz_now_s() - t;
        best = t < best ? t : best;
        dmz_split_free(&b);
        if (i == 0) *keep = a;
        else dmz_split_free(&a);
    }
    return best;
}

static double timed_load(const char *spec, const char *data_dir, bool use_cache, dmz_dataset *ds) {
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.data_dir = data_dir;
    opt.use_cache = use_cache;
    char err[DMZ_ERR_LEN];
    if (dmz_dataset_load(spec, &opt, ds, err) != DMZ_OK) {
        fprintf(stderr, "bench_data: %s\n", err);
        exit(1);
    }
    return ds->load_s;
}

static double best_load_without_cache(const char *spec, const char *data_dir) {
    double best = 1e30;
    for (int i = 0; i < REPEATS; i++) {
        dmz_dataset ds;
        double t = timed_load(spec, data_dir, false, &ds);
        best = t < best ? t : best;
        dmz_dataset_free(&ds);
    }
    return best;
}

static bool same_data(const dmz_dataset *a, const dmz_dataset *b) {
    return a->train.count == b->train.count && a->test.count == b->test.count &&
           memcmp(a->train.images, b->train.images, a->train.count * DMZ_IMG_PIXELS) == 0 &&
           memcmp(a->train.labels, b->train.labels, a->train.count) == 0 &&
           memcmp(a->test.images, b->test.images, a->test.count * DMZ_IMG_PIXELS) == 0 &&
           strcmp(a->sha256, b->sha256) == 0;
}

static void row(const char *what, double s, double mb, double rows) {
    if (mb > 0) printf("  %-28s %9.3f %9.1f %11.0f\n", what, s, mb / s, rows / s);
    else printf("  %-28s %9.3f %9s %11.0f\n", what, s, "-", rows / s);
}

int main(void) {
    char dir[] = "/tmp/dmz_bench_data_XXXXXX", train[256], test[256], data_dir[256];
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", dir);
    snprintf(test, sizeof test, "%s/emnist-balanced-test.csv", dir);
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    dmz_owned_split src;
    dmz_synthetic_make(1, TRAIN_ROWS + TEST_ROWS, DMZ_EMNIST_BALANCED_CLASSES, &src);
    if (!src.images || write_csv(train, src.images, src.labels, TRAIN_ROWS) ||
        write_csv(test, src.images + (size_t)TRAIN_ROWS * DMZ_IMG_PIXELS, src.labels + TRAIN_ROWS, TEST_ROWS))
        return fprintf(stderr, "bench_data: cannot write the CSV files in %s\n", dir), 1;
    double mb = file_mb(train) + file_mb(test), rows = TRAIN_ROWS + TEST_ROWS;

    dmz_owned_split parsed;
    double parse_s = best_csv_parse(train, test, &parsed);
    bool parse_ok = memcmp(parsed.images, src.images, (size_t)TRAIN_ROWS * DMZ_IMG_PIXELS) == 0 &&
                    memcmp(parsed.labels, src.labels, TRAIN_ROWS) == 0;
    dmz_split_free(&parsed);
    dmz_split_free(&src);
    double nocache_s = best_load_without_cache(train, data_dir);
    dmz_dataset first, second;
    double build_s = timed_load(train, data_dir, true, &first);
    double cached_s = timed_load(train, data_dir, true, &second);
    bool cache_ok = !first.from_cache && second.from_cache && same_data(&first, &second);

    printf("# dmzbench bench_data: EMNIST-sized Kaggle CSV, %d + %d rows, %.1f MB, in %s\n", TRAIN_ROWS, TEST_ROWS,
           mb, dir);
    printf("# sha256 %s\n#\n", first.sha256);
    printf("# %-28s %9s %9s %11s\n", "step", "time", "rate", "rate");
    printf("# %-28s %9s %9s %11s\n", "", "s", "MB/s", "rows/s");
    row("csv parse (best of 3)", parse_s, mb, rows);
    row("load, no cache (best of 3)", nocache_s, mb, rows);
    row("load + cache build", build_s, mb, rows);
    row("load from cache", cached_s, 0, rows);
    printf("# parsed bytes match the source: %s; cached load matches: %s\n", parse_ok ? "yes" : "NO",
           cache_ok ? "yes" : "NO");
    dmz_dataset_free(&first);
    dmz_dataset_free(&second);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return parse_ok && cache_ok ? 0 : 1;
}
