/* datasets/fetch_files.c — small file helpers of `dmzbench fetch`: checksums,
 * sniffing what a download is, names from URLs. */
#include <ctype.h>
#include <errno.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

void dmz_hex(const unsigned char *digest, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
    out[2 * n] = '\0';
}

bool dmz_is_hex(const char *s, size_t len) {
    if (strlen(s) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

int dmz_hash_file(const char *path, char sha256_hex[65], char md5_hex[33], char *err) {
    enum { CHUNK = 1 << 20 };
    FILE *f = fopen(path, "rb");
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    struct sha256_ctx sha;
    struct md5_ctx md5;
    sha256_init(&sha);
    md5_init(&md5);
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0) {
        sha256_update(&sha, n, buf);
        if (md5_hex) md5_update(&md5, n, buf);
    }
    int bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: read error", path);
    unsigned char digest[SHA256_DIGEST_SIZE];
    sha256_digest(&sha, SHA256_DIGEST_SIZE, digest);
    dmz_hex(digest, SHA256_DIGEST_SIZE, sha256_hex);
    if (md5_hex) {
        md5_digest(&md5, MD5_DIGEST_SIZE, digest);
        dmz_hex(digest, MD5_DIGEST_SIZE, md5_hex);
    }
    return DMZ_OK;
}

static size_t read_head(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

bool dmz_is_zip(const char *path) {
    char head[8];
    return read_head(path, head, sizeof head) >= 4 && memcmp(head, "PK\3\4", 4) == 0;
}

bool dmz_looks_like_html(const char *path) {
    char head[512];
    size_t n = read_head(path, head, sizeof head);
    const char *p = head, *end = head + n;
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;  /* UTF-8 byte order mark */
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return strncasecmp(p, "<!DOCTYPE html", 14) == 0 || strncasecmp(p, "<html", 5) == 0;
}

void dmz_url_basename(const char *url, char *out, size_t len) {
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : url;
    if (!path) path = "";
    size_t end = strcspn(path, "?#");
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t n = end - start;
    if (n == 0 || (n == 1 && path[start] == '.') || (n == 2 && strncmp(path + start, "..", 2) == 0))
        snprintf(out, len, "download");
    else
        snprintf(out, len, "%.*s", (int)n, path + start);
}
