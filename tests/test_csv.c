/* tests/test_csv.c — the Kaggle CSV reader: values, transposition, and every
 * way a file can be wrong, each named by file, line and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dmz.h"
#include "datasets/datasets.h"
#include "tests/support.h"

static int pixel_value(int row, int p) { return (p * 7 + row * 13) % 256; }

/* A row: label, then npixels fields; pixel `at` (when >= 0) written as `text`. */
static void put_row(FILE *f, const char *label, int row, int npixels, int at, const char *text, const char *eol) {
    fputs(label, f);
    for (int p = 0; p < npixels; p++) {
        if (p == at) fprintf(f, ",%s", text);
        else fprintf(f, ",%d", pixel_value(row, p));
    }
    fputs(eol, f);
}

static FILE *create(const char *name, char *path) {
    snprintf(path, 512, "%s/%s", fs_tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    return f;
}

/* A file of `rows` good rows, where row `bad_row` (0-based) gets label/pixel overrides. */
static void write_csv(const char *name, char *path, int rows, int bad_row, const char *label, int npixels, int at,
                      const char *text, const char *eol) {
    FILE *f = create(name, path);
    for (int r = 0; r < rows; r++) {
        char good_label[8];
        snprintf(good_label, sizeof good_label, "%d", r % 10);
        if (r == bad_row) put_row(f, label, r, npixels, at, text, eol);
        else put_row(f, good_label, r, DMZ_IMG_PIXELS, -1, NULL, eol);
    }
    fclose(f);
}

static void expect_error(const char *path, int classes, const char *const *fragments) {
    dmz_owned_split s;
    char err[DMZ_ERR_LEN] = "";
    int rc = dmz_csv_read(path, classes, false, &s, err);
    print_message("message: %s\n", err);
    assert_int_equal(rc, DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, path));
    for (; *fragments; fragments++) {
        if (!strstr(err, *fragments)) print_error("'%s' not in '%s'\n", *fragments, err);
        assert_non_null(strstr(err, *fragments));
    }
    assert_null(s.images);
    assert_int_equal(s.count, 0);
}

#define EXPECT(path, classes, ...) expect_error(path, classes, (const char *const[]){__VA_ARGS__, NULL})

static void check_values(const dmz_owned_split *s, int rows, bool transposed) {
    assert_int_equal(s->count, rows);
    for (int r = 0; r < rows; r++) {
        assert_int_equal(s->labels[r], r % 10);
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) {
            int y = p / DMZ_IMG_SIDE, x = p % DMZ_IMG_SIDE;
            int at = transposed ? x * DMZ_IMG_SIDE + y : p;
            assert_int_equal(s->images[(size_t)r * DMZ_IMG_PIXELS + at], pixel_value(r, p));
        }
    }
}

static void test_valid_file_values_and_transpose(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    write_csv("valid.csv", path, 3, -1, NULL, 0, -1, NULL, "\n");
    dmz_owned_split s;
    assert_int_equal(dmz_csv_read(path, 47, false, &s, err), DMZ_OK);
    check_values(&s, 3, false);
    dmz_split_free(&s);
    assert_int_equal(dmz_csv_read(path, 47, true, &s, err), DMZ_OK);
    check_values(&s, 3, true);
    dmz_split_free(&s);
}

static void test_crlf_accepted_and_lines_counted(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    write_csv("crlf.csv", path, 3, -1, NULL, 0, -1, NULL, "\r\n");
    dmz_owned_split s;
    assert_int_equal(dmz_csv_read(path, 47, false, &s, err), DMZ_OK);
    check_values(&s, 3, false);
    dmz_split_free(&s);
    write_csv("crlf_bad.csv", path, 3, 2, "2", DMZ_IMG_PIXELS, 5, "x", "\r\n");
    EXPECT(path, 47, "crlf_bad.csv:3: field 7 (pixel 5): 'x' is not an integer");
}

static void test_missing_newline_at_eof_accepted(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    FILE *f = create("no_eol.csv", path);
    put_row(f, "0", 0, DMZ_IMG_PIXELS, -1, NULL, "\n");
    put_row(f, "1", 1, DMZ_IMG_PIXELS, -1, NULL, "\n");
    put_row(f, "2", 2, DMZ_IMG_PIXELS, -1, NULL, "");
    fclose(f);
    dmz_owned_split s;
    assert_int_equal(dmz_csv_read(path, 47, false, &s, err), DMZ_OK);
    check_values(&s, 3, false);
    dmz_split_free(&s);
}

static void test_empty_file(void **state) {
    (void)state;
    char path[512];
    fclose(create("empty.csv", path));
    EXPECT(path, 47, "empty.csv:1: field 1 (label)", "no rows");
}

static void test_ragged_row(void **state) {
    (void)state;
    char path[512];
    write_csv("ragged.csv", path, 1, 0, "1", DMZ_IMG_PIXELS - 1, -1, NULL, "\n");
    EXPECT(path, 47, "ragged.csv:1: field 785 (pixel 783): missing", "784 fields");
}

static void test_missing_final_fields_of_last_row(void **state) {
    (void)state;
    char path[512];
    FILE *f = create("short_last.csv", path);
    put_row(f, "0", 0, DMZ_IMG_PIXELS, -1, NULL, "\n");
    put_row(f, "1", 1, DMZ_IMG_PIXELS, -1, NULL, "\n");
    put_row(f, "2", 2, 100, -1, NULL, ""); /* the file stops in the middle of row 3 */
    fclose(f);
    EXPECT(path, 47, "short_last.csv:3: field 102 (pixel 100): missing");
}

static void test_overlong_row(void **state) {
    (void)state;
    char path[512];
    write_csv("overlong.csv", path, 1, 0, "1", DMZ_IMG_PIXELS + 1, -1, NULL, "\n");
    EXPECT(path, 47, "overlong.csv:1: field 786", "785 fields");
}

static void test_label_out_of_range(void **state) {
    (void)state;
    char path[512];
    write_csv("label47.csv", path, 1, 0, "47", DMZ_IMG_PIXELS, -1, NULL, "\n");
    EXPECT(path, 47, "label47.csv:1: field 1 (label): '47' is out of range 0..46");
}

static void test_label_negative(void **state) {
    (void)state;
    char path[512];
    write_csv("label_neg.csv", path, 1, 0, "-1", DMZ_IMG_PIXELS, -1, NULL, "\n");
    EXPECT(path, 47, "label_neg.csv:1: field 1 (label): '-1' is out of range 0..46");
}

static void test_label_not_integer(void **state) {
    (void)state;
    char path[512];
    write_csv("label_frac.csv", path, 1, 0, "3.5", DMZ_IMG_PIXELS, -1, NULL, "\n");
    EXPECT(path, 47, "label_frac.csv:1: field 1 (label): '3.5' is not an integer");
}

static void test_pixel_256(void **state) {
    (void)state;
    char path[512];
    write_csv("p256.csv", path, 1, 0, "1", DMZ_IMG_PIXELS, 1, "256", "\n");
    EXPECT(path, 47, "p256.csv:1: field 3 (pixel 1): '256' is out of range 0..255");
}

static void test_pixel_negative(void **state) {
    (void)state;
    char path[512];
    write_csv("pneg.csv", path, 1, 0, "1", DMZ_IMG_PIXELS, 783, "-1", "\n");
    EXPECT(path, 47, "pneg.csv:1: field 785 (pixel 783): '-1' is out of range 0..255");
}

static void test_pixel_not_numeric(void **state) {
    (void)state;
    char path[512];
    write_csv("pabc.csv", path, 1, 0, "1", DMZ_IMG_PIXELS, 0, "abc", "\n");
    EXPECT(path, 47, "pabc.csv:1: field 2 (pixel 0): 'abc' is not an integer");
}

static void test_pixel_with_space(void **state) {
    (void)state;
    char path[512];
    write_csv("pspace.csv", path, 1, 0, "1", DMZ_IMG_PIXELS, 9, " 12", "\n");
    EXPECT(path, 47, "pspace.csv:1: field 11 (pixel 9): ' 12' is not an integer");
}

static void test_blank_field(void **state) {
    (void)state;
    char path[512];
    write_csv("blank.csv", path, 1, 0, "1", DMZ_IMG_PIXELS, 3, "", "\n");
    EXPECT(path, 47, "blank.csv:1: field 5 (pixel 3): empty");
}

static void test_bad_row_in_the_middle(void **state) {
    (void)state;
    char path[512];
    write_csv("middle.csv", path, 3, 1, "1", DMZ_IMG_PIXELS, 400, "300", "\n");
    EXPECT(path, 47, "middle.csv:2: field 402 (pixel 400): '300' is out of range 0..255");
}

static void test_blank_line_in_the_middle(void **state) {
    (void)state;
    char path[512];
    FILE *f = create("blank_line.csv", path);
    put_row(f, "0", 0, DMZ_IMG_PIXELS, -1, NULL, "\n\n");
    put_row(f, "1", 1, DMZ_IMG_PIXELS, -1, NULL, "\n");
    fclose(f);
    EXPECT(path, 47, "blank_line.csv:2: field 1 (label): missing: blank line");
}

static void test_trailing_blank_lines_accepted(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    FILE *f = create("trailing.csv", path);
    put_row(f, "0", 0, DMZ_IMG_PIXELS, -1, NULL, "\n");
    put_row(f, "1", 1, DMZ_IMG_PIXELS, -1, NULL, "\r\n\r\n\n");
    fclose(f);
    dmz_owned_split s;
    assert_int_equal(dmz_csv_read(path, 47, false, &s, err), DMZ_OK);
    check_values(&s, 2, false);
    dmz_split_free(&s);
}

static void test_inferred_classes_take_any_byte(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    write_csv("label200.csv", path, 1, 0, "200", DMZ_IMG_PIXELS, -1, NULL, "\n");
    dmz_owned_split s;
    assert_int_equal(dmz_csv_read(path, 0, false, &s, err), DMZ_OK);
    assert_int_equal(s.labels[0], 200);
    dmz_split_free(&s);
    write_csv("label256.csv", path, 1, 0, "256", DMZ_IMG_PIXELS, -1, NULL, "\n");
    EXPECT(path, 0, "label256.csv:1: field 1 (label): '256' is out of range 0..255");
}

static void test_missing_file(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    snprintf(path, sizeof path, "%s/absent.csv", fs_tmpdir);
    dmz_owned_split s;
    assert_int_equal(dmz_csv_read(path, 47, false, &s, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "absent.csv: cannot open"));
}

static void test_byte_order_mark_named(void **state) {
    (void)state;
    char path[512];
    write_csv("bom.csv", path, 2, 0, "\xEF\xBB\xBF" "3", DMZ_IMG_PIXELS, -1, NULL, "\n");
    EXPECT(path, 47, "bom.csv:1: field 1 (label)", "UTF-8 byte order mark (bytes EF BB BF)");
}

/* 3 GB without a separator (a sparse file: no disk used): refused after a few
 * KB, not buffered whole. */
static void test_endless_field_not_buffered(void **state) {
    (void)state;
    char path[512];
    FILE *f = create("endless.csv", path);
    fputs("1", f);
    fclose(f);
    assert_int_equal(truncate(path, (off_t)3 << 30), 0);
    double t0 = dmz_now_s();
    EXPECT(path, 47, "endless.csv:1: field 1 (label): longer than 4096 bytes");
    assert_true(dmz_now_s() - t0 < 5);
    unlink(path);
}

static void test_not_a_regular_file(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN];
    snprintf(path, sizeof path, "%s/pipe-train.csv", fs_tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    dmz_owned_split s;
    alarm(20); /* a blocking open would hang here: die instead */
    assert_int_equal(dmz_csv_read(path, 47, false, &s, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "pipe-train.csv: not a regular file (a FIFO)"));
    assert_int_equal(dmz_csv_read("/dev/zero", 47, false, &s, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "/dev/zero: not a regular file (a character device)"));
    assert_int_equal(dmz_csv_read(fs_tmpdir, 47, false, &s, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "not a regular file (a directory)"));
    alarm(0);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file_values_and_transpose),
        cmocka_unit_test(test_crlf_accepted_and_lines_counted),
        cmocka_unit_test(test_missing_newline_at_eof_accepted),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_ragged_row),
        cmocka_unit_test(test_missing_final_fields_of_last_row),
        cmocka_unit_test(test_overlong_row),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_label_negative),
        cmocka_unit_test(test_label_not_integer),
        cmocka_unit_test(test_pixel_256),
        cmocka_unit_test(test_pixel_negative),
        cmocka_unit_test(test_pixel_not_numeric),
        cmocka_unit_test(test_pixel_with_space),
        cmocka_unit_test(test_blank_field),
        cmocka_unit_test(test_bad_row_in_the_middle),
        cmocka_unit_test(test_blank_line_in_the_middle),
        cmocka_unit_test(test_trailing_blank_lines_accepted),
        cmocka_unit_test(test_inferred_classes_take_any_byte),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_byte_order_mark_named),
        cmocka_unit_test(test_endless_field_not_buffered),
        cmocka_unit_test(test_not_a_regular_file),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
