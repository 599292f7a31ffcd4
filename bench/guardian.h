/* bench/guardian.h — a run directory is never left half-done.
 *
 * Rank 0 can vanish without running its own error path: SIGKILL, or Open MPI
 * ending the process from inside a call when a peer's connection drops. So
 * at the start of a run rank 0 forks a small guardian process (its own
 * session, so the launcher's kill of the job's process group spares it). It
 * waits on a pipe; if rank 0's end closes before the run said "done", the
 * guardian marks the directory failed (status, naming the last phase), moves
 * it into place and appends the index row. Internal to bench/. */
#ifndef DMZ_GUARDIAN_H
#define DMZ_GUARDIAN_H

#include <sys/types.h>

#include "results.h"

typedef struct dmz_guardian {
    pid_t pid;
    int fd;   /* write end; -1 when none */
} dmz_guardian;

/* info's strings must stay valid (the guardian has its own copy of memory). */
int dmz_guardian_start(dmz_guardian *g, const dmz_rundir *rd, const dmz_run_info *info, char *err);
/* The phase the run is in, for the message if it vanishes ("training, repetition 1"). */
void dmz_guardian_phase(dmz_guardian *g, const char *phase);
/* The run wrote its own result directory: the guardian leaves. */
void dmz_guardian_done(dmz_guardian *g);

#endif
