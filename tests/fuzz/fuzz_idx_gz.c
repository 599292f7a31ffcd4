/* tests/fuzz/fuzz_idx_gz.c — the IDX reader through gzip: the input (images,
 * "LABELS", labels, as in fuzz_idx.c) is gzip-compressed first, so that the
 * fuzzer mutates IDX content and every input reaches zlib's inflate path. */
#include "tests/fuzz/fuzz.h"

#include <zlib.h>

#include "common/dmz.h"
#include "datasets/internal.h"

/* gzip of data into a malloc'd buffer (*out_len), or NULL. */
static uint8_t *gzip_bytes(const uint8_t *data, size_t len, size_t *out_len) {
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    const uint8_t *body = data + 1;
    size_t n = size - 1, cut = fuzz_split(body, n, "LABELS");
    size_t rest = cut + 6 <= n ? cut + 6 : n, ilen = 0, llen = 0;
    uint8_t *igz = gzip_bytes(body, cut, &ilen), *lgz = gzip_bytes(body + rest, n - rest, &llen);
    char ipath[64], lpath[64], err[DMZ_ERR_LEN];
    int ifd = igz ? fuzz_file(igz, ilen, ipath) : -1, lfd = lgz ? fuzz_file(lgz, llen, lpath) : -1;
    if (ifd >= 0 && lfd >= 0) {
        dmz_owned_split s;
        int rc = ds_idx_read_fd(ifd, ipath, lfd, lpath, data[0] & 1 ? 47 : DMZ_CLASSES_INFER, data[0] & 2, &s, err);
        if (rc == DMZ_OK && (s.count == 0 || !s.images || !s.labels)) abort();
        dmz_split_free(&s);
    }
    if (ifd >= 0) close(ifd);
    if (lfd >= 0) close(lfd);
    free(igz);
    free(lgz);
    return 0;
}
