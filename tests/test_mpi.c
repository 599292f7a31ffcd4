/* Cross-site runs under mpirun, ranks as processes on this machine over TCP
 * (oversubscribed on 2 cores): sync keeps the ranks bit-identical and matches
 * a single run with --global-batch; async-ps reaches exactly the global step
 * with every worker contributing, and with one worker equals a single run bit
 * for bit; a rank killed or stopped ends the job within the bound, failed and
 * named; the probe measures every size; bad options exit 2.
 * Skips (saying why) when this build has no MPI or mpirun is missing. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/dmz.h"
#include "net/comm.h"
#include "tests/support.h"

static char bin[1024];
static char why_skip[512];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- running jobs */

typedef struct job {
    pid_t pid;
    double started;
    char log[256];
} job;

/* Starts `mpirun -np N ... dmzbench ARGS` in its own process group, output to a log. */
static void job_start(job *j, int ranks, const char *args) {
    static int counter;
    snprintf(j->log, sizeof j->log, "%s/job-%d.log", fs_tmpdir, ++counter);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "exec mpirun --oversubscribe --bind-to none -np %d --mca btl tcp,self -x ASAN_OPTIONS "
             "%s %s >%s 2>&1",
             ranks, bin, args, j->log);
    j->started = now_s();
    j->pid = fork();
    if (j->pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
}

/* Exit code of the job, or -1 when it ran past `limit_s` (then it is killed). */
static int job_wait(job *j, double limit_s, double *took) {
    int status = 0;
    for (;;) {
        pid_t r = waitpid(j->pid, &status, WNOHANG);
        if (r == j->pid) break;
        if (now_s() - j->started > limit_s) {
            kill(-j->pid, SIGKILL);
            waitpid(j->pid, &status, 0);
            if (took) *took = now_s() - j->started;
            return -1;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    if (took) *took = now_s() - j->started;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_job(int ranks, const char *args, double limit_s) {
    job j;
    job_start(&j, ranks, args);
    int rc = job_wait(&j, limit_s, NULL);
    if (rc != 0) {
        char *log = (char *)fs_slurp(j.log, NULL);
        fprintf(stderr, "job (exit %d): mpirun -np %d dmzbench %s\n%s\n", rc, ranks, args, log ? log : "");
        free(log);
    }
    return rc;
}

static char *job_output(const job *j) { return (char *)fs_slurp(j->log, NULL); }

/* ---------------------------------------------------------------- result files */

static void newest_run(const char *out, char *dir, size_t len) {
    DIR *d = opendir(out);
    dir[0] = '\0';
    char best[512] = "";
    for (struct dirent *e; d && (e = readdir(d));)
        /* run directories start with their UTC stamp; index.csv and its temporaries do not */
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    if (d) closedir(d);
    if (best[0]) snprintf(dir, len, "%s/%s", out, best);
}

typedef struct table {
    char *text;
    char *cells[64][48];
    int rows, cols;
} table;

/* A CSV without quoted fields (what these runs write). */
static void table_load(table *t, const char *path) {
    memset(t, 0, sizeof *t);
    t->text = (char *)fs_slurp(path, NULL);
    assert_non_null(t->text);
    char *save_line = NULL;
    for (char *line = strtok_r(t->text, "\n", &save_line); line && t->rows < 64; line = strtok_r(NULL, "\n", &save_line)) {
        int c = 0;
        for (char *p = line; c < 48;) {
            t->cells[t->rows][c++] = p;
            char *comma = strchr(p, ',');
            if (!comma) break;
            *comma = '\0';
            p = comma + 1;
        }
        if (t->rows == 0) t->cols = c;
        t->rows++;
    }
}

static const char *cell(const table *t, int row, const char *col) {
    for (int c = 0; c < t->cols; c++)
        if (strcmp(t->cells[0][c], col) == 0) return t->cells[row][c];
    fail_msg("no column %s", col);
    return NULL;
}

static double num(const table *t, int row, const char *col) {
    const char *v = cell(t, row, col);
    return strcmp(v, "NA") == 0 ? NAN : atof(v);
}

static int row_of_rank(const table *t, int rank) {
    for (int r = 1; r < t->rows; r++)
        if (atoi(cell(t, r, "rank")) == rank) return r;
    fail_msg("no row for rank %d", rank);
    return -1;
}

static void summary_of(const char *out, table *t) {
    char dir[1024], path[1100];
    newest_run(out, dir, sizeof dir);
    assert_true(dir[0]);
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    table_load(t, path);
}

static char *status_of(const char *out) {
    char dir[1024], path[1100];
    newest_run(out, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/status", dir);
    return (char *)fs_slurp(path, NULL);
}

static void out_dir(char *out, size_t len, const char *name) {
    snprintf(out, len, "%s/%s", fs_tmpdir, name);
}

#define COMMON "--data fashion-mnist --threads 1 --quiet --no-plots --no-probe --repeat 1 --warmup 2 "

static void skip_without_mpi(void) {
    if (why_skip[0]) {
        fprintf(stderr, "skipped: %s\n", why_skip);
        skip();
    }
}

/* ---------------------------------------------------------------- tests */

static void test_sync_ranks_stay_identical(void **state) {
    (void)state;
    skip_without_mpi();
    for (int ranks = 2; ranks <= 3; ranks++) {
        char out[512], args[2048];
        out_dir(out, sizeof out, ranks == 2 ? "sync2" : "sync3");
        snprintf(args, sizeof args, "train --mode sync --steps 60 --eval-every 60 --check-consistency 1 " COMMON "--out %s", out);
        assert_int_equal(run_job(ranks, args, 120), 0);
        table t;
        summary_of(out, &t);
        assert_int_equal(t.rows, ranks + 1);
        for (int r = 0; r < ranks; r++) {
            int row = row_of_rank(&t, r);
            assert_int_equal((int)num(&t, row, "steps"), 60);
            assert_string_equal(cell(&t, row, "mode"), "sync");
            assert_true(num(&t, row, "bytes_sent") > 0);
            assert_true(num(&t, row, "busbw_gbps") > 0);
            /* identical parameters give identical test accuracy on every rank */
            assert_true(num(&t, row, "test_accuracy") == num(&t, 1, "test_accuracy"));
        }
        free(t.text);
    }
}

static void test_sync_global_batch_matches_single(void **state) {
    (void)state;
    skip_without_mpi();
    char out1[512], out2[512], args[4096];
    out_dir(out1, sizeof out1, "gb-single");
    out_dir(out2, sizeof out2, "gb-sync");
    snprintf(args, sizeof args, "%s train --steps 80 --eval-every 80 --batch 100 " COMMON "--out %s", bin, out1);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", args);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "train --mode sync --global-batch 100 --rank-speed 1,0.5 --steps 80 --eval-every 80 " COMMON "--out %s", out2);
    assert_int_equal(run_job(2, args, 120), 0);
    table a, b;
    summary_of(out1, &a);
    summary_of(out2, &b);
    /* speeds 1 and 0.5 share 100 samples as 67 + 33 */
    assert_int_equal((int)num(&b, row_of_rank(&b, 0), "batch"), 67);
    assert_int_equal((int)num(&b, row_of_rank(&b, 1), "batch"), 33);
    assert_true(num(&b, row_of_rank(&b, 1), "throttle_s") > 0);
    double single_loss = num(&a, 1, "test_loss"), sync_loss = num(&b, row_of_rank(&b, 0), "test_loss");
    /* the same samples each step; only the order of the float sums differs */
    assert_true(fabs(single_loss - sync_loss) <= 1e-3 * fabs(single_loss));
    assert_true(fabs(num(&a, 1, "test_accuracy") - num(&b, 1, "test_accuracy")) <= 0.002);
    free(a.text), free(b.text);
}

static void test_async_ps_one_worker_equals_single(void **state) {
    (void)state;
    skip_without_mpi();
    char out1[512], out2[512], args[4096], cmd[8192];
    out_dir(out1, sizeof out1, "ps1-single");
    out_dir(out2, sizeof out2, "ps1-async");
    snprintf(cmd, sizeof cmd, "%s train --steps 100 --eval-every 100 " COMMON "--out %s >/dev/null 2>&1", bin, out1);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "train --mode async-ps --steps 100 " COMMON "--out %s", out2);
    assert_int_equal(run_job(2, args, 120), 0);
    table a, b;
    summary_of(out1, &a);
    summary_of(out2, &b);
    int server = row_of_rank(&b, 0), worker = row_of_rank(&b, 1);
    assert_string_equal(cell(&b, server, "role"), "server");
    assert_int_equal((int)num(&b, server, "steps"), 100);
    assert_int_equal((int)num(&b, worker, "steps"), 100);
    assert_true(num(&b, worker, "staleness_max") == 0);
    /* the server applies the cpu backend's Adam in the same order: bit for bit */
    assert_string_equal(cell(&a, 1, "final_loss"), cell(&b, worker, "final_loss"));
    assert_string_equal(cell(&a, 1, "test_accuracy"), cell(&b, server, "test_accuracy"));
    free(a.text), free(b.text);
}

static void test_async_ps_two_workers_reach_the_global_step(void **state) {
    (void)state;
    skip_without_mpi();
    char out[512], args[2048];
    out_dir(out, sizeof out, "ps2");
    snprintf(args, sizeof args, "train --mode async-ps --steps 300 --log-every 10 " COMMON "--out %s", out);
    assert_int_equal(run_job(3, args, 180), 0);
    table t;
    summary_of(out, &t);
    int server = row_of_rank(&t, 0);
    assert_int_equal((int)num(&t, server, "steps"), 300);
    int sum = 0;
    for (int r = 1; r <= 2; r++) {
        int row = row_of_rank(&t, r);
        int steps = (int)num(&t, row, "steps");
        assert_true(steps > 0); /* every worker contributes */
        sum += steps;
        assert_true(num(&t, row, "staleness_median") >= 0);
    }
    assert_int_equal(sum, 300); /* exactly the global step: no push past the target is applied */
    assert_true(num(&t, server, "test_accuracy") > 0.70);
    free(t.text);
}

/* The pid of `rank` among the processes whose command line holds `marker`. */
static pid_t find_rank(const char *marker, int rank, double limit_s) {
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    double t0 = now_s();
    while (now_s() - t0 < limit_s) {
        DIR *d = opendir("/proc");
        for (struct dirent *e; d && (e = readdir(d));) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 0) continue;
            char path[64];
            size_t len = 0;
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            char *cmdline = (char *)fs_slurp(path, &len);
            int hit = 0;
            for (size_t i = 0; cmdline && i + 1 < len; i++) if (!cmdline[i]) cmdline[i] = ' ';
            if (cmdline && strstr(cmdline, marker) && strstr(cmdline, "train") && !strstr(cmdline, "mpirun")) {
                snprintf(path, sizeof path, "/proc/%d/environ", pid);
                char *env = (char *)fs_slurp(path, &len);
                for (size_t i = 0; env && i < len; i += strlen(env + i) + 1)
                    if (strcmp(env + i, want) == 0) hit = 1;
                free(env);
            }
            free(cmdline);
            if (hit) {
                closedir(d);
                return pid;
            }
        }
        if (d) closedir(d);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Waits until rank 0 logged the start of the first repetition (training runs). */
static int wait_training(const char *out, double limit_s) {
    double t0 = now_s();
    while (now_s() - t0 < limit_s) {
        DIR *d = opendir(out);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (!strstr(e->d_name, ".partial")) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s/log.txt", out, e->d_name);
            char *log = (char *)fs_slurp(path, NULL);
            int started = log && strstr(log, "\"event_type\":\"INTERVAL_START\",\"key\":\"run\"");
            free(log);
            if (started) {
                closedir(d);
                return 1;
            }
        }
        if (d) closedir(d);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The run directory is final once its status exists: rank 0 (or its guardian,
 * a moment after mpirun returned) wrote it. */
static char *wait_status(const char *out, double limit_s) {
    double t0 = now_s();
    char *status = NULL;
    while (!(status = status_of(out)) && now_s() - t0 < limit_s) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return status;
}

static void fault_case(const char *mode, int ranks, int sig, const char *name, double bound_s,
                       const char *expect_in_status) {
    char out[512], args[2048];
    out_dir(out, sizeof out, name);
    snprintf(args, sizeof args, "train --mode %s --steps 1000000 --eval-every 1000000 --timeout 3 --name %s " COMMON "--out %s",
             mode, name, out);
    job j;
    job_start(&j, ranks, args);
    pid_t victim = find_rank(name, 1, 30);
    int training = victim > 0 && wait_training(out, 60);
    if (!training) kill(-j.pid, SIGKILL);
    assert_true(victim > 0);
    assert_true(training);
    struct timespec settle = {0, 300000000}; /* into the measured steps */
    nanosleep(&settle, NULL);
    double t_signal = now_s();
    kill(victim, sig);
    double took = 0;
    int rc = job_wait(&j, 60, &took);
    double after_signal = now_s() - t_signal;
    if (sig == SIGSTOP) kill(victim, SIGKILL);
    char *log = job_output(&j);
    fprintf(stderr, "%s: exit %d, %.1f s after the signal\n%s\n", name, rc, after_signal, log ? log : "");
    assert_int_not_equal(rc, -1);    /* it ended by itself */
    assert_int_not_equal(rc, 0);
    assert_true(after_signal < bound_s);
    char *status = wait_status(out, 20);
    if (!status) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "ls -la %s 1>&2", out);
        if (system(cmd) != 0) fprintf(stderr, "(cannot list %s)\n", out);
    }
    if (status && !strstr(status, expect_in_status)) fprintf(stderr, "status:\n%s\n", status);
    assert_non_null(status);
    assert_non_null(strstr(status, "status: failed"));
    assert_non_null(strstr(status, expect_in_status));
    free(status), free(log);
}

static void test_killed_rank_ends_the_job(void **state) {
    (void)state;
    skip_without_mpi();
    /* the launcher sees the death and ends the others with SIGTERM */
    fault_case("sync", 2, SIGKILL, "kill-sync", 15, "signal");
    fault_case("async-ps", 3, SIGKILL, "kill-ps", 15, "signal");
}

static void test_stopped_rank_is_named(void **state) {
    (void)state;
    skip_without_mpi();
    /* nobody dies: rank 0's --timeout 3 names the rank that stopped answering */
    fault_case("sync", 2, SIGSTOP, "stop-sync", 15, "rank 1 (site");
    fault_case("async-ps", 3, SIGSTOP, "stop-ps", 15, "rank 1 (site");
}

static void test_probe_measures_every_size(void **state) {
    (void)state;
    skip_without_mpi();
    char csv[512], args[2048];
    snprintf(csv, sizeof csv, "%s/probe.csv", fs_tmpdir);
    snprintf(args, sizeof args, "probe --max-bytes 4194304 --allreduce-floats 83247 --csv %s", csv);
    assert_int_equal(run_job(2, args, 120), 0);
    table t;
    table_load(&t, csv);
    int sizes = 0;
    double bw_small = NAN, bw_large = NAN;
    for (int r = 1; r < t.rows; r++) {
        if (strcmp(cell(&t, r, "kind"), "pingpong") != 0) continue;
        sizes++;
        double lat = num(&t, r, "latency_us"), bw = num(&t, r, "bandwidth_gbps");
        assert_true(lat > 0 && isfinite(lat));
        assert_true(bw > 0 && isfinite(bw));
        if (num(&t, r, "bytes") == 1) bw_small = bw;
        if (num(&t, r, "bytes") == 4194304) bw_large = bw;
    }
    assert_int_equal(sizes, 23); /* 1 B .. 4 MiB, every power of two */
    assert_true(bw_large > 100 * bw_small);
    assert_true(num(&t, t.rows - 1, "busbw_gbps") > 0);
    free(t.text);
}

static void expect_usage_error(int ranks, const char *args, const char *message) {
    job j;
    job_start(&j, ranks, args);
    int rc = job_wait(&j, 60, NULL);
    char *log = job_output(&j);
    if (rc != 2 || !strstr(log, message)) fprintf(stderr, "exit %d for '%s':\n%s\n", rc, args, log);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(log, message));
    free(log);
}

static void test_bad_cross_site_options(void **state) {
    (void)state;
    skip_without_mpi();
    char out[512], args[2048];
    out_dir(out, sizeof out, "bad");
    snprintf(args, sizeof args, "train --mode async-ps " COMMON "--out %s", out);
    expect_usage_error(1, args, "needs at least 2 ranks");
    snprintf(args, sizeof args, "train --mode sync --rank-speed 1,0.5,0.5 " COMMON "--out %s", out);
    expect_usage_error(2, args, "has 3 factors; this job needs 2");
    snprintf(args, sizeof args, "train --mode async-ps --rank-speed 1,1 " COMMON "--out %s", out);
    expect_usage_error(2, args, "needs 1 (one per worker)");
    snprintf(args, sizeof args, "train --mode sync --rank-speed 1,0 " COMMON "--out %s", out);
    expect_usage_error(2, args, "not a number in (0, 1]");
    /* not under a launcher */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "env -u OMPI_COMM_WORLD_SIZE %s train --mode sync " COMMON "--out %s 2>&1 | grep -q mpirun", bin, out);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s train --mode sync " COMMON "--out %s >/dev/null 2>&1", bin, out);
    int status = system(cmd);
    assert_int_equal(WEXITSTATUS(status), 2);
    assert_false(fs_exists(out)); /* a usage error leaves no run directory */
}

static void test_k8s_manifest_pins_one_pod_per_node(void **state) {
    (void)state;
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/mpijob.yaml", fs_tmpdir);
    snprintf(cmd, sizeof cmd, "%s k8s --nodes dtn-kisti,dtn-gist --out %s", bin, path);
    assert_int_equal(system(cmd), 0);
    char *y = (char *)fs_slurp(path, NULL);
    assert_non_null(y);
    assert_non_null(strstr(y, "kind: MPIJob"));
    assert_non_null(strstr(y, "replicas: 2\n"));                 /* one worker pod per node */
    assert_non_null(strstr(y, "- dtn-kisti\n"));
    assert_non_null(strstr(y, "- dtn-gist\n"));
    assert_non_null(strstr(y, "podAntiAffinity"));
    assert_non_null(strstr(y, "- \"3\"\n"));                    /* async-ps: server + 2 workers */
    assert_non_null(strstr(y, "fieldPath: spec.nodeName"));       /* each rank's site is its node */
    free(y);
    snprintf(cmd, sizeof cmd, "%s k8s --nodes 'Bad Node' >/dev/null 2>&1", bin);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "%s k8s >/dev/null 2>&1", bin);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
}

static int group_setup(void **state) {
    const char *env = getenv("DMZBENCH");
    snprintf(bin, sizeof bin, "%s", env && *env ? env : DMZ_SOURCE_DIR "/build/dmzbench");
    if (access(bin, X_OK) != 0) snprintf(bin, sizeof bin, "%s/build/dmzbench", DMZ_SOURCE_DIR);
    char why[256];
    if (!dmz_comm_mpi_built(why, sizeof why)) snprintf(why_skip, sizeof why_skip, "%s", why);
    else if (system("command -v mpirun >/dev/null 2>&1") != 0)
        snprintf(why_skip, sizeof why_skip, "mpirun not found (apt-get install openmpi-bin)");
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    /* every rank is on this machine: loopback only, so that no other interface
     * (a CI machine's unroutable eth0, a WAN test's bridge coming and going)
     * takes part in a connection */
    setenv("OMPI_MCA_btl_tcp_if_include", "lo", 1);
    setenv("OMPI_MCA_oob_tcp_if_include", "lo", 1);
    /* Under AddressSanitizer the ranks keep its memory checks but not the leak
     * check at exit: Open MPI's plugins and libraries (no frame pointers) leave
     * allocations LeakSanitizer cannot attribute. Every single-process test
     * keeps the leak check. */
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_ranks[512];
    snprintf(asan_ranks, sizeof asan_ranks, "%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_ranks, 1);
    return fs_group_make_tmpdir(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_ranks_stay_identical),
        cmocka_unit_test(test_sync_global_batch_matches_single),
        cmocka_unit_test(test_async_ps_one_worker_equals_single),
        cmocka_unit_test(test_async_ps_two_workers_reach_the_global_step),
        cmocka_unit_test(test_killed_rank_ends_the_job),
        cmocka_unit_test(test_stopped_rank_is_named),
        cmocka_unit_test(test_probe_measures_every_size),
        cmocka_unit_test(test_bad_cross_site_options),
        cmocka_unit_test(test_k8s_manifest_pins_one_pod_per_node),
    };
    return cmocka_run_group_tests(tests, group_setup, fs_group_remove_tmpdir);
}
