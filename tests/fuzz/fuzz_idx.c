/* tests/fuzz/fuzz_idx.c — the IDX reader (datasets/idx.c), plain or gzip'd as
 * the bytes come (zlib's gzread takes both): images, then "LABELS" and the
 * labels file. The first byte picks classes and orientation. */
#include "tests/fuzz/fuzz.h"

#include "common/dmz.h"
#include "datasets/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *body = data + 1;
    size_t n = size - 1, cut = fuzz_split(body, n, "LABELS");
    size_t rest = cut + 6 <= n ? cut + 6 : n;
    char ipath[64], lpath[64], err[DMZ_ERR_LEN];
    int ifd = fuzz_file(body, cut, ipath), lfd = fuzz_file(body + rest, n - rest, lpath);
    if (ifd >= 0 && lfd >= 0) {
        dmz_owned_split s;
        int classes = data[0] & 1 ? 10 : DMZ_CLASSES_INFER;
        int rc = ds_idx_read_fd(ifd, ipath, lfd, lpath, classes, data[0] & 2, &s, err);
        if (rc == DMZ_OK && (s.count == 0 || !s.images || !s.labels)) abort();
        if (rc != DMZ_OK && !strstr(err, "/proc/self/fd/")) abort(); /* errors name the file */
        dmz_split_free(&s);
        size_t count;
        ds_idx_check_one(ipath, true, classes, &count, err);
        ds_idx_check_one(lpath, false, classes, &count, err);
    }
    if (ifd >= 0) close(ifd);
    if (lfd >= 0) close(lfd);
    return 0;
}
