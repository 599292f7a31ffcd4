/* common/interrupt.h — SIGINT/SIGTERM that end a run cleanly, for the runner
 * (issue 11: "every blocking phase must answer SIGINT/SIGTERM within a second").
 *
 * dmz_interrupt_install() installs handlers with sigaction and without
 * SA_RESTART: a blocking read, write, open of a FIFO, wait or sleep then
 * returns EINTR instead of resuming, and the loop around it looks at
 * dmz_interrupted(). The handler only sets a flag; a second signal of the same
 * kind gets the default action (a stuck program still ends on a second Ctrl-C).
 * The runner names what it is doing with dmz_phase_set("warm-up"), so that
 * dmz_interrupt_check() can say "interrupted by SIGINT during warm-up". */
#ifndef DMZ_COMMON_INTERRUPT_H
#define DMZ_COMMON_INTERRUPT_H

#include <signal.h>
#include <stdbool.h>

void dmz_interrupt_install(void);
bool dmz_interrupted(void);
int dmz_interrupt_signal(void);          /* the signal that came, 0 if none */
void dmz_interrupt_clear(void);          /* forget it (tests) */
void dmz_interrupt_uninstall(void);      /* the default actions again */
/* The flag itself (0, or the signal), for loops that poll it, e.g. net/comm's stop. */
volatile sig_atomic_t *dmz_interrupt_flag(void);
void dmz_phase_set(const char *phase);   /* a string literal: kept, not copied */
const char *dmz_phase(void);             /* "" before the first dmz_phase_set */
/* DMZ_OK, or DMZ_EXIT_FAIL with "interrupted by SIGINT during PHASE". */
int dmz_interrupt_check(char *err);

/* flock(fd, LOCK_EX), waiting at most timeout_s and answering interrupts:
 * DMZ_OK when held; DMZ_EXIT_FAIL with "WHAT: still locked by another process
 * after N s" or the interrupt message. */
int dmz_lock_wait(int fd, double timeout_s, const char *what, char *err);

#endif
