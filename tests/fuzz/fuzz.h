/* tests/fuzz/fuzz.h — what the libFuzzer harnesses share. Each fuzz_NAME.c
 * defines LLVMFuzzerTestOneInput; it is built twice: with clang and
 * -fsanitize=fuzzer for `make fuzz`, and with gcc beside tests/fuzz/replay.c
 * as build/tests/test_fuzz_NAME, which feeds it every saved input
 * (tests/fuzz/corpus/NAME/ and tests/fuzz/regressions/NAME-*) in `make test`. */
#ifndef DMZ_FUZZ_H
#define DMZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes as an anonymous regular file (memfd): returns its descriptor, or
 * -1, and its name "/proc/self/fd/N" for readers that take a path. */
static inline int fuzz_file(const uint8_t *data, size_t size, char path[64]) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    lseek(fd, 0, SEEK_SET);
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* The index of the first `sep` byte sequence in data, or size. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, const char *sep) {
    size_t n = strlen(sep);
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(data + i, sep, n) == 0) return i;
    return size;
}

#endif
