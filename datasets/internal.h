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

/* Size and modification time of one source file, as recorded in the cache. */
typedef struct ds_file_stamp {
    uint64_t size;
    int64_t mtime_ns;
} ds_file_stamp;
int ds_stamp_file(const char *path, ds_file_stamp *stamp, char *err);

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
 * and map. Anything wrong with the file is a miss, never an error. */
bool ds_cache_open(const char *cache_path, const ds_plan *plan, dmz_dataset *out, ds_mapping *map);
void ds_cache_unmap(ds_mapping *map);
/* Writes the cache (temporary name, then rename). stamps: of plan->files, taken
 * before they were read. */
int ds_cache_write(const char *cache_path, const ds_plan *plan, const ds_file_stamp *stamps,
                   const dmz_dataset *ds, char *err);

/* Hashing (sha256.c). */
void ds_sha256_hex(const void *data, size_t len, char hex[65]);
/* SHA-256 of the sha256sum-style listing "<hex>  <basename>\n" of the files. */
void ds_sha256_listing(char *const *paths, const char (*hexes)[65], int n, char hex[65]);
/* A fast 64-bit checksum (not cryptographic) that guards the cache's bytes. */
uint64_t ds_checksum64(const void *data, size_t len, uint64_t seed);

/* Turns count images of 28x28 from EMNIST's column-major storage to MNIST's. */
void ds_transpose_images(uint8_t *images, size_t count);

#endif
