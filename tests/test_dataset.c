/* tests/test_dataset.c — dmz_dataset_load end to end: spec and PATH
 * resolution, the binary cache (hit, rebuild, corrupt), the Fashion-MNIST
 * fallback and the synthetic generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/dmz.h"
#include "datasets/datasets.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
enum { TRAIN = 20, TEST = 7 };

static char tmpdir[] = "/tmp/dmz_test_dataset_XXXXXX";
static char src_dir[256], train_csv[512], test_csv[512];
static dmz_owned_split truth; /* what the CSV files hold, in MNIST orientation */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Kaggle-style rows: EMNIST stores each image transposed. */
static void write_csv(const char *path, const uint8_t *images, const uint8_t *labels, size_t rows) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t r = 0; r < rows; r++) {
        fprintf(f, "%d", labels[r]);
        for (int p = 0; p < DMZ_IMG_PIXELS; p++)
            fprintf(f, ",%d", images[r * DMZ_IMG_PIXELS + (p % DMZ_IMG_SIDE) * DMZ_IMG_SIDE + p / DMZ_IMG_SIDE]);
        fputc('\n', f);
    }
    fclose(f);
}

static int make_fixtures(void **state) {
    (void)state;
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(src_dir, sizeof src_dir, "%s/src", tmpdir);
    snprintf(train_csv, sizeof train_csv, "%s/emnist-balanced-train.csv", src_dir);
    snprintf(test_csv, sizeof test_csv, "%s/emnist-balanced-test.csv", src_dir);
    if (mkdir(src_dir, 0755) != 0) return -1;
    dmz_synthetic_make(7, TRAIN + TEST, DMZ_EMNIST_BALANCED_CLASSES, &truth);
    write_csv(train_csv, truth.images, truth.labels, TRAIN);
    write_csv(test_csv, truth.images + TRAIN * DMZ_IMG_PIXELS, truth.labels + TRAIN, TEST);
    return 0;
}

static int remove_fixtures(void **state) {
    (void)state;
    dmz_split_free(&truth);
    return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, empty data directory for one test. */
static const char *new_data_dir(const char *name, char *out) {
    snprintf(out, 512, "%s/%s", tmpdir, name);
    assert_int_equal(mkdir(out, 0755), 0);
    return out;
}

static void load_ok(const char *spec, const char *data_dir, bool use_cache, dmz_dataset *ds) {
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.data_dir = data_dir;
    opt.use_cache = use_cache;
    char err[DMZ_ERR_LEN] = "";
    int rc = dmz_dataset_load(spec, &opt, ds, err);
    if (rc) print_error("load %s: %s\n", spec, err);
    assert_int_equal(rc, DMZ_OK);
}

static void assert_matches_truth(const dmz_dataset *ds) {
    assert_string_equal(ds->name, "emnist-balanced");
    assert_int_equal(ds->num_classes, 47);
    assert_int_equal(ds->train.count, TRAIN);
    assert_int_equal(ds->test.count, TEST);
    assert_memory_equal(ds->train.images, truth.images, TRAIN * DMZ_IMG_PIXELS);
    assert_memory_equal(ds->train.labels, truth.labels, TRAIN);
    assert_memory_equal(ds->test.images, truth.images + TRAIN * DMZ_IMG_PIXELS, TEST * DMZ_IMG_PIXELS);
    assert_memory_equal(ds->test.labels, truth.labels + TRAIN, TEST);
}

static void sha256_hex(const void *data, size_t len, char hex[65]) {
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

/* `sha256sum train test | sha256sum`, computed here independently. */
static void expected_identity(char hex[65]) {
    char listing[512], a[65], b[65], err[DMZ_ERR_LEN];
    assert_int_equal(dmz_sha256_file(train_csv, a, err), DMZ_OK);
    assert_int_equal(dmz_sha256_file(test_csv, b, err), DMZ_OK);
    int n = snprintf(listing, sizeof listing, "%s  emnist-balanced-train.csv\n%s  emnist-balanced-test.csv\n", a, b);
    sha256_hex(listing, (size_t)n, hex);
}

/* The one cache file in data_dir/dmzc/, or "" if there is none. */
static void find_cache(const char *data_dir, char *out) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/dmzc", data_dir);
    out[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".dmzc") && !strstr(e->d_name, ".tmp")) snprintf(out, 1024, "%s/%s", dir, e->d_name);
    closedir(d);
}

static void test_cache_round_trip(void **state) {
    (void)state;
    char data[512], cache[1024], sha[65];
    new_data_dir("round_trip", data);
    dmz_dataset first, second;
    load_ok(train_csv, data, true, &first);
    assert_false(first.from_cache);
    assert_matches_truth(&first);
    assert_string_equal(first.format, "csv");
    assert_string_equal(first.source, train_csv);
    expected_identity(sha);
    assert_string_equal(first.sha256, sha);
    find_cache(data, cache);
    assert_non_null(strstr(cache, "/dmzc/emnist-balanced-"));
    load_ok(train_csv, data, true, &second);
    assert_true(second.from_cache);
    assert_matches_truth(&second);
    assert_string_equal(second.sha256, sha);
    assert_int_equal((uintptr_t)second.train.images % 64, 0);
    assert_int_equal((uintptr_t)second.test.images % 64, 0);
    dmz_dataset_free(&first);
    dmz_dataset_free(&second);
}

static void test_no_cache_when_not_asked(void **state) {
    (void)state;
    char data[512], cache[1024];
    new_data_dir("no_cache", data);
    dmz_dataset ds;
    load_ok(train_csv, data, false, &ds);
    assert_false(ds.from_cache);
    assert_matches_truth(&ds);
    find_cache(data, cache);
    assert_string_equal(cache, "");
    dmz_dataset_free(&ds);
}

static void set_mtime(const char *path, time_t sec) {
    struct timespec times[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void test_cache_rebuilt_when_source_changes(void **state) {
    (void)state;
    char dir[256], train[512], test[512], data[512];
    snprintf(dir, sizeof dir, "%s/changing", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", dir);
    snprintf(test, sizeof test, "%s/emnist-balanced-test.csv", dir);
    write_csv(train, truth.images, truth.labels, TRAIN);
    write_csv(test, truth.images + TRAIN * DMZ_IMG_PIXELS, truth.labels + TRAIN, TEST);
    new_data_dir("changing_data", data);
    dmz_dataset a, b, c, d;
    load_ok(train, data, true, &a);
    set_mtime(train, 1000000000); /* touched only: reread, same identity */
    load_ok(train, data, true, &b);
    assert_false(b.from_cache);
    assert_string_equal(b.sha256, a.sha256);
    uint8_t labels[TRAIN];
    memcpy(labels, truth.labels, TRAIN);
    labels[3] = (uint8_t)((labels[3] + 1) % 47);
    write_csv(train, truth.images, labels, TRAIN); /* new content */
    set_mtime(train, 1000000001);
    load_ok(train, data, true, &c);
    assert_false(c.from_cache);
    assert_int_equal(c.train.labels[3], labels[3]);
    assert_string_not_equal(c.sha256, a.sha256);
    load_ok(train, data, true, &d);
    assert_true(d.from_cache);
    assert_int_equal(d.train.labels[3], labels[3]);
    assert_string_equal(d.sha256, c.sha256);
    dmz_dataset_free(&a);
    dmz_dataset_free(&b);
    dmz_dataset_free(&c);
    dmz_dataset_free(&d);
}

/* Damages the cache, then expects a correct load that rebuilt it. */
static void expect_damage_ignored(const char *data, void (*damage)(const char *cache)) {
    char cache[1024];
    dmz_dataset ds;
    load_ok(train_csv, data, true, &ds);
    dmz_dataset_free(&ds);
    find_cache(data, cache);
    assert_string_not_equal(cache, "");
    damage(cache);
    load_ok(train_csv, data, true, &ds);
    assert_false(ds.from_cache);
    assert_matches_truth(&ds);
    dmz_dataset_free(&ds);
    load_ok(train_csv, data, true, &ds);
    assert_true(ds.from_cache);
    dmz_dataset_free(&ds);
}

static void flip_byte_in_first_image(const char *cache) {
    FILE *f = fopen(cache, "r+b");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    uint8_t *at = memmem(buf, n, truth.images, DMZ_IMG_PIXELS);
    assert_non_null(at);
    at[400] ^= 0x55;
    fseek(f, 0, SEEK_SET);
    fwrite(buf, 1, n, f);
    fclose(f);
}

static void truncate_to_half(const char *cache) {
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);
    assert_int_equal(truncate(cache, st.st_size / 2), 0);
}

static void bump_version(const char *cache) {
    FILE *f = fopen(cache, "r+b");
    assert_non_null(f);
    fseek(f, 8, SEEK_SET); /* the version follows the 8-byte magic */
    fputc(99, f);
    fclose(f);
}

static void test_corrupt_cache_ignored(void **state) {
    (void)state;
    char data[512];
    expect_damage_ignored(new_data_dir("corrupt", data), flip_byte_in_first_image);
}

static void test_truncated_cache_ignored(void **state) {
    (void)state;
    char data[512];
    expect_damage_ignored(new_data_dir("truncated", data), truncate_to_half);
}

static void test_wrong_version_cache_ignored(void **state) {
    (void)state;
    char data[512];
    expect_damage_ignored(new_data_dir("version", data), bump_version);
}

static void test_unwritable_data_dir_goes_on(void **state) {
    (void)state;
    dmz_dataset ds;
    load_ok(train_csv, "/proc/dmzbench-cannot-exist", true, &ds); /* even root cannot mkdir in /proc */
    assert_matches_truth(&ds);
    dmz_dataset_free(&ds);
}

static void test_directory_and_keyword_resolution(void **state) {
    (void)state;
    char data[512];
    dmz_dataset by_dir, by_name;
    load_ok(src_dir, NULL, false, &by_dir);
    assert_matches_truth(&by_dir);
    assert_string_equal(by_dir.source, src_dir);
    snprintf(data, sizeof data, "%s", tmpdir); /* the files live in <data_dir>/emnist-balanced/ */
    char link[600];
    snprintf(link, sizeof link, "%s/emnist-balanced", tmpdir);
    assert_int_equal(symlink(src_dir, link), 0);
    load_ok("emnist-balanced", data, false, &by_name);
    assert_matches_truth(&by_name);
    assert_false(by_name.fallback);
    assert_string_equal(by_name.sha256, by_dir.sha256);
    unlink(link);
    dmz_dataset_free(&by_dir);
    dmz_dataset_free(&by_name);
}

static void expect_load_error(const char *spec, const char *data_dir, bool fallback, const char *fragment) {
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.data_dir = data_dir;
    opt.allow_fallback = fallback;
    dmz_dataset ds;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_dataset_load(spec, &opt, &ds, err), DMZ_EXIT_USAGE);
    print_message("message: %s\n", err);
    if (!strstr(err, fragment)) print_error("'%s' not in '%s'\n", fragment, err);
    assert_non_null(strstr(err, fragment));
}

static void test_csv_without_test_file(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/lonely-train.csv", tmpdir);
    write_csv(path, truth.images, truth.labels, 2);
    expect_load_error(path, NULL, false, "lonely-test.csv: missing");
    expect_load_error("/nonexistent/x.csv", NULL, false, "/nonexistent/x.csv: No such file");
}

static void write_idx(const char *path, uint32_t magic, const uint8_t *data, uint32_t count, bool images) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint32_t dims[4] = {magic, count, DMZ_IMG_SIDE, DMZ_IMG_SIDE};
    for (int i = 0; i < (images ? 4 : 2); i++) {
        uint8_t be[4] = {(uint8_t)(dims[i] >> 24), (uint8_t)(dims[i] >> 16), (uint8_t)(dims[i] >> 8), (uint8_t)dims[i]};
        fwrite(be, 1, 4, f);
    }
    fwrite(data, 1, (size_t)count * (images ? DMZ_IMG_PIXELS : 1), f);
    fclose(f);
}

/* An MNIST-like IDX directory (train-*, t10k-*): not transposed, classes inferred. */
static void test_idx_directory_infers_classes(void **state) {
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/digits", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    uint8_t labels[TRAIN + TEST];
    for (int i = 0; i < TRAIN + TEST; i++) labels[i] = (uint8_t)(i % 5);
    const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t first = i < 2 ? 0 : TRAIN;
        uint32_t count = i < 2 ? TRAIN : TEST;
        if (i % 2 == 0) write_idx(path, 0x803, truth.images + first * DMZ_IMG_PIXELS, count, true);
        else write_idx(path, 0x801, labels + first, count, false);
    }
    dmz_dataset by_dir, by_file;
    load_ok(dir, NULL, false, &by_dir);
    assert_string_equal(by_dir.name, "digits");
    assert_string_equal(by_dir.format, "idx");
    assert_int_equal(by_dir.num_classes, 5);
    assert_int_equal(by_dir.test.count, TEST);
    assert_memory_equal(by_dir.train.images, truth.images, TRAIN * DMZ_IMG_PIXELS);
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    load_ok(path, NULL, false, &by_file);
    assert_string_equal(by_file.sha256, by_dir.sha256);
    dmz_dataset_free(&by_dir);
    dmz_dataset_free(&by_file);
}

static bool have_fashion(void) {
    struct stat st;
    return stat(FASHION_DIR "/train-images-idx3-ubyte.gz", &st) == 0;
}

static void test_fallback_to_fashion_mnist(void **state) {
    (void)state;
    char data[512];
    new_data_dir("fallback", data);
    expect_load_error("emnist-balanced", data, false, "dmzbench fetch");
    if (!have_fashion()) {
        print_message("skipped: " FASHION_DIR " absent (apt-get install dataset-fashion-mnist)\n");
        skip();
    }
    dmz_dataset ds;
    load_ok("emnist-balanced", data, false, &ds);
    assert_true(ds.fallback);
    assert_string_equal(ds.name, "fashion-mnist");
    assert_int_equal(ds.num_classes, 10);
    print_message("reason: %s\n", ds.fallback_reason);
    assert_non_null(strstr(ds.fallback_reason, data));
    assert_non_null(strstr(ds.fallback_reason, "dmzbench fetch"));
    dmz_dataset_free(&ds);
}

static void test_fashion_mnist_loads_and_caches(void **state) {
    (void)state;
    if (!have_fashion()) {
        print_message("skipped: " FASHION_DIR " absent (apt-get install dataset-fashion-mnist)\n");
        skip();
    }
    char data[512];
    new_data_dir("fashion", data);
    dmz_dataset a, b;
    load_ok("fashion-mnist", data, true, &a);
    assert_int_equal(a.train.count, 60000);
    assert_int_equal(a.test.count, 10000);
    assert_int_equal(a.num_classes, 10);
    assert_string_equal(a.format, "idx");
    assert_false(a.fallback);
    load_ok("fashion-mnist", data, true, &b);
    assert_true(b.from_cache);
    assert_string_equal(b.sha256, a.sha256);
    assert_memory_equal(b.train.images, a.train.images, 60000 * DMZ_IMG_PIXELS);
    print_message("fashion-mnist: %.3f s parsed, %.3f s from cache, sha256 %s\n", a.load_s, b.load_s, a.sha256);
    dmz_dataset_free(&a);
    dmz_dataset_free(&b);
}

static void load_synthetic(uint64_t seed, dmz_dataset *ds) {
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.synthetic_seed = seed;
    opt.synthetic_train = 2000;
    opt.synthetic_test = 500;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_dataset_load("synthetic", &opt, ds, err), DMZ_OK);
}

/* Nearest class mean on the raw pixels: a learnable set scores far above chance. */
static double nearest_mean_accuracy(const dmz_dataset *ds) {
    static double mean[47][DMZ_IMG_PIXELS];
    int seen[47] = {0};
    memset(mean, 0, sizeof mean);
    for (size_t i = 0; i < ds->train.count; i++) {
        int c = ds->train.labels[i];
        seen[c]++;
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) mean[c][p] += ds->train.images[i * DMZ_IMG_PIXELS + p];
    }
    for (int c = 0; c < 47; c++)
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) mean[c][p] /= seen[c] ? seen[c] : 1;
    size_t right = 0;
    for (size_t i = 0; i < ds->test.count; i++) {
        int best = 0;
        double best_d = 1e300;
        for (int c = 0; c < 47; c++) {
            double d = 0;
            for (int p = 0; p < DMZ_IMG_PIXELS; p++) {
                double e = ds->test.images[i * DMZ_IMG_PIXELS + p] - mean[c][p];
                d += e * e;
            }
            if (d < best_d) best_d = d, best = c;
        }
        right += best == ds->test.labels[i];
    }
    return (double)right / (double)ds->test.count;
}

static void test_synthetic_deterministic_and_learnable(void **state) {
    (void)state;
    dmz_dataset a, b, c;
    load_synthetic(42, &a);
    load_synthetic(42, &b);
    load_synthetic(43, &c);
    assert_string_equal(a.name, "synthetic");
    assert_int_equal(a.num_classes, 47);
    assert_int_equal(a.train.count, 2000);
    assert_int_equal(a.test.count, 500);
    assert_memory_equal(a.train.images, b.train.images, 2000 * DMZ_IMG_PIXELS);
    assert_memory_equal(a.test.labels, b.test.labels, 500);
    assert_string_equal(a.sha256, b.sha256);
    assert_string_not_equal(a.sha256, c.sha256);
    assert_true(memcmp(a.train.images, c.train.images, 2000 * DMZ_IMG_PIXELS) != 0);
    char expect[65];
    const char *identity = "synthetic seed=42 train=2000 test=500 classes=47";
    sha256_hex(identity, strlen(identity), expect);
    assert_string_equal(a.sha256, expect);
    double accuracy = nearest_mean_accuracy(&a);
    print_message("nearest-class-mean accuracy: %.3f (chance 0.021)\n", accuracy);
    assert_true(accuracy > 0.5);
    dmz_dataset_free(&a);
    dmz_dataset_free(&b);
    dmz_dataset_free(&c);
}

static void test_data_dir_precedence(void **state) {
    (void)state;
    const char *saved = getenv("DMZBENCH_DATA_DIR");
    char keep[512] = "";
    if (saved) snprintf(keep, sizeof keep, "%s", saved);
    unsetenv("DMZBENCH_DATA_DIR");
    assert_string_equal(dmz_data_dir(NULL), DMZ_SOURCE_DIR "/datasets/cache");
    setenv("DMZBENCH_DATA_DIR", "/srv/data", 1);
    assert_string_equal(dmz_data_dir(NULL), "/srv/data");
    assert_string_equal(dmz_data_dir(""), "/srv/data");
    assert_string_equal(dmz_data_dir("/explicit"), "/explicit");
    if (saved) setenv("DMZBENCH_DATA_DIR", keep, 1);
    else unsetenv("DMZBENCH_DATA_DIR");
}

/* A data file that is a FIFO (no writer: open would block for good), a device
 * or a directory is refused up front with exit 2, naming the file. */
static void test_non_regular_files_refused(void **state) {
    (void)state;
    char dir[512], fifo[600], test[600];
    snprintf(dir, sizeof dir, "%s/fifo", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(fifo, sizeof fifo, "%s/emnist-balanced-train.csv", dir);
    snprintf(test, sizeof test, "%s/emnist-balanced-test.csv", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_csv(test, truth.images + TRAIN * DMZ_IMG_PIXELS, truth.labels + TRAIN, TEST);
    alarm(30); /* a blocking open would hang: fail by signal instead */
    expect_load_error(fifo, NULL, false, "emnist-balanced-train.csv: not a regular file (a FIFO)");
    expect_load_error(dir, NULL, false, "emnist-balanced-train.csv: not a regular file (a FIFO");
    expect_load_error("/dev/null", NULL, false, "/dev/null: not a regular file (a character device)");
    /* the train file regular, its test twin a FIFO */
    unlink(fifo);
    unlink(test);
    write_csv(fifo, truth.images, truth.labels, TRAIN);
    assert_int_equal(mkfifo(test, 0600), 0);
    expect_load_error(fifo, NULL, false, "emnist-balanced-test.csv: not a regular file (a FIFO");
    /* a directory where the test file should be */
    unlink(test);
    assert_int_equal(mkdir(test, 0755), 0);
    expect_load_error(fifo, NULL, false, "emnist-balanced-test.csv: not a regular file (a directory");
    alarm(0);
}

static void write_changed_csv(const char *path, int label_at3) {
    uint8_t labels[TRAIN];
    memcpy(labels, truth.labels, TRAIN);
    labels[3] = (uint8_t)label_at3;
    write_csv(path, truth.images, labels, TRAIN);
}

/* A same-size rewrite with its old mtime put back: size and mtime match the
 * cache, ctime does not. stale_after_s: how long after writing the first load
 * happens (past a second: an ordinary cache; within it: a "racy" one, checked
 * by content). */
static void expect_restored_mtime_caught(const char *name, double first_load_after_s) {
    char dir[256], train[512], test[512], data[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", dir);
    snprintf(test, sizeof test, "%s/emnist-balanced-test.csv", dir);
    write_changed_csv(train, 11); /* "11" and "12": same length, so same size */
    write_csv(test, truth.images + TRAIN * DMZ_IMG_PIXELS, truth.labels + TRAIN, TEST);
    set_mtime(train, 1500000000);
    usleep((useconds_t)(first_load_after_s * 1e6));
    snprintf(data, sizeof data, "%s/%s-data", tmpdir, name);
    assert_int_equal(mkdir(data, 0755), 0);
    dmz_dataset a, b, c;
    load_ok(train, data, true, &a);
    load_ok(train, data, true, &b);
    assert_true(b.from_cache);
    assert_int_equal(b.train.labels[3], 11);
    struct stat before, after;
    assert_int_equal(stat(train, &before), 0);
    write_changed_csv(train, 12);
    set_mtime(train, 1500000000);
    assert_int_equal(stat(train, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtime, before.st_mtime);
    load_ok(train, data, true, &c);
    assert_false(c.from_cache);
    assert_int_equal(c.train.labels[3], 12);
    assert_string_not_equal(c.sha256, a.sha256);
    dmz_dataset_free(&a);
    dmz_dataset_free(&b);
    dmz_dataset_free(&c);
}

static void test_restored_mtime_does_not_fool_the_cache(void **state) {
    (void)state;
    expect_restored_mtime_caught("restored", 1.2);
}

static void test_restored_mtime_racy_cache(void **state) {
    (void)state;
    expect_restored_mtime_caught("restored_racy", 0);
}

/* A racy cache, once its sources are old enough, is stamped again: loads stop hashing. */
static void test_racy_cache_restamped(void **state) {
    (void)state;
    char data[512], dir[256], train[512], test[512];
    snprintf(dir, sizeof dir, "%s/restamp", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", dir);
    snprintf(test, sizeof test, "%s/emnist-balanced-test.csv", dir);
    write_csv(train, truth.images, truth.labels, TRAIN);
    write_csv(test, truth.images + TRAIN * DMZ_IMG_PIXELS, truth.labels + TRAIN, TEST);
    new_data_dir("restamp_data", data);
    dmz_dataset ds;
    load_ok(train, data, true, &ds);
    dmz_dataset_free(&ds);
    char cache[1024];
    find_cache(data, cache);
    struct stat first, second;
    assert_int_equal(stat(cache, &first), 0);
    usleep(1200000);
    load_ok(train, data, true, &ds); /* verified by content, written again */
    assert_true(ds.from_cache);
    assert_matches_truth(&ds);
    dmz_dataset_free(&ds);
    assert_int_equal(stat(cache, &second), 0);
    assert_true(second.st_ino != first.st_ino);
    load_ok(train, data, true, &ds);
    assert_true(ds.from_cache);
    dmz_dataset_free(&ds);
    struct stat third;
    assert_int_equal(stat(cache, &third), 0);
    assert_true(third.st_ino == second.st_ino);
}

static pid_t dead_pid(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return pid;
}

/* *.dmzc.tmp.PID of a killed run: removed when PID is gone, kept while it runs. */
static void test_stale_tmp_files_removed(void **state) {
    (void)state;
    char data[512], dmzc[600], dead[700], alive[700];
    new_data_dir("stale_tmp", data);
    snprintf(dmzc, sizeof dmzc, "%s/dmzc", data);
    assert_int_equal(mkdir(dmzc, 0755), 0);
    snprintf(dead, sizeof dead, "%s/emnist-balanced-0123456789abcdef.dmzc.tmp.%ld", dmzc, (long)dead_pid());
    snprintf(alive, sizeof alive, "%s/emnist-balanced-0123456789abcdef.dmzc.tmp.%ld", dmzc, (long)getppid());
    FILE *f = fopen(dead, "wb");
    assert_non_null(f);
    fclose(f);
    f = fopen(alive, "wb");
    assert_non_null(f);
    fclose(f);
    set_mtime(dead, time(NULL) - 600);
    set_mtime(alive, time(NULL) - 600);
    dmz_dataset ds;
    load_ok(train_csv, data, true, &ds);
    dmz_dataset_free(&ds);
    assert_int_equal(access(dead, F_OK), -1);
    assert_int_equal(access(alive, F_OK), 0);
}

/* Only the last "train" of a name marks the split: strain-train.csv pairs with strain-test.csv. */
static void test_last_train_marks_the_split(void **state) {
    (void)state;
    char train[512], test[512];
    snprintf(train, sizeof train, "%s/strain-train.csv", tmpdir);
    snprintf(test, sizeof test, "%s/strain-test.csv", tmpdir);
    write_csv(train, truth.images, truth.labels, TRAIN);
    write_csv(test, truth.images + TRAIN * DMZ_IMG_PIXELS, truth.labels + TRAIN, TEST);
    dmz_dataset ds;
    load_ok(train, NULL, false, &ds);
    assert_string_equal(ds.name, "strain");
    assert_int_equal(ds.test.count, TEST);
    dmz_dataset_free(&ds);
}

/* A named data directory that is not there is not created (a typo would
 * silently grow a second cache); the load goes on without the cache. */
static void test_mistyped_data_dir_not_created(void **state) {
    (void)state;
    char data[512];
    snprintf(data, sizeof data, "%s/no-such-data-dir", tmpdir);
    dmz_dataset ds;
    load_ok(train_csv, data, true, &ds);
    assert_false(ds.from_cache);
    assert_matches_truth(&ds);
    dmz_dataset_free(&ds);
    assert_int_equal(access(data, F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_round_trip),
        cmocka_unit_test(test_no_cache_when_not_asked),
        cmocka_unit_test(test_cache_rebuilt_when_source_changes),
        cmocka_unit_test(test_corrupt_cache_ignored),
        cmocka_unit_test(test_truncated_cache_ignored),
        cmocka_unit_test(test_wrong_version_cache_ignored),
        cmocka_unit_test(test_unwritable_data_dir_goes_on),
        cmocka_unit_test(test_directory_and_keyword_resolution),
        cmocka_unit_test(test_csv_without_test_file),
        cmocka_unit_test(test_idx_directory_infers_classes),
        cmocka_unit_test(test_fallback_to_fashion_mnist),
        cmocka_unit_test(test_fashion_mnist_loads_and_caches),
        cmocka_unit_test(test_synthetic_deterministic_and_learnable),
        cmocka_unit_test(test_data_dir_precedence),
        cmocka_unit_test(test_non_regular_files_refused),
        cmocka_unit_test(test_restored_mtime_does_not_fool_the_cache),
        cmocka_unit_test(test_restored_mtime_racy_cache),
        cmocka_unit_test(test_racy_cache_restamped),
        cmocka_unit_test(test_stale_tmp_files_removed),
        cmocka_unit_test(test_last_train_marks_the_split),
        cmocka_unit_test(test_mistyped_data_dir_not_created),
    };
    return cmocka_run_group_tests(tests, make_fixtures, remove_fixtures);
}
