/* Processes inside the sites: run a function in a namespace, TCP goodput
 * between two sites (the relay's own limit), and a UDP echo for RTT and loss. */
#include "wanem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/dmz.h"

static int enter_netns(const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}

int dmz_wan_in_netns(const char *name, int (*fn)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return DMZ_EXIT_FAIL;
    if (pid == 0) {
        if (enter_netns(name) != 0) {
            fprintf(stderr, "dmzbench wan: cannot enter network namespace %s: %s\n", name, strerror(errno));
            _exit(DMZ_EXIT_FAIL);
        }
        _exit(fn(arg));
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : DMZ_EXIT_FAIL;
}

/* ---------------------------------------------------------------- TCP goodput */

typedef struct blast {
    const char *ip;
    int port;
    double seconds;
    int pipe_w;    /* receiver: ready byte, then the result */
    int ready_r;   /* sender: waits for the receiver */
} blast;

static double now(void) { return dmz_now_s(); }

static int blast_receiver(void *p) {
    blast *b = p;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
    inet_pton(AF_INET, b->ip, &a.sin_addr);
    char c = 'R';
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0) c = 'E';
    if (write(b->pipe_w, &c, 1) != 1 || c == 'E') return DMZ_EXIT_FAIL;
    struct pollfd pf = {.fd = s, .events = POLLIN};
    if (poll(&pf, 1, 10000) != 1) return DMZ_EXIT_FAIL;
    int cfd = accept(s, NULL, NULL);
    if (cfd < 0) return DMZ_EXIT_FAIL;
    static char buf[1 << 20];
    double t0 = 0, t1 = 0, bytes = 0;
    for (;;) {
        ssize_t n = read(cfd, buf, sizeof buf);
        if (n <= 0) break;
        if (bytes == 0) t0 = now();
        bytes += (double)n;
        t1 = now();
    }
    double bps = t1 > t0 ? bytes * 8 / (t1 - t0) : NAN;
    return write(b->pipe_w, &bps, sizeof bps) == sizeof bps ? DMZ_OK : DMZ_EXIT_FAIL;
}

static int blast_sender(void *p) {
    blast *b = p;
    char c;
    if (read(b->ready_r, &c, 1) != 1 || c != 'R') return DMZ_EXIT_FAIL;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
    inet_pton(AF_INET, b->ip, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return DMZ_EXIT_FAIL;
    static char buf[1 << 20];
    memset(buf, 0x5a, sizeof buf);
    double end = now() + b->seconds;
    while (now() < end)
        if (write(s, buf, sizeof buf) < 0) return DMZ_EXIT_FAIL;
    close(s);
    return DMZ_OK;
}


static pid_t spawn_in(const char *ns, int (*fn)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (enter_netns(ns) != 0) _exit(DMZ_EXIT_FAIL);
        _exit(fn(arg));
    }
    return pid;
}

static int reap(pid_t pid, double limit_s) {
    double end = now() + limit_s;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : DMZ_EXIT_FAIL;
        if (r < 0) return DMZ_EXIT_FAIL;
        if (now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return DMZ_EXIT_FAIL;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

int dmz_wan_tcp_blast(const dmz_wan_desc *d, int a, int b, double seconds, double *bps, char *err) {
    char ns_a[64], ns_b[64], ip[32];
    dmz_wan_netns(d, a, ns_a, sizeof ns_a);
    dmz_wan_netns(d, b, ns_b, sizeof ns_b);
    dmz_wan_data_ip(d, b, ip, sizeof ip);
    int res[2], rdy[2];
    if (pipe(res) || pipe(rdy)) return dmz_errorf(err, DMZ_EXIT_FAIL, "pipe: %s", strerror(errno));
    blast bl = {.ip = ip, .port = 5301, .seconds = seconds, .pipe_w = res[1], .ready_r = rdy[0]};
    pid_t rx = spawn_in(ns_b, blast_receiver, &bl);
    char c = 0;
    struct pollfd pf = {.fd = res[0], .events = POLLIN};
    int rc = DMZ_OK;
    if (poll(&pf, 1, 5000) != 1 || read(res[0], &c, 1) != 1 || c != 'R')
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "TCP test: the receiver in %s did not start", ns_b);
    pid_t tx = -1;
    if (!rc) {
        if (write(rdy[1], &c, 1) != 1) rc = DMZ_EXIT_FAIL;
        tx = spawn_in(ns_a, blast_sender, &bl);
    }
    double v = NAN;
    pf.fd = res[0];
    if (!rc && (poll(&pf, 1, (int)(seconds * 1000) + 10000) != 1 || read(res[0], &v, sizeof v) != sizeof v))
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "TCP test %s -> %s: no result", ns_a, ns_b);
    if (tx > 0) reap(tx, 10);
    reap(rx, 10);
    close(res[0]), close(res[1]), close(rdy[0]), close(rdy[1]);
    *bps = v;
    return rc;
}

/* ---------------------------------------------------------------- UDP echo */

typedef struct echo {
    const char *ip;
    int port, count;
    double interval_s;
    int pipe_w, ready_r;
} echo;

typedef struct probe_msg { uint32_t seq; double sent; } probe_msg;

static int echo_server(void *p) {
    echo *e = p;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
    inet_pton(AF_INET, e->ip, &a.sin_addr);
    char c = bind(s, (struct sockaddr *)&a, sizeof a) == 0 ? 'R' : 'E';
    if (write(e->pipe_w, &c, 1) != 1 || c == 'E') return DMZ_EXIT_FAIL;
    for (;;) {
        struct pollfd pf = {.fd = s, .events = POLLIN};
        if (poll(&pf, 1, 3000) != 1) return DMZ_OK; /* the client is done */
        char buf[256];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n == 1 && buf[0] == 'Q') return DMZ_OK; /* the client's last word */
        if (n > 0) sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
}

typedef struct echo_out { int received; double min, sum, max; } echo_out;

static int echo_client(void *p) {
    echo *e = p;
    char c;
    if (read(e->ready_r, &c, 1) != 1) return DMZ_EXIT_FAIL;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
    inet_pton(AF_INET, e->ip, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return DMZ_EXIT_FAIL;
    echo_out o = {.min = INFINITY};
    char *seen = calloc((size_t)e->count, 1);
    double next = now(), last_send = 0;
    int sent = 0;
    for (;;) {
        double t = now();
        if (sent < e->count && t >= next) {
            probe_msg m = {.seq = (uint32_t)sent, .sent = t};
            char buf[64] = {0};
            memcpy(buf, &m, sizeof m);
            if (send(s, buf, sizeof buf, 0) < 0) break;
            sent++, next += e->interval_s, last_send = t;
            continue;
        }
        if (sent == e->count && t > last_send + 1.0 + (o.max > 0 && isfinite(o.max) ? 2 * o.max : 0)) break;
        double wait = sent < e->count ? next - t : 0.05;
        struct pollfd pf = {.fd = s, .events = POLLIN};
        if (poll(&pf, 1, wait > 0 ? (int)(wait * 1000) + 1 : 0) == 1) {
            char buf[256];
            ssize_t n = recv(s, buf, sizeof buf, 0);
            probe_msg m;
            if (n < (ssize_t)sizeof m) continue;
            memcpy(&m, buf, sizeof m);
            if (m.seq >= (uint32_t)e->count || seen[m.seq]) continue;
            seen[m.seq] = 1;
            double rtt = now() - m.sent;
            o.received++, o.sum += rtt;
            if (rtt < o.min) o.min = rtt;
            if (rtt > o.max) o.max = rtt;
        }
    }
    free(seen);
    send(s, "Q", 1, 0);
    return write(e->pipe_w, &o, sizeof o) == sizeof o ? DMZ_OK : DMZ_EXIT_FAIL;
}

int dmz_wan_ping(const dmz_wan_desc *d, int a, int b, int count, double interval_s, dmz_wan_ping_result *r,
                 char *err) {
    char ns_a[64], ns_b[64], ip[32];
    dmz_wan_netns(d, a, ns_a, sizeof ns_a);
    dmz_wan_netns(d, b, ns_b, sizeof ns_b);
    dmz_wan_data_ip(d, b, ip, sizeof ip);
    int res[2], rdy[2];
    if (pipe(res) || pipe(rdy)) return dmz_errorf(err, DMZ_EXIT_FAIL, "pipe: %s", strerror(errno));
    echo e = {.ip = ip, .port = 5302, .count = count, .interval_s = interval_s, .pipe_w = res[1], .ready_r = rdy[0]};
    pid_t srv = spawn_in(ns_b, echo_server, &e);
    char c = 0;
    int rc = DMZ_OK;
    struct pollfd pf = {.fd = res[0], .events = POLLIN};
    if (poll(&pf, 1, 5000) != 1 || read(res[0], &c, 1) != 1 || c != 'R')
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "ping: the echo server in %s did not start", ns_b);
    pid_t cli = -1;
    echo_out o = {0};
    if (!rc) {
        if (write(rdy[1], &c, 1) != 1) rc = DMZ_EXIT_FAIL;
        cli = spawn_in(ns_a, echo_client, &e);
        if (poll(&pf, 1, (int)(count * interval_s * 1000) + 30000) != 1 || read(res[0], &o, sizeof o) != sizeof o)
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "ping %s -> %s: no result", ns_a, ns_b);
    }
    if (cli > 0) reap(cli, 10);
    reap(srv, 10);
    close(res[0]), close(res[1]), close(rdy[0]), close(rdy[1]);
    if (rc) return rc;
    *r = (dmz_wan_ping_result){.sent = count, .received = o.received, .rtt_min_s = o.received ? o.min : NAN,
                               .rtt_avg_s = o.received ? o.sum / o.received : NAN, .rtt_max_s = o.received ? o.max : NAN};
    r->loss_rt = count ? 1.0 - (double)o.received / count : NAN;
    r->loss_one_way = 1.0 - sqrt(1.0 - r->loss_rt);
    return DMZ_OK;
}
