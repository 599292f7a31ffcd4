/* The user-space delay relay (see wanem.h): an L2 switch in the hub namespace
 * between the sites' data veths, over AF_PACKET sockets with virtio-net
 * headers (PACKET_VNET_HDR), so TCP's 64 KiB GSO frames pass whole, as the
 * kernel made them. Each direction (site i to site j) has a FIFO of frames
 * with their due times; the delay of a direction is constant up to jitter,
 * and a frame is never due before the one ahead of it, so the FIFO is sorted
 * and its head is the next frame due: one timerfd armed at the earliest head,
 * nothing polls. Loss: a seeded xoshiro draw per frame per direction. */
#include "wanem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/dmz.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

enum { MAX_FRAME = 256 * 1024, MAX_MACS = 128, REC_ALIGN = 8, WRAP = 0xffffffffu };

typedef struct rec { int64_t due_ns; uint32_t len; uint32_t pad; } rec;

typedef struct queue {
    bool active;                 /* a link joins the two sites */
    int out;                     /* port index */
    double delay_ns, jitter_ns, loss;
    dmz_rng rng;
    uint8_t *buf;
    size_t cap, head, tail;
    long count;
    int64_t last_due;
    uint64_t frames, bytes, lost, full;
} queue;

typedef struct relay {
    int n;
    int fd[DMZ_WAN_MAX_SITES];
    bool blocked[DMZ_WAN_MAX_SITES];
    queue q[DMZ_WAN_MAX_SITES][DMZ_WAN_MAX_SITES]; /* q[in][out] */
    struct { uint8_t mac[6]; int port; } macs[MAX_MACS];
    int n_macs;
    uint64_t rx_frames, rx_bytes, truncated, send_errors;
    int ep, tfd;
    int64_t armed;
} relay;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t rec_size(uint32_t len) { return (sizeof(rec) + len + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1); }

/* Appends a frame; false when the queue is full (tail drop). */
static bool q_push(queue *q, const uint8_t *data, uint32_t len, int64_t due) {
    size_t need = rec_size(len);
    if (q->count == 0) q->head = q->tail = 0;
    size_t at;
    if (q->count == 0 || q->tail > q->head) {
        if (q->cap - q->tail >= need) at = q->tail;
        else if (need < q->head) {
            if (q->cap - q->tail >= sizeof(rec)) ((rec *)(q->buf + q->tail))->len = WRAP;
            at = 0;
        } else return false;
    } else {
        if (q->head - q->tail > need) at = q->tail;
        else return false;
    }
    rec *r = (rec *)(q->buf + at);
    r->due_ns = due;
    r->len = len;
    memcpy(r + 1, data, len);
    q->tail = at + need;
    q->count++;
    return true;
}

static rec *q_peek(queue *q) {
    if (q->count == 0) return NULL;
    if (q->cap - q->head < sizeof(rec) || ((rec *)(q->buf + q->head))->len == WRAP) q->head = 0;
    return (rec *)(q->buf + q->head);
}

static void q_pop(queue *q) {
    rec *r = q_peek(q);
    q->head += rec_size(r->len);
    if (--q->count == 0) q->head = q->tail = 0;
}

static int port_of(relay *r, const uint8_t *mac) {
    for (int i = 0; i < r->n_macs; i++)
        if (memcmp(r->macs[i].mac, mac, 6) == 0) return r->macs[i].port;
    return -1;
}

static void learn(relay *r, const uint8_t *mac, int port) {
    if (mac[0] & 1) return; /* a group address is never a source */
    for (int i = 0; i < r->n_macs; i++)
        if (memcmp(r->macs[i].mac, mac, 6) == 0) {
            r->macs[i].port = port;
            return;
        }
    if (r->n_macs < MAX_MACS) {
        memcpy(r->macs[r->n_macs].mac, mac, 6);
        r->macs[r->n_macs++].port = port;
    }
}

static void enqueue(relay *r, int in, int out, const uint8_t *data, uint32_t len, int64_t now) {
    queue *q = &r->q[in][out];
    if (!q->active) return;
    if (q->loss > 0 && dmz_rng_uniform(&q->rng) < q->loss) {
        q->lost++;
        return;
    }
    double d = q->delay_ns;
    if (q->jitter_ns > 0) d += (2 * dmz_rng_uniform(&q->rng) - 1) * q->jitter_ns;
    int64_t due = now + (int64_t)(d > 0 ? d : 0);
    if (due < q->last_due) due = q->last_due; /* jitter never reorders */
    if (!q_push(q, data, len, due)) {
        q->full++;
        return;
    }
    q->last_due = due;
}

static uint8_t scratch[MAX_FRAME];

static void receive(relay *r, int in) {
    for (int burst = 0; burst < 256; burst++) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t got = recvfrom(r->fd[in], scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fl);
        if (got < 0) return;
        if (from.sll_pkttype == PACKET_OUTGOING) continue;
        if ((size_t)got > sizeof scratch) {
            r->truncated++;
            continue;
        }
        size_t vh = sizeof(struct virtio_net_hdr);
        if ((size_t)got < vh + 14) continue;
        const uint8_t *eth = scratch + vh;
        int64_t now = now_ns();
        r->rx_frames++;
        r->rx_bytes += (uint64_t)got - vh;
        learn(r, eth + 6, in);
        int out = (eth[0] & 1) ? -1 : port_of(r, eth);
        if (out == in) continue;
        if (out >= 0) enqueue(r, in, out, scratch, (uint32_t)got, now);
        else
            for (int o = 0; o < r->n; o++)
                if (o != in) enqueue(r, in, o, scratch, (uint32_t)got, now);
    }
}

static void set_out_interest(relay *r, int port, bool want) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)port};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, r->fd[port], &ev);
    r->blocked[port] = want;
}

/* Sends every frame that is due; arms the timer at the next one. */
static void flush(relay *r) {
    int64_t now = now_ns(), next = INT64_MAX;
    for (int i = 0; i < r->n; i++)
        for (int o = 0; o < r->n; o++) {
            queue *q = &r->q[i][o];
            if (r->blocked[o]) continue;
            for (rec *h; (h = q_peek(q));) {
                if (h->due_ns > now) {
                    if (h->due_ns < next) next = h->due_ns;
                    break;
                }
                ssize_t s = send(r->fd[o], h + 1, h->len, MSG_DONTWAIT);
                if (s < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    set_out_interest(r, o, true);
                    break;
                }
                if (s < 0) r->send_errors++;
                else q->frames++, q->bytes += h->len - sizeof(struct virtio_net_hdr);
                q_pop(q);
            }
        }
    if (next != r->armed) {
        struct itimerspec its = {0};
        if (next != INT64_MAX) its.it_value = (struct timespec){next / 1000000000, next % 1000000000};
        timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
        r->armed = next;
    }
}

static void write_stats(const relay *r, const dmz_wan_desc *d, const char *path) {
    if (!path) return;
    char buf[8192];
    size_t k = 0;
    k += (size_t)snprintf(buf + k, sizeof buf - k,
                          "# relay counters (every second): direction frames bytes lost(configured loss) "
                          "dropped_full(queue) queued\nrx_frames %llu\nrx_bytes %llu\ntruncated %llu\nsend_errors %llu\n",
                          (unsigned long long)r->rx_frames, (unsigned long long)r->rx_bytes,
                          (unsigned long long)r->truncated, (unsigned long long)r->send_errors);
    for (int i = 0; i < r->n; i++)
        for (int o = 0; o < r->n && k < sizeof buf; o++) {
            const queue *q = &r->q[i][o];
            if (!q->active) continue;
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s->%s %llu %llu %llu %llu %ld\n", d->sites[i], d->sites[o],
                                  (unsigned long long)q->frames, (unsigned long long)q->bytes,
                                  (unsigned long long)q->lost, (unsigned long long)q->full, q->count);
        }
    char err[DMZ_ERR_LEN];
    dmz_write_file_atomic(path, buf, k < sizeof buf ? k : sizeof buf - 1, err);
}

static int open_port(const char *ifname, int *out, char *err) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "relay: AF_PACKET socket: %s (needs root)", strerror(errno));
    int one = 1, big = 32 << 20;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
        close(fd);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "relay: PACKET_VNET_HDR: %s", strerror(errno));
    }
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one); /* also checked per frame */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(ifname)};
    if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        close(fd);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "relay: bind to %s: %s", ifname, strerror(errno));
    }
    *out = fd;
    return DMZ_OK;
}

int dmz_wan_relay_run(const dmz_wan_desc *d, const char *const *ports, int ready_fd, const char *stats_path,
                      char *err) {
    relay *r = calloc(1, sizeof *r);
    if (!r) return dmz_errorf(err, DMZ_EXIT_FAIL, "relay: out of memory");
    r->n = d->n_sites;
    r->armed = INT64_MAX;
    int rc = DMZ_OK;
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the due time, not up to 50 us later */
    /* Real-time priority: MPI ranks busy-poll every core, and a relay that waits
     * for the scheduler adds its wait to every frame's delay. It sleeps between
     * frames; the kernel's RT throttling keeps 5% for others if it ever spins. */
    struct sched_param sp = {.sched_priority = 20};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
        fprintf(stderr, "relay: SCHED_FIFO refused (%s): delays may stretch under CPU load\n", strerror(errno));
    for (int i = 0; i < r->n; i++) r->fd[i] = -1;
    for (int i = 0; i < r->n && !rc; i++) rc = open_port(ports[i], &r->fd[i], err);
    for (int i = 0; i < r->n && !rc; i++)
        for (int o = 0; o < r->n; o++) {
            const dmz_wan_link *l = i == o ? NULL : dmz_wan_find_link(d, i, o);
            queue *q = &r->q[i][o];
            if (!l) continue;
            *q = (queue){.active = true, .out = o, .delay_ns = l->rtt_s / 2 * 1e9, .jitter_ns = l->jitter_s * 1e9,
                         .loss = l->loss, .cap = d->queue_bytes};
            dmz_rng_seed(&q->rng, d->seed * 1000003u + (uint64_t)i * 131 + (uint64_t)o);
            q->buf = malloc(q->cap); /* untouched pages cost nothing */
            if (!q->buf) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "relay: out of memory for a %zu-byte queue", q->cap);
        }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    int stfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!rc && (sfd < 0 || r->tfd < 0 || stfd < 0 || r->ep < 0))
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "relay: signalfd/timerfd/epoll: %s", strerror(errno));
    enum { EV_SIG = 100, EV_TIMER, EV_STATS };
    for (int i = 0; i < r->n && !rc; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(r->ep, EPOLL_CTL_ADD, r->fd[i], &ev);
    }
    if (!rc) {
        struct epoll_event e1 = {.events = EPOLLIN, .data.u32 = EV_SIG}, e2 = {.events = EPOLLIN, .data.u32 = EV_TIMER},
                           e3 = {.events = EPOLLIN, .data.u32 = EV_STATS};
        epoll_ctl(r->ep, EPOLL_CTL_ADD, sfd, &e1);
        epoll_ctl(r->ep, EPOLL_CTL_ADD, r->tfd, &e2);
        epoll_ctl(r->ep, EPOLL_CTL_ADD, stfd, &e3);
        struct itimerspec every = {.it_interval = {1, 0}, .it_value = {1, 0}};
        timerfd_settime(stfd, 0, &every, NULL);
    }
    if (ready_fd >= 0) {
        char c = rc ? 'E' : 'R';
        if (write(ready_fd, &c, 1) != 1) rc = rc ? rc : DMZ_EXIT_FAIL;
        close(ready_fd);
    }
    for (bool run = !rc; run;) {
        struct epoll_event evs[16];
        int n = epoll_wait(r->ep, evs, 16, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "relay: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int e = 0; e < n; e++) {
            uint32_t id = evs[e].data.u32;
            uint64_t ticks;
            if (id == EV_SIG) run = false;
            else if (id == EV_TIMER) {
                if (read(r->tfd, &ticks, sizeof ticks) < 0) { /* spurious */ }
                r->armed = INT64_MAX; /* it fired: a later one must be set again */
            } else if (id == EV_STATS) {
                if (read(stfd, &ticks, sizeof ticks) > 0) write_stats(r, d, stats_path);
            } else {
                if (evs[e].events & EPOLLOUT) set_out_interest(r, (int)id, false);
                if (evs[e].events & EPOLLIN) receive(r, (int)id);
            }
        }
        flush(r);
    }
    write_stats(r, d, stats_path);
    for (int i = 0; i < r->n; i++) {
        if (r->fd[i] >= 0) close(r->fd[i]);
        for (int o = 0; o < r->n; o++) free(r->q[i][o].buf);
    }
    if (sfd >= 0) close(sfd);
    if (r->tfd >= 0) close(r->tfd);
    if (stfd >= 0) close(stfd);
    if (r->ep >= 0) close(r->ep);
    free(r);
    return rc;
}
