/* datasets/sha256.c — SHA-256 (and MD5) of files and listings (nettle), for the
 * loader and the fetcher alike, and the fast checksum that guards the binary cache. */
#include "datasets/internal.h"
#include "common/dmz.h"
#include "common/interrupt.h"
#include "datasets/fetch_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { READ_CHUNK = 1 << 20 };

void dmz_hex(const unsigned char *digest, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
    out[2 * n] = '\0';
}

static void digest_to_hex(struct sha256_ctx *ctx, char hex[65]) {
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_digest(ctx, sizeof digest, digest);
    dmz_hex(digest, SHA256_DIGEST_SIZE, hex);
}

/* One pass over an open file with pread (its offset is left alone): SHA-256,
 * and MD5 when md5_hex is non-NULL. A read error has the given exit code. */
static int hash_fd(int fd, const char *path, char sha256_hex[65], char md5_hex[33], int code, char *err) {
    uint8_t *buf = malloc(READ_CHUNK);
    if (!buf) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct sha256_ctx sha;
    struct md5_ctx md5;
    sha256_init(&sha);
    md5_init(&md5);
    int rc = DMZ_OK;
    off_t at = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, READ_CHUNK, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = dmz_errorf(err, code, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        if ((rc = dmz_interrupt_check(err))) break;
        at += n;
        sha256_update(&sha, (size_t)n, buf);
        if (md5_hex) md5_update(&md5, (size_t)n, buf);
    }
    free(buf);
    if (rc != DMZ_OK) return rc;
    digest_to_hex(&sha, sha256_hex);
    if (md5_hex) {
        uint8_t digest[MD5_DIGEST_SIZE];
        md5_digest(&md5, sizeof digest, digest);
        dmz_hex(digest, MD5_DIGEST_SIZE, md5_hex);
    }
    return DMZ_OK;
}

static int hash_file(const char *path, char sha256_hex[65], char md5_hex[33], int code, char *err) {
    char why[DMZ_ERR_LEN];
    int fd = dmz_open_regular(path, NULL, why);
    if (fd < 0) return dmz_errorf(err, code, "%s", why);
    int rc = hash_fd(fd, path, sha256_hex, md5_hex, code, err);
    close(fd);
    return rc;
}

/* A data set's source: unreadable is an input error. */
int dmz_sha256_file(const char *path, char hex[65], char *err) {
    return hash_file(path, hex, NULL, DMZ_EXIT_USAGE, err);
}

int ds_sha256_fd(int fd, const char *path, char hex[65], char *err) {
    return hash_fd(fd, path, hex, NULL, DMZ_EXIT_USAGE, err);
}

/* A download: unreadable means the run failed. */
int dmz_hash_file(const char *path, char sha256_hex[65], char md5_hex[33], char *err) {
    return hash_file(path, sha256_hex, md5_hex, DMZ_EXIT_FAIL, err);
}

void ds_sha256_hex(const void *data, size_t len, char hex[65]) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    digest_to_hex(&ctx, hex);
}

void ds_sha256_listing(char *const *paths, const char (*hexes)[65], int n, char hex[65]) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    for (int i = 0; i < n; i++) {
        char copy[DS_PATH_LEN], line[DS_PATH_LEN + 80];
        snprintf(copy, sizeof copy, "%s", paths[i]);
        int len = snprintf(line, sizeof line, "%s  %s\n", hexes[i], basename(copy));
        sha256_update(&ctx, (size_t)len, (const uint8_t *)line);
    }
    digest_to_hex(&ctx, hex);
}

/* xxHash64's round on four independent lanes: several GB/s, so checking the
 * whole cache on every load costs milliseconds, not the SHA-256 it replaces. */
static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL;

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t round64(uint64_t acc, uint64_t word) { return rotl64(acc + word * P2, 31) * P1; }

uint64_t ds_checksum64(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t lane[4] = {seed + P1 + P2, seed + P2, seed, seed - P1};
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            lane[k] = round64(lane[k], w);
        }
    }
    uint64_t h = rotl64(lane[0], 1) + rotl64(lane[1], 7) + rotl64(lane[2], 12) + rotl64(lane[3], 18);
    for (; i < len; i++) h = rotl64(h ^ (p[i] * P1), 11) * P2;
    h ^= (uint64_t)len;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    return h;
}
