/* tests/test_idx.c — the IDX reader on hand-made files, plain and gzip'd:
 * values, transposition, and each broken header or body named by its field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/dmz.h"
#include "datasets/datasets.h"
#include "tests/support.h"

static uint8_t pixel_value(int n, int p) { return (uint8_t)(p * 3 + n * 101); }

typedef struct blob {
    uint8_t bytes[4 * DMZ_IMG_PIXELS + 64];
    size_t len;
} blob;

static void put_be32(blob *b, uint32_t v) {
    uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    memcpy(b->bytes + b->len, be, 4);
    b->len += 4;
}

/* An images file: header (magic, count, rows, cols), then `stored` images. */
static blob images_blob(uint32_t magic, uint32_t count, uint32_t rows, int stored) {
    blob b = {.len = 0};
    put_be32(&b, magic);
    put_be32(&b, count);
    put_be32(&b, rows);
    put_be32(&b, DMZ_IMG_SIDE);
    for (int n = 0; n < stored; n++)
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) b.bytes[b.len++] = pixel_value(n, p);
    return b;
}

static blob labels_blob(uint32_t magic, uint32_t count, int stored) {
    blob b = {.len = 0};
    put_be32(&b, magic);
    put_be32(&b, count);
    for (int n = 0; n < stored; n++) b.bytes[b.len++] = (uint8_t)(n + 1);
    return b;
}

static const char *save(const char *name, const blob *b, char *path) {
    snprintf(path, 512, "%s/%s", fs_tmpdir, name);
    size_t n = strlen(path);
    if (n > 3 && strcmp(path + n - 3, ".gz") == 0) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, b->bytes, (unsigned)b->len), (int)b->len);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b->bytes, 1, b->len, f), b->len);
        fclose(f);
    }
    return path;
}

static void check_values(const dmz_owned_split *s, bool transposed) {
    assert_int_equal(s->count, 3);
    for (int n = 0; n < 3; n++) {
        assert_int_equal(s->labels[n], n + 1);
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) {
            int y = p / DMZ_IMG_SIDE, x = p % DMZ_IMG_SIDE;
            int at = transposed ? x * DMZ_IMG_SIDE + y : p;
            assert_int_equal(s->images[n * DMZ_IMG_PIXELS + at], pixel_value(n, p));
        }
    }
}

static void read_good_pair(const char *images_name, const char *labels_name) {
    char ip[512], lp[512], err[DMZ_ERR_LEN];
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 3, 3);
    save(images_name, &im, ip);
    save(labels_name, &lb, lp);
    dmz_owned_split s;
    assert_int_equal(dmz_idx_read(ip, lp, 47, false, &s, err), DMZ_OK);
    check_values(&s, false);
    dmz_split_free(&s);
    assert_int_equal(dmz_idx_read(ip, lp, 47, true, &s, err), DMZ_OK);
    check_values(&s, true);
    dmz_split_free(&s);
}

static void test_plain_values_and_transpose(void **state) {
    (void)state;
    read_good_pair("plain-images-idx3-ubyte", "plain-labels-idx1-ubyte");
}

static void test_gzip_values_and_transpose(void **state) {
    (void)state;
    read_good_pair("gz-images-idx3-ubyte.gz", "gz-labels-idx1-ubyte.gz");
}

/* Reads images_blob/labels_blob saved under the names; expects exit 2 and fragments. */
static void expect_error(const char *iname, const blob *im, const char *lname, const blob *lb, int classes,
                         const char *const *fragments) {
    char ip[512], lp[512], err[DMZ_ERR_LEN] = "";
    save(iname, im, ip);
    save(lname, lb, lp);
    dmz_owned_split s;
    int rc = dmz_idx_read(ip, lp, classes, false, &s, err);
    print_message("message: %s\n", err);
    assert_int_equal(rc, DMZ_EXIT_USAGE);
    for (; *fragments; fragments++) {
        if (!strstr(err, *fragments)) print_error("'%s' not in '%s'\n", *fragments, err);
        assert_non_null(strstr(err, *fragments));
    }
    assert_null(s.images);
}

#define EXPECT(iname, im, lname, lb, ...) \
    expect_error(iname, im, lname, lb, 47, (const char *const[]){__VA_ARGS__, NULL})

static void test_bad_images_magic(void **state) {
    (void)state;
    blob im = images_blob(0x801, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 3, 3);
    EXPECT("m-images.gz", &im, "m-labels.gz", &lb, "m-images.gz: header field 'magic': 0x00000801, expected 0x00000803");
}

static void test_bad_labels_magic(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x803, 3, 3);
    EXPECT("ml-images", &im, "ml-labels", &lb, "ml-labels: header field 'magic': 0x00000803, expected 0x00000801");
}

static void test_bad_rows(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, 32, 3), lb = labels_blob(0x801, 3, 3);
    EXPECT("r-images", &im, "r-labels", &lb, "r-images: header field 'rows': 32, expected 28");
}

static void test_truncated_header(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 0), lb = labels_blob(0x801, 3, 3);
    im.len = 6;
    EXPECT("h-images", &im, "h-labels", &lb, "h-images: header field 'count': missing");
}

static void test_truncated_data(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 3, 3);
    im.len -= DMZ_IMG_PIXELS / 2;
    EXPECT("t-images", &im, "t-labels", &lb, "t-images: truncated", "header field 'count' says 3 images");
}

static void test_truncated_gzip_data(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 3, 3);
    im.len -= 100;
    EXPECT("tg-images.gz", &im, "tg-labels.gz", &lb, "tg-images.gz: truncated");
}

static void test_cut_gzip_stream(void **state) {
    (void)state;
    char ip[512], lp[512], err[DMZ_ERR_LEN] = "";
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 3, 3);
    save("cut-images.gz", &im, ip);
    save("cut-labels.gz", &lb, lp);
    struct stat st;
    assert_int_equal(stat(ip, &st), 0);
    assert_int_equal(truncate(ip, st.st_size / 2), 0);
    dmz_owned_split s;
    assert_int_equal(dmz_idx_read(ip, lp, 47, false, &s, err), DMZ_EXIT_USAGE);
    print_message("message: %s\n", err);
    assert_non_null(strstr(err, "cut-images.gz: "));
}

/* A header that claims 100 million images (78 GB) over a file of one image: an
 * input error, found without first allocating what the header claims. The
 * address space is capped at what the process uses plus 1 GiB (not under
 * ASan, whose shadow memory needs more), so the test does not depend on how
 * much memory the machine has. */
static void test_huge_count_in_small_file(void **state) {
    (void)state;
    blob im = images_blob(0x803, 100000000, DMZ_IMG_SIDE, 1), lb = labels_blob(0x801, 1, 1);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_AS, &saved), 0);
#ifndef __SANITIZE_ADDRESS__
    unsigned long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    assert_non_null(statm);
    assert_int_equal(fscanf(statm, "%lu", &pages), 1);
    fclose(statm);
    struct rlimit cap = saved;
    cap.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1ul << 30);
    if (saved.rlim_cur == RLIM_INFINITY || cap.rlim_cur < saved.rlim_cur)
        assert_int_equal(setrlimit(RLIMIT_AS, &cap), 0);
#endif
    EXPECT("huge-images", &im, "huge-labels", &lb,
           "huge-images: truncated: the data ends after 784 of 78400000000 bytes",
           "header field 'count' says 100000000 images");
    assert_int_equal(setrlimit(RLIMIT_AS, &saved), 0);
}

static void test_trailing_data(void **state) {
    (void)state;
    blob im = images_blob(0x803, 2, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 2, 2);
    EXPECT("x-images", &im, "x-labels", &lb, "x-images: data goes on after the 2 images");
}

static void test_count_mismatch(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 2, 2);
    EXPECT("c-images", &im, "c-labels", &lb, "c-labels: header field 'count': 2 labels", "c-images holds 3 images");
}

static void test_label_out_of_range(void **state) {
    (void)state;
    blob im = images_blob(0x803, 3, DMZ_IMG_SIDE, 3), lb = labels_blob(0x801, 3, 3);
    lb.bytes[8 + 1] = 50;
    EXPECT("l-images", &im, "l-labels", &lb, "l-labels: label 2 (byte 9): 50 is out of range 0..46");
}

static void test_missing_file(void **state) {
    (void)state;
    char ip[512], err[DMZ_ERR_LEN];
    snprintf(ip, sizeof ip, "%s/absent-images", fs_tmpdir);
    dmz_owned_split s;
    assert_int_equal(dmz_idx_read(ip, ip, 47, false, &s, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "absent-images: cannot open"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_values_and_transpose),
        cmocka_unit_test(test_gzip_values_and_transpose),
        cmocka_unit_test(test_bad_images_magic),
        cmocka_unit_test(test_bad_labels_magic),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_truncated_data),
        cmocka_unit_test(test_truncated_gzip_data),
        cmocka_unit_test(test_cut_gzip_stream),
        cmocka_unit_test(test_huge_count_in_small_file),
        cmocka_unit_test(test_trailing_data),
        cmocka_unit_test(test_count_mismatch),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
