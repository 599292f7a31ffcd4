/* datasets/cache.c — the binary cache: one file per data set and source,
 * <data_dir>/dmzc/<name>-<key>.dmzc, read back with mmap so that the splits
 * point straight into the page cache (MPI ranks on one host share it).
 *
 * Layout (native byte order; a file written elsewhere is simply a miss):
 *   cache_header          magic, version, shapes, source SHA-256, and per source
 *                         file its absolute path, size, mtime, ctime (ns), inode
 *                         and device
 *   padding to 4096
 *   train images, train labels, test images, test labels, each 4096-aligned
 * A hit needs every source's size, mtime, ctime, inode and device unchanged (so
 * the sources are not re-hashed: a same-size rewrite with its old mtime put back
 * still moves ctime, which no user can set), the header's and the data's
 * checksums right, and every label below num_classes: a corrupt, truncated or
 * old cache is rebuilt, never used. Stamps taken within RACY_NS of the source's
 * ctime cannot tell a later change in the same clock tick apart, so such a
 * cache ("racy", as git calls its index entries) is used only after the
 * sources hash to the recorded SHA-256 again. */
#include "datasets/internal.h"
#include "common/dmz.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "DMZCACHE"
/* Coarse kernel clocks tick every 1-10 ms; a second is far beyond that. */
#define RACY_NS 1000000000LL
/* A temporary file of a dead PID younger than this may belong to a PID namespace we cannot see. */
#define TMP_GRACE_S 60
enum { CACHE_VERSION = 2, CACHE_ALIGN = 4096, CACHE_BYTE_ORDER = 0x01020304, ARRAYS = 4 };

typedef struct cache_source {
    char path[DS_PATH_LEN]; /* absolute */
    ds_file_stamp stamp;
} cache_source;

typedef struct cache_header {
    char magic[8];
    uint32_t version;
    uint32_t byte_order;
    uint64_t header_bytes;
    uint64_t file_bytes;
    uint64_t counts[2];          /* train, test */
    uint32_t rows, cols;
    uint32_t num_classes, nsources;
    uint32_t racy, reserved;     /* racy: trust only after the sources hash to sha256 again */
    char name[64];
    char format[16];
    char sha256[72];
    uint64_t offsets[ARRAYS];    /* train images, train labels, test images, test labels */
    cache_source sources[DS_MAX_SOURCES];
    uint64_t data_checksum;      /* over the four arrays, in order */
    uint64_t header_checksum;    /* over every byte above it */
} cache_header;

void ds_stamp_of(const struct stat *st, ds_file_stamp *stamp) {
    memset(stamp, 0, sizeof *stamp);
    stamp->size = (uint64_t)st->st_size;
    stamp->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    stamp->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    stamp->ino = (uint64_t)st->st_ino;
    stamp->dev = (uint64_t)st->st_dev;
}

int ds_stamp_file(const char *path, ds_file_stamp *stamp, char *err) {
    struct stat st;
    if (stat(path, &st) != 0) return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: not a regular file (%s)", path, dmz_file_kind(st.st_mode));
    ds_stamp_of(&st, stamp);
    return DMZ_OK;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A stamp taken this close to its file's last change may miss a change in the same tick. */
static bool stamp_racy(const ds_file_stamp *s, int64_t taken_ns) {
    return s->ctime_ns > taken_ns - RACY_NS; /* mtime says nothing: anyone can set it */
}

static void absolute_path(const char *path, char out[DS_PATH_LEN]) {
    char *abs = realpath(path, NULL);
    snprintf(out, DS_PATH_LEN, "%s", abs ? abs : path);
    free(abs);
}

void ds_cache_path(const char *data_dir, const ds_plan *plan, char *out, size_t len) {
    char key_text[DS_MAX_SOURCES * (DS_PATH_LEN + 1) + 256];
    int n = snprintf(key_text, sizeof key_text, "dmzc %d\n%s\n%s\ntranspose=%d classes=%d\n", CACHE_VERSION,
                     plan->name, plan->format, plan->transpose, plan->num_classes);
    for (int i = 0; i < plan->nfiles; i++) {
        char abs[DS_PATH_LEN];
        absolute_path(plan->files[i], abs);
        n += snprintf(key_text + n, sizeof key_text - (size_t)n, "%s\n", abs);
    }
    char key[65];
    ds_sha256_hex(key_text, (size_t)n, key);
    snprintf(out, len, "%s/dmzc/%s-%.16s.dmzc", data_dir, plan->name, key);
}

static uint64_t align_up(uint64_t x) { return (x + CACHE_ALIGN - 1) / CACHE_ALIGN * CACHE_ALIGN; }

static void array_views(const dmz_dataset *ds, const uint8_t *ptr[ARRAYS], uint64_t bytes[ARRAYS]) {
    const dmz_split *split[2] = {&ds->train, &ds->test};
    for (int s = 0; s < 2; s++) {
        ptr[2 * s] = split[s]->images;
        bytes[2 * s] = split[s]->count * DMZ_IMG_PIXELS;
        ptr[2 * s + 1] = split[s]->labels;
        bytes[2 * s + 1] = split[s]->count;
    }
}

static uint64_t data_checksum(const uint8_t *const ptr[ARRAYS], const uint64_t bytes[ARRAYS]) {
    uint64_t h = 0;
    for (int i = 0; i < ARRAYS; i++) h = ds_checksum64(ptr[i], bytes[i], h);
    return h;
}

static uint64_t header_checksum(const cache_header *h) {
    return ds_checksum64(h, offsetof(cache_header, header_checksum), CACHE_VERSION);
}

static bool same_stamp(const ds_file_stamp *a, const ds_file_stamp *b) {
    return a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns && a->ino == b->ino &&
           a->dev == b->dev;
}

/* *racy_now: some source changed less than RACY_NS before this check. */
static bool sources_unchanged(const cache_header *h, const ds_plan *plan, bool *racy_now) {
    if (h->nsources != (uint32_t)plan->nfiles) return false;
    int64_t taken = now_ns();
    *racy_now = false;
    for (int i = 0; i < plan->nfiles; i++) {
        char abs[DS_PATH_LEN];
        ds_file_stamp now;
        absolute_path(plan->files[i], abs);
        if (ds_stamp_file(plan->files[i], &now, NULL) != DMZ_OK) return false;
        const cache_source *s = &h->sources[i];
        if (memchr(s->path, 0, sizeof s->path) == NULL || strcmp(s->path, abs) != 0 || !same_stamp(&s->stamp, &now))
            return false;
        *racy_now |= stamp_racy(&now, taken);
    }
    return true;
}

/* The sources' SHA-256 (datasets.c's identity) matches the header's. */
static bool sources_hash_to(const cache_header *h, const ds_plan *plan) {
    char hexes[DS_MAX_SOURCES][65], hex[65];
    char *paths[DS_MAX_SOURCES];
    for (int i = 0; i < plan->nfiles; i++) {
        if (dmz_sha256_file(plan->files[i], hexes[i], NULL) != DMZ_OK) return false;
        paths[i] = (char *)plan->files[i];
    }
    ds_sha256_listing(paths, (const char(*)[65])hexes, plan->nfiles, hex);
    return strcmp(hex, h->sha256) == 0;
}

static bool header_valid(const cache_header *h, uint64_t file_bytes, const ds_plan *plan) {
    if (memcmp(h->magic, CACHE_MAGIC, 8) != 0 || h->version != CACHE_VERSION ||
        h->byte_order != CACHE_BYTE_ORDER || h->header_bytes != sizeof *h || h->file_bytes != file_bytes ||
        h->header_checksum != header_checksum(h))
        return false;
    if (h->rows != DMZ_IMG_SIDE || h->cols != DMZ_IMG_SIDE || h->num_classes < 1 || h->num_classes > 256 ||
        memchr(h->name, 0, sizeof h->name) == NULL || strcmp(h->name, plan->name) != 0 ||
        memchr(h->sha256, 0, sizeof h->sha256) == NULL || strlen(h->sha256) != 64)
        return false;
    if (plan->num_classes != DMZ_CLASSES_INFER && h->num_classes != (uint32_t)plan->num_classes) return false;
    for (int i = 0; i < ARRAYS; i++) {
        uint64_t count = h->counts[i / 2], bytes = i % 2 ? count : count * DMZ_IMG_PIXELS;
        if (count == 0 || count > file_bytes || h->offsets[i] % CACHE_ALIGN != 0 || h->offsets[i] < sizeof *h ||
            h->offsets[i] > file_bytes || bytes > file_bytes - h->offsets[i])
            return false;
    }
    return true;
}

static bool labels_in_range(const dmz_split *s, uint32_t num_classes) {
    uint8_t max = 0;
    for (size_t i = 0; i < s->count; i++) max = s->labels[i] > max ? s->labels[i] : max;
    return max < num_classes;
}

bool ds_cache_open(const char *cache_path, const ds_plan *plan, dmz_dataset *out, ds_mapping *map,
                   bool *restamp) {
    *restamp = false;
    int fd = open(cache_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return false;
    struct stat st;
    void *addr = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= sizeof(cache_header))
        addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (addr == MAP_FAILED) return false;
    map->addr = addr;
    map->len = (size_t)st.st_size;
    const cache_header *h = addr;
    dmz_dataset view = *out;
    bool racy_now = false;
    bool ok = header_valid(h, (uint64_t)st.st_size, plan) && sources_unchanged(h, plan, &racy_now);
    if (ok) {
        dmz_split *split[2] = {&view.train, &view.test};
        for (int s = 0; s < 2; s++) {
            split[s]->count = h->counts[s];
            split[s]->images = (const uint8_t *)addr + h->offsets[2 * s];
            split[s]->labels = (const uint8_t *)addr + h->offsets[2 * s + 1];
        }
        const uint8_t *ptr[ARRAYS];
        uint64_t bytes[ARRAYS];
        array_views(&view, ptr, bytes);
        ok = data_checksum(ptr, bytes) == h->data_checksum && labels_in_range(&view.train, h->num_classes) &&
             labels_in_range(&view.test, h->num_classes);
    }
    if (ok && h->racy) {
        ok = sources_hash_to(h, plan);
        *restamp = ok && !racy_now;
    }
    if (!ok) {
        ds_cache_unmap(map);
        return false;
    }
    view.num_classes = (int)h->num_classes;
    memcpy(view.sha256, h->sha256, 65);
    *out = view;
    return true;
}

void ds_cache_unmap(ds_mapping *map) {
    if (map->addr) munmap(map->addr, map->len);
    map->addr = NULL;
    map->len = 0;
}

static void fill_header(cache_header *h, const ds_plan *plan, const ds_file_stamp *stamps, const dmz_dataset *ds) {
    memset(h, 0, sizeof *h); /* padding bytes too: they are checksummed */
    memcpy(h->magic, CACHE_MAGIC, 8);
    h->version = CACHE_VERSION;
    h->byte_order = CACHE_BYTE_ORDER;
    h->header_bytes = sizeof *h;
    h->counts[0] = ds->train.count;
    h->counts[1] = ds->test.count;
    h->rows = h->cols = DMZ_IMG_SIDE;
    h->num_classes = (uint32_t)ds->num_classes;
    h->nsources = (uint32_t)plan->nfiles;
    snprintf(h->name, sizeof h->name, "%s", plan->name);
    snprintf(h->format, sizeof h->format, "%s", plan->format);
    snprintf(h->sha256, sizeof h->sha256, "%s", ds->sha256);
    int64_t taken = now_ns(); /* no earlier than the stamps: errs on the racy side */
    for (int i = 0; i < plan->nfiles; i++) {
        absolute_path(plan->files[i], h->sources[i].path);
        h->sources[i].stamp = stamps[i];
        h->racy |= stamp_racy(&stamps[i], taken);
    }
    const uint8_t *ptr[ARRAYS];
    uint64_t bytes[ARRAYS];
    array_views(ds, ptr, bytes);
    uint64_t at = align_up(sizeof *h);
    for (int i = 0; i < ARRAYS; i++) {
        h->offsets[i] = at;
        at = align_up(at + bytes[i]);
    }
    h->file_bytes = at;
    h->data_checksum = data_checksum(ptr, bytes);
    h->header_checksum = header_checksum(h);
}

static int write_at(int fd, const void *data, uint64_t len, uint64_t offset) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)offset);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (uint64_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

static int write_cache_file(int fd, const cache_header *h, const dmz_dataset *ds) {
    const uint8_t *ptr[ARRAYS];
    uint64_t bytes[ARRAYS];
    array_views(ds, ptr, bytes);
    if (ftruncate(fd, (off_t)h->file_bytes) != 0 || write_at(fd, h, sizeof *h, 0) != 0) return -1;
    for (int i = 0; i < ARRAYS; i++)
        if (write_at(fd, ptr[i], bytes[i], h->offsets[i]) != 0) return -1;
    return 0;
}

/* No fsync: a cache torn by a crash fails its checksums and is rebuilt. */
int ds_cache_write(const char *cache_path, const ds_plan *plan, const ds_file_stamp *stamps,
                   const dmz_dataset *ds, char *err) {
    char dir[DS_PATH_LEN], tmp[DS_PATH_LEN + 32];
    snprintf(dir, sizeof dir, "%s", cache_path);
    *strrchr(dir, '/') = '\0';
    int rc = dmz_mkdirs(dir, err);
    if (rc) return rc;
    cache_header *h = malloc(sizeof *h);
    if (!h) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fill_header(h, plan, stamps, ds);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", cache_path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create: %s", tmp, strerror(errno));
    if (fd >= 0) {
        int written = write_cache_file(fd, h, ds);
        int e = errno;
        if (close(fd) != 0 || written != 0)
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: write failed: %s", tmp, strerror(written ? e : errno));
    }
    if (rc == DMZ_OK && rename(tmp, cache_path) != 0)
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot rename into place: %s", cache_path, strerror(errno));
    if (rc != DMZ_OK && fd >= 0) unlink(tmp);
    free(h);
    return rc;
}

void ds_cache_clean_tmp(const char *data_dir) {
    char dir[DS_PATH_LEN];
    if (ds_path_format(dir, "%s/dmzc", data_dir)) dmz_clean_stale_tmp(dir, ".dmzc.tmp.", TMP_GRACE_S);
}

void ds_cache_fuzz_fixup(void *buf, size_t len, const ds_plan *plan, int flags) {
    if (len < sizeof(cache_header) || (uintptr_t)buf % _Alignof(cache_header) != 0) return;
    cache_header *h = buf;
    if (flags & DS_FUZZ_FIX_FRAME) {
        memcpy(h->magic, CACHE_MAGIC, 8);
        h->version = CACHE_VERSION;
        h->byte_order = CACHE_BYTE_ORDER;
        h->header_bytes = sizeof *h;
        h->file_bytes = len;
        snprintf(h->name, sizeof h->name, "%s", plan->name);
    }
    if (flags & DS_FUZZ_FIX_SOURCES) {
        h->nsources = (uint32_t)plan->nfiles;
        for (int i = 0; i < plan->nfiles; i++) {
            absolute_path(plan->files[i], h->sources[i].path);
            ds_stamp_file(plan->files[i], &h->sources[i].stamp, NULL);
        }
    }
    if (flags & DS_FUZZ_FIX_CHECKSUMS) {
        bool inside = true;
        const uint8_t *ptr[ARRAYS];
        uint64_t bytes[ARRAYS];
        for (int i = 0; i < ARRAYS; i++) {
            uint64_t count = h->counts[i / 2];
            bytes[i] = i % 2 ? count : count * DMZ_IMG_PIXELS;
            inside &= count <= len && h->offsets[i] <= len && bytes[i] <= len - h->offsets[i];
            ptr[i] = (const uint8_t *)buf + (inside ? h->offsets[i] : 0);
        }
        if (inside) h->data_checksum = data_checksum(ptr, bytes);
        h->header_checksum = header_checksum(h);
    }
}
