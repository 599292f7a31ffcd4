/* tests/test_fetch_dataset.c — `dmzbench fetch` at the data set level: the
 * manifest (the real datasets/sources.ini and broken ones), sources tried in
 * order, --url with a zip or a CSV, FETCHED.json, "already present", and the
 * no-network message. Servers are tests/httpd.c on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dmz.h"
#include "datasets/fetch.h"
#include "datasets/fetch_internal.h"
#include "tests/support.h"
#include "tests/httpd.h"

typedef struct fixture {
    char dir[200];       /* the data dir */
    char path[512];     /* scratch */
    httpd *h;
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    const char *tmp = getenv("TMPDIR");  /* TMPDIR=/dev/shm takes the disk out of the timings */
    snprintf(fx->dir, sizeof fx->dir, "%s/dmz-fetchds-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!fx || !mkdtemp(fx->dir)) return -1;
    unsetenv("KAGGLE_USERNAME");
    unsetenv("KAGGLE_KEY");
    unsetenv("DMZBENCH_SOURCES");
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    httpd_stop(fx->h);
    fs_rm_rf(fx->dir);
    unsetenv("KAGGLE_USERNAME");
    unsetenv("KAGGLE_KEY");
    free(fx);
    return 0;
}

static const char *in_dir(fixture *fx, const char *rel) {
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, rel);
    return fx->path;
}

static cJSON *read_json(const char *path) {
    size_t len = 0;
    unsigned char *text = fs_slurp(path, &len);
    assert_non_null(text);
    cJSON *j = cJSON_Parse((const char *)text);
    free(text);
    assert_non_null(j);
    return j;
}

static const char *json_sha(cJSON *j, const char *group, const char *name) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, group), name);
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "sha256"));
}

/* ---------------------------------------------------------------- manifest */

static void test_real_manifest(void **state) {
    dmz_manifest *m = calloc(1, sizeof *m);
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_manifest_load(dmz_manifest_path(NULL), m, err), DMZ_OK);
    assert_int_equal(m->nsources, 3);
    const dmz_source *kaggle = &m->sources[0], *nist = &m->sources[1], *fashion = &m->sources[2];
    assert_string_equal(kaggle->dataset, "emnist-balanced");
    assert_string_equal(kaggle->auth, "kaggle");
    assert_int_equal(kaggle->nfiles, 2);
    assert_string_equal(kaggle->files[1].name, "emnist-balanced-test.csv");
    assert_string_equal(nist->label, "nist");
    assert_string_equal(nist->files[0].url, "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip");
    assert_string_equal(nist->files[0].md5, "58c8d27c78d21e728a6bc7b3cc06412e");
    const char *names[8];
    assert_int_equal(dmz_source_final_names(nist, names, 8), 4);
    assert_string_equal(names[0], "emnist-balanced-train-images-idx3-ubyte.gz");
    assert_string_equal(names[3], "emnist-balanced-test-labels-idx1-ubyte.gz");
    assert_string_equal(fashion->dataset, "fashion-mnist");
    assert_int_equal(fashion->nfiles, 4);
    assert_string_equal(fashion->files[2].name, "t10k-images-idx3-ubyte.gz");
    assert_string_equal(fashion->files[0].md5, "8d4fb7e6c68d591d4c3dfef9ec88bf0d");
    free(m);
}

static void expect_manifest_error(fixture *fx, const char *text, const char *needle) {
    dmz_manifest *m = calloc(1, sizeof *m);
    char err[DMZ_ERR_LEN] = "";
    assert_true(fs_write(in_dir(fx, "bad.ini"), text, strlen(text)));
    assert_int_equal(dmz_manifest_load(fx->path, m, err), DMZ_EXIT_USAGE);
    if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
    free(m);
}

static void test_manifest_errors(void **state) {
    fixture *fx = *state;
    expect_manifest_error(fx, "[a b]\nurl = http://x/y\ncolour = red\n", "bad.ini:3: unknown key 'colour'");
    expect_manifest_error(fx, "[a b]\nurl = http://x/y\nmd5 = 1234\n", "bad.ini:3: md5 '1234' is not 32 hex");
    expect_manifest_error(fx, "[ab]\nurl = http://x/y\n", "bad.ini:2: section [ab] must be named");
    expect_manifest_error(fx, "[a b]\nmd5 = 58c8d27c78d21e728a6bc7b3cc06412e\n", "before the first url");
    expect_manifest_error(fx, "[a b]\nformat = zip\nurl = http://x/y.zip\n", "lists no members");
    char long_line[300];
    snprintf(long_line, sizeof long_line, "[a b]\nurl = http://x/%0220d\n", 0);
    expect_manifest_error(fx, long_line, "bad.ini:2: line longer than");
}

/* ---------------------------------------------------------------- sources in order */

static void write_toy_manifest(fixture *fx, const char *zip_md5) {
    char url_csv[128], url_zip[128], text[1024];
    httpd_url(fx->h, "/k/toy-train.csv", url_csv, sizeof url_csv);
    httpd_url(fx->h, "/toy.zip", url_zip, sizeof url_zip);
    snprintf(text, sizeof text,
             "[toy kaggle]\nauth = kaggle\nformat = csv\nurl = %s\n\n"
             "[toy plain]\nformat = zip\nmembers = inner/toy-a.bin\n  inner/toy-b.bin\nurl = %s\nmd5 = %s\n",
             url_csv, url_zip, zip_md5);
    assert_true(fs_write(in_dir(fx, "toy.ini"), text, strlen(text)));
}

static void test_sources_in_order(void **state) {
    fixture *fx = *state;
    unsigned char *a = fs_random_bytes(3000, 1), *b = fs_random_bytes(4000, 2);
    fs_member m[] = {{"inner/toy-a.bin", a, 3000}, {"inner/toy-b.bin", b, 4000}, {"inner/notes.txt", "x", 1}};
    assert_true(fs_make_zip(in_dir(fx, "src.zip"), m, 3));
    size_t zlen = 0;
    unsigned char *zip = fs_slurp(fx->path, &zlen);
    char zsha[65], zmd5[33];
    fs_hash_buffer(zip, zlen, zsha, zmd5);
    fx->h = httpd_start(&(httpd_config){.files = {{.path = "/toy.zip", .body = zip, .len = zlen}}});
    assert_non_null(fx->h);
    write_toy_manifest(fx, zmd5);
    char manifest[512], err[DMZ_ERR_LEN] = "";
    snprintf(manifest, sizeof manifest, "%s", in_dir(fx, "toy.ini"));
    dmz_fetch_options opt = {.dataset = "toy", .data_dir = fx->dir, .manifest = manifest, .quiet = true};

    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_OK);  /* no Kaggle token: the zip */
    assert_int_equal(httpd_requests(fx->h), 1);
    assert_true(fs_file_is(in_dir(fx, "toy/toy-a.bin"), a, 3000));
    assert_true(fs_file_is(in_dir(fx, "toy/toy-b.bin"), b, 4000));
    assert_false(fs_exists(in_dir(fx, "toy/notes.txt")));
    assert_true(fs_exists(in_dir(fx, "downloads/toy.zip")));
    cJSON *j = read_json(in_dir(fx, "toy/FETCHED.json"));
    assert_string_equal(json_sha(j, "downloads", "toy.zip"), zsha);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "source")), "plain");
    cJSON_Delete(j);

    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_OK);  /* already present: no request */
    assert_int_equal(httpd_requests(fx->h), 1);

    unlink(in_dir(fx, "toy/toy-b.bin"));  /* with a token, Kaggle first: 404, then the cached zip */
    setenv("KAGGLE_USERNAME", "someone", 1);
    setenv("KAGGLE_KEY", "secret", 1);
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_OK);
    assert_int_equal(httpd_requests(fx->h), 2);
    assert_true(fs_file_is(in_dir(fx, "toy/toy-b.bin"), b, 4000));
    free(a);
    free(b);
    free(zip);
}

/* Kaggle's CSVs have no published checksum: a fetched set is checked by
 * structure, and a well-formed but short one fails the fetch. */
static void test_structure_check(void **state) {
    fixture *fx = *state;
    char row[800 * 4] = "3", *p = row + 1;
    for (int i = 0; i < 784; i++) p += sprintf(p, ",%d", i % 256);
    char csv[sizeof row * 2 + 2];
    snprintf(csv, sizeof csv, "%s\n%s\n", row, row);
    fx->h = httpd_start(&(httpd_config){.files = {{.path = "/emnist-balanced-train.csv", .body = csv, .len = strlen(csv)},
                                                  {.path = "/emnist-balanced-test.csv", .body = csv, .len = strlen(csv)}}});
    assert_non_null(fx->h);
    char train[128], test[128], text[1024], manifest[512], err[DMZ_ERR_LEN] = "";
    httpd_url(fx->h, "/emnist-balanced-train.csv", train, sizeof train);
    httpd_url(fx->h, "/emnist-balanced-test.csv", test, sizeof test);
    snprintf(text, sizeof text, "[emnist-balanced mirror]\nformat = csv\nurl = %s\nurl = %s\n", train, test);
    assert_true(fs_write(in_dir(fx, "short.ini"), text, strlen(text)));
    snprintf(manifest, sizeof manifest, "%s", fx->path);
    dmz_fetch_options opt = {.dataset = "emnist-balanced", .data_dir = fx->dir, .manifest = manifest, .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_EXIT_FAIL);
    print_message("message: %s\n", err);
    assert_non_null(strstr(err, "emnist-balanced-train.csv: 2 rows; emnist-balanced has 112800"));
    assert_false(fs_exists(in_dir(fx, "emnist-balanced/emnist-balanced-train.csv"))); /* not installed */
    assert_false(fs_exists(in_dir(fx, "emnist-balanced/FETCHED.json")));
}

static void test_zip_lacks_member(void **state) {
    fixture *fx = *state;
    fs_member m[] = {{"inner/toy-a.bin", "aaaa", 4}};
    assert_true(fs_make_zip(in_dir(fx, "src.zip"), m, 1));
    size_t zlen = 0;
    unsigned char *zip = fs_slurp(fx->path, &zlen);
    char zsha[65], zmd5[33], manifest[512], err[DMZ_ERR_LEN] = "";
    fs_hash_buffer(zip, zlen, zsha, zmd5);
    fx->h = httpd_start(&(httpd_config){.files = {{.path = "/toy.zip", .body = zip, .len = zlen}}});
    write_toy_manifest(fx, zmd5);
    snprintf(manifest, sizeof manifest, "%s", fx->path);
    dmz_fetch_options opt = {.dataset = "toy", .data_dir = fx->dir, .manifest = manifest, .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, "lacks inner/toy-b.bin"));
    assert_false(fs_exists(in_dir(fx, "toy/FETCHED.json")));
    free(zip);
}

static void test_unknown_dataset(void **state) {
    fixture *fx = *state;
    char err[DMZ_ERR_LEN] = "";
    dmz_fetch_options opt = {.dataset = "mnist-deluxe", .data_dir = fx->dir, .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "unknown data set 'mnist-deluxe'"));
    assert_non_null(strstr(err, "emnist-balanced, fashion-mnist"));
}

/* ---------------------------------------------------------------- --url */

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* A zip of Debian's Fashion-MNIST test files (real IDX .gz): installed, verified. */
static void test_url_zip(void **state) {
    fixture *fx = *state;
    size_t ilen = 0, llen = 0;
    unsigned char *img = fs_slurp(FASHION_DIR "/t10k-images-idx3-ubyte.gz", &ilen);
    unsigned char *lab = fs_slurp(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", &llen);
    if (!img || !lab) {
        print_message("skipped: " FASHION_DIR " absent (apt-get install dataset-fashion-mnist)\n");
        free(img);
        free(lab);
        skip();
    }
    fs_member m[] = {{"fashion/t10k-images-idx3-ubyte.gz", img, ilen},
                     {"fashion/t10k-labels-idx1-ubyte.gz", lab, llen},
                     {"fashion/README.md", "readme", 6}};
    assert_true(fs_make_zip(in_dir(fx, "fm.zip"), m, 3));
    size_t zlen = 0;
    unsigned char *zip = fs_slurp(fx->path, &zlen);
    char zsha[65], isha[65], url[128], err[DMZ_ERR_LEN] = "";
    fs_hash_buffer(zip, zlen, zsha, NULL);
    fs_hash_buffer(img, ilen, isha, NULL);
    fx->h = httpd_start(&(httpd_config){.files = {{.path = "/x/fm.zip", .body = zip, .len = zlen}}});
    httpd_url(fx->h, "/x/fm.zip", url, sizeof url);
    dmz_fetch_options opt = {.dataset = "fashion-mnist", .url = url, .sha256 = zsha, .data_dir = fx->dir,
                             .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_OK);
    assert_true(fs_file_is(in_dir(fx, "fashion-mnist/t10k-images-idx3-ubyte.gz"), img, ilen));
    assert_true(fs_file_is(in_dir(fx, "fashion-mnist/t10k-labels-idx1-ubyte.gz"), lab, llen));
    assert_false(fs_exists(in_dir(fx, "fashion-mnist/README.md")));
    cJSON *j = read_json(in_dir(fx, "fashion-mnist/FETCHED.json"));
    assert_string_equal(json_sha(j, "downloads", "fm.zip"), zsha);
    assert_string_equal(json_sha(j, "files", "t10k-images-idx3-ubyte.gz"), isha);
    cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "downloads"), "fm.zip");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "url")), url);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(d, "bytes")) == (double)zlen);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(d, "mbytes_per_s")));
    assert_non_null(cJSON_GetObjectItem(d, "utc"));
    cJSON_Delete(j);
    free(img);
    free(lab);
    free(zip);
}

/* EMNIST Balanced's test CSV shape: rows of label + 784 pixels. */
static char *emnist_csv(int rows, size_t *len) {
    size_t row_len = 2 + 2 * 784 + 1;
    char *csv = malloc((size_t)rows * row_len + 1), *p = csv;
    assert_non_null(csv);
    for (int r = 0; r < rows; r++) {
        p += sprintf(p, "%d", r % 47);
        for (int i = 0; i < 784; i++) *p++ = ',', *p++ = (char)('0' + (r + i) % 10);
        *p++ = '\n';
    }
    *p = '\0';
    *len = (size_t)(p - csv);
    return csv;
}

static void test_url_csv(void **state) {
    fixture *fx = *state;
    size_t len = 0;
    char *csv = emnist_csv(18800, &len);
    char sha[65], url[128], err[DMZ_ERR_LEN] = "";
    fs_hash_buffer(csv, len, sha, NULL);
    /* the query string is no part of the file's name */
    fx->h = httpd_start(&(httpd_config){.files = {{.path = "/emnist-balanced-test.csv?token=1", .body = csv,
                                                   .len = len, .content_type = "text/csv"}}});
    httpd_url(fx->h, "/emnist-balanced-test.csv?token=1", url, sizeof url);
    /* what a fetch killed while writing its record left, a few minutes ago */
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    waitpid(gone, NULL, 0);
    char stale[64];
    snprintf(stale, sizeof stale, "emnist-balanced/FETCHED.json.tmp.%ld", (long)gone);
    assert_int_equal(mkdir(in_dir(fx, "emnist-balanced"), 0755), 0);
    assert_true(fs_write(in_dir(fx, stale), "{", 1));
    struct timeval old[2] = {{time(NULL) - 300, 0}, {time(NULL) - 300, 0}};
    assert_int_equal(utimes(in_dir(fx, stale), old), 0);
    dmz_fetch_options opt = {.url = url, .sha256 = sha, .data_dir = fx->dir, .quiet = true};
    int rc = dmz_fetch_dataset(&opt, err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, DMZ_OK);
    assert_false(fs_exists(in_dir(fx, stale)));
    assert_true(fs_file_is(in_dir(fx, "emnist-balanced/emnist-balanced-test.csv"), csv, len));
    assert_false(fs_exists(in_dir(fx, "downloads/emnist-balanced-test.csv")));
    cJSON *j = read_json(in_dir(fx, "emnist-balanced/FETCHED.json"));
    assert_string_equal(json_sha(j, "files", "emnist-balanced-test.csv"), sha);
    cJSON_Delete(j);
    free(csv);
}

/* A download that fails the strict load is not installed: the set stays as it
 * was, the fetch fails saying why, no staging copy is left. */
static void test_url_unverified_not_installed(void **state) {
    fixture *fx = *state;
    const char csv[] = "3,0,0,255\n7,1,2,3\n";
    const char old[] = "an earlier file, kept\n";
    char url[128], err[DMZ_ERR_LEN] = "";
    fx->h = httpd_start(&(httpd_config){.files = {{.path = "/emnist-balanced-train.csv", .body = csv,
                                                   .len = sizeof csv - 1}}});
    httpd_url(fx->h, "/emnist-balanced-train.csv", url, sizeof url);
    assert_int_equal(mkdir(in_dir(fx, "emnist-balanced"), 0755), 0);
    assert_true(fs_write(in_dir(fx, "emnist-balanced/emnist-balanced-train.csv"), old, sizeof old - 1));
    dmz_fetch_options opt = {.url = url, .data_dir = fx->dir, .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_EXIT_FAIL);
    print_message("message: %s\n", err);
    assert_non_null(strstr(err, "emnist-balanced-train.csv:1: field 5 (pixel 3): missing"));
    assert_non_null(strstr(err, "not installed"));
    assert_true(fs_file_is(in_dir(fx, "emnist-balanced/emnist-balanced-train.csv"), old, sizeof old - 1));
    assert_false(fs_exists(in_dir(fx, "emnist-balanced/FETCHED.json")));
    assert_false(fs_exists(in_dir(fx, "downloads/emnist-balanced-train.csv")));
    char stage[256];
    snprintf(stage, sizeof stage, ".incoming-emnist-balanced.%ld", (long)getpid());
    assert_false(fs_exists(in_dir(fx, stage)));
}

/* A named data directory that is not there is refused, not created. */
static void test_mistyped_data_dir(void **state) {
    fixture *fx = *state;
    char err[DMZ_ERR_LEN] = "", dir[512];
    snprintf(dir, sizeof dir, "%s/typo", fx->dir);
    dmz_fetch_options opt = {.url = "http://127.0.0.1:1/x.csv", .data_dir = dir, .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "only the default one is created"));
    assert_false(fs_exists(dir));
}

static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);  /* nobody listens there now: connection refused */
    return ntohs(a.sin_port);
}

static void test_no_network_message(void **state) {
    fixture *fx = *state;
    char url[128], err[DMZ_ERR_LEN] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/gzip.zip", closed_port());
    dmz_fetch_options opt = {.url = url, .data_dir = fx->dir, .quiet = true};
    assert_int_equal(dmz_fetch_dataset(&opt, err), DMZ_EXIT_FAIL);
    assert_non_null(strstr(err, url));
    assert_non_null(strstr(err, "no network? the loader falls back to Fashion-MNIST"));
    assert_non_null(strstr(err, "--data PATH"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sources_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zip_lacks_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structure_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_dataset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_zip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_network_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_unverified_not_installed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mistyped_data_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
