/* tests/test_report.c — dmz_report on fake run directories: figures and page
 * for one run and for several, errors that name file and line, the page
 * without gnuplot, gnuplot failures, and no temporary file left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/report.h"
#include "common/dmz.h"

#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif

static char root[256];

/* ------------------------------------------------------------ files */
static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void path_of(char *out, size_t len, const char *dir, const char *name) {
    snprintf(out, len, "%s/%s", dir, name);
}

static void assert_file_contains(const char *path, const char *needle) {
    const char *text = read_text(path);
    assert_non_null(text);
    if (!strstr(text, needle)) fail_msg("%s does not mention '%s'", path, needle);
}

static void assert_figure(const char *dir, const char *name) {
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    if (stat(path, &sb) != 0 || sb.st_size <= 0) fail_msg("%s missing or empty", path);
    FILE *f = fopen(path, "rb");
    unsigned char head[8] = {0};
    assert_non_null(f);
    assert_int_equal(fread(head, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(head, png_sig, 8);
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    if (stat(path, &sb) != 0 || sb.st_size <= 0) fail_msg("%s missing or empty", path);
    assert_file_contains(path, "<svg");
}

static int tmp_found;
static int find_tmp(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    if (strstr(path + ftw->base, ".tmp")) {
        fprintf(stderr, "temporary file left: %s\n", path);
        tmp_found++;
    }
    return 0;
}

static void assert_no_tmp_files(const char *dir) {
    tmp_found = 0;
    nftw(dir, find_tmp, 16, FTW_PHYS);
    assert_int_equal(tmp_found, 0);
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

static bool gnuplot_on_path(void) {
    const char *path = getenv("PATH");
    char dir[4096], exe[4200];
    for (const char *p = path; p && *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s", (int)n, p);
        snprintf(exe, sizeof exe, "%s/gnuplot", dir);
        if (access(exe, X_OK) == 0) return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* ------------------------------------------------------------ a fake run */
typedef struct fake_run {
    const char *name, *backend, *mode;
    int ranks;
    double wall_s; /* of rep 0; rep 1 is 4% slower */
    bool fallback;
} fake_run;

static void write_summary(const char *dir, const fake_run *fr) {
    char path[512];
    path_of(path, sizeof path, dir, "summary.csv");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("run,rep,rank,site,model,backend,mode,ranks,steps,batch,warmup_s,wall_s,samples_per_s,"
          "data_s,fwd_s,bwd_s,comm_s,update_s,eval_s,final_loss,test_loss,test_accuracy,"
          "time_to_target_s,bytes_sent,algbw_gbps,busbw_gbps,dataset,threads,status\n", f);
    for (int rep = 0; rep < 2; rep++)
        for (int rank = 0; rank < fr->ranks; rank++) {
            double wall = fr->wall_s * (1 + 0.04 * rep + 0.01 * rank);
            fprintf(f, "%s,%d,%d,site%c,mlp,%s,%s,%d,50,100,0.05,%.4f,%.2f,%.4f,%.4f,%.4f,",
                    fr->name, rep, rank, 'A' + rank, fr->backend, fr->mode, fr->ranks, wall,
                    5000 / wall, 0.08 * wall, 0.3 * wall, 0.4 * wall);
            if (fr->ranks > 1) fprintf(f, "%.4f,", 0.12 * wall);
            else fputs("NA,", f);
            fprintf(f, "%.4f,0.02,61.5,0.95,0.6%d,NA,%s,%s,%s,fashion-mnist,4,ok\n", 0.05 * wall,
                    rep, fr->ranks > 1 ? "3180000" : "0", fr->ranks > 1 ? "1.2" : "NA",
                    fr->ranks > 1 ? "1.2" : "NA");
        }
    assert_int_equal(fclose(f), 0);
}

static void write_steps(const char *dir, const fake_run *fr) {
    char path[512];
    path_of(path, sizeof path, dir, "steps.csv");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("rep,step,elapsed_s,step_s,loss,data_s,fwd_s,bwd_s,comm_s,update_s,samples_per_s,"
          "test_loss,test_accuracy\n", f);
    double step_s = fr->wall_s / 50;
    for (int rep = 0; rep < 2; rep++)
        for (int step = 1; step <= 50; step++) {
            double loss = 320 * exp(-step / 12.0) + 60 + 18 * sin(step * 1.7 + rep);
            fprintf(f, "%d,%d,%.5f,%.5f,%.3f,%.5f,%.5f,%.5f,NA,%.5f,%.1f,", rep, step,
                    step * step_s * (1 + 0.04 * rep), step_s, loss, 0.08 * step_s, 0.3 * step_s,
                    0.4 * step_s, 0.05 * step_s, 100 / step_s);
            if (step % 10 == 0)
                fprintf(f, "%.3f,%.4f\n", 1.5 - step / 100.0,
                        0.62 * (1 - exp(-step / 15.0)) + 0.01 * rep);
            else
                fputs("NA,NA\n", f);
        }
    assert_int_equal(fclose(f), 0);
}

static void write_meta(const char *dir, const fake_run *fr) {
    char path[512], text[2048];
    path_of(path, sizeof path, dir, "meta.json");
    snprintf(text, sizeof text,
             "{\n  \"run\": \"%s\",\n  \"status\": \"ok\",\n"
             "  \"config\": {\"model\": \"mlp\", \"backend\": \"%s\", \"mode\": \"%s\", "
             "\"steps\": 50, \"batch\": 100},\n"
             "  \"dataset\": {\"name\": \"fashion-mnist\", \"sha256\": "
             "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\", "
             "\"fallback\": %s, \"fallback_reason\": \"EMNIST not in the cache\"},\n"
             "  \"host\": {\"hostname\": \"dtn-test\", \"cpu_model\": \"Test CPU <4 cores>\"}\n}\n",
             fr->name, fr->backend, fr->mode, fr->fallback ? "true" : "false");
    write_text(path, text);
}

static void make_run(char *dir, size_t len, const fake_run *fr) {
    snprintf(dir, len, "%s/%s", root, fr->name);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_summary(dir, fr);
    write_steps(dir, fr);
    write_meta(dir, fr);
    char path[512];
    path_of(path, sizeof path, dir, "stats.csv");
    write_text(path, "metric,n,median,min,max,mean,stddev\n"
                     "wall_s,2,4.1,4.0,4.2,4.1,0.141\nsamples_per_s,2,1220,1190,1250,1220,42.4\n"
                     "test_accuracy,2,0.605,0.60,0.61,0.605,0.00707\n"
                     "final_loss,2,61.5,61.5,61.5,61.5,0\n");
    path_of(path, sizeof path, dir, "log.txt");
    write_text(path, ":::MLLOG {\"key\": \"run_start\"}\n");
}

/* ------------------------------------------------------------ fixtures */
static int group_setup(void **state) {
    snprintf(root, sizeof root, "/tmp/dmz-test-report.XXXXXX");
    if (!mkdtemp(root)) return -1;
    setenv("DMZBENCH_PLOTS_DIR", DMZ_SOURCE_DIR "/plots", 1);
    setenv("DMZBENCH_REFERENCE_DIR", DMZ_SOURCE_DIR "/results/reference", 1);
    return 0;
}

static int group_teardown(void **state) {
    if (!getenv("DMZ_TEST_KEEP")) rm_rf(root);
    else fprintf(stderr, "kept %s\n", root);
    return 0;
}

static void need_gnuplot(void) {
    if (!gnuplot_on_path()) skip();
}

/* ------------------------------------------------------------ tests */
static void test_single_run(void **state) {
    need_gnuplot();
    fake_run fr = {"run-single", "cpu", "single", 1, 4.0, false};
    char dir[400], plots[450], html[500], err[DMZ_ERR_LEN] = "";
    make_run(dir, sizeof dir, &fr);
    const char *dirs[] = {dir};
    int rc = dmz_report(dirs, 1, NULL, true, err);
    if (rc != DMZ_OK) fail_msg("dmz_report: %s", err);
    snprintf(plots, sizeof plots, "%s/plots", dir);
    assert_figure(plots, "learning");
    assert_figure(plots, "breakdown");
    assert_figure(plots, "paper");
    path_of(html, sizeof html, plots, "report.html");
    static const char *const needles[] = {"run-single", "learning.png", "breakdown.png",
                                          "paper.png", "../meta.json", "../log.txt", "2993",
                                          "Test CPU &lt;4 cores&gt;", "0123456789abcdef"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        assert_file_contains(html, needles[i]);
    path_of(html, sizeof html, plots, "fig-paper.csv");
    assert_file_contains(html, "dmzbench: cpu single: 1 rank");
    assert_no_tmp_files(dir);
}

static void test_several_runs(void **state) {
    need_gnuplot();
    fake_run a = {"run-cmp-a", "cpu", "single", 1, 8.0, false};
    fake_run b = {"run-cmp-b", "cpu", "sync", 2, 5.0, false};
    char dir_a[400], dir_b[400], out[400], sub[500], err[DMZ_ERR_LEN] = "";
    make_run(dir_a, sizeof dir_a, &a);
    make_run(dir_b, sizeof dir_b, &b);
    snprintf(out, sizeof out, "%s/compare-out", root);
    const char *dirs[] = {dir_a, dir_b};
    int rc = dmz_report(dirs, 2, out, true, err);
    if (rc != DMZ_OK) fail_msg("dmz_report: %s", err);
    assert_figure(out, "compare");
    path_of(sub, sizeof sub, out, "report.html");
    assert_file_contains(sub, "compare.png");
    assert_file_contains(sub, "run-cmp-a/report.html");
    assert_file_contains(sub, "run-cmp-b");
    assert_file_contains(sub, "cpu sync: 2 ranks");
    path_of(sub, sizeof sub, out, "run-cmp-b");
    assert_figure(sub, "paper");
    assert_no_tmp_files(out);
}

static void expect_usage(const char *dir, const char *const *needles, int n) {
    char err[DMZ_ERR_LEN] = "";
    const char *dirs[] = {dir};
    assert_int_equal(dmz_report(dirs, 1, NULL, true, err), DMZ_EXIT_USAGE);
    for (int i = 0; i < n; i++)
        if (!strstr(err, needles[i])) fail_msg("error '%s' does not mention '%s'", err, needles[i]);
}

static void test_missing_summary(void **state) {
    fake_run fr = {"run-nosummary", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500];
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "summary.csv");
    assert_int_equal(unlink(path), 0);
    const char *needles[] = {path};
    expect_usage(dir, needles, 1);
}

static void test_missing_dir(void **state) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/no-such-run", root);
    const char *needles[] = {dir};
    expect_usage(dir, needles, 1);
}

static void test_not_a_number(void **state) {
    fake_run fr = {"run-badnum", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500];
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "summary.csv");
    char *text = strdup(read_text(path));
    char *line3 = strchr(strchr(text, '\n') + 1, '\n') + 1; /* the second data row */
    char *wall = strstr(line3, ",0.05,") + 6;               /* warmup_s, then wall_s */
    memcpy(wall, "abc", 3);
    write_text(path, text);
    free(text);
    const char *needles[] = {"summary.csv", "line 3", "column 12", "wall_s", "abc"};
    expect_usage(dir, needles, 5);
}

static void test_wrong_field_count(void **state) {
    fake_run fr = {"run-badrow", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500];
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "steps.csv");
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("1,51,2.0\n", f); /* line 102: header + 100 rows before it */
    fclose(f);
    const char *needles[] = {"steps.csv", "line 102", "3 fields"};
    expect_usage(dir, needles, 3);
}

static void test_bad_quote(void **state) {
    fake_run fr = {"run-badquote", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500];
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "stats.csv");
    write_text(path, "metric,n,median,min,max,mean,stddev\nwall_s,2,\"4.1\"x,4,4,4,0\n");
    const char *needles[] = {"stats.csv", "line 2"};
    expect_usage(dir, needles, 2);
}

static void test_bad_json(void **state) {
    fake_run fr = {"run-badjson", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500];
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "meta.json");
    write_text(path, "{\n  \"run\": \"x\",\n  \"status\" \"ok\"\n}\n");
    const char *needles[] = {"meta.json", "line 3"};
    expect_usage(dir, needles, 2);
}

static void test_without_gnuplot(void **state) {
    fake_run fr = {"run-nognuplot", "cpu", "single", 1, 4.0, true};
    char dir[400], empty[400], html[500], png[500], err[DMZ_ERR_LEN] = "";
    make_run(dir, sizeof dir, &fr);
    snprintf(empty, sizeof empty, "%s/empty-bin", root);
    assert_int_equal(mkdir(empty, 0755), 0);
    char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", empty, 1);
    const char *dirs[] = {dir};
    int rc = dmz_report(dirs, 1, NULL, true, err);
    setenv("PATH", saved, 1);
    free(saved);
    if (rc != DMZ_OK) fail_msg("dmz_report: %s", err);
    snprintf(html, sizeof html, "%s/plots/report.html", dir);
    assert_file_contains(html, "figures skipped: gnuplot not found (apt-get install gnuplot-nox)");
    assert_file_contains(html, "FALLBACK");
    assert_file_contains(html, "EMNIST not in the cache");
    snprintf(png, sizeof png, "%s/plots/paper.png", dir);
    assert_int_not_equal(access(png, F_OK), 0);
    assert_no_tmp_files(dir);
}

static void test_gnuplot_fails(void **state) {
    need_gnuplot();
    fake_run fr = {"run-gpfail", "cpu", "single", 1, 4.0, false};
    char dir[400], scripts[400], path[500], err[DMZ_ERR_LEN] = "";
    make_run(dir, sizeof dir, &fr);
    snprintf(scripts, sizeof scripts, "%s/broken-plots", root);
    assert_int_equal(mkdir(scripts, 0755), 0);
    static const char *const names[] = {"learning.gp", "breakdown.gp", "paper.gp"};
    for (int i = 0; i < 3; i++) {
        path_of(path, sizeof path, scripts, names[i]);
        write_text(path, "set output outdir.'/x.tmp.png'\nplot undefined_thing_xyz(x)\n");
    }
    setenv("DMZBENCH_PLOTS_DIR", scripts, 1);
    const char *dirs[] = {dir};
    int rc = dmz_report(dirs, 1, NULL, true, err);
    setenv("DMZBENCH_PLOTS_DIR", DMZ_SOURCE_DIR "/plots", 1);
    assert_int_equal(rc, DMZ_EXIT_FAIL);
    if (!strstr(err, "learning.gp") || !strstr(err, "undefined"))
        fail_msg("error '%s' does not carry gnuplot's message", err);
    snprintf(path, sizeof path, "%s/plots/report.html", dir);
    assert_file_contains(path, "failed");
}

static void test_quote_in_path(void **state) {
    char dir[400], err[DMZ_ERR_LEN] = "";
    snprintf(dir, sizeof dir, "%s/it's", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    const char *dirs[] = {dir};
    assert_int_equal(dmz_report(dirs, 1, NULL, true, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "single quote"));
}

static void test_several_need_out(void **state) {
    char err[DMZ_ERR_LEN] = "";
    const char *dirs[] = {root, root};
    assert_int_equal(dmz_report(dirs, 2, NULL, true, err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "--out"));
}

/* A phase that was not measured (comm_s NA on one rank) stays NA in the
 * figure's data, and so does "other"; never 0. */
static void test_na_phase_stays_na_in_figure_data(void **state) {
    fake_run fr = {"run-na-phase", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500], err[DMZ_ERR_LEN] = "";
    make_run(dir, sizeof dir, &fr);
    const char *dirs[] = {dir};
    char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1); /* the data files are what is checked here */
    int rc = dmz_report(dirs, 1, NULL, true, err);
    setenv("PATH", saved, 1);
    free(saved);
    if (rc != DMZ_OK) fail_msg("dmz_report: %s", err);
    snprintf(path, sizeof path, "%s/plots/fig-breakdown.csv", dir);
    const char *text = read_text(path);
    assert_non_null(text);
    print_message("%s", text ? text : "");
    /* rep,data_s,fwd_s,bwd_s,comm_s,update_s,other_s,wall_s,top_s */
    assert_non_null(strstr(text, "\n0,0.32,1.2,1.6,NA,0.2,NA,4,4\n"));
}

/* Commas, quotes and a newline inside quoted fields (RFC 4180) are data. */
static void test_quoted_fields(void **state) {
    fake_run fr = {"run-quoted", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500], err[DMZ_ERR_LEN] = "";
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "summary.csv");
    char *text = strdup(read_text(path)), *at;
    while ((at = strstr(text, "run-quoted,"))) { /* the run column, every row */
        size_t head = (size_t)(at - text);
        char *next = malloc(strlen(text) + 64);
        snprintf(next, strlen(text) + 64, "%.*s\"my \"\"best\"\", run,\nsecond line\",%s", (int)head, text,
                 at + strlen("run-quoted,"));
        free(text);
        text = next;
    }
    write_text(path, text);
    free(text);
    path_of(path, sizeof path, dir, "meta.json");
    unlink(path); /* the name then comes from summary.csv */
    const char *dirs[] = {dir};
    char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1);
    int rc = dmz_report(dirs, 1, NULL, true, err);
    setenv("PATH", saved, 1);
    free(saved);
    if (rc != DMZ_OK) fail_msg("dmz_report: %s", err);
    snprintf(path, sizeof path, "%s/plots/report.html", dir);
    assert_file_contains(path, "my &quot;best&quot;, run,");
}

/* A line without an end (3 GB, sparse) is refused, not buffered whole. */
static void test_endless_line_refused(void **state) {
    fake_run fr = {"run-endless", "cpu", "single", 1, 4.0, false};
    char dir[400], path[500], err[DMZ_ERR_LEN] = "";
    make_run(dir, sizeof dir, &fr);
    path_of(path, sizeof path, dir, "steps.csv");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("rep,step,elapsed_s,loss,test_accuracy\n1", f);
    fclose(f);
    assert_int_equal(truncate(path, (off_t)3 << 30), 0);
    const char *dirs[] = {dir};
    double t0 = dmz_now_s();
    assert_int_equal(dmz_report(dirs, 1, NULL, true, err), DMZ_EXIT_USAGE);
    unlink(path);
    print_message("%s\n", err);
    assert_non_null(strstr(err, "steps.csv: line 2: longer than 1048576 bytes"));
    assert_true(dmz_now_s() - t0 < 10);
}

/* `dmzbench report` with 300 run directories compares all 300 (it kept the
 * first 256 without a word). */
static void test_300_run_directories(void **state) {
    const char *bin = getenv("DMZBENCH");
    char exe[512], out[400], path[500];
    snprintf(exe, sizeof exe, "%s", bin && *bin ? bin : DMZ_SOURCE_DIR "/build/dmzbench");
    if (access(exe, X_OK) != 0) fail_msg("%s not built (DMZBENCH names it)", exe);
    enum { N = 300 };
    char **argv = calloc(N + 8, sizeof *argv);
    int a = 0;
    argv[a++] = exe;
    argv[a++] = "report";
    for (int i = 0; i < N; i++) {
        char name[32], dir[400];
        snprintf(name, sizeof name, "many-%03d", i);
        fake_run fr = {name, "cpu", "single", 1, 1.0 + i / 100.0, false};
        make_run(dir, sizeof dir, &fr);
        argv[a++] = strdup(dir);
    }
    snprintf(out, sizeof out, "%s/many-out", root);
    argv[a++] = "--out";
    argv[a++] = out;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("PATH", "/nonexistent", 1); /* no gnuplot: 900 figures would take minutes */
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execv(exe, argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    path_of(path, sizeof path, out, "report.html");
    assert_file_contains(path, "many-299/report.html");
    assert_file_contains(path, "many-256/report.html");
    for (int i = 2; i < 2 + N; i++) free(argv[i]);
    free(argv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_run),      cmocka_unit_test(test_several_runs),
        cmocka_unit_test(test_missing_summary), cmocka_unit_test(test_missing_dir),
        cmocka_unit_test(test_not_a_number),    cmocka_unit_test(test_wrong_field_count),
        cmocka_unit_test(test_bad_quote),       cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_without_gnuplot), cmocka_unit_test(test_gnuplot_fails),
        cmocka_unit_test(test_quote_in_path),   cmocka_unit_test(test_several_need_out),
        cmocka_unit_test(test_na_phase_stays_na_in_figure_data),
        cmocka_unit_test(test_quoted_fields),   cmocka_unit_test(test_endless_line_refused),
        cmocka_unit_test(test_300_run_directories),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
