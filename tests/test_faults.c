/* tests/test_faults.c — a `dmzbench train` run whose writes fail: the shim
 * tests/faultinject.c (LD_PRELOAD) fails the Nth write-side operation with
 * ENOSPC from then on (a disk that fills up) or with EIO once. N is chosen
 * from a first, counted run: the first and the last operation on every file
 * the run writes, and every fsync and rename. Each time the outcome must be
 * one of: exit 0 with a complete run (status ok; summary.csv, steps.csv,
 * stats.csv parse; meta.json parses; index.csv names the run), or a non-zero
 * exit whose message says why, and no run directory that claims "ok". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/csvio.h"
#include "common/dmz.h"
#include "tests/support.h"

#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif

static char exe[1024], shim[1024], train_csv[800];

typedef struct outcome {
    int exit_code;
    char stderr_text[4096];
} outcome;

/* Runs dmzbench train into out_dir with the shim; env: extra "K=V" or NULL. */
static void run_train(const char *out_dir, const char *const *env, outcome *o) {
    char err_path[700];
    snprintf(err_path, sizeof err_path, "%s.stderr", out_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("LD_PRELOAD", shim, 1);
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1); /* under make test-san */
        for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), null = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        dup2(null, 1);
        execl(exe, exe, "train", "--data", train_csv, "--no-cache", "--batch", "2", "--steps", "20", "--repeat",
              "1", "--warmup", "0", "--eval-every", "20", "--no-plots", "--quiet", "--out", out_dir, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    o->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    size_t len = 0;
    unsigned char *text = fs_slurp(err_path, &len);
    snprintf(o->stderr_text, sizeof o->stderr_text, "%s", text ? (char *)text : "");
    free(text);
}

static int count_rows(void *user, char **fields, int n, long line, char *err) {
    (void)fields, (void)n, (void)line, (void)err;
    ++*(int *)user;
    return 0;
}

/* The one run directory in out_dir (not a .partial): 1 and its path, or 0. */
static int find_run(const char *out_dir, char *dir, size_t len) {
    DIR *d = opendir(out_dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[1200];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", out_dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        snprintf(dir, len, "%s", path);
        n++;
    }
    closedir(d);
    return n;
}

static bool status_says(const char *dir, const char *what) {
    char path[1300];
    snprintf(path, sizeof path, "%s/status", dir);
    unsigned char *text = fs_slurp(path, NULL);
    bool yes = text && strstr((char *)text, what);
    free(text);
    return yes;
}

/* Why a claimed-complete run is not: NULL when it is complete. */
static const char *incomplete(const char *out_dir, const char *dir) {
    static const char *const csvs[] = {"summary.csv", "steps.csv", "stats.csv"};
    static char why[1600];
    char path[1400], err[DMZ_ERR_LEN];
    if (!status_says(dir, "status: ok")) return "status is not ok";
    for (int i = 0; i < 3; i++) {
        int rows = 0;
        snprintf(path, sizeof path, "%s/%s", dir, csvs[i]);
        if (dmz_csv_each_row(path, count_rows, &rows, err) != DMZ_OK || rows < 2) {
            snprintf(why, sizeof why, "%s: %s", csvs[i], rows < 2 ? "fewer than 2 rows" : err);
            return why;
        }
    }
    snprintf(path, sizeof path, "%s/meta.json", dir);
    unsigned char *meta = fs_slurp(path, NULL);
    cJSON *j = meta ? cJSON_Parse((char *)meta) : NULL;
    free(meta);
    bool meta_ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!meta_ok) return "meta.json does not parse";
    snprintf(path, sizeof path, "%s/index.csv", out_dir);
    unsigned char *index = fs_slurp(path, NULL);
    bool indexed = index && strstr((char *)index, strrchr(dir, '/') + 1);
    free(index);
    return indexed ? NULL : "not in index.csv";
}

typedef struct op { long n; char kind[16]; char path[512]; } op;

/* The counted run: every operation, in order. */
static int count_ops(const char *root, op **ops) {
    char out[700], log[700], env[800];
    snprintf(out, sizeof out, "%s/count", root);
    snprintf(log, sizeof log, "%s/ops.log", root);
    snprintf(env, sizeof env, "DMZ_FAULT_LOG=%s", log);
    const char *envs[] = {env, NULL};
    outcome o;
    run_train(out, envs, &o);
    if (o.exit_code != 0) fail_msg("the counted run failed (%d): %s", o.exit_code, o.stderr_text);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    int n = 0, cap = 1024;
    *ops = malloc((size_t)cap * sizeof **ops);
    char line[700];
    while (fgets(line, sizeof line, f)) {
        if (n == cap) *ops = realloc(*ops, (size_t)(cap *= 2) * sizeof **ops);
        op *p = &(*ops)[n];
        p->path[0] = '\0';
        if (sscanf(line, "%ld %15s %511s", &p->n, p->kind, p->path) >= 2) n++;
    }
    fclose(f);
    return n;
}

/* The file an operation is on, with the run's stamp and pid taken out. */
static void file_of(const op *p, char *out, size_t len) {
    const char *base = strrchr(p->path, '/');
    snprintf(out, len, "%s", base ? base + 1 : p->path);
    char *tmp = strstr(out, ".tmp.");
    if (tmp) *tmp = '\0';
    if (strstr(p->path, ".partial/") == NULL && strstr(out, "-mlp-")) snprintf(out, len, "RUNDIR");
}

/* first and last operation of each file, every fsync and rename */
static int pick(const op *ops, int n, long *at) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        char me[512], prev[512] = "", next[512] = "";
        file_of(&ops[i], me, sizeof me);
        if (i > 0) file_of(&ops[i - 1], prev, sizeof prev);
        if (i + 1 < n) file_of(&ops[i + 1], next, sizeof next);
        if (strcmp(me, prev) != 0 || strcmp(me, next) != 0 || !strcmp(ops[i].kind, "fsync") ||
            !strcmp(ops[i].kind, "rename"))
            at[k++] = ops[i].n;
    }
    return k;
}

static char root[] = "/tmp/dmz_faults_XXXXXX";
static op *ops;
static int nops, npoints;
static long *points;

/* A small EMNIST-named CSV pair, then the counted run that the fault points come from. */
static int group_setup(void **state) {
    (void)state;
    if (!mkdtemp(root)) return -1;
    char src[100], test_csv[800];
    snprintf(src, sizeof src, "%s/src", root);
    if (mkdir(src, 0755) != 0) return -1;
    snprintf(train_csv, sizeof train_csv, "%s/emnist-balanced-train.csv", src);
    snprintf(test_csv, sizeof test_csv, "%s/emnist-balanced-test.csv", src);
    for (int file = 0; file < 2; file++) {
        FILE *f = fopen(file ? test_csv : train_csv, "w");
        if (!f) return -1;
        for (int r = 0; r < 4; r++) {
            fprintf(f, "%d", r % 47);
            for (int p = 0; p < 784; p++) fprintf(f, ",%d", (r * 31 + p) % 256);
            fputc('\n', f);
        }
        fclose(f);
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    free(points);
    free(ops);
    if (!getenv("DMZ_TEST_KEEP")) fs_rm_rf(root);
    return 0;
}

static void ensure_points(void) {
    if (points) return;
    nops = count_ops(root, &ops);
    print_message("a run writes with %d counted operations\n", nops);
    assert_true(nops > 10);
    points = malloc((size_t)nops * sizeof *points);
    npoints = pick(ops, nops, points);
}

static bool on_index(const op *p) { return strstr(p->path, "index.csv") || strstr(p->path, ".index.lock"); }

/* Every fault point of the wanted kind (index or not), disk full then EIO once;
 * *known: runs that show issue 11's index inconsistency. */
static void drive(bool index_points, int *known, char *bad, size_t bad_len) {
    ensure_points();
    int ok_runs = 0, failed_runs = 0, tried = 0;
    *known = 0;
    bad[0] = '\0';
    for (int i = 0; i < 2 * npoints; i++) {
        bool once = i >= npoints; /* first a full disk at each point, then a single EIO */
        long where = points[i % npoints];
        const op *o_at = &ops[where - 1];
        if (on_index(o_at) != index_points) continue;
        tried++;
        char out[700], env_at[64];
        snprintf(out, sizeof out, "%s/at-%ld-%s", root, where, once ? "eio" : "full");
        snprintf(env_at, sizeof env_at, "DMZ_FAULT_AT=%ld", where);
        const char *env_full[] = {env_at, NULL};
        const char *env_once[] = {env_at, "DMZ_FAULT_MODE=once", "DMZ_FAULT_ERRNO=EIO", NULL};
        outcome o;
        run_train(out, once ? env_once : env_full, &o);
        char dir[1200];
        int dirs = find_run(out, dir, sizeof dir);
        const char *file = strrchr(o_at->path, '/');
        file = file ? file + 1 : "?";
        const char *why = NULL;
        if (o.exit_code == 0) {
            ok_runs++;
            why = dirs != 1 ? "exit 0 without a run directory" : incomplete(out, dir);
        } else {
            failed_runs++;
            if (o.exit_code >= 128) why = "killed by a signal";
            else if (!strstr(o.stderr_text, once ? "Input/output error" : "No space left on device"))
                why = "the message does not say why";
            else if (dirs == 1 && status_says(dir, "status: ok") && !index_points)
                why = "a failed run's directory says ok";
            else if (dirs == 1 && status_says(dir, "status: ok")) {
                (*known)++;
                print_message("known: op %ld (%s %s): ok on disk, not indexed, exit %d\n", where, o_at->kind, file,
                              o.exit_code);
            }
        }
        if (why) {
            size_t used = strlen(bad);
            snprintf(bad + used, bad_len - used, "  op %ld (%s %s, %s): exit %d: %s | %.200s\n", where, o_at->kind,
                     file, once ? "EIO once" : "disk full", o.exit_code, why, o.stderr_text);
        }
    }
    print_message("%d faults: %d runs ended ok and complete, %d failed saying why (%d of them: issue 11's index "
                  "case)\n", tried, ok_runs, failed_runs, *known);
    assert_true(tried > 0);
}

/* Faults in the run directory's files, the data and log files, the rename. */
static void test_write_faults_in_run_files(void **state) {
    (void)state;
    static char bad[16384];
    int known;
    drive(false, &known, bad, sizeof bad);
    if (bad[0]) fail_msg("runs that broke the contract:\n%s", bad);
}

/* Faults while results/index.csv is rewritten: the run ends failed, saying
 * why, never "ok" on disk but missing from the index. */
static void test_write_faults_in_the_index(void **state) {
    (void)state;
    static char bad[16384];
    int known;
    drive(true, &known, bad, sizeof bad);
    if (bad[0]) fail_msg("runs that broke the contract:\n%s", bad);
    assert_int_equal(known, 0); /* a run that cannot be indexed ends failed */
}

int main(void) {
    const char *bin = getenv("DMZBENCH");
    snprintf(exe, sizeof exe, "%s", bin && *bin ? bin : DMZ_SOURCE_DIR "/build/dmzbench");
    const char *lib = getenv("DMZ_FAULTINJECT");
    char self[1024] = "";
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(shim, sizeof shim, "%s", lib && *lib ? lib : self);
    if (!(lib && *lib)) strncat(shim, "/libfaultinject.so", sizeof shim - strlen(shim) - 1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_write_faults_in_run_files),
                                       cmocka_unit_test(test_write_faults_in_the_index)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
