/* The training loop end to end: real data reaches a known accuracy, the same
 * seed gives bit-identical losses, and `dmzbench train` leaves a complete
 * result directory (or a failed one that says why). */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <signal.h>
#include <fcntl.h>
#include <cmocka.h>

#include "bench/train.h"
#include "common/dmz.h"
#include "tests/support.h"

static int train_once(const char *data, int steps, int warmup, uint64_t seed, int threads, dmz_rep_result *r) {
    char err[DMZ_ERR_LEN];
    dmz_train_config cfg;
    dmz_train_config_default(&cfg);
    cfg.steps = steps, cfg.warmup = warmup, cfg.seed = seed, cfg.eval_every = steps;
    dmz_load_options opt;
    dmz_load_options_default(&opt);
    opt.synthetic_train = 3000, opt.synthetic_test = 500, opt.synthetic_seed = 5;
    opt.allow_fallback = false;
    dmz_dataset ds;
    int rc = dmz_dataset_load(data, &opt, &ds, err);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return rc;
    }
    dmz_cpu_set_threads(threads);
    dmz_model_config mc;
    dmz_model_config_default(&mc, "mlp", ds.num_classes, cfg.batch);
    dmz_model *m;
    rc = dmz_model_create(&dmz_backend_cpu, &mc, seed, &m, err);
    dmz_train_role role = dmz_role_single(&cfg);
    if (!rc) rc = dmz_train_repetition(m, dmz_comm_single(), &ds, &cfg, &role, 0, NULL, NULL, r, err);
    if (rc) fprintf(stderr, "%s\n", err);
    dmz_model_destroy(m);
    dmz_dataset_free(&ds);
    return rc;
}

static int same_losses(const dmz_rep_result *a, const dmz_rep_result *b) {
    if (a->n_steps != b->n_steps) return 0;
    for (int i = 0; i < a->n_steps; i++)
        if (memcmp(&a->steps[i].loss, &b->steps[i].loss, sizeof(double)) != 0) return 0;
    return 1;
}

/* The paper's recipe on real data: 2000 steps of batch 100 on Fashion-MNIST. */
static void test_fashion_mnist_reaches_80_percent(void **state) {
    (void)state;
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &st) != 0) {
        fprintf(stderr, "dataset-fashion-mnist is not installed (make deps installs it)\n");
        fail();
    }
    dmz_rep_result r;
    assert_int_equal(train_once("fashion-mnist", 2000, 0, 1, 0, &r), DMZ_OK);
    fprintf(stderr, "fashion-mnist, 2000 steps: test accuracy %.4f, test loss %.4f, %.0f samples/s\n",
            r.test_accuracy, r.test_loss, r.samples_per_s);
    assert_true(r.test_accuracy >= 0.80);
    assert_true(r.steps[1999].loss < r.steps[0].loss / 3);
    dmz_rep_result_free(&r);
}

static void test_same_seed_same_losses(void **state) {
    (void)state;
    dmz_rep_result a, b, c, d;
    assert_int_equal(train_once("synthetic", 150, 0, 3, 2, &a), DMZ_OK);
    assert_int_equal(train_once("synthetic", 150, 0, 3, 2, &b), DMZ_OK);
    assert_true(same_losses(&a, &b));
    /* ops partition outputs, never sums: one thread gives the same bits */
    assert_int_equal(train_once("synthetic", 150, 0, 3, 1, &c), DMZ_OK);
    assert_true(same_losses(&a, &c));
    /* warm-up steps are discarded: the measured run starts from the same init */
    assert_int_equal(train_once("synthetic", 150, 7, 3, 2, &d), DMZ_OK);
    assert_true(same_losses(&a, &d));
    assert_true(a.steps[149].loss < a.steps[0].loss);
    dmz_rep_result_free(&c), dmz_rep_result_free(&d);
    assert_int_equal(train_once("synthetic", 150, 0, 4, 2, &c), DMZ_OK);
    assert_false(same_losses(&a, &c));
    dmz_rep_result_free(&a), dmz_rep_result_free(&b), dmz_rep_result_free(&c);
}

/* ---- the dmzbench binary and its result directory ---- */

static const char *dmzbench_path(void) {
    const char *p = getenv("DMZBENCH");
    return p && *p ? p : DMZ_SOURCE_DIR "/build/dmzbench";
}

static int run_dmzbench(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "CI=true %s %s >/dev/null 2>%s", dmzbench_path(), args, "/tmp/dmz_test_train.err");
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_quiet(const char *root, const char *dir, const char *file) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, file);
    return (char *)fs_slurp(path, NULL);
}

static char *read_in(const char *dir, const char *file) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *s = (char *)fs_slurp(path, NULL);
    if (!s) fprintf(stderr, "missing %s\n", path);
    return s;
}

static void assert_header_has(const char *csv, const char *const *cols) {
    char header[4096];
    snprintf(header, sizeof header, ",%.*s,", (int)strcspn(csv, "\n"), csv);
    for (int i = 0; cols[i]; i++) {
        char want[128];
        snprintf(want, sizeof want, ",%s,", cols[i]);
        if (!strstr(header, want)) fprintf(stderr, "column %s missing from %s\n", cols[i], header);
        assert_non_null(strstr(header, want));
    }
}

static void test_result_directory_is_complete(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_results_XXXXXX", args[8192], dir[8192];
    assert_non_null(mkdtemp(root));
    snprintf(args, sizeof args,
             "train --data synthetic --steps 60 --repeat 2 --warmup 3 --eval-every 20 --target-accuracy 0.05 "
             "--out %s",
             root);
    assert_int_equal(run_dmzbench(args), 0);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    static const char *const summary_cols[] = {
        "run", "rep", "rank", "site", "model", "backend", "mode", "ranks", "steps", "batch", "warmup_s",
        "wall_s", "samples_per_s", "data_s", "fwd_s", "bwd_s", "comm_s", "update_s", "final_loss",
        "test_loss", "test_accuracy", "bytes_sent", "algbw_gbps", "busbw_gbps", NULL};
    char *summary = read_in(dir, "summary.csv");
    assert_non_null(summary);
    assert_header_has(summary, summary_cols);
    int lines = 0;
    for (char *p = summary; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 3); /* header + 2 repetitions */
    static const char *const steps_cols[] = {"rep", "step", "elapsed_s", "loss", "data_s", "fwd_s", "bwd_s",
                                             "update_s", "test_accuracy", NULL};
    char *steps = read_in(dir, "steps.csv");
    assert_non_null(steps);
    assert_header_has(steps, steps_cols);
    char *log = read_in(dir, "log.txt");
    assert_non_null(log);
    assert_non_null(strstr(log, ":::MLLOG {"));
    assert_non_null(strstr(log, "\"key\":\"eval_accuracy\""));
    char *status = read_in(dir, "status");
    assert_non_null(status);
    assert_non_null(strstr(status, "status: ok"));
    char *stats = read_in(dir, "stats.csv");
    assert_non_null(stats);
    assert_non_null(strstr(stats, "wall_s,2,"));
    char *meta_text = read_in(dir, "meta.json");
    cJSON *meta = cJSON_Parse(meta_text);
    assert_non_null(meta);
    static const char *const meta_keys[] = {"run", "status", "command_line", "config", "build", "host", "gpus",
                                            "topology", "mpi", "dataset", "environment", NULL};
    for (int i = 0; meta_keys[i]; i++) assert_non_null(cJSON_GetObjectItem(meta, meta_keys[i]));
    assert_string_equal(cJSON_GetObjectItem(meta, "status")->valuestring, "ok");
    cJSON *ds = cJSON_GetObjectItem(meta, "dataset");
    assert_string_equal(cJSON_GetObjectItem(ds, "name")->valuestring, "synthetic");
    assert_int_equal(strlen(cJSON_GetObjectItem(ds, "sha256")->valuestring), 64);
    assert_non_null(strstr(cJSON_GetObjectItem(meta, "gpus")->valuestring, "unavailable: "));
    char index_path[8192];
    snprintf(index_path, sizeof index_path, "%s/index.csv", root);
    char *index = (char *)fs_slurp(index_path, NULL);
    assert_non_null(index);
    assert_non_null(strstr(index, strrchr(dir, '/') + 1));
    if (system("command -v gnuplot >/dev/null") == 0) {
        char png[8300];
        snprintf(png, sizeof png, "%s/plots/paper.png", dir);
        struct stat st;
        assert_int_equal(stat(png, &st), 0);
    }
    free(summary), free(steps), free(log), free(status), free(stats), free(meta_text), free(index);
    cJSON_Delete(meta);
    fs_rm_rf(root);
}

static void test_failed_run_says_why(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_results_XXXXXX", args[8192], dir[8192];
    assert_non_null(mkdtemp(root));
    snprintf(args, sizeof args, "train --data /nonexistent/emnist-balanced-train.csv --out %s --no-plots", root);
    assert_int_equal(run_dmzbench(args), 2);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    char *status = read_in(dir, "status");
    assert_non_null(status);
    assert_non_null(strstr(status, "status: failed"));
    assert_non_null(strstr(status, "/nonexistent/emnist-balanced-train.csv"));
    char *meta = read_in(dir, "meta.json");
    assert_non_null(strstr(meta, "\"status\":\t\"failed\""));
    free(status), free(meta);
    /* usage errors are refused before any run directory is made */
    snprintf(args, sizeof args, "train --mode sync --out %s", root);
    assert_int_equal(run_dmzbench(args), 2);
    snprintf(args, sizeof args, "train --steps -5 --out %s", root);
    assert_int_equal(run_dmzbench(args), 2);
    assert_int_equal(run_dmzbench("train --steps 5 --out /dev/null"), 2);
    snprintf(args, sizeof args, "train --steps 5 --name a/b --out %s", root);
    assert_int_equal(run_dmzbench(args), 2);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    fs_rm_rf(root);
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The run's log.txt (rank 0 writes it in the .partial directory) holds `event`. */
static bool log_has(const char *root, const char *event) {
    DIR *d = opendir(root);
    bool hit = false;
    for (struct dirent *e; d && !hit && (e = readdir(d));) {
        if (!strstr(e->d_name, ".partial")) continue;
        char *log = read_quiet(root, e->d_name, "log.txt");
        hit = log && strstr(log, event);
        free(log);
    }
    if (d) closedir(d);
    return hit;
}

typedef struct interrupt_spec {
    const char *data;        /* --data */
    const char *extra;       /* one more option */
    const char *wait_log;    /* signal once log.txt has this (NULL: after_s) */
    const char *wait_file;   /* or once this file exists */
    double after_s;
    const char *phase;       /* expected in status */
} interrupt_spec;

/* SIGINT in a phase: the run ends within a second, exit 1, failed, the phase named. */
static void interrupt_case(interrupt_spec sp) {
    char root[] = "/tmp/dmz_results_XXXXXX", dir[8192];
    assert_non_null(mkdtemp(root));
    char out[256];
    snprintf(out, sizeof out, "--out=%s", root);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execl(dmzbench_path(), "dmzbench", "train", "--data", sp.data, "--quiet", "--threads", "1", out,
              "--seed", "3", sp.extra, (char *)NULL);
        _exit(127);
    }
    double start = mono_s();
    bool ready = !sp.wait_log && !sp.wait_file;
    while (!ready && mono_s() - start < 60) {
        ready = sp.wait_log ? log_has(root, sp.wait_log) : access(sp.wait_file, F_OK) == 0;
        struct timespec poll_ts = {0, 20000000};
        nanosleep(&poll_ts, NULL);
    }
    assert_true(ready);
    struct timespec ts = {(time_t)sp.after_s, (long)((sp.after_s - (time_t)sp.after_s) * 1e9)};
    nanosleep(&ts, NULL);
    double t0 = mono_s();
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    double took = mono_s() - t0;
    fprintf(stderr, "SIGINT %s: exit %d after %.2f s\n", sp.phase, WIFEXITED(st) ? WEXITSTATUS(st) : -1, took);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_true(took < 1.0);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    char *status = read_in(dir, "status");
    assert_non_null(status);
    assert_non_null(strstr(status, "status: failed"));
    if (!strstr(status, sp.phase)) fprintf(stderr, "%s\n", status);
    assert_non_null(strstr(status, sp.phase));
    char *index = read_in(root, "index.csv"); /* failed, and still indexed */
    assert_non_null(index);
    assert_non_null(strstr(index, strrchr(dir, '/') + 1));
    free(status), free(index);
    fs_rm_rf(root);
}

/* Commas, quotes and spaces in names that reach the CSV files: quoted per RFC
 * 4180, and the tool's own report reads them back. */
static void test_names_with_commas_and_quotes(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_results_XXXXXX", args[8192], dir[4096];
    assert_non_null(mkdtemp(root));
    snprintf(args, sizeof args,
             "train --data synthetic --steps 5 --repeat 1 --warmup 0 --name 'run, \"quoted\"' --out %s", root);
    setenv("DMZBENCH_SITE", "site, \"a\"", 1);
    int rc = run_dmzbench(args);
    unsetenv("DMZBENCH_SITE");
    assert_int_equal(rc, 0);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    char *summary = read_in(dir, "summary.csv");
    assert_non_null(strstr(summary, "\"site, \"\"a\"\"\"")); /* the site, quoted, its quotes doubled */
    assert_non_null(strstr(summary, "\"\"quoted\"\""));      /* the run name's quotes doubled */
    free(summary);
    char *index = read_in(root, "index.csv");
    assert_non_null(strstr(index, "\"\"quoted\"\""));
    free(index);
    snprintf(args, sizeof args, "report '%s' --out %s/rpt", dir, root);
    assert_int_equal(run_dmzbench(args), 0);
    fs_rm_rf(root);
}

/* An index.csv.tmp.PID that a run killed mid-append left: the next run's
 * append removes it (its writer is gone); one whose writer lives is kept. */
static void test_stale_index_temporary_is_removed(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_results_XXXXXX", args[8192], stale[8192], live[8192];
    assert_non_null(mkdtemp(root));
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* its number now names no process (reuse within the test is unlikely) */
    snprintf(stale, sizeof stale, "%s/index.csv.tmp.%ld", root, (long)child);
    snprintf(live, sizeof live, "%s/index.csv.tmp.%ld", root, (long)getpid());
    assert_true(fs_write(stale, "run,half a row", 14));
    assert_true(fs_write(live, "being written", 13));
    snprintf(args, sizeof args, "train --data synthetic --steps 5 --repeat 1 --warmup 0 --out %s", root);
    assert_int_equal(run_dmzbench(args), 0);
    assert_int_not_equal(access(stale, F_OK), 0);
    assert_int_equal(access(live, F_OK), 0);
    char *index = read_in(root, "index.csv");
    assert_non_null(index);
    assert_null(strstr(index, "half a row"));
    free(index);
    fs_rm_rf(root);
}

/* A CSV big enough that parsing it takes seconds (with --no-cache). */
static void write_big_csv(const char *dir, char *train, size_t len) {
    enum { ROWS = 60000 };
    snprintf(train, len, "%s/big-train.csv", dir);
    char row[DMZ_IMG_PIXELS * 4 + 8];
    size_t n = (size_t)snprintf(row, sizeof row, "7");
    for (int p = 0; p < DMZ_IMG_PIXELS; p++) n += (size_t)snprintf(row + n, sizeof row - n, ",255");
    row[n++] = '\n';
    FILE *f = fopen(train, "w");
    assert_non_null(f);
    for (int i = 0; i < ROWS; i++) fwrite(row, 1, n, f);
    assert_int_equal(fclose(f), 0);
    char test[8300];
    snprintf(test, sizeof test, "%s/big-test.csv", dir);
    f = fopen(test, "w");
    assert_non_null(f);
    for (int i = 0; i < 100; i++) fwrite(row, 1, n, f);
    assert_int_equal(fclose(f), 0);
}

/* A gnuplot that announces itself in `mark` and then takes its time. */
static void write_slow_gnuplot(const char *dir, const char *mark) {
    char path[8300], text[8400];
    snprintf(path, sizeof path, "%s/gnuplot", dir);
    snprintf(text, sizeof text, "#!/bin/sh\ntouch '%s'\nexec sleep 30\n", mark);
    assert_true(fs_write(path, text, strlen(text)));
    assert_int_equal(chmod(path, 0755), 0);
}

static void test_sigint_in_each_phase(void **state) {
    (void)state;
    interrupt_case((interrupt_spec){"fashion-mnist", "--warmup=1000000", NULL, NULL, 1.0, "during warm-up"});
    interrupt_case((interrupt_spec){"fashion-mnist", "--steps=100000000", NULL, NULL, 1.0,
                                    "interrupted by a signal at step"});
    char tmp[] = "/tmp/dmz_phase_XXXXXX", csv[8300], mark[8300], path[16800];
    assert_non_null(mkdtemp(tmp));
    write_big_csv(tmp, csv, sizeof csv);
    interrupt_case((interrupt_spec){csv, "--no-cache", "\"key\":\"data_load\"", NULL, 0.1, "during the data load"});
    snprintf(mark, sizeof mark, "%s/gnuplot-started", tmp);
    write_slow_gnuplot(tmp, mark);
    const char *old_path = getenv("PATH");
    snprintf(path, sizeof path, "%s:%s", tmp, old_path ? old_path : "/usr/bin:/bin");
    char *saved = old_path ? strdup(old_path) : NULL;
    setenv("PATH", path, 1);
    interrupt_case((interrupt_spec){"synthetic", "--steps=5", NULL, mark, 0.1, "while drawing the figures"});
    if (saved) setenv("PATH", saved, 1), free(saved);
    fs_rm_rf(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigint_in_each_phase),
        cmocka_unit_test(test_names_with_commas_and_quotes),
        cmocka_unit_test(test_stale_index_temporary_is_removed),
        cmocka_unit_test(test_same_seed_same_losses),
        cmocka_unit_test(test_fashion_mnist_reaches_80_percent),
        cmocka_unit_test(test_result_directory_is_complete),
        cmocka_unit_test(test_failed_run_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
