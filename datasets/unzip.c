/* datasets/unzip.c — extract the wanted members of a zip archive (libzip).
 * Each member goes to DIR/NAME.part and is renamed when complete; libzip checks
 * the CRC as the last bytes are read, so a damaged member never lands. */
#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int copy_member(zip_file_t *zf, FILE *fp, dmz_unzipped *out, const char *part, char *err) {
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", part);
    struct sha256_ctx sha;
    sha256_init(&sha);
    zip_int64_t n;
    int rc = DMZ_OK;
    while ((n = zip_fread(zf, buf, CHUNK)) > 0) {
        if (fwrite(buf, 1, (size_t)n, fp) != (size_t)n) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: write failed: %s", part, strerror(errno));
            break;
        }
        sha256_update(&sha, (size_t)n, buf);
        out->bytes += (double)n;
    }
    if (rc == DMZ_OK && n < 0)
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: damaged zip member: %s", part, zip_file_strerror(zf));
    free(buf);
    unsigned char digest[SHA256_DIGEST_SIZE];
    sha256_digest(&sha, SHA256_DIGEST_SIZE, digest);
    dmz_hex(digest, SHA256_DIGEST_SIZE, out->sha256);
    return rc;
}

static int extract_entry(zip_t *z, zip_int64_t index, const char *dest_dir, const char *name,
                         dmz_unzipped *out, char *err) {
    char path[4096], part[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dest_dir, name) >= sizeof path)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s/%s: path too long", dest_dir, name);
    snprintf(part, sizeof part, "%s.part", path);
    zip_stat_t st;
    zip_file_t *zf = zip_stat_index(z, (zip_uint64_t)index, 0, &st) == 0
                         ? zip_fopen_index(z, (zip_uint64_t)index, 0) : NULL;
    if (!zf) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot open zip member: %s", name, zip_strerror(z));
    FILE *fp = fopen(part, "wb");
    if (!fp) {
        zip_fclose(zf);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create: %s", part, strerror(errno));
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    int rc = copy_member(zf, fp, out, part, err);
    zip_fclose(zf);
    if (fclose(fp) != 0 && rc == DMZ_OK)
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: write failed: %s", part, strerror(errno));
    if (rc == DMZ_OK && (st.valid & ZIP_STAT_SIZE) && out->bytes != (double)st.size)
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %.0f bytes extracted, the archive says %llu", name,
                        out->bytes, (unsigned long long)st.size);
    if (rc == DMZ_OK && rename(part, path) != 0)
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot rename into place: %s", path, strerror(errno));
    if (rc != DMZ_OK) unlink(part);
    return rc;
}

static int find_wanted(const char *entry, const char *const want[], int nwant, const bool done[]) {
    for (int w = 0; w < nwant; w++)
        if (!done[w] && strcmp(base_name(entry), base_name(want[w])) == 0) return w;
    return -1;
}

static int list_wanted(const char *zip_path, const char *const want[], int nwant, char *err) {
    char list[600] = "";
    for (int w = 0; w < nwant; w++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", w ? ", " : "", want[w]);
    }
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: the archive holds none of the files wanted (%s)", zip_path, list);
}

static int extract_matches(zip_t *z, const char *const want[], int nwant, const char *dest_dir,
                           dmz_unzipped out[], int max_out, int *nout, zip_int64_t *only, char *err) {
    bool done[64] = {false};
    if (nwant > 64) nwant = 64;
    zip_int64_t entries = zip_get_num_entries(z, 0), files = 0;
    for (zip_int64_t i = 0; i < entries; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
        if (!name || !*name || name[strlen(name) - 1] == '/') continue;  /* a directory */
        *only = files++ == 0 ? i : -1;
        int w = find_wanted(name, want, nwant, done);
        if (w < 0) continue;
        if (*nout >= max_out) return dmz_errorf(err, DMZ_EXIT_FAIL, "unzip: more than %d members wanted", max_out);
        int rc = extract_entry(z, i, dest_dir, base_name(want[w]), &out[*nout], err);
        if (rc != DMZ_OK) return rc;
        done[w] = true;
        (*nout)++;
    }
    return DMZ_OK;
}

int dmz_unzip(const char *zip_path, const char *const want[], int nwant, const char *dest_dir,
              dmz_unzipped out[], int max_out, int *nout, char *err) {
    *nout = 0;
    int zerr = 0;
    zip_t *z = zip_open(zip_path, ZIP_RDONLY, &zerr);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        int rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: not a readable zip archive: %s", zip_path,
                            zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    zip_int64_t only = -1;
    int rc = extract_matches(z, want, nwant, dest_dir, out, max_out, nout, &only, err);
    if (rc == DMZ_OK && *nout == 0 && nwant == 1 && only >= 0 && max_out > 0) {
        rc = extract_entry(z, only, dest_dir, base_name(want[0]), &out[0], err);
        if (rc == DMZ_OK) *nout = 1;
    }
    zip_discard(z);
    if (rc == DMZ_OK && *nout == 0) rc = list_wanted(zip_path, want, nwant, err);
    return rc;
}
