/* tests/faultinject.c — an LD_PRELOAD shim that makes writes fail, for
 * tests/test_faults.c: a disk that fills up (or a transient EIO) at the Nth
 * write-side operation of a process.
 *
 * Operations counted: write, pwrite, writev, fsync, fdatasync, rename,
 * renameat, and on streams fwrite, fputs, fputc, putc, fprintf, vfprintf,
 * fflush, fclose; those on stdin/stdout/stderr, memory streams and streams
 * opened for reading are not counted, nor touched.
 * Environment:
 *   DMZ_FAULT_AT=N       the Nth counted operation fails (1-based; unset: none)
 *   DMZ_FAULT_MODE=from  ... and every one after it (a full disk; default), or
 *                once    only that one (a transient error)
 *   DMZ_FAULT_ERRNO=EIO  the error (default ENOSPC)
 *   DMZ_FAULT_LOG=PATH   append "index op path" per counted operation (to pick N)
 * A failing stream call sets the stream's error flag and errno as the real
 * call would; fclose still releases the stream but returns EOF. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef _IO_NO_WRITES
#define _IO_NO_WRITES 0x0008 /* glibc's libio.h: a stream opened for reading only */
#endif

static long counter, fail_at = -1;
static int fail_errno = ENOSPC, fail_once, inited;
static FILE *logf_;
static __thread int inside; /* our own logging writes are not counted */

static void init(void) {
    if (inited) return;
    inited = 1;
    const char *at = getenv("DMZ_FAULT_AT"), *mode = getenv("DMZ_FAULT_MODE"), *e = getenv("DMZ_FAULT_ERRNO");
    if (at && *at) fail_at = atol(at);
    fail_once = mode && strcmp(mode, "once") == 0;
    if (e && strcmp(e, "EIO") == 0) fail_errno = EIO;
    const char *log = getenv("DMZ_FAULT_LOG");
    if (log && *log) {
        inside = 1;
        logf_ = fopen(log, "a");
        inside = 0;
    }
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static void describe_fd(int fd, char *out, size_t len) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* true when this operation must fail; counts it (fd < 0: a path operation). */
static int should_fail(const char *op, int fd, const char *path) {
    if (inside) return 0;
    init();
    if (fd >= 0 && fd <= 2) return 0;
    if (fd < 0 && !path) return 0; /* a memory stream (open_memstream) */
    long n = ++counter;
    if (logf_) {
        char where[512];
        if (path) snprintf(where, sizeof where, "%s", path);
        else describe_fd(fd, where, sizeof where);
        inside = 1;
        fprintf(logf_, "%ld %s %s\n", n, op, where);
        fflush(logf_);
        inside = 0;
    }
    if (fail_at < 1) return 0;
    return fail_once ? n == fail_at : n >= fail_at;
}

/* Streams opened for reading only are not counted (their fclose writes nothing). */
static int counted_stream(FILE *f) { return !(f->_flags & _IO_NO_WRITES); }

static int fail_stream(FILE *f) {
    f->_flags |= _IO_ERR_SEEN;
    errno = fail_errno;
    return EOF;
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (should_fail("write", fd, NULL)) return errno = fail_errno, -1;
    return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (should_fail("pwrite", fd, NULL)) return errno = fail_errno, -1;
    return REAL(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    if (should_fail("pwrite", fd, NULL)) return errno = fail_errno, -1;
    return REAL(pwrite64)(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    if (should_fail("writev", fd, NULL)) return errno = fail_errno, -1;
    return REAL(writev)(fd, iov, cnt);
}

int fsync(int fd) {
    if (should_fail("fsync", fd, NULL)) return errno = fail_errno, -1;
    return REAL(fsync)(fd);
}

int fdatasync(int fd) {
    if (should_fail("fdatasync", fd, NULL)) return errno = fail_errno, -1;
    return REAL(fdatasync)(fd);
}

int rename(const char *from, const char *to) {
    if (should_fail("rename", -1, to)) return errno = fail_errno, -1;
    return REAL(rename)(from, to);
}

int renameat(int a, const char *from, int b, const char *to) {
    if (should_fail("rename", -1, to)) return errno = fail_errno, -1;
    return REAL(renameat)(a, from, b, to);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f) {
    if (should_fail("fwrite", fileno(f), NULL)) return fail_stream(f), 0;
    return REAL(fwrite)(p, size, n, f);
}

int fputs(const char *s, FILE *f) {
    if (should_fail("fputs", fileno(f), NULL)) return fail_stream(f);
    return REAL(fputs)(s, f);
}

int fputc(int c, FILE *f) {
    if (should_fail("fputc", fileno(f), NULL)) return fail_stream(f);
    return REAL(fputc)(c, f);
}

int putc(int c, FILE *f) {
    if (should_fail("putc", fileno(f), NULL)) return fail_stream(f);
    return REAL(putc)(c, f);
}

int vfprintf(FILE *f, const char *fmt, va_list ap) {
    if (should_fail("fprintf", fileno(f), NULL)) return fail_stream(f), -1;
    return REAL(vfprintf)(f, fmt, ap);
}

int fprintf(FILE *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...) {
    (void)flag;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

int fflush(FILE *f) {
    if (f && counted_stream(f) && should_fail("fflush", fileno(f), NULL)) return fail_stream(f);
    return REAL(fflush)(f);
}

int fclose(FILE *f) {
    if (counted_stream(f) && should_fail("fclose", fileno(f), NULL)) {
        int e = fail_errno;
        REAL(fclose)(f);
        errno = e;
        return EOF;
    }
    return REAL(fclose)(f);
}
