/* datasets/datasets.c — dmz_dataset_load: resolve the spec, try the binary
 * cache, else read and validate the sources, hash them and write the cache.
 *
 * Identity of a data set (dataset->sha256): SHA-256 of the sha256sum-style
 * listing "<hex>  <basename>\n" of its source files in the order train images
 * (or CSV), train labels, test images (or CSV), test labels; so
 *   cd DIR && sha256sum emnist-balanced-train.csv emnist-balanced-test.csv | sha256sum
 * gives the same hex. Synthetic data: SHA-256 of
 * "synthetic seed=N train=N test=N classes=47". */
#include "datasets/internal.h"
#include "common/dmz.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Beside the sources, so the binary finds its data from any working directory. */
#ifdef DMZ_SOURCE_DIR
#define DEFAULT_DATA_DIR DMZ_SOURCE_DIR "/datasets/cache"
#else
#define DEFAULT_DATA_DIR "datasets/cache"
#endif
enum { EMNIST_TRAIN = 112800, EMNIST_TEST = 18800 };

/* What a dataset owns: parsed splits, or the cache mapping they point into. */
typedef struct ds_owned {
    dmz_owned_split train, test;
    ds_mapping map;
} ds_owned;

void dmz_load_options_default(dmz_load_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->allow_fallback = true;
    opt->use_cache = true;
}

bool dmz_data_dir_is_default(const char *explicit_dir) {
    return strcmp(dmz_data_dir(explicit_dir), DEFAULT_DATA_DIR) == 0;
}

const char *dmz_data_dir(const char *explicit_dir) {
    if (explicit_dir && *explicit_dir) return explicit_dir;
    const char *env = getenv("DMZBENCH_DATA_DIR");
    return env && *env ? env : DEFAULT_DATA_DIR;
}

void dmz_split_free(dmz_owned_split *s) {
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

void dmz_dataset_free(dmz_dataset *ds) {
    ds_owned *own = ds->priv_;
    if (own) {
        ds_cache_unmap(&own->map);
        dmz_split_free(&own->train);
        dmz_split_free(&own->test);
        free(own);
    }
    memset(ds, 0, sizeof *ds);
}

static dmz_split view_of(const dmz_owned_split *s) {
    return (dmz_split){.count = s->count, .images = s->images, .labels = s->labels};
}

static int max_label_plus_one(const dmz_owned_split *s) {
    int max = 0;
    for (size_t i = 0; i < s->count; i++) max = s->labels[i] > max ? s->labels[i] : max;
    return max + 1;
}

static int read_split(const ds_plan *plan, const ds_sources *src, int first_file, int num_classes,
                      dmz_owned_split *out, char *err) {
    if (strcmp(plan->format, "csv") == 0) {
        int i = first_file / 2;
        return ds_csv_read_fd(src->fd[i], plan->files[i], num_classes, plan->transpose, out, err);
    }
    return ds_idx_read_fd(src->fd[first_file], plan->files[first_file], src->fd[first_file + 1],
                          plan->files[first_file + 1], num_classes, plan->transpose, out, err);
}

/* Train first: where classes are inferred, the test labels must fall below them. */
static int read_sources(const ds_plan *plan, const ds_sources *src, ds_owned *own, dmz_dataset *out, char *err) {
    int rc = read_split(plan, src, 0, plan->num_classes, &own->train, err);
    if (rc) return rc;
    out->num_classes = plan->num_classes != DMZ_CLASSES_INFER ? plan->num_classes : max_label_plus_one(&own->train);
    rc = read_split(plan, src, 2, out->num_classes, &own->test, err);
    if (rc) return rc;
    out->train = view_of(&own->train);
    out->test = view_of(&own->test);
    return DMZ_OK;
}

static int hash_sources(const ds_plan *plan, const ds_sources *src, char hex[65], char *err) {
    char hexes[DS_MAX_SOURCES][65];
    char *paths[DS_MAX_SOURCES];
    for (int i = 0; i < plan->nfiles; i++) {
        int rc = ds_sha256_fd(src->fd[i], plan->files[i], hexes[i], err);
        if (rc) return rc;
        paths[i] = (char *)plan->files[i];
    }
    ds_sha256_listing(paths, (const char(*)[65])hexes, plan->nfiles, hex);
    return DMZ_OK;
}

int ds_sources_open(const ds_plan *plan, ds_sources *src, char *err) {
    memset(src, 0, sizeof *src);
    for (int i = 0; i < plan->nfiles; i++) {
        struct stat st;
        src->fd[i] = dmz_open_regular(plan->files[i], &st, err);
        if (src->fd[i] < 0) {
            ds_sources_close(src);
            return DMZ_EXIT_USAGE;
        }
        ds_stamp_of(&st, &src->stamp[i]);
        src->n = i + 1;
    }
    return DMZ_OK;
}

void ds_sources_close(ds_sources *src) {
    for (int i = 0; i < src->n; i++) close(src->fd[i]);
    src->n = 0;
}

static void warn_cache_once(const char *why) {
    static bool warned;
    if (warned) return;
    warned = true;
    fprintf(stderr, "dmzbench: warning: no binary cache (%s); going on without it\n", why);
}

/* Only the default data directory is created; one that was named and is not
 * there is most likely mistyped. */
static bool data_dir_usable(const dmz_load_options *opt, char *why) {
    const char *dir = dmz_data_dir(opt->data_dir);
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return true;
        snprintf(why, DMZ_ERR_LEN, "data directory %s is %s", dir, dmz_file_kind(st.st_mode));
        return false;
    }
    if (dmz_data_dir_is_default(opt->data_dir)) return true;
    snprintf(why, DMZ_ERR_LEN, "data directory %.900s does not exist; only the default one is created", dir);
    return false;
}

static int load_plan(const ds_plan *plan, const dmz_load_options *opt, dmz_dataset *out, char *err) {
    snprintf(out->name, sizeof out->name, "%s", plan->name);
    snprintf(out->source, sizeof out->source, "%s", plan->source);
    snprintf(out->format, sizeof out->format, "%s", plan->format);
    ds_owned *own = out->priv_;
    char cache_path[DS_PATH_LEN + 128], why[DMZ_ERR_LEN];
    const char *data_dir = dmz_data_dir(opt->data_dir);
    bool use_cache = opt->use_cache;
    if (use_cache && !data_dir_usable(opt, why)) {
        warn_cache_once(why);
        use_cache = false;
    }
    ds_cache_path(data_dir, plan, cache_path, sizeof cache_path);
    bool restamp = false;
    if (use_cache) ds_cache_clean_tmp(data_dir);
    if (use_cache && ds_cache_open(cache_path, plan, out, &own->map, &restamp)) {
        out->from_cache = true;
        ds_sources src;
        /* verified by content just now; stamped again so that the next load needs no hashing */
        if (restamp && ds_sources_open(plan, &src, NULL) == DMZ_OK) {
            ds_cache_write(cache_path, plan, src.stamp, out, NULL);
            ds_sources_close(&src);
        }
        return DMZ_OK;
    }
    ds_sources src; /* each file opened once; stamps from fstat, before reading: a change meanwhile misses later */
    int rc = ds_sources_open(plan, &src, err);
    if (rc) return rc;
    int hash_rc;
    char hash_err[DMZ_ERR_LEN];
    #pragma omp parallel sections num_threads(2) /* hashing hides behind parsing */
    {
        #pragma omp section
        rc = read_sources(plan, &src, own, out, err);
        #pragma omp section
        hash_rc = hash_sources(plan, &src, out->sha256, hash_err);
    }
    if (rc == DMZ_OK && hash_rc != DMZ_OK) rc = dmz_errorf(err, hash_rc, "%s", hash_err);
    if (rc == DMZ_OK && use_cache && ds_cache_write(cache_path, plan, src.stamp, out, why) != DMZ_OK)
        warn_cache_once(why);
    ds_sources_close(&src);
    return rc;
}

int dmz_data_file_check(const char *path, int num_classes, size_t *count, char *err) {
    *count = 0;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".csv") == 0) {
        dmz_owned_split s;
        int rc = dmz_csv_read(path, num_classes, false, &s, err);
        *count = s.count;
        dmz_split_free(&s);
        return rc;
    }
    bool images = strstr(base, "images-idx3") != NULL;
    if (images || strstr(base, "labels-idx1")) return ds_idx_check_one(path, images, num_classes, count, err);
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: not a file the loader reads (*.csv, *-images-idx3-ubyte[.gz], "
                      "*-labels-idx1-ubyte[.gz])", path);
}

static int load_synthetic(const dmz_load_options *opt, dmz_dataset *out, char *err) {
    ds_owned *own = out->priv_;
    size_t ntrain = opt->synthetic_train ? opt->synthetic_train : EMNIST_TRAIN;
    size_t ntest = opt->synthetic_test ? opt->synthetic_test : EMNIST_TEST;
    int classes = DMZ_EMNIST_BALANCED_CLASSES;
    dmz_synthetic_make(opt->synthetic_seed, ntrain + ntest, classes, &own->train);
    if (!own->train.images)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "synthetic: out of memory for %zu images", ntrain + ntest);
    snprintf(out->name, sizeof out->name, "synthetic");
    snprintf(out->source, sizeof out->source, "synthetic");
    snprintf(out->format, sizeof out->format, "synthetic");
    out->num_classes = classes;
    out->train = (dmz_split){ntrain, own->train.images, own->train.labels};
    out->test = (dmz_split){ntest, own->train.images + ntrain * DMZ_IMG_PIXELS, own->train.labels + ntrain};
    char identity[160];
    int n = snprintf(identity, sizeof identity, "synthetic seed=%" PRIu64 " train=%zu test=%zu classes=%d",
                     opt->synthetic_seed, ntrain, ntest, classes);
    ds_sha256_hex(identity, (size_t)n, out->sha256);
    return DMZ_OK;
}

/* EMNIST Balanced, or Fashion-MNIST with the reason when it is missing and allowed. */
static int resolve_emnist(const dmz_load_options *opt, ds_plan *plan, dmz_dataset *out, char *err) {
    const char *dir = dmz_data_dir(opt->data_dir);
    bool missing;
    int rc = ds_resolve_emnist_balanced(dir, plan, &missing, err);
    if (rc == DMZ_OK || !missing || !opt->allow_fallback) return rc;
    char why[DMZ_ERR_LEN];
    snprintf(why, sizeof why, "%s", err);
    if (ds_resolve_fashion_mnist(dir, plan, NULL) != DMZ_OK)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s; no Fashion-MNIST to fall back on either "
                          "(apt-get install dataset-fashion-mnist)", why);
    out->fallback = true;
    char *reason = out->fallback_reason;
    size_t len = sizeof out->fallback_reason;
    if (snprintf(reason, len, "Fashion-MNIST (%s) used instead: %s", plan->source, why) >= (int)len)
        memcpy(reason + len - 4, "...", 4); /* long paths: cut, and say so */
    return DMZ_OK;
}

static int resolve_spec(const char *spec, const dmz_load_options *opt, ds_plan *plan, dmz_dataset *out, char *err) {
    memset(plan, 0, sizeof *plan);
    if (strcmp(spec, "emnist-balanced") == 0) return resolve_emnist(opt, plan, out, err);
    if (strcmp(spec, "fashion-mnist") == 0) return ds_resolve_fashion_mnist(dmz_data_dir(opt->data_dir), plan, err);
    return ds_resolve_path(spec, plan, err);
}

int dmz_dataset_load(const char *spec, const dmz_load_options *opt, dmz_dataset *out, char *err) {
    double start = dmz_now_s();
    dmz_load_options defaults;
    if (!opt) {
        dmz_load_options_default(&defaults);
        opt = &defaults;
    }
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) spec = "emnist-balanced";
    ds_owned *own = calloc(1, sizeof *own);
    ds_plan *plan = malloc(sizeof *plan);
    if (!own || !plan) {
        free(own);
        free(plan);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    }
    out->priv_ = own;
    int rc;
    if (strcmp(spec, "synthetic") == 0) {
        rc = load_synthetic(opt, out, err);
    } else {
        rc = resolve_spec(spec, opt, plan, out, err);
        if (rc == DMZ_OK) rc = load_plan(plan, opt, out, err);
    }
    free(plan);
    if (rc != DMZ_OK) {
        dmz_dataset_free(out);
        return rc;
    }
    out->load_s = dmz_now_s() - start;
    return DMZ_OK;
}
