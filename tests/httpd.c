/* tests/httpd.c — see httpd.h. */
#include "tests/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char HTML_PAGE[] =
    "<!DOCTYPE html>\n<html><head><title>Moved</title></head>"
    "<body><p>This page has moved.</p></body></html>\n";

struct httpd {
    httpd_config cfg;
    int listen_fd;
    int port;
    double deadline;
    pthread_t thread;
    atomic_bool stop;
    atomic_int requests;
    atomic_llong last_range;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool should_stop(httpd *h) { return atomic_load(&h->stop) || now_s() > h->deadline; }

static bool send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads the request head (up to the blank line); false on timeout or EOF. */
static bool read_head(httpd *h, int fd, char *buf, size_t len) {
    size_t used = 0;
    while (used + 1 < len && !should_stop(h)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(fd, buf + used, len - 1 - used, 0);
        if (n <= 0) return false;
        used += (size_t)n;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n")) return true;
    }
    return false;
}

static long long parse_range(const char *head) {
    for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "Range: bytes=", 13) == 0) return strtoll(p + 14, NULL, 10);
    return -1;
}

static const httpd_file *find_file(const httpd *h, const char *path) {
    for (int i = 0; i < HTTPD_MAX_FILES && h->cfg.files[i].path; i++)
        if (strcmp(h->cfg.files[i].path, path) == 0) return &h->cfg.files[i];
    return NULL;
}

static void send_head(int fd, const char *status, const char *type, size_t len, const char *extra) {
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nAccept-Ranges: bytes\r\n"
                     "%sConnection: close\r\n\r\n",
                     status, type, len, extra);
    send_all(fd, head, (size_t)n);
}

/* Silent until stopped or until the client hangs up (so its retry gets served). */
static void stall(httpd *h, int fd) {
    char byte;
    while (!should_stop(h)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0 && recv(fd, &byte, 1, 0) <= 0) return;
    }
}

static void serve_body(httpd *h, int fd, const httpd_file *f, httpd_mode mode, long long range) {
    const char *type = f->content_type ? f->content_type : "application/octet-stream";
    size_t offset = 0;
    char extra[128] = "";
    if (range >= 0 && mode != HTTPD_IGNORE_RANGE) {
        if ((size_t)range >= f->len) {
            snprintf(extra, sizeof extra, "Content-Range: bytes */%zu\r\n", f->len);
            send_head(fd, "416 Range Not Satisfiable", "text/plain", 0, extra);
            return;
        }
        offset = (size_t)range;
        snprintf(extra, sizeof extra, "Content-Range: bytes %zu-%zu/%zu\r\n", offset, f->len - 1, f->len);
    }
    send_head(fd, extra[0] ? "206 Partial Content" : "200 OK", type, f->len - offset, extra);
    const char *body = (const char *)f->body + offset;
    size_t len = f->len - offset;
    if (mode == HTTPD_DROP || mode == HTTPD_STALL) {
        send_all(fd, body, h->cfg.after_bytes < len ? h->cfg.after_bytes : len);
        if (mode == HTTPD_STALL) stall(h, fd);
        return;
    }
    send_all(fd, body, len);
}

static void handle(httpd *h, int fd) {
    char head[8192], path[1024];
    if (!read_head(h, fd, head, sizeof head) || sscanf(head, "GET %1023s HTTP/1.", path) != 1) return;
    int n = atomic_fetch_add(&h->requests, 1) + 1;
    long long range = parse_range(head);
    atomic_store(&h->last_range, range);
    httpd_mode mode = h->cfg.bad_requests == 0 || n <= h->cfg.bad_requests ? h->cfg.mode : HTTPD_NORMAL;
    if (h->cfg.redirect_from && strcmp(path, h->cfg.redirect_from) == 0) {
        char extra[1200];
        snprintf(extra, sizeof extra, "Location: %s\r\n", h->cfg.redirect_to);
        send_head(fd, "302 Found", "text/plain", 0, extra);
        return;
    }
    const httpd_file *f = find_file(h, path);
    if (!f) {
        send_head(fd, "404 Not Found", "text/plain", 10, "");
        send_all(fd, "not found\n", 10);
    } else if (mode == HTTPD_HTML) {
        send_head(fd, "200 OK", f->content_type ? f->content_type : "text/html; charset=utf-8",
                  sizeof HTML_PAGE - 1, "");
        send_all(fd, HTML_PAGE, sizeof HTML_PAGE - 1);
    } else {
        serve_body(h, fd, f, mode, range);
    }
}

static void *serve(void *arg) {
    httpd *h = arg;
    while (!should_stop(h)) {
        struct pollfd p = {.fd = h->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(h->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  /* a client that stopped reading */
        handle(h, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

static int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "httpd: cannot listen on 127.0.0.1: %s\n", strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

httpd *httpd_start(const httpd_config *cfg) {
    httpd *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->cfg = *cfg;
    h->deadline = now_s() + (cfg->lifetime_s > 0 ? cfg->lifetime_s : 10.0);
    atomic_init(&h->stop, false);
    atomic_init(&h->requests, 0);
    atomic_init(&h->last_range, -1);
    h->listen_fd = listen_loopback(&h->port);
    if (h->listen_fd < 0 || pthread_create(&h->thread, NULL, serve, h) != 0) {
        if (h->listen_fd >= 0) close(h->listen_fd);
        free(h);
        return NULL;
    }
    return h;
}

int httpd_port(const httpd *h) { return h->port; }

void httpd_url(const httpd *h, const char *path, char *out, size_t len) {
    snprintf(out, len, "http://127.0.0.1:%d%s", h->port, path);
}

int httpd_requests(const httpd *h) { return atomic_load(&((httpd *)h)->requests); }

long long httpd_last_range(const httpd *h) { return atomic_load(&((httpd *)h)->last_range); }

void httpd_stop(httpd *h) {
    if (!h) return;
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->listen_fd);
    free(h);
}
