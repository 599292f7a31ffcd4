/* tests/support.h — small file helpers shared by the tests (linked into each). */
#ifndef DMZ_TEST_SUPPORT_H
#define DMZ_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SHA-256 (and MD5 when md5_hex is non-NULL) of a buffer, lower-case hex. */
void fs_hash_buffer(const void *data, size_t len, char sha256_hex[65], char md5_hex[33]);
unsigned char *fs_random_bytes(size_t len, uint64_t seed);   /* malloc'd, deterministic */
bool fs_exists(const char *path);
unsigned char *fs_slurp(const char *path, size_t *len);      /* malloc'd, NUL-terminated, read to EOF; NULL if absent; len may be NULL */
bool fs_file_is(const char *path, const void *data, size_t len);
bool fs_write(const char *path, const void *data, size_t len);
/* Counts the run directories under a results root (every entry but index.csv
 * and dot files); the last one found goes to out. */
int fs_find_run_dir(const char *root, char *out, size_t len);
void fs_rm_rf(const char *path);

/* A cmocka group's scratch directory: fs_tmpdir is made by fs_group_make_tmpdir
 * (a group setup) and removed with everything in it by fs_group_remove_tmpdir. */
extern char fs_tmpdir[64];
int fs_group_make_tmpdir(void **state);
int fs_group_remove_tmpdir(void **state);

typedef struct fs_member { const char *name; const void *data; size_t len; } fs_member;
bool fs_make_zip(const char *path, const fs_member *m, int n);  /* libzip; "dir/" entries allowed */

#endif
