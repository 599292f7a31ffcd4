#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/dmz.h"

/* Reads phase lines until EOF; returns 1 if the last one was "done". */
static int follow(int fd, char *phase, size_t len) {
    char buf[512];
    size_t have = 0;
    snprintf(phase, len, "start-up");
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return strcmp(phase, "done") == 0;
        have += (size_t)n;
        buf[have] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            snprintf(phase, len, "%s", buf);
            memmove(buf, nl + 1, have - (size_t)(nl + 1 - buf) + 1);
            have -= (size_t)(nl + 1 - buf);
        }
        if (have == sizeof buf - 1) have = 0; /* a line too long: drop it */
    }
}

static void guard(int fd, dmz_rundir *rd, const dmz_run_info *info) {
    char phase[512];
    if (follow(fd, phase, sizeof phase)) _exit(0);
    struct stat st;
    if (stat(rd->work, &st) != 0) _exit(0); /* rank 0 finished moving it */
    char error[1024], err[DMZ_ERR_LEN];
    snprintf(error, sizeof error,
             "rank 0 ended without finishing, during %s: killed by a signal, or ended by the MPI library after "
             "a peer rank died or its connection dropped (see the launcher's output)",
             phase);
    if (dmz_rundir_finish(rd, false, error, err) != DMZ_OK) _exit(1);
    dmz_stat none = {.metric = "", .median = NAN};
    dmz_index_append(rd, info, "failed", 0, &none, &none, &none, err);
    _exit(0);
}

int dmz_guardian_start(dmz_guardian *g, const dmz_rundir *rd, const dmz_run_info *info, char *err) {
    g->pid = -1, g->fd = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "pipe: %s", strerror(errno));
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setsid();
        signal(SIGINT, SIG_IGN), signal(SIGTERM, SIG_IGN), signal(SIGPIPE, SIG_IGN);
        close(fds[1]);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
        dmz_rundir copy = *rd;
        guard(fds[0], &copy, info);
    }
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN); /* a phase written after the guardian left must not end the run */
    g->pid = pid, g->fd = fds[1];
    return DMZ_OK;
}

void dmz_guardian_phase(dmz_guardian *g, const char *phase) {
    if (g->fd < 0) return;
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", phase);
    if (n > 0 && write(g->fd, line, (size_t)n) < 0) { /* the guardian is gone: nothing to tell */ }
}

void dmz_guardian_done(dmz_guardian *g) {
    if (g->fd < 0) return;
    dmz_guardian_phase(g, "done");
    close(g->fd);
    g->fd = -1;
    waitpid(g->pid, NULL, 0);
}
