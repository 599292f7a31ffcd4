/* datasets/datasets.h — the front door of datasets/: find, load, validate and
 * cache image-classification data (EMNIST Balanced, Fashion-MNIST, synthetic).
 *
 * Every split is held as 8-bit pixels, count x 28 x 28, row-major in MNIST's
 * orientation (row = y): EMNIST's transposed images are turned once, at load.
 * Labels are 8-bit class indices < num_classes. */
#ifndef DMZ_DATASETS_H
#define DMZ_DATASETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMZ_IMG_SIDE 28
#define DMZ_IMG_PIXELS (DMZ_IMG_SIDE * DMZ_IMG_SIDE)
#define DMZ_EMNIST_BALANCED_CLASSES 47

typedef struct dmz_split {
    size_t count;
    const uint8_t *images; /* count x DMZ_IMG_PIXELS */
    const uint8_t *labels; /* count */
} dmz_split;

typedef struct dmz_dataset {
    char name[64];        /* "emnist-balanced", "fashion-mnist", "synthetic" */
    char source[4096];    /* the file or directory it was read from */
    char format[16];      /* "csv", "idx", "synthetic"; how the source was stored */
    char sha256[65];      /* identity of the source: SHA-256 over its files (see datasets.c) */
    bool from_cache;      /* this load came from the binary cache */
    bool fallback;        /* not what was asked for (EMNIST missing) */
    char fallback_reason[512];
    int num_classes;
    dmz_split train, test;
    double load_s;        /* seconds this load took */
    void *priv_;          /* owned memory or mapping */
} dmz_dataset;

typedef struct dmz_load_options {
    const char *data_dir;     /* cache and fetched files; NULL: $DMZBENCH_DATA_DIR or datasets/cache */
    bool allow_fallback;      /* emnist-balanced missing -> Fashion-MNIST from the Debian package */
    bool use_cache;           /* read/write the binary cache (default true) */
    uint64_t synthetic_seed;  /* for "synthetic" */
    size_t synthetic_train;   /* 0: EMNIST's 112800 */
    size_t synthetic_test;    /* 0: EMNIST's 18800 */
} dmz_load_options;

void dmz_load_options_default(dmz_load_options *opt);

/* spec: "emnist-balanced", "fashion-mnist", "synthetic", or a PATH (a Kaggle CSV
 * train file, its test file found beside it by name; a directory holding CSV or
 * IDX files; an IDX images file, labels found beside it). Returns DMZ_OK, or
 * DMZ_EXIT_USAGE with a message naming file, line and field. */
int dmz_dataset_load(const char *spec, const dmz_load_options *opt, dmz_dataset *out, char *err);
void dmz_dataset_free(dmz_dataset *ds);

/* The data directory in force: opt/env/default. */
const char *dmz_data_dir(const char *explicit_dir);
/* It is the built-in default (the only one dmzbench creates when missing). */
bool dmz_data_dir_is_default(const char *explicit_dir);

/* Lower-level readers, exposed for tests and benchmarks. Each fills a split it
 * owns (free with dmz_split_free). num_classes 0: any label 0..255 (the caller
 * infers the classes). The binary cache lives in <data_dir>/dmzc/ (cache.c). */
typedef struct dmz_owned_split {
    size_t count;
    uint8_t *images;
    uint8_t *labels;
} dmz_owned_split;
void dmz_split_free(dmz_owned_split *s);

/* Kaggle CSV: no header, label,p0..p783, via libcsv; strict validation.
 * transpose: EMNIST stores images transposed; turn them to MNIST orientation. */
int dmz_csv_read(const char *path, int num_classes, bool transpose, dmz_owned_split *out, char *err);
/* IDX images + labels (plain or .gz). */
int dmz_idx_read(const char *images_path, const char *labels_path, int num_classes, bool transpose,
                 dmz_owned_split *out, char *err);
/* Deterministic, learnable synthetic data with EMNIST's shapes; out of memory
 * leaves out empty (images NULL). */
void dmz_synthetic_make(uint64_t seed, size_t count, int num_classes, dmz_owned_split *out);

/* Checks one data file alone, strictly, as the loader would read it: by name,
 * a Kaggle CSV (*.csv), IDX images (*images-idx3*) or IDX labels
 * (*labels-idx1*), plain or .gz; labels below num_classes (0: any). *count: its
 * rows. DMZ_EXIT_USAGE with the reason (also for a name the loader never reads). */
int dmz_data_file_check(const char *path, int num_classes, size_t *count, char *err);

/* SHA-256 of a file as 64 hex chars (nettle). */
int dmz_sha256_file(const char *path, char hex[65], char *err);

#endif
