/* tests/fuzz/replay.c — `make test`'s side of the fuzzing: linked with one
 * harness (tests/fuzz/fuzz_NAME.c, FUZZ_NAME="NAME") and built with gcc as
 * build/tests/test_fuzz_NAME, it feeds the harness's entry point every input
 * kept in the repository: the seed corpus tests/fuzz/corpus/NAME/ and the
 * inputs that once crashed it, tests/fuzz/regressions/NAME-*. An input that
 * crashes (abort, sanitizer under make test-san) fails the test program. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"name\""
#endif
#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif
#define FUZZ_DIR DMZ_SOURCE_DIR "/tests/fuzz"

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *more = realloc(buf, cap *= 2);
            if (!more) free(buf);
            buf = more;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Feeds every regular file in dir whose name starts with prefix; returns how many. */
static int replay_dir(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t len = 0;
        unsigned char *data = slurp(path, &len);
        assert_non_null(data);
        print_message("%s\n", path);
        fflush(stdout);
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

static void test_seed_corpus(void **state) {
    (void)state;
    int n = replay_dir(FUZZ_DIR "/corpus/" FUZZ_NAME, "");
    print_message("%d seed inputs of %s\n", n, FUZZ_NAME);
    assert_true(n > 0); /* a harness without seeds is a mistake */
}

static void test_saved_crashes(void **state) {
    (void)state;
    int n = replay_dir(FUZZ_DIR "/regressions", FUZZ_NAME "-");
    print_message("%d saved crash inputs of %s\n", n, FUZZ_NAME);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_corpus),
        cmocka_unit_test(test_saved_crashes),
    };
    return cmocka_run_group_tests_name("fuzz replay " FUZZ_NAME, tests, NULL, NULL);
}
