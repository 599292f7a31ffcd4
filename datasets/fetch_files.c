/* datasets/fetch_files.c — small file helpers of `dmzbench fetch`: sniffing
 * what a download is, names from URLs (checksums: sha256.c). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

bool dmz_is_hex(const char *s, size_t len) {
    if (strlen(s) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
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
