/* tests/test_cli_data.c — `dmzbench` as a user runs it, on the data side:
 * a FIFO or device as --data exits 2 at once naming it (it used to block in
 * open for good), --no-cache leaves no cache, a mistyped --data-dir is not
 * created, and `fetch --url` of a file that does not load strictly exits 1
 * and installs nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/dmz.h"
#include "tests/httpd.h"
#include "tests/support.h"

#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif

static char exe[1024];

typedef struct result {
    int code; /* exit code; 128+signal; -1: still running after the limit (killed) */
    char err[4096];
} result;

/* Runs exe with args (NULL-terminated) for at most limit_s seconds. */
static void run(double limit_s, result *r, const char *const *args) {
    char err_path[600];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", fs_tmpdir);
    const char *argv[32] = {exe};
    int n = 1;
    for (; args[n - 1] && n < 31; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), null = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        dup2(null, 1);
        execv(exe, (char **)argv);
        _exit(127);
    }
    int status = 0;
    double t0 = dmz_now_s();
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && dmz_now_s() - t0 < limit_s) usleep(20000);
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        r->code = -1;
    } else {
        r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    unsigned char *text = fs_slurp(err_path, NULL);
    snprintf(r->err, sizeof r->err, "%s", text ? (char *)text : "");
    free(text);
    print_message("exit %d: %s", r->code, r->err);
}

static const char *in_tmp(const char *name, char *out) {
    snprintf(out, 600, "%s/%s", fs_tmpdir, name);
    return out;
}

static void write_set(const char *dir) {
    char path[700];
    mkdir(dir, 0755);
    for (int file = 0; file < 2; file++) {
        snprintf(path, sizeof path, "%s/emnist-balanced-%s.csv", dir, file ? "test" : "train");
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int r = 0; r < 3; r++) {
            fprintf(f, "%d", r);
            for (int p = 0; p < 784; p++) fprintf(f, ",%d", (r + p) % 256);
            fputc('\n', f);
        }
        fclose(f);
    }
}

static void test_fifo_data_refused_at_once(void **state) {
    (void)state;
    char fifo[600], out[600];
    assert_int_equal(mkfifo(in_tmp("x-train.csv", fifo), 0600), 0);
    in_tmp("results-fifo", out);
    result r;
    run(20, &r, (const char *const[]){"train", "--data", fifo, "--out", out, "--no-plots", "--quiet", NULL});
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "x-train.csv: not a regular file (a FIFO)"));
    run(20, &r, (const char *const[]){"train", "--data", "/dev/zero", "--out", out, "--no-plots", "--quiet", NULL});
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "/dev/zero: not a regular file (a character device)"));
}

static void test_no_cache_option(void **state) {
    (void)state;
    char set[600], data[600], out[600], train[700], dmzc[700];
    write_set(in_tmp("set", set));
    mkdir(in_tmp("data-nocache", data), 0755);
    in_tmp("results-nocache", out);
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", set);
    snprintf(dmzc, sizeof dmzc, "%s/dmzc", data);
    const char *args[] = {"train", "--data", train, "--data-dir", data, "--no-cache", "--steps", "2", "--batch", "2",
                          "--repeat", "1", "--warmup", "0", "--out", out, "--no-plots", "--quiet", NULL};
    result r;
    run(60, &r, args);
    assert_int_equal(r.code, 0);
    assert_false(fs_exists(dmzc));
    args[5] = "--quiet"; /* without --no-cache: the cache is written */
    run(60, &r, args);
    assert_int_equal(r.code, 0);
    assert_true(fs_exists(dmzc));
}

static void test_mistyped_data_dir(void **state) {
    (void)state;
    char set[600], typo[600], out[600], train[700];
    write_set(in_tmp("set2", set));
    in_tmp("no-such-data-dir", typo);
    in_tmp("results-typo", out);
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", set);
    result r;
    run(60, &r, (const char *const[]){"train", "--data", train, "--data-dir", typo, "--steps", "2", "--batch", "2",
                                      "--repeat", "1", "--warmup", "0", "--out", out, "--no-plots", "--quiet", NULL});
    assert_int_equal(r.code, 0); /* the data is there; only the cache is not */
    assert_non_null(strstr(r.err, "does not exist; only the default one is created"));
    assert_false(fs_exists(typo));
    run(20, &r, (const char *const[]){"fetch", "--url", "http://127.0.0.1:1/x.csv", "--data-dir", typo, NULL});
    assert_int_equal(r.code, 2);
    assert_false(fs_exists(typo));
}

static void test_fetch_url_unverified(void **state) {
    (void)state;
    const char csv[] = "3,0,0,255\n";
    httpd *h = httpd_start(&(httpd_config){.files = {{.path = "/emnist-balanced-train.csv", .body = csv,
                                                      .len = sizeof csv - 1}}});
    assert_non_null(h);
    char url[128], data[600], installed[700];
    httpd_url(h, "/emnist-balanced-train.csv", url, sizeof url);
    mkdir(in_tmp("data-fetch", data), 0755);
    result r;
    run(30, &r, (const char *const[]){"fetch", "--url", url, "--data-dir", data, "--quiet", NULL});
    httpd_stop(h);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "emnist-balanced-train.csv:1: field 5 (pixel 3)"));
    assert_non_null(strstr(r.err, "not installed"));
    snprintf(installed, sizeof installed, "%s/emnist-balanced/emnist-balanced-train.csv", data);
    assert_false(fs_exists(installed));
}

int main(void) {
    const char *bin = getenv("DMZBENCH");
    snprintf(exe, sizeof exe, "%s", bin && *bin ? bin : DMZ_SOURCE_DIR "/build/dmzbench");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_data_refused_at_once),
        cmocka_unit_test(test_no_cache_option),
        cmocka_unit_test(test_mistyped_data_dir),
        cmocka_unit_test(test_fetch_url_unverified),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
