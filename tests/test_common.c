/* common/: reading whole files with a size limit, atomic writes, the seeded RNG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/dmz.h"
#include "tests/support.h"

static void test_read_file_limits(void **state) {
    (void)state;
    char path[256], err[DMZ_ERR_LEN], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/ten", fs_tmpdir);
    assert_true(fs_write(path, "0123456789", 10));
    assert_int_equal(dmz_read_file(path, 10, &text, &len, err), DMZ_OK);
    assert_int_equal(len, 10);
    assert_string_equal(text, "0123456789");
    free(text);
    assert_int_equal(dmz_read_file(path, 9, &text, &len, err), DMZ_EXIT_USAGE);
    assert_null(text);
    assert_non_null(strstr(err, "larger than 9 bytes"));
    snprintf(path, sizeof path, "%s/empty", fs_tmpdir);
    assert_true(fs_write(path, "", 0));
    assert_int_equal(dmz_read_file(path, 10, &text, NULL, err), DMZ_OK);
    assert_string_equal(text, "");
    free(text);
    snprintf(path, sizeof path, "%s/absent", fs_tmpdir);
    assert_int_equal(dmz_read_file(path, 10, &text, NULL, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "absent: cannot open"));
}

static void test_read_file_large(void **state) {
    (void)state;
    enum { N = 300000 }; /* past the first buffer: exercises growth */
    unsigned char *data = fs_random_bytes(N, 9);
    char path[256], err[DMZ_ERR_LEN], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/big", fs_tmpdir);
    assert_true(fs_write(path, data, N));
    assert_int_equal(dmz_read_file(path, N, &text, &len, err), DMZ_OK);
    assert_int_equal(len, N);
    assert_memory_equal(text, data, N);
    free(text);
    assert_int_equal(dmz_read_file(path, N - 1, &text, &len, err), DMZ_EXIT_USAGE);
    free(data);
}

static void test_write_file_atomic(void **state) {
    (void)state;
    char path[256], err[DMZ_ERR_LEN];
    snprintf(path, sizeof path, "%s/out.txt", fs_tmpdir);
    assert_int_equal(dmz_write_file_atomic(path, "first", 5, err), DMZ_OK);
    assert_int_equal(dmz_write_file_atomic(path, "second", 6, err), DMZ_OK);
    assert_true(fs_file_is(path, "second", 6));
    snprintf(path, sizeof path, "%s/no/such/dir/out.txt", fs_tmpdir);
    assert_int_equal(dmz_write_file_atomic(path, "x", 1, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, "cannot create"));
}

static void test_rng_is_seeded(void **state) {
    (void)state;
    dmz_rng a, b;
    dmz_rng_seed(&a, 42);
    dmz_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) assert_true(dmz_rng_next(&a) == dmz_rng_next(&b));
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[dmz_rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++) assert_true(counts[i] > 9500 && counts[i] < 10500);
    for (int i = 0; i < 10000; i++) {
        float x = dmz_rng_truncated_normal(&a, 0.5f);
        assert_true(x >= -1.0f && x <= 1.0f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_file_limits),
        cmocka_unit_test(test_read_file_large),
        cmocka_unit_test(test_write_file_atomic),
        cmocka_unit_test(test_rng_is_seeded),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
