/* tests/support.c — see support.h. */
#include "tests/support.h"

#include <dirent.h>
#include <ftw.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "common/dmz.h"

static void to_hex(const unsigned char *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void fs_hash_buffer(const void *data, size_t len, char sha256_hex[65], char md5_hex[33]) {
    unsigned char d[SHA256_DIGEST_SIZE];
    struct sha256_ctx s;
    sha256_init(&s);
    sha256_update(&s, len, data);
    sha256_digest(&s, sizeof d, d);
    to_hex(d, SHA256_DIGEST_SIZE, sha256_hex);
    if (md5_hex) {
        struct md5_ctx m;
        md5_init(&m);
        md5_update(&m, len, data);
        md5_digest(&m, MD5_DIGEST_SIZE, d);
        to_hex(d, MD5_DIGEST_SIZE, md5_hex);
    }
}

unsigned char *fs_random_bytes(size_t len, uint64_t seed) {
    unsigned char *p = malloc(len ? len : 1);
    dmz_rng rng;
    dmz_rng_seed(&rng, seed);
    for (size_t i = 0; p && i < len; i++) p[i] = (unsigned char)dmz_rng_next(&rng);
    return p;
}

bool fs_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads until EOF: files under /proc report size 0. */
unsigned char *fs_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *p = malloc(cap + 1);
    for (size_t got; p && (got = fread(p + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *grown = realloc(p, (cap *= 2) + 1);
            if (!grown) free(p);
            p = grown;
        }
    }
    fclose(f);
    if (p) p[n] = '\0';
    if (len) *len = p ? n : 0;
    return p;
}

bool fs_file_is(const char *path, const void *data, size_t len) {
    size_t got = 0;
    unsigned char *p = fs_slurp(path, &got);
    bool same = p && got == len && memcmp(p, data, len) == 0;
    free(p);
    return same;
}

bool fs_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

void fs_rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

bool fs_make_zip(const char *path, const fs_member *m, int n) {
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!z) return false;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(m[i].name);
        if (len && m[i].name[len - 1] == '/') {
            if (zip_dir_add(z, m[i].name, ZIP_FL_ENC_UTF_8) >= 0) continue;
            zip_discard(z);
            return false;
        }
        zip_source_t *src = zip_source_buffer(z, m[i].data, m[i].len, 0);
        if (!src || zip_file_add(z, m[i].name, src, ZIP_FL_OVERWRITE) < 0) {
            zip_source_free(src);
            zip_discard(z);
            return false;
        }
    }
    return zip_close(z) == 0;
}

char fs_tmpdir[64];

int fs_group_make_tmpdir(void **state) {
    (void)state;
    snprintf(fs_tmpdir, sizeof fs_tmpdir, "/tmp/dmz_test_XXXXXX");
    return mkdtemp(fs_tmpdir) ? 0 : -1;
}

int fs_group_remove_tmpdir(void **state) {
    (void)state;
    fs_rm_rf(fs_tmpdir);
    return 0;
}

int fs_find_run_dir(const char *root, char *out, size_t len) {
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "index.csv") == 0) continue;
        snprintf(out, len, "%s/%s", root, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}
