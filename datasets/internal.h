/* datasets/internal.h — what the files of datasets/ share among themselves and
 * nobody else: the load plan, the binary cache and the hashing helpers. */
#ifndef DMZ_DATASETS_INTERNAL_H
#define DMZ_DATASETS_INTERNAL_H

#include "datasets/datasets.h"

#include <stdint.h>
#include <sys/types.h>

/* Labels read from a PATH we cannot name may hold any class: the caller then
 * takes num_classes = max label + 1 of the train split. */
#define DMZ_CLASSES_INFER 0

enum { DS_MAX_SOURCES = 4, DS_PATH_LEN = 4096 };

/* What a spec resolved to: which files, in which format, read how. Sources are
 * in the fixed order train images (or CSV), train labels, test images (or CSV),
 * test labels; CSV has two. */
typedef struct ds_plan {
    char name[64];
    char format[16];   /* "csv" or "idx" */
    char source[DS_PATH_LEN];
    char files[DS_MAX_SOURCES][DS_PATH_LEN];
    int nfiles;
    bool transpose;
    int num_classes;   /* DMZ_CLASSES_INFER: max train label + 1 */
} ds_plan;

/* snprintf into a path buffer of DS_PATH_LEN; false when it does not fit (a cut
 * path would name another file). */
bool ds_path_format(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resolution of a spec into a plan (resolve.c). DMZ_OK, or DMZ_EXIT_USAGE with
 * a message; *missing is set when EMNIST Balanced is simply not there (the
 * caller may fall back) rather than broken. */
int ds_resolve_emnist_balanced(const char *data_dir, ds_plan *plan, bool *missing, char *err);
int ds_resolve_fashion_mnist(const char *data_dir, ds_plan *plan, char *err);
int ds_resolve_path(const char *path, ds_plan *plan, char *err);

/* Identity of one source file as recorded in the cache: size and mtime (which
 * anyone can set back), and inode, device and ctime (which nobody can: a
 * rewrite, a replacement by rename or a restored mtime all move ctime). */
typedef struct ds_file_stamp {
    uint64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint64_t ino, dev;
} ds_file_stamp;
struct stat;
void ds_stamp_of(const struct stat *st, ds_file_stamp *stamp);
int ds_stamp_file(const char *path, ds_file_stamp *stamp, char *err);

/* The sources of a plan, each opened once (dmz_open_regular: a FIFO or device
 * is refused up front); the parser reads a dup of the descriptor, the hasher
 * uses pread on it, so neither can take bytes from the other. */
typedef struct ds_sources {
    int fd[DS_MAX_SOURCES];
    ds_file_stamp stamp[DS_MAX_SOURCES]; /* fstat at open, before any byte was read */
    int n;
} ds_sources;
int ds_sources_open(const ds_plan *plan, ds_sources *src, char *err);
void ds_sources_close(ds_sources *src);

/* The readers on an open descriptor (not consumed: each reads a dup). */
int ds_csv_read_fd(int fd, const char *path, int num_classes, bool transpose, dmz_owned_split *out, char *err);
int ds_idx_read_fd(int images_fd, const char *images_path, int labels_fd, const char *labels_path,
                   int num_classes, bool transpose, dmz_owned_split *out, char *err);
/* One IDX file alone: images (28x28) or labels (< num_classes; 0: any). */
int ds_idx_check_one(const char *path, bool images, int num_classes, size_t *count, char *err);
/* SHA-256 of an open file with pread (the descriptor's offset is untouched). */
int ds_sha256_fd(int fd, const char *path, char hex[65], char *err);

/* The binary cache (cache.c). A hit maps the file read-only; the dataset's
 * splits point into the mapping and ds_cache_unmap releases it. */
typedef struct ds_mapping {
    void *addr;
    size_t len;
} ds_mapping;

/* Where the cache for a plan lives: <data_dir>/dmzc/<name>-<key>.dmzc, the key
 * being a hash of the source paths and how they are read (not their content,
 * so that a hit costs no hashing of the sources). */
void ds_cache_path(const char *data_dir, const ds_plan *plan, char *out, size_t len);
/* true on a valid, up-to-date cache: fills out (splits, num_classes, sha256)
 * and map. Anything wrong with the file is a miss, never an error. A cache
 * whose sources were stamped within a second of being changed ("racy": a
 * change in the same clock tick leaves ctime alone) is trusted only after the
 * sources' SHA-256 is computed again and matches; *restamp is then set when
 * the stamps are no longer racy, and the caller may write the cache again. */
bool ds_cache_open(const char *cache_path, const ds_plan *plan, dmz_dataset *out, ds_mapping *map,
                   bool *restamp);
/* Removes <data_dir>/dmzc/ *.dmzc.tmp.PID files whose PID is gone (a killed
 * run's), saying so on stderr; warns about old ones whose PID still runs. */
void ds_cache_clean_tmp(const char *data_dir);
void ds_cache_unmap(ds_mapping *map);
/* Writes the cache (temporary name, then rename). stamps: of plan->files, taken
 * before they were read. */
int ds_cache_write(const char *cache_path, const ds_plan *plan, const ds_file_stamp *stamps,
                   const dmz_dataset *ds, char *err);

/* For tests/fuzz/fuzz_cache.c only: makes fuzzer-written bytes pass the checks
 * random bytes never could, so that the checks behind them are reached: the
 * frame (magic, version, sizes, name), the plan's source paths and current
 * stamps, and both checksums over whatever the header then says. */
enum { DS_FUZZ_FIX_FRAME = 1, DS_FUZZ_FIX_SOURCES = 2, DS_FUZZ_FIX_CHECKSUMS = 4 };
void ds_cache_fuzz_fixup(void *buf, size_t len, const ds_plan *plan, int flags);

/* Hashing (sha256.c). */
void ds_sha256_hex(const void *data, size_t len, char hex[65]);
/* SHA-256 of the sha256sum-style listing "<hex>  <basename>\n" of the files. */
void ds_sha256_listing(char *const *paths, const char (*hexes)[65], int n, char hex[65]);
/* A fast 64-bit checksum (not cryptographic) that guards the cache's bytes. */
uint64_t ds_checksum64(const void *data, size_t len, uint64_t seed);

/* Turns count images of 28x28 from EMNIST's column-major storage to MNIST's. */
void ds_transpose_images(uint8_t *images, size_t count);

#endif
