/* datasets/idx.c — IDX files (LeCun's MNIST format; NIST's EMNIST and Debian's
 * Fashion-MNIST use it), plain or gzip'd: zlib's gzread reads both.
 *
 * Header: big-endian uint32 magic (0x00000803: unsigned bytes, 3 dimensions =
 * images; 0x00000801: 1 dimension = labels), then one uint32 per dimension. */
#include "datasets/internal.h"
#include "common/dmz.h"
#include "common/interrupt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { IDX_IMAGES_MAGIC = 0x00000803, IDX_LABELS_MAGIC = 0x00000801, GZ_BUFFER = 1 << 20, BODY_FIRST = 1 << 20 };
/* Far more than any image set; stops a corrupt count from asking for terabytes. */
#define IDX_MAX_COUNT 100000000u

typedef struct idx_file {
    gzFile gz;
    const char *path;
    char *err;
} idx_file;

/* Reads a dup of fd: the hasher reads the same file with pread. */
static int idx_open(idx_file *f, int fd, const char *path, char *err) {
    f->path = path;
    f->err = err;
    int own = dup(fd);
    errno = 0;
    f->gz = own >= 0 ? gzdopen(own, "rb") : NULL;
    if (!f->gz) {
        int e = errno;
        if (own >= 0) close(own);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot read: %s", path, e ? strerror(e) : "out of memory");
    }
    gzbuffer(f->gz, GZ_BUFFER);
    return DMZ_OK;
}

/* Reads up to len bytes; *got says how many came. */
static int idx_read(idx_file *f, void *buf, size_t len, size_t *got) {
    *got = 0;
    while (*got < len) {
        size_t want = len - *got > (1u << 30) ? (1u << 30) : len - *got;
        int n = gzread(f->gz, (uint8_t *)buf + *got, (unsigned)want);
        if (n < 0) {
            int zerr;
            const char *msg = gzerror(f->gz, &zerr);
            return dmz_errorf(f->err, DMZ_EXIT_USAGE, "%s: read failed: %s", f->path,
                              zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (n == 0) break;
        *got += (size_t)n;
    }
    return DMZ_OK;
}

/* Reads the header: magic then ndims big-endian uint32 fields named by names[]. */
static int idx_header(idx_file *f, uint32_t magic, const char *const *names, uint32_t *dims, int ndims) {
    uint8_t raw[16];
    size_t got;
    int rc = idx_read(f, raw, 4 * (size_t)(1 + ndims), &got);
    if (rc) return rc;
    for (int i = 0; i <= ndims; i++) {
        const char *name = i == 0 ? "magic" : names[i - 1];
        if (got < 4 * (size_t)(i + 1))
            return dmz_errorf(f->err, DMZ_EXIT_USAGE, "%s: header field '%s': missing, the file ends after %zu bytes",
                              f->path, name, got);
        uint32_t v = (uint32_t)raw[4 * i] << 24 | (uint32_t)raw[4 * i + 1] << 16 | (uint32_t)raw[4 * i + 2] << 8 |
                     raw[4 * i + 3];
        if (i == 0 && v != magic)
            return dmz_errorf(f->err, DMZ_EXIT_USAGE, "%s: header field 'magic': 0x%08x, expected 0x%08x (IDX %s)",
                              f->path, v, magic, magic == IDX_IMAGES_MAGIC ? "images" : "labels");
        if (i > 0) dims[i - 1] = v;
    }
    return DMZ_OK;
}

/* Reads exactly len bytes of records into a buffer (*out, NULL on error) that
 * grows as the data comes, so that a corrupt 'count' in a small file is
 * reported as truncated rather than first asking for gigabytes; then checks
 * nothing follows the records. */
static int idx_body(idx_file *f, uint8_t **out, size_t len, uint32_t count, const char *unit) {
    uint8_t *buf = NULL;
    size_t got = 0, cap = 0;
    int rc = DMZ_OK;
    while (rc == DMZ_OK && got == cap && cap < len) {
        size_t grow = cap > BODY_FIRST ? cap : BODY_FIRST;
        cap = len - cap > grow ? cap + grow : len;
        uint8_t *more = realloc(buf, cap);
        if (!more) {
            rc = dmz_errorf(f->err, DMZ_EXIT_FAIL, "%s: out of memory for %u %s", f->path, count, unit);
            break;
        }
        buf = more;
        size_t n;
        if ((rc = dmz_interrupt_check(f->err))) break;
        rc = idx_read(f, buf + got, cap - got, &n);
        got += n;
    }
    if (rc == DMZ_OK && got < len)
        rc = dmz_errorf(f->err, DMZ_EXIT_USAGE,
                        "%s: truncated: the data ends after %zu of %zu bytes (header field 'count' says %u %s)",
                        f->path, got, len, count, unit);
    uint8_t extra;
    if (rc == DMZ_OK) rc = idx_read(f, &extra, 1, &got);
    if (rc == DMZ_OK && got)
        rc = dmz_errorf(f->err, DMZ_EXIT_USAGE, "%s: data goes on after the %u %s that header field 'count' says",
                        f->path, count, unit);
    if (rc != DMZ_OK) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    return rc;
}

static int read_images(int fd, const char *path, bool transpose, uint8_t **images, uint32_t *count, char *err) {
    static const char *const names[] = {"count", "rows", "columns"};
    idx_file f;
    int rc = idx_open(&f, fd, path, err);
    if (rc) return rc;
    uint32_t dims[3] = {0, 0, 0};
    rc = idx_header(&f, IDX_IMAGES_MAGIC, names, dims, 3);
    for (int i = 1; i < 3 && rc == DMZ_OK; i++)
        if (dims[i] != DMZ_IMG_SIDE)
            rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: header field '%s': %u, expected %d", path, names[i], dims[i],
                            DMZ_IMG_SIDE);
    if (rc == DMZ_OK && (dims[0] == 0 || dims[0] > IDX_MAX_COUNT))
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: header field 'count': %u images, expected 1..%u", path, dims[0],
                        IDX_MAX_COUNT);
    if (rc == DMZ_OK) rc = idx_body(&f, images, (size_t)dims[0] * DMZ_IMG_PIXELS, dims[0], "images");
    gzclose(f.gz);
    if (rc == DMZ_OK && transpose) ds_transpose_images(*images, dims[0]);
    *count = dims[0];
    return rc;
}

static int read_labels(int fd, const char *path, int num_classes, uint8_t **labels, uint32_t *count, char *err) {
    static const char *const names[] = {"count"};
    idx_file f;
    int rc = idx_open(&f, fd, path, err);
    if (rc) return rc;
    rc = idx_header(&f, IDX_LABELS_MAGIC, names, count, 1);
    if (rc == DMZ_OK && (*count == 0 || *count > IDX_MAX_COUNT))
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: header field 'count': %u labels, expected 1..%u", path, *count,
                        IDX_MAX_COUNT);
    if (rc == DMZ_OK) rc = idx_body(&f, labels, *count, *count, "labels");
    gzclose(f.gz);
    int max = num_classes == DMZ_CLASSES_INFER ? 255 : num_classes - 1;
    for (uint32_t i = 0; rc == DMZ_OK && i < *count; i++)
        if ((*labels)[i] > max)
            rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: label %u (byte %u): %u is out of range 0..%d", path, i + 1,
                            8 + i, (*labels)[i], max);
    return rc;
}

int dmz_idx_read(const char *images_path, const char *labels_path, int num_classes, bool transpose,
                 dmz_owned_split *out, char *err) {
    memset(out, 0, sizeof *out);
    int ifd = dmz_open_regular(images_path, NULL, err);
    if (ifd < 0) return DMZ_EXIT_USAGE;
    int lfd = dmz_open_regular(labels_path, NULL, err);
    int rc = lfd < 0 ? DMZ_EXIT_USAGE
                     : ds_idx_read_fd(ifd, images_path, lfd, labels_path, num_classes, transpose, out, err);
    close(ifd);
    if (lfd >= 0) close(lfd);
    return rc;
}

int ds_idx_read_fd(int images_fd, const char *images_path, int labels_fd, const char *labels_path,
                   int num_classes, bool transpose, dmz_owned_split *out, char *err) {
    memset(out, 0, sizeof *out);
    if (num_classes < 0 || num_classes > 256)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: %d classes cannot be 8-bit labels", labels_path, num_classes);
    uint32_t nimages = 0, nlabels = 0;
    int rc = read_images(images_fd, images_path, transpose, &out->images, &nimages, err);
    if (rc == DMZ_OK) rc = read_labels(labels_fd, labels_path, num_classes, &out->labels, &nlabels, err);
    if (rc == DMZ_OK && nimages != nlabels)
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: header field 'count': %u labels, but %s holds %u images",
                        labels_path, nlabels, images_path, nimages);
    if (rc != DMZ_OK) {
        dmz_split_free(out);
        return rc;
    }
    out->count = nimages;
    return DMZ_OK;
}

int ds_idx_check_one(const char *path, bool images, int num_classes, size_t *count, char *err) {
    int fd = dmz_open_regular(path, NULL, err);
    if (fd < 0) return DMZ_EXIT_USAGE;
    uint8_t *data = NULL;
    uint32_t n = 0;
    int rc = images ? read_images(fd, path, false, &data, &n, err) : read_labels(fd, path, num_classes, &data, &n, err);
    close(fd);
    free(data);
    *count = rc == DMZ_OK ? n : 0;
    return rc;
}

void ds_transpose_images(uint8_t *images, size_t count) {
    for (size_t n = 0; n < count; n++) {
        uint8_t *img = images + n * DMZ_IMG_PIXELS;
        for (int r = 0; r < DMZ_IMG_SIDE; r++)
            for (int c = r + 1; c < DMZ_IMG_SIDE; c++) {
                uint8_t t = img[r * DMZ_IMG_SIDE + c];
                img[r * DMZ_IMG_SIDE + c] = img[c * DMZ_IMG_SIDE + r];
                img[c * DMZ_IMG_SIDE + r] = t;
            }
    }
}
