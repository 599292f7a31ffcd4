/* datasets/fetch_internal.h — the parts of `dmzbench fetch` that its own files
 * (fetch.c, fetch_dataset.c, fetch_sources.c, unzip.c) and tests/test_fetch.c
 * share. Not for other folders: they use datasets/fetch.h. */
#ifndef DMZ_FETCH_INTERNAL_H
#define DMZ_FETCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#define DMZ_NAME_LEN 256
#define DMZ_URL_LEN 1024
#define DMZ_SOURCE_MAX_FILES 8
#define DMZ_SOURCE_MAX_MEMBERS 8
#define DMZ_MANIFEST_MAX_SOURCES 16

/* ---------------------------------------------------------------- manifest */

typedef struct dmz_source_file {
    char url[DMZ_URL_LEN];
    char name[DMZ_NAME_LEN]; /* in downloads/ and, unless a zip, in the data set dir */
    char md5[33];            /* "" when not published */
    char sha256[65];
    double size;             /* bytes, 0 unknown; shown to the user, never checked */
} dmz_source_file;

typedef struct dmz_source {
    char dataset[64];        /* "emnist-balanced" */
    char label[64];          /* "nist", "kaggle", ... */
    char auth[16];           /* "" or "kaggle" */
    char format[8];          /* "zip", "gz", "csv" */
    int nfiles;
    dmz_source_file files[DMZ_SOURCE_MAX_FILES];
    int nmembers;            /* zip members to extract, paths inside the zip */
    char members[DMZ_SOURCE_MAX_MEMBERS][DMZ_NAME_LEN];
} dmz_source;

typedef struct dmz_manifest {
    char path[4096];
    int nsources;
    dmz_source sources[DMZ_MANIFEST_MAX_SOURCES];
} dmz_manifest;

/* explicit_path, else $DMZBENCH_SOURCES, else DMZ_SOURCE_DIR/datasets/sources.ini */
const char *dmz_manifest_path(const char *explicit_path);
/* Parses and checks the manifest; errors name file and line. */
int dmz_manifest_load(const char *path, dmz_manifest *m, char *err);
/* The names a data set's directory holds when complete from this source:
 * member base names for a zip, file names otherwise. Returns the count. */
int dmz_source_final_names(const dmz_source *src, const char *names[], int max);
/* "user:key" from KAGGLE_USERNAME/KAGGLE_KEY; false when either is unset. */
bool dmz_kaggle_userpwd(char *out, size_t len);

/* ---------------------------------------------------------------- files */

/* A libcurl failure that means "no route to the server" (DNS, connect). */
bool dmz_curl_network_down(int curl_code, long http_status);

/* SHA-256 (and MD5 when md5_hex is non-NULL) of a file, one pass (sha256.c). */
int dmz_hash_file(const char *path, char sha256_hex[65], char md5_hex[33], char *err);
void dmz_hex(const unsigned char *digest, size_t n, char *out);
bool dmz_is_hex(const char *s, size_t len);  /* exactly len hex digits */
/* The file starts with "PK\3\4". */
bool dmz_is_zip(const char *path);
/* The file starts (after blanks) with "<!DOCTYPE html" or "<html". */
bool dmz_looks_like_html(const char *path);
/* Last path component of a URL, without query or fragment. */
void dmz_url_basename(const char *url, char *out, size_t len);

/* ---------------------------------------------------------------- FETCHED.json */

struct cJSON;
/* The record beside a fetched set, read back: an unreadable file, bad JSON or
 * anything but an object gives an empty object (the files are the truth). */
struct cJSON *dmz_fetched_load(const char *path);
/* Replaces the entry files.NAME (from, bytes, sha256, utc). */
void dmz_fetched_add_file(struct cJSON *record, const char *name, const char *from, double bytes,
                          const char *sha256);

/* ---------------------------------------------------------------- zip */

typedef struct dmz_unzipped {
    char name[DMZ_NAME_LEN]; /* written as dest_dir/name */
    double bytes;
    char sha256[65];
} dmz_unzipped;

/* Extracts the entries of zip_path whose base name is one of want[0..nwant)
 * into dest_dir (each through NAME.part, renamed when complete; names come from
 * want, never from the archive). When nothing matches, nwant is 1 and the
 * archive holds a single file, that file is extracted under want[0] (Kaggle
 * serves a zipped CSV that way). *nout = entries extracted; 0 is an error. */
int dmz_unzip(const char *zip_path, const char *const want[], int nwant, const char *dest_dir,
              dmz_unzipped out[], int max_out, int *nout, char *err);

#endif
