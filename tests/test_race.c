/* The emulator's hazard checks on deliberately buggy kernels (tests/race_kernels.cu):
 * each case runs in its own process (this program, re-executed with --case NAME),
 * must fail, and must name the source line marked `expect: NAME` in that file;
 * the correct kernel must pass without a word. So the detector cannot silently
 * stop working.
 *
 * Built in every build: the scheduler's checks (divergent __syncthreads, warp
 * operations meeting at different call sites, shuffle sources outside the mask,
 * the Pascal warp rules) are tested everywhere; the cases that need
 * ThreadSanitizer (missing barriers, races between blocks, reads of shared
 * memory no thread wrote) skip, saying so, outside the race build (make test-race). */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

int dmz_race_case(const char *name);
int dmz_emu_race_enabled(void);

/* The line of race_kernels.cu marked `expect: marker`, or 0. */
static int marked_line(const char *marker) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/race_kernels.cu", DMZ_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char want[128], line[512];
    snprintf(want, sizeof want, "expect: %s */", marker);
    int n = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        if (strstr(line, want)) {
            found = n;
            break;
        }
    }
    fclose(f);
    if (!found) fprintf(stderr, "  no line marked '%s' in %s\n", want, path);
    return found;
}

typedef struct {
    int status; /* exit status, or 128 + signal */
    char out[65536];
} child_result;

/* Runs this program with --case name and the extra environment assignments. */
static void run_case(const char *name, const char *const *env, child_result *r) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        unsetenv("DMZ_EMU_SEED"), unsetenv("DMZ_EMU_WARP_RULES"), unsetenv("DMZ_EMU_HALT");
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        alarm(120); /* a hang ends as SIGALRM */
        execl("/proc/self/exe", "test_race", "--case", name, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], r->out + len, sizeof r->out - 1 - len)) > 0) len += (size_t)got;
    r->out[len] = 0;
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static child_result result;

/* The case must fail, and its output must hold every string in `want` and,
 * for every marker, "race_kernels.cu:LINE". */
static void expect_reported(const char *name, const char *const *env, const char *const *want,
                            const char *const *markers) {
    run_case(name, env, &result);
    int ok = result.status != 0;
    for (const char *const *w = want; *w; w++) ok = ok && strstr(result.out, *w) != NULL;
    for (const char *const *m = markers; *m; m++) {
        char at[64];
        int line = marked_line(*m);
        snprintf(at, sizeof at, "race_kernels.cu:%d", line);
        ok = ok && line > 0 && strstr(result.out, at) != NULL;
        if (line > 0 && !strstr(result.out, at)) fprintf(stderr, "  missing: %s\n", at);
    }
    const char *report = strstr(result.out, "cuda-emu racecheck:");
    if (!ok) fprintf(stderr, "  case %s: status %d, output:\n%s\n", name, result.status, result.out);
    else printf("  %s (status %d):\n%.1500s", name, result.status, report ? report : "(no racecheck line)\n");
    assert_true(ok);
}

static void expect_quiet(const char *name, const char *const *env) {
    run_case(name, env, &result);
    int ok = result.status == 0 && !strstr(result.out, "racecheck") && !strstr(result.out, "ThreadSanitizer");
    if (!ok) fprintf(stderr, "  case %s: status %d, output:\n%s\n", name, result.status, result.out);
    assert_true(ok);
}

static void require_race_build(void) {
    if (dmz_emu_race_enabled()) return;
    printf("  skipped: needs the race build (make test-race: kernels under ThreadSanitizer)\n");
    skip();
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
/* The race build's cases under two schedules: the default, and seeded. */
static const char *const seed0[] = {"DMZ_EMU_SEED=0", NULL};
static const char *const seed7[] = {"DMZ_EMU_SEED=7", NULL};

static void test_neighbour_read_without_barrier(void **state) {
    (void)state;
    require_race_build();
    const char *const *seeds[] = {seed0, seed7};
    for (int s = 0; s < 2; s++)
        expect_reported("neighbour", seeds[s], LIST("hazard on static __shared__ memory", "block (0,0,0) thread (",
                                                    "schedule: DMZ_EMU_SEED="),
                        LIST("neighbour"));
}

static void test_block_sum_twice(void **state) {
    (void)state;
    require_race_build();
    const char *const *seeds[] = {seed0, seed7};
    for (int s = 0; s < 2; s++)
        expect_reported("block-sum-twice", seeds[s],
                        LIST("hazard on static __shared__ memory", "block_sum_no_trailing_barrier"),
                        LIST("block-sum-twice"));
    for (int s = 0; s < 2; s++) expect_quiet("real-block-sum-twice", seeds[s]); /* dmz_block_sum ends with a barrier */
}

static void test_shuffle_call_sites(void **state) {
    (void)state;
    expect_reported("shuffle-sites", NULL, LIST("warp operation lanes meet at different call sites", "__shfl_xor_sync"),
                    LIST("shuffle-site-a", "shuffle-site-b"));
}

static void test_shuffle_source_outside_mask(void **state) {
    (void)state;
    expect_reported("shuffle-source", NULL, LIST("reads from outside the mask", "lane 15", "reads lane 16"),
                    LIST("shuffle-source"));
}

static void test_race_between_blocks(void **state) {
    (void)state;
    require_race_build();
    const char *const *seeds[] = {seed0, seed7};
    for (int s = 0; s < 2; s++)
        expect_reported("blocks-race", seeds[s], LIST("hazard on global memory", "block (0,0,0)", "block (1,0,0)"),
                        LIST("blocks-race"));
}

static void test_unwritten_static_shared(void **state) {
    (void)state;
    require_race_build();
    const char *const *seeds[] = {seed0, seed7};
    for (int s = 0; s < 2; s++)
        expect_reported("unwritten-shared", seeds[s],
                        LIST("read of uninitialised shared memory", "static __shared__", "no thread of this block wrote"),
                        LIST("unwritten-shared"));
}

static void test_unwritten_dynamic_shared(void **state) {
    (void)state;
    require_race_build();
    expect_reported("unwritten-dynamic", NULL, LIST("read of uninitialised shared memory", "dynamic __shared__"),
                    LIST("unwritten-dynamic"));
}

static void test_divergent_syncthreads(void **state) {
    (void)state;
    expect_reported("divergent-sync", NULL, LIST("__syncthreads in divergent code"),
                    LIST("divergent-a", "divergent-b"));
}

static void test_syncwarp_sites_pascal_rules(void **state) {
    (void)state;
    expect_quiet("syncwarp-sites", NULL); /* legal from Volta on */
    expect_reported("syncwarp-sites", LIST("DMZ_EMU_WARP_RULES=pascal"), LIST("Pascal rules"),
                    LIST("syncwarp-site-a", "syncwarp-site-b"));
}

static void test_correct_kernel_is_quiet(void **state) {
    (void)state;
    expect_quiet("correct", seed0);
    expect_quiet("correct", seed7);
    expect_quiet("correct", LIST("DMZ_EMU_WARP_RULES=pascal"));
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--case") == 0) {
        if (dmz_race_case(argv[2]) != 0) {
            fprintf(stderr, "test_race: no case %s\n", argv[2]);
            return 2;
        }
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neighbour_read_without_barrier),
        cmocka_unit_test(test_block_sum_twice),
        cmocka_unit_test(test_shuffle_call_sites),
        cmocka_unit_test(test_shuffle_source_outside_mask),
        cmocka_unit_test(test_race_between_blocks),
        cmocka_unit_test(test_unwritten_static_shared),
        cmocka_unit_test(test_unwritten_dynamic_shared),
        cmocka_unit_test(test_divergent_syncthreads),
        cmocka_unit_test(test_syncwarp_sites_pascal_rules),
        cmocka_unit_test(test_correct_kernel_is_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
