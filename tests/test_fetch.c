/* tests/test_fetch.c — dmz_fetch_url against tests/httpd.c on 127.0.0.1
 * (checksums, resumption, misbehaving servers) and zip extraction. The data set
 * level (manifest, `dmzbench fetch`) is in test_fetch_dataset.c. No test
 * touches the outside network. */
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

#include "common/dmz.h"
#include "datasets/fetch.h"
#include "datasets/fetch_internal.h"
#include "tests/support.h"
#include "tests/httpd.h"

enum { BODY_LEN = 1 << 20 };

typedef struct fixture {
    char dir[200];
    char dest[256], part[264];
    unsigned char *body;
    size_t len;
    char sha256[65], md5[33];
    char url[256];
    httpd *h;
} fixture;

/* ---------------------------------------------------------------- helpers */

#define assert_file_is(path, data, len) assert_true(fs_file_is(path, data, len))
#define exists fs_exists

/* Serves fx->body at /data.bin (and extra files) with the given behaviour. */
static void serve(fixture *fx, httpd_config cfg) {
    cfg.files[0] = (httpd_file){.path = "/data.bin", .body = fx->body, .len = fx->len};
    fx->h = httpd_start(&cfg);
    assert_non_null(fx->h);
    httpd_url(fx->h, "/data.bin", fx->url, sizeof fx->url);
}

static dmz_fetch_request request(fixture *fx) {
    return (dmz_fetch_request){.url = fx->url, .dest_path = fx->dest, .quiet = true, .stall_timeout_s = 2};
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    const char *tmp = getenv("TMPDIR");  /* TMPDIR=/dev/shm takes the disk out of the timings */
    snprintf(fx->dir, sizeof fx->dir, "%s/dmz-fetch-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->dest, sizeof fx->dest, "%s/out.bin", fx->dir);
    snprintf(fx->part, sizeof fx->part, "%s.part", fx->dest);
    fx->len = BODY_LEN;
    fx->body = fs_random_bytes(fx->len, 42);
    fs_hash_buffer(fx->body, fx->len, fx->sha256, fx->md5);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    httpd_stop(fx->h);
    fs_rm_rf(fx->dir);
    free(fx->body);
    free(fx);
    return 0;
}

/* ---------------------------------------------------------------- dmz_fetch_url */

static void test_success(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){0});
    dmz_fetch_request req = request(fx);
    req.expect_sha256 = fx->sha256;
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_false(exists(fx->part));
    assert_string_equal(st.sha256, fx->sha256);
    assert_true(st.bytes == (double)fx->len);
    assert_true(st.seconds > 0 && st.mbytes_per_s > 0);
    assert_true(st.resumed_from == 0);
    assert_int_equal(st.retries_used, 0);
    assert_int_equal(st.http_status, 200);
}

static void test_wrong_sha256(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){0});
    dmz_fetch_request req = request(fx);
    const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    req.expect_sha256 = wrong;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, "SHA-256 mismatch"));
    assert_non_null(strstr(err, wrong));
    assert_non_null(strstr(err, fx->sha256));
    assert_false(exists(fx->dest));
    assert_false(exists(fx->part));
}

static void test_md5(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){0});
    dmz_fetch_request req = request(fx);
    req.expect_md5 = fx->md5;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    unlink(fx->dest);
    req.expect_md5 = "58c8d27c78d21e728a6bc7b3cc06412e";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, "MD5 mismatch"));
    assert_non_null(strstr(err, fx->md5));
    assert_false(exists(fx->dest) || exists(fx->part));
    req.expect_md5 = "abc";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_EXIT_USAGE);
}

static void test_drop_mid_file_resumes(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){.mode = HTTPD_DROP, .after_bytes = BODY_LEN / 3, .bad_requests = 1});
    dmz_fetch_request req = request(fx);
    req.expect_sha256 = fx->sha256;
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_int_equal(st.retries_used, 1);
    assert_int_equal(httpd_requests(fx->h), 2);
    assert_int_equal(httpd_last_range(fx->h), BODY_LEN / 3);  /* the retry asked for the rest only */
    assert_true(st.bytes == (double)fx->len);
}

static void test_resume_part_from_earlier_run(void **state) {
    fixture *fx = *state;
    size_t have = 300000;
    assert_true(fs_write(fx->part, fx->body, have));
    serve(fx, (httpd_config){0});
    dmz_fetch_request req = request(fx);
    req.expect_sha256 = fx->sha256;
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_true(st.resumed_from == (double)have);
    assert_true(st.bytes == (double)(fx->len - have));
    assert_int_equal(httpd_last_range(fx->h), have);
    assert_int_equal(st.http_status, 206);
}

static void test_part_already_complete(void **state) {
    fixture *fx = *state;
    assert_true(fs_write(fx->part, fx->body, fx->len));
    serve(fx, (httpd_config){0});
    dmz_fetch_request req = request(fx);
    req.expect_sha256 = fx->sha256;
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    int rc = dmz_fetch_url(&req, &st, err);
    if (rc) fail_msg("%s", err);  /* 416: nothing left to send */
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_true(st.bytes == 0);
    assert_int_equal(st.http_status, 416);
}

static void test_stale_longer_part_restarts(void **state) {
    fixture *fx = *state;
    unsigned char *junk = fs_random_bytes(fx->len + 1000, 7);
    assert_true(fs_write(fx->part, junk, fx->len + 1000));
    free(junk);
    serve(fx, (httpd_config){0});
    dmz_fetch_request req = request(fx);
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
}

static void test_server_ignores_range(void **state) {
    fixture *fx = *state;
    assert_true(fs_write(fx->part, fx->body, 200000));
    serve(fx, (httpd_config){.mode = HTTPD_IGNORE_RANGE});
    dmz_fetch_request req = request(fx);
    req.expect_sha256 = fx->sha256;
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_true(st.resumed_from == 0);
    assert_true(st.bytes == (double)fx->len);
}

static void test_404(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){0});
    httpd_url(fx->h, "/missing.bin", fx->url, sizeof fx->url);
    dmz_fetch_request req = request(fx);
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, "404"));
    assert_non_null(strstr(err, fx->url));
    assert_int_equal(st.http_status, 404);
    assert_false(exists(fx->dest) || exists(fx->part));
}

static void expect_html_rejected(fixture *fx, const char *content_type) {
    httpd_config cfg = {.mode = HTTPD_HTML};
    serve(fx, cfg);
    httpd_stop(fx->h);
    cfg.files[0] = (httpd_file){.path = "/data.bin", .body = fx->body, .len = fx->len, .content_type = content_type};
    fx->h = httpd_start(&cfg);
    httpd_url(fx->h, "/data.bin", fx->url, sizeof fx->url);
    dmz_fetch_request req = request(fx);
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, "answered with an HTML page, not the data set"));
    assert_non_null(strstr(err, "biometrics.nist.gov"));
    assert_false(exists(fx->dest) || exists(fx->part));
}

static void test_html_rejected_by_type(void **state) { expect_html_rejected(*state, NULL); }

static void test_html_rejected_by_content(void **state) {
    expect_html_rejected(*state, "application/octet-stream");
}

static void test_redirect_followed(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){.redirect_from = "/old/data.bin", .redirect_to = "/data.bin"});
    httpd_url(fx->h, "/old/data.bin", fx->url, sizeof fx->url);
    dmz_fetch_request req = request(fx);
    req.expect_sha256 = fx->sha256;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_int_equal(httpd_requests(fx->h), 2);
}

static void test_stall_fails_in_time(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){.mode = HTTPD_STALL, .after_bytes = 1000});
    dmz_fetch_request req = request(fx);
    req.stall_timeout_s = 1;
    req.retries = -1;
    char err[DMZ_ERR_LEN] = "";
    double t0 = dmz_now_s();
    assert_int_equal(dmz_fetch_url(&req, NULL, err), DMZ_EXIT_FAIL);
    double took = dmz_now_s() - t0;
    if (took < 0.9 || took > 5.0) fail_msg("stall detected after %.2f s (stall timeout 1 s)", took);
    assert_non_null(strstr(err, "stalled"));
    assert_non_null(strstr(err, "run again to resume"));
    assert_false(exists(fx->dest));
}

static void test_stall_then_recover(void **state) {
    fixture *fx = *state;
    serve(fx, (httpd_config){.mode = HTTPD_STALL, .after_bytes = 5000, .bad_requests = 1});
    dmz_fetch_request req = request(fx);
    req.stall_timeout_s = 1;
    req.expect_sha256 = fx->sha256;
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_OK);
    assert_file_is(fx->dest, fx->body, fx->len);
    assert_int_equal(st.retries_used, 1);
    assert_int_equal(httpd_last_range(fx->h), 5000);
}

static void test_loopback_speed(void **state) {
    fixture *fx = *state;
    free(fx->body);
    fx->len = 50u << 20;
    fx->body = fs_random_bytes(fx->len, 3);
    serve(fx, (httpd_config){.lifetime_s = 20});
    dmz_fetch_request req = request(fx);
    dmz_fetch_stats st;
    char err[DMZ_ERR_LEN] = "";
    double t0 = dmz_now_s();
    assert_int_equal(dmz_fetch_url(&req, &st, err), DMZ_OK);
    printf("  loopback: %.0f bytes in %.3f s = %.1f MB/s (transfer); %.3f s with SHA-256 and rename\n",
           st.bytes, st.seconds, st.mbytes_per_s, dmz_now_s() - t0);
    assert_true(st.bytes == (double)fx->len);
}

/* ---------------------------------------------------------------- zip */

static void test_unzip_named_members(void **state) {
    fixture *fx = *state;
    char zip[256], out_dir[256], path[512];
    snprintf(zip, sizeof zip, "%s/a.zip", fx->dir);
    snprintf(out_dir, sizeof out_dir, "%s/set", fx->dir);
    mkdir(out_dir, 0755);
    fs_member m[] = {{"gzip/", "", 0}, {"gzip/one.gz", fx->body, 1000}, {"gzip/two.gz", fx->body + 1000, 5000},
                  {"gzip/three.gz", fx->body, 10}, {"README", "hi", 2}};
    assert_true(fs_make_zip(zip, m, 5));
    const char *want[] = {"gzip/one.gz", "two.gz"};
    dmz_unzipped out[4];
    int n = 0;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_unzip(zip, want, 2, out_dir, out, 4, &n, err), DMZ_OK);
    assert_int_equal(n, 2);
    snprintf(path, sizeof path, "%s/one.gz", out_dir);
    assert_file_is(path, fx->body, 1000);
    snprintf(path, sizeof path, "%s/two.gz", out_dir);
    assert_file_is(path, fx->body + 1000, 5000);
    char sha[65];
    fs_hash_buffer(fx->body + 1000, 5000, sha, NULL);
    assert_string_equal(out[1].sha256, sha);
    snprintf(path, sizeof path, "%s/three.gz", out_dir);
    assert_false(exists(path));
    snprintf(path, sizeof path, "%s/two.gz.part", out_dir);
    assert_false(exists(path));
    const char *none[] = {"other.gz"};
    assert_int_equal(dmz_unzip(zip, none, 1, out_dir, out, 4, &n, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "other.gz"));
}

static void test_unzip_single_member_renamed(void **state) {
    fixture *fx = *state;
    char zip[256], path[512];
    snprintf(zip, sizeof zip, "%s/k.zip", fx->dir);
    fs_member m[] = {{"whatever.csv", "1,2,3\n", 6}};
    assert_true(fs_make_zip(zip, m, 1));
    const char *want[] = {"emnist-balanced-train.csv"};
    dmz_unzipped out[1];
    int n = 0;
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_unzip(zip, want, 1, fx->dir, out, 1, &n, err), DMZ_OK);
    assert_int_equal(n, 1);
    snprintf(path, sizeof path, "%s/emnist-balanced-train.csv", fx->dir);
    assert_file_is(path, "1,2,3\n", 6);
    assert_true(dmz_is_zip(zip));
    assert_false(dmz_is_zip(path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_sha256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_md5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_mid_file_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_part_from_earlier_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_already_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_longer_part_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ignores_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_rejected_by_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_rejected_by_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_fails_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_then_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_speed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unzip_named_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unzip_single_member_renamed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
