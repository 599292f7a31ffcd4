/* tests/test_csvio.c — common/csvio: RFC 4180 fields written and read back
 * (commas, quotes, CR/LF, spaces, UTF-8), the exact bytes written, and the
 * reader's errors (unterminated quote, stray quote, endless line, a FIFO). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/csvio.h"
#include "common/dmz.h"
#include "tests/support.h"

static const char *const tricky[] = {
    "plain", "with,comma", "say \"hi\"", "two\nlines", "cr\rlf\r\n", "", " lead", "trail ", "NA", "0.25",
    "caf\xc3\xa9 \xe2\x80\x94 ok", "\"", ",", "a\"\"b",
};
enum { NT = sizeof tricky / sizeof tricky[0] };

typedef struct collected {
    int rows;
    char *cells[8][NT];
    int n[8];
    long line[8];
    int stop_at; /* return 99 at this row (0: never) */
} collected;

static int collect(void *user, char **fields, int n, long line, char *err) {
    collected *c = user;
    if (c->stop_at && c->rows + 1 == c->stop_at) return dmz_errorf(err, 99, "stopped");
    if (c->rows >= 8 || n > NT) return dmz_errorf(err, 98, "too many");
    for (int i = 0; i < n; i++) c->cells[c->rows][i] = strdup(fields[i]);
    c->n[c->rows] = n;
    c->line[c->rows++] = line;
    return 0;
}

static void free_collected(collected *c) {
    for (int r = 0; r < c->rows; r++)
        for (int i = 0; i < c->n[r]; i++) free(c->cells[r][i]);
}

static const char *scratch(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fs_tmpdir, name);
    return path;
}

static void test_needs_quotes(void **state) {
    (void)state;
    assert_false(dmz_csv_needs_quotes("abc"));
    assert_false(dmz_csv_needs_quotes(""));
    assert_false(dmz_csv_needs_quotes(NULL));
    assert_false(dmz_csv_needs_quotes("1.5e-08"));
    assert_false(dmz_csv_needs_quotes("a b"));
    assert_true(dmz_csv_needs_quotes("a,b"));
    assert_true(dmz_csv_needs_quotes("a\"b"));
    assert_true(dmz_csv_needs_quotes("a\nb"));
    assert_true(dmz_csv_needs_quotes("a\rb"));
    assert_true(dmz_csv_needs_quotes(" a"));
    assert_true(dmz_csv_needs_quotes("a "));
}

static void test_exact_bytes(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *row[] = {"a", "b,c", "d \"e\"", "f\ng", "", " x", "NA"};
    assert_int_equal(dmz_csv_write_row(f, row, 7), 0);
    fclose(f);
    assert_string_equal(buf, "a,\"b,c\",\"d \"\"e\"\"\",\"f\ng\",,\" x\",NA\n");
    free(buf);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *path = scratch("round.csv");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const char *header[] = {"run", "value"};
    assert_int_equal(dmz_csv_write_row(f, header, 2), 0);
    assert_int_equal(dmz_csv_write_row(f, tricky, NT), 0);
    const char *last[] = {"end", "1"};
    assert_int_equal(dmz_csv_write_row(f, last, 2), 0);
    assert_int_equal(fclose(f), 0);
    collected c = {0};
    char err[DMZ_ERR_LEN] = "";
    int rc = dmz_csv_each_row(path, collect, &c, err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(c.rows, 3);
    assert_int_equal(c.n[1], NT);
    for (int i = 0; i < NT; i++) {
        if (strcmp(c.cells[1][i], tricky[i]) != 0) fail_msg("field %d: '%s' read back as '%s'", i, tricky[i], c.cells[1][i]);
    }
    assert_int_equal(c.line[0], 1);
    assert_string_equal(c.cells[2][0], "end");
    assert_int_equal(c.line[2], 5); /* two quoted line breaks ("\n" and "\r\n"; a lone CR is no line) */
    free_collected(&c);
}

static void expect_read_error(const char *name, const char *text, const char *needle) {
    const char *path = scratch(name);
    assert_true(fs_write(path, text, strlen(text)));
    collected c = {0};
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_csv_each_row(path, collect, &c, err), DMZ_EXIT_USAGE);
    print_message("message: %s\n", err);
    if (!strstr(err, needle)) fail_msg("'%s' not in '%s'", needle, err);
    assert_non_null(strstr(err, name));
    free_collected(&c);
}

static void test_read_errors(void **state) {
    (void)state;
    expect_read_error("open-quote.csv", "a,b\n1,\"never ends\n2,3\n", "line 3");
    expect_read_error("stray-quote.csv", "a,b\n1,x\"y\n", "line 2, field 2");
    collected c = {0};
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_csv_each_row(scratch("absent.csv"), collect, &c, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "absent.csv: cannot open"));
    const char *fifo = scratch("fifo.csv");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);
    assert_int_equal(dmz_csv_each_row(fifo, collect, &c, err), DMZ_EXIT_USAGE);
    alarm(0);
    assert_non_null(strstr(err, "not a regular file (a FIFO)"));
}

static void test_endless_line(void **state) {
    (void)state;
    const char *path = scratch("endless.csv");
    assert_true(fs_write(path, "a,b\n1", 5));
    assert_int_equal(truncate(path, (off_t)3 << 30), 0); /* sparse: no disk */
    collected c = {0};
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_csv_each_row(path, collect, &c, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "endless.csv: line 2: longer than 1048576 bytes"));
    unlink(path);
    free_collected(&c);
}

static void test_callback_stops(void **state) {
    (void)state;
    const char *path = scratch("stop.csv");
    assert_true(fs_write(path, "a\nb\nc\n", 6));
    collected c = {.stop_at = 2};
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_csv_each_row(path, collect, &c, err), 99);
    assert_string_equal(err, "stopped");
    assert_int_equal(c.rows, 1);
    free_collected(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needs_quotes), cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_endless_line), cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
