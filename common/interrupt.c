/* common/interrupt.c — see interrupt.h. */
#include "common/interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "common/dmz.h"

static volatile sig_atomic_t got_signal;
static const char *volatile phase = "";

static void on_signal(int sig) {
    if (got_signal == sig) { /* the second one: as if no handler were there */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    got_signal = sig;
}

void dmz_interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool dmz_interrupted(void) { return got_signal != 0; }
int dmz_interrupt_signal(void) { return got_signal; }
void dmz_interrupt_clear(void) { got_signal = 0; }
volatile sig_atomic_t *dmz_interrupt_flag(void) { return &got_signal; }
void dmz_interrupt_uninstall(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}
void dmz_phase_set(const char *p) { phase = p ? p : ""; }
const char *dmz_phase(void) { return phase; }

int dmz_interrupt_check(char *err) {
    int sig = got_signal;
    if (!sig) return DMZ_OK;
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
    if (phase[0]) return dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by %s during %s", name, phase);
    return dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by %s", name);
}

int dmz_lock_wait(int fd, double timeout_s, const char *what, char *err) {
    double start = dmz_now_s();
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return DMZ_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot lock: %s", what, strerror(errno));
        int rc = dmz_interrupt_check(err);
        if (rc) return rc;
        if (dmz_now_s() - start >= timeout_s)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: still locked by another process after %.0f s", what,
                              timeout_s);
        struct timespec pause = {0, 50 * 1000 * 1000}; /* 50 ms: answers a signal well within a second */
        nanosleep(&pause, NULL);
    }
}
