/* tests/test_interrupt.c — common/interrupt: a signal is noted, not restarted
 * over (a blocking read returns EINTR), named with the phase, a second one
 * ends the process; the lock wait is bounded and answers a signal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/dmz.h"
#include "common/interrupt.h"
#include "tests/support.h"

/* Another process sends sig to this one after ms (reaped by reap()). */
static pid_t sender;
static void after_ms(int ms, int sig) {
    pid_t me = getpid();
    sender = fork();
    assert_true(sender >= 0);
    if (sender == 0) {
        usleep((useconds_t)ms * 1000);
        kill(me, sig);
        _exit(0);
    }
}

static void reap(void) {
    int status;
    while (waitpid(sender, &status, 0) < 0 && errno == EINTR) {}
}

static void test_signal_noted_with_phase(void **state) {
    (void)state;
    dmz_interrupt_install();
    dmz_interrupt_clear();
    char err[DMZ_ERR_LEN] = "";
    assert_int_equal(dmz_interrupt_check(err), DMZ_OK);
    dmz_phase_set("warm-up");
    raise(SIGTERM);
    assert_true(dmz_interrupted());
    assert_int_equal(dmz_interrupt_check(err), DMZ_EXIT_FAIL);
    assert_string_equal(err, "interrupted by SIGTERM during warm-up");
    dmz_interrupt_clear();
    dmz_phase_set("");
}

/* A read with no writer in sight returns EINTR when SIGINT comes. */
static void test_blocking_read_not_restarted(void **state) {
    (void)state;
    dmz_interrupt_install();
    dmz_interrupt_clear();
    int p[2];
    assert_int_equal(pipe(p), 0);
    dmz_phase_set("data load");
    after_ms(200, SIGINT);
    char c;
    double t0 = dmz_now_s();
    ssize_t n = read(p[0], &c, 1);
    int e = errno;
    assert_int_equal(n, -1);
    assert_int_equal(e, EINTR);
    assert_true(dmz_now_s() - t0 < 5);
    reap();
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_interrupt_check(err), DMZ_EXIT_FAIL);
    assert_string_equal(err, "interrupted by SIGINT during data load");
    close(p[0]);
    close(p[1]);
    dmz_interrupt_clear();
    dmz_phase_set("");
}

/* The second signal is not caught: a process stuck anyway still ends. */
static void test_second_signal_ends_the_process(void **state) {
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dmz_interrupt_install();
        raise(SIGINT);
        raise(SIGINT);
        _exit(0); /* not reached */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGINT);
}

static void test_lock_wait_bounded_and_interruptible(void **state) {
    (void)state;
    char path[512], err[DMZ_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/.index.lock", fs_tmpdir);
    int holder = open(path, O_RDWR | O_CREAT, 0644), waiter = open(path, O_RDWR);
    assert_true(holder >= 0 && waiter >= 0);
    assert_int_equal(flock(holder, LOCK_EX), 0);
    dmz_interrupt_install();
    dmz_interrupt_clear();
    double t0 = dmz_now_s();
    assert_int_equal(dmz_lock_wait(waiter, 0.3, "results/index.csv", err), DMZ_EXIT_FAIL);
    assert_true(dmz_now_s() - t0 < 3);
    assert_string_equal(err, "results/index.csv: still locked by another process after 0 s");
    dmz_phase_set("the index lock wait");
    after_ms(200, SIGINT);
    t0 = dmz_now_s();
    assert_int_equal(dmz_lock_wait(waiter, 60, "results/index.csv", err), DMZ_EXIT_FAIL);
    assert_true(dmz_now_s() - t0 < 2); /* within a second of the signal */
    reap();
    assert_string_equal(err, "interrupted by SIGINT during the index lock wait");
    dmz_interrupt_clear();
    flock(holder, LOCK_UN);
    assert_int_equal(dmz_lock_wait(waiter, 1, "results/index.csv", err), DMZ_OK);
    close(holder);
    close(waiter);
    dmz_phase_set("");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_noted_with_phase),
        cmocka_unit_test(test_blocking_read_not_restarted),
        cmocka_unit_test(test_second_signal_ends_the_process),
        cmocka_unit_test(test_lock_wait_bounded_and_interruptible),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
