/* datasets/resolve.c — from a spec ("emnist-balanced", "fashion-mnist" or a
 * PATH) to the files to read and how to read them.
 *
 * A PATH's name decides how it is read: a base name containing "emnist" is
 * transposed (EMNIST stores images column-major); "emnist-balanced" has 47
 * classes. Anything else (other EMNIST splits, MNIST-like sets) takes
 * num_classes = max label + 1 of its train split. */
#include "datasets/internal.h"
#include "common/dmz.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"
#define EMNIST_BALANCED "emnist-balanced"

static const char *const IDX_ROLES[DS_MAX_SOURCES] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "test-images-idx3-ubyte", "test-labels-idx1-ubyte"};
static const char *const MNIST_NAMES[DS_MAX_SOURCES] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

bool ds_path_format(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, DS_PATH_LEN, fmt, ap);
    va_end(ap);
    return n >= 0 && n < DS_PATH_LEN;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void dir_name(const char *path, char *out, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, len, ".");
    else if (slash == path) snprintf(out, len, "/");
    else snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* dir/name, or dir/name.gz when only that exists; false when neither does. */
static bool find_maybe_gz(const char *dir, const char *name, char out[DS_PATH_LEN]) {
    if (ds_path_format(out, "%s/%s", dir, name) && is_file(out)) return true;
    return ds_path_format(out, "%s/%s.gz", dir, name) && is_file(out);
}

/* The last `needle` in s, or NULL: in "strain-train.csv" only the last "train"
 * marks the split. */
static const char *last_strstr(const char *s, const char *needle) {
    const char *last = NULL;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) last = p;
    return last;
}

/* path with the last `from` in its base name replaced by `to`; false if absent. */
static bool replace_in_base(const char *path, const char *from, const char *to, char out[DS_PATH_LEN]) {
    const char *base = base_name(path);
    const char *hit = last_strstr(base, from);
    if (!hit) return false;
    return ds_path_format(out, "%.*s%s%s", (int)(hit - path), path, to, hit + strlen(from));
}

static void set_plan(ds_plan *plan, const char *name, const char *format, const char *source, int num_classes,
                     bool transpose) {
    snprintf(plan->name, sizeof plan->name, "%s", name);
    snprintf(plan->format, sizeof plan->format, "%s", format);
    ds_path_format(plan->source, "%s", source); /* callers checked its length */
    plan->num_classes = num_classes;
    plan->transpose = transpose;
}

/* Four IDX files in dir named by names[] (each maybe .gz); counts those found. */
static int find_idx_set(const char *dir, const char *const names[DS_MAX_SOURCES], ds_plan *plan) {
    int found = 0;
    for (int i = 0; i < DS_MAX_SOURCES; i++) found += find_maybe_gz(dir, names[i], plan->files[i]);
    plan->nfiles = DS_MAX_SOURCES;
    return found;
}

int ds_resolve_emnist_balanced(const char *data_dir, ds_plan *plan, bool *missing, char *err) {
    char dir[DS_PATH_LEN];
    *missing = false;
    if (!ds_path_format(dir, "%s/" EMNIST_BALANCED, data_dir) ||
        !ds_path_format(plan->files[0], "%s/" EMNIST_BALANCED "-train.csv", dir) ||
        !ds_path_format(plan->files[1], "%s/" EMNIST_BALANCED "-test.csv", dir))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "data directory path too long: %.200s...", data_dir);
    set_plan(plan, EMNIST_BALANCED, "csv", dir, DMZ_EMNIST_BALANCED_CLASSES, true);
    plan->nfiles = 2;
    int csv_found = is_file(plan->files[0]) + is_file(plan->files[1]);
    if (csv_found == 2) return DMZ_OK;
    if (csv_found == 1)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: missing (its other half is there); run `dmzbench fetch` again",
                          is_file(plan->files[0]) ? plan->files[1] : plan->files[0]);
    char names[DS_MAX_SOURCES][64];
    const char *name_ptrs[DS_MAX_SOURCES];
    for (int i = 0; i < DS_MAX_SOURCES; i++) {
        snprintf(names[i], sizeof names[i], EMNIST_BALANCED "-%s", IDX_ROLES[i]);
        name_ptrs[i] = names[i];
    }
    set_plan(plan, EMNIST_BALANCED, "idx", dir, DMZ_EMNIST_BALANCED_CLASSES, true);
    int idx_found = find_idx_set(dir, name_ptrs, plan);
    if (idx_found == DS_MAX_SOURCES) return DMZ_OK;
    for (int i = 0; i < DS_MAX_SOURCES && idx_found > 0; i++)
        if (!is_file(plan->files[i]))
            return dmz_errorf(err, DMZ_EXIT_USAGE, "%s/%s[.gz]: missing (other EMNIST files are there); "
                              "run `dmzbench fetch` again", dir, names[i]);
    *missing = true;
    return dmz_errorf(err, DMZ_EXIT_USAGE,
                      "EMNIST Balanced not found in %s/ (neither " EMNIST_BALANCED "-{train,test}.csv nor "
                      EMNIST_BALANCED "-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]); "
                      "get it with `dmzbench fetch`, or pass --data PATH", dir);
}

int ds_resolve_fashion_mnist(const char *data_dir, ds_plan *plan, char *err) {
    char dirs[2][DS_PATH_LEN] = {"", FASHION_SYSTEM_DIR};
    if (!ds_path_format(dirs[0], "%s/fashion-mnist", data_dir))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "data directory path too long: %.200s...", data_dir);
    for (int d = 0; d < 2; d++) {
        set_plan(plan, "fashion-mnist", "idx", dirs[d], 10, false);
        if (find_idx_set(dirs[d], MNIST_NAMES, plan) == DS_MAX_SOURCES) return DMZ_OK;
    }
    return dmz_errorf(err, DMZ_EXIT_USAGE,
                      "Fashion-MNIST not found in %s/ nor %s/ ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]); "
                      "install it with `apt-get install dataset-fashion-mnist`", dirs[0], FASHION_SYSTEM_DIR);
}

/* Name, orientation and classes of a PATH, from the train file's base name. */
static void name_from_path(const char *train_path, ds_plan *plan) {
    const char *base = base_name(train_path);
    const char *train = last_strstr(base, "train");
    size_t stem = train ? (size_t)(train - base) : strlen(base);
    while (stem > 0 && strchr("-_.", base[stem - 1])) stem--;
    char name[64];
    if (stem > 0) {
        snprintf(name, sizeof name, "%.*s", (int)(stem < 63 ? stem : 63), base);
    } else {
        char dir[DS_PATH_LEN];
        dir_name(train_path, dir, sizeof dir);
        snprintf(name, sizeof name, "%.63s", base_name(dir));
    }
    bool balanced = strstr(base, EMNIST_BALANCED) != NULL;
    plan->transpose = strstr(base, "emnist") != NULL;
    plan->num_classes = balanced ? DMZ_EMNIST_BALANCED_CLASSES : DMZ_CLASSES_INFER;
    snprintf(plan->name, sizeof plan->name, "%s", balanced ? EMNIST_BALANCED : name);
}

static int require_file(const char *path, const char *found_how, char *err) {
    struct stat st;
    if (stat(path, &st) != 0) return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: missing (%s)", path, found_how);
    if (!S_ISREG(st.st_mode))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: not a regular file (%s; %s)", path, dmz_file_kind(st.st_mode),
                          found_how);
    return DMZ_OK;
}

static int resolve_csv_file(const char *path, ds_plan *plan, char *err) {
    snprintf(plan->format, sizeof plan->format, "csv");
    snprintf(plan->files[0], DS_PATH_LEN, "%s", path);
    plan->nfiles = 2;
    if (!replace_in_base(path, "train", "test", plan->files[1]))
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "%s: cannot find the test split: the file name has no 'train' to replace by 'test'", path);
    name_from_path(path, plan);
    return require_file(plan->files[1], "the test split, named like the train file with 'test' for 'train'", err);
}

static int resolve_idx_file(const char *path, ds_plan *plan, char *err) {
    snprintf(plan->format, sizeof plan->format, "idx");
    plan->nfiles = DS_MAX_SOURCES;
    snprintf(plan->files[0], DS_PATH_LEN, "%s", path);
    replace_in_base(path, "images-idx3", "labels-idx1", plan->files[1]);
    if (!replace_in_base(path, "train", "test", plan->files[2]))
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "%s: cannot find the test split: the file name has no 'train' to replace", path);
    if (!is_file(plan->files[2])) replace_in_base(path, "train", "t10k", plan->files[2]);
    replace_in_base(plan->files[2], "images-idx3", "labels-idx1", plan->files[3]);
    name_from_path(path, plan);
    int rc = require_file(plan->files[1], "the labels, named like the images with 'labels-idx1'", err);
    if (rc == DMZ_OK) rc = require_file(plan->files[2], "the test images, 'test' or 't10k' for 'train'", err);
    if (rc == DMZ_OK) rc = require_file(plan->files[3], "the test labels", err);
    return rc;
}

static bool is_train_candidate(const char *name) {
    size_t n = strlen(name);
    if (!strstr(name, "train")) return false;
    if (n > 4 && strcmp(name + n - 4, ".csv") == 0) return true;
    return strstr(name, "images-idx3") && (strcmp(name + n - 5, "ubyte") == 0 || strcmp(name + n - 8, "ubyte.gz") == 0);
}

/* The one train file in dir: EMNIST Balanced's first, a .gz and its plain twin
 * counted as one (the plain one read). */
static int find_train_file(const char *dir, char out[DS_PATH_LEN], char *err) {
    DIR *d = opendir(dir);
    if (!d) return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: cannot open directory: %s", dir, strerror(errno));
    char stems[2][256];
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_train_candidate(e->d_name)) continue;
        char stem[256];
        snprintf(stem, sizeof stem, "%s", e->d_name);
        size_t n = strlen(stem);
        if (n > 3 && strcmp(stem + n - 3, ".gz") == 0) stem[n - 3] = '\0';
        bool seen = false;
        for (int i = 0; i < found && i < 2; i++) seen |= strcmp(stems[i], stem) == 0;
        if (seen) continue;
        if (found < 2) memcpy(stems[found], stem, sizeof stem);
        found++;
    }
    closedir(d);
    if (find_maybe_gz(dir, EMNIST_BALANCED "-train.csv", out)) return DMZ_OK;
    if (find_maybe_gz(dir, EMNIST_BALANCED "-train-images-idx3-ubyte", out)) return DMZ_OK;
    if (found == 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "%s: no data set here (expected a *train*.csv or a *train-images-idx3-ubyte[.gz] file)", dir);
    if (found > 1)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: %d train files (%s, %s%s); pass one of them as --data", dir,
                          found, stems[0], stems[1], found > 2 ? ", ..." : "");
    if (find_maybe_gz(dir, stems[0], out)) return DMZ_OK;
    struct stat st; /* there, but not a regular file: say what it is */
    if (!ds_path_format(out, "%s/%s", dir, stems[0]) || stat(out, &st) != 0)
        ds_path_format(out, "%s/%s.gz", dir, stems[0]);
    return require_file(out, "the train file of the directory", err);
}

int ds_resolve_path(const char *path, ds_plan *plan, char *err) {
    memset(plan, 0, sizeof *plan);
    if (strlen(path) >= DS_PATH_LEN) return dmz_errorf(err, DMZ_EXIT_USAGE, "%.200s...: path too long", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "%s: %s (--data takes emnist-balanced, fashion-mnist, synthetic, a CSV or IDX file or a "
                          "directory)", path, strerror(errno));
    char file[DS_PATH_LEN];
    snprintf(file, sizeof file, "%s", path);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) /* a FIFO could block the load for good */
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: not a regular file (%s); --data takes a regular file or a "
                          "directory", path, dmz_file_kind(st.st_mode));
    if (S_ISDIR(st.st_mode)) {
        int rc = find_train_file(path, file, err);
        if (rc) return rc;
    }
    snprintf(plan->source, sizeof plan->source, "%s", path);
    const char *base = base_name(file);
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".csv") == 0) return resolve_csv_file(file, plan, err);
    if (strstr(base, "images-idx3")) return resolve_idx_file(file, plan, err);
    if (strstr(base, "labels-idx1"))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: a labels file; pass the images file (*-images-idx3-ubyte)", path);
    return dmz_errorf(err, DMZ_EXIT_USAGE,
                      "%s: neither a Kaggle CSV (*.csv) nor an IDX images file (*-images-idx3-ubyte[.gz])", path);
}
