#include "dmz.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int dmz_errorf(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, DMZ_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

double dmz_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double dmz_epoch_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dmz_utc_stamp(char *out, size_t len, const char *fmt) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, len, fmt, &tm);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void dmz_rng_seed(dmz_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dmz_rng_next(dmz_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t dmz_rng_below(dmz_rng *rng, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t m = (uint64_t)(uint32_t)(dmz_rng_next(rng) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(dmz_rng_next(rng) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double dmz_rng_uniform(dmz_rng *rng) {
    return (double)(dmz_rng_next(rng) >> 11) * 0x1.0p-53;
}

double dmz_rng_normal(dmz_rng *rng) {
    double u1 = dmz_rng_uniform(rng), u2 = dmz_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

float dmz_rng_truncated_normal(dmz_rng *rng, float stddev) {
    for (;;) {
        double z = dmz_rng_normal(rng);
        if (fabs(z) <= 2.0) return (float)(z * stddev);
    }
}

void dmz_rng_shuffle(dmz_rng *rng, uint32_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        uint32_t j = dmz_rng_below(rng, (uint32_t)i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

bool dmz_progress_enabled(bool quiet) {
    const char *ci = getenv("CI");
    if (quiet || (ci && *ci && strcmp(ci, "false") != 0)) return false;
    return isatty(STDERR_FILENO);
}

void dmz_format_eta(double seconds, char *out, size_t len) {
    if (!(seconds >= 0 && seconds <= 99 * 3600.0)) {
        snprintf(out, len, "--");
        return;
    }
    int t = (int)(seconds + 0.5);
    snprintf(out, len, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
}

int dmz_write_file_atomic(const char *path, const void *data, size_t len, char *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot flush: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return DMZ_OK;
}

/* "...<tag><pid>": the pid, or 0 when the name is not of that form. */
static long tmp_pid(const char *name, const char *tag) {
    const char *at = strstr(name, tag);
    if (!at) return 0;
    char *end;
    long pid = strtol(at + strlen(tag), &end, 10);
    return *end == '\0' && pid > 0 ? pid : 0;
}

void dmz_clean_stale_tmp(const char *dir, const char *tag, double grace_s) {
    enum { OLD_S = 3600 };
    DIR *d = opendir(dir);
    if (!d) return;
    time_t now = time(NULL);
    char path[4400];
    for (struct dirent *e; (e = readdir(d));) {
        long pid = tmp_pid(e->d_name, tag);
        struct stat st;
        if (pid == 0 || pid == (long)getpid()) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        bool gone = kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        double age = difftime(now, st.st_mtime);
        if (gone && age >= grace_s) {
            if (unlink(path) == 0)
                fprintf(stderr, "dmzbench: removed %s (%.1f MB, left by process %ld, which is gone)\n", path,
                        (double)st.st_size / 1e6, pid);
        } else if (!gone && age > OLD_S) {
            fprintf(stderr, "dmzbench: warning: %s is %.0f hours old; process %ld that writes it still runs "
                    "(or its number was reused): delete the file if no dmzbench is running\n", path, age / 3600,
                    pid);
        }
    }
    closedir(d);
}

const char *dmz_file_kind(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "not a file";
    }
}

int dmz_open_regular(const char *path, struct stat *st, char *err) {
    struct stat local;
    if (!st) st = &local;
    /* stat first: opening a FIFO or a device can block or act; O_NONBLOCK then
     * covers a file swapped for a FIFO between the two calls. */
    if (stat(path, st) != 0) {
        dmz_errorf(err, DMZ_EXIT_USAGE, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        dmz_errorf(err, DMZ_EXIT_USAGE, "%s: not a regular file (%s)", path, dmz_file_kind(st->st_mode));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        dmz_errorf(err, DMZ_EXIT_USAGE, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        dmz_errorf(err, DMZ_EXIT_USAGE, "%s: not a regular file (%s)", path, dmz_file_kind(st->st_mode));
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

int dmz_read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *err) {
    *out = NULL;
    int fd = dmz_open_regular(path, NULL, err);
    if (fd < 0) return DMZ_EXIT_USAGE;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = DMZ_OK;
    for (;;) {
        if (n == cap) {
            size_t want = cap ? cap * 2 : 65536;
            if (want > max_bytes + 1) want = max_bytes + 1;
            char *grown = want > cap ? realloc(buf, want + 1) : NULL;
            if (!grown) {
                rc = n > max_bytes ? dmz_errorf(err, DMZ_EXIT_USAGE, "%s: larger than %zu bytes", path, max_bytes)
                                   : dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
                break;
            }
            buf = grown;
            cap = want;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got > 0) continue;
        if (ferror(f)) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: read failed", path);
        break;
    }
    fclose(f);
    if (rc == DMZ_OK && n > max_bytes) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: larger than %zu bytes", path, max_bytes);
    if (rc != DMZ_OK) {
        free(buf);
        return rc;
    }
    if (!buf) buf = malloc(1);
    if (!buf) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return DMZ_OK;
}

int dmz_mkdirs(const char *path, char *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return dmz_errorf(err, DMZ_EXIT_USAGE, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return DMZ_OK;
}
