/* tests/cuda_device.h — the device under test for the cuda op tests
 * (test_cuda_ops.c, test_cuda_step.c): the emulator build ("cuda-emu"), or
 * with DMZ_TEST_CUDA_GPU the nvcc build on a real GPU; helpers to move data
 * to and from it and to compare with the cpu reference. Include after
 * cmocka.h; static inline functions, one copy per test program. */
#ifndef DMZ_TESTS_CUDA_DEVICE_H
#define DMZ_TESTS_CUDA_DEVICE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"

#ifdef DMZ_TEST_CUDA_GPU
#define DEV (&dmz_backend_cuda)
#define DEV_NAME "cuda"
static inline int dev_available(char *reason, size_t len) { return dmz_cuda_available(reason, len); }
#else
#define DEV (&dmz_backend_cuda_emu)
#define DEV_NAME "cuda-emu"
static inline int dev_available(char *reason, size_t len) { return dmz_cuda_emu_available(reason, len); }
#endif
#define CPU (&dmz_backend_cpu)

/* Skips the test (with the reason, printed once) when there is no device. */
static inline void require_device(void) {
    static int known = 0, ok = 0;
    if (!known) {
        char reason[512] = "";
        ok = dev_available(reason, sizeof reason);
        if (!ok) fprintf(stderr, "%s backend: no CUDA device (%s): skipping\n", DEV_NAME, reason);
        known = 1;
    }
    if (!ok) skip();
}

static inline void *dev_copy(const void *host, size_t bytes) {
    void *d = DEV->alloc(bytes);
    assert_non_null(d);
    DEV->upload(d, host, bytes);
    return d;
}

static inline void *dev_zeros(size_t bytes) {
    void *d = DEV->alloc(bytes);
    assert_non_null(d);
    return d;
}

static inline float *host_from_dev(const void *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(h);
    DEV->sync();
    DEV->download(h, d, n * sizeof(float));
    return h;
}

static inline int mismatches(const char *what, const float *got, const float *want, size_t n, double atol, double rtol) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = isnan(want[i]) ? isnan(got[i]) : fabs((double)got[i] - want[i]) <= atol + rtol * fabs(want[i]);
        if (!isnan(want[i]) && !isnan(got[i])) worst = fmax(worst, fabs((double)got[i] - want[i]));
        if (ok) continue;
        if (bad++ < 5)
            fprintf(stderr, "  %s[%zu]: got %.9g, want %.9g (|diff| %.3g > %.3g)\n", what, i, got[i], want[i],
                    fabs((double)got[i] - want[i]), atol + rtol * fabs(want[i]));
    }
    if (bad) fprintf(stderr, "  %s: %d of %zu mismatched (largest |diff| %.3g)\n", what, bad, n, worst);
    return bad;
}

/* Runs fn in a child process (a hang ends as SIGALRM after 20 s) and returns
 * its wait status, with what it wrote to stderr in buf (NUL-terminated). */
static inline int run_in_child(void (*fn)(void), char *buf, size_t size) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        alarm(20);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + len, size - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

#endif
