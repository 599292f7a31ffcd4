/* datasets/fetch.h — download data sets into the cache directory.
 *
 * A download is written to NAME.part (resumed with an HTTP Range request when a
 * .part is already there), verified (SHA-256 and/or MD5 from the manifest or the
 * caller), and renamed to NAME only when it checks out. Sources are listed in the
 * manifest datasets/sources.ini. */
#ifndef DMZ_FETCH_H
#define DMZ_FETCH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dmz_fetch_stats {
    double bytes;         /* bytes received in this call (a resumed part not counted) */
    double seconds;       /* transfer time */
    double mbytes_per_s;  /* bytes / seconds / 1e6 */
    double resumed_from;  /* bytes already on disk when the transfer began */
    char sha256[65];      /* of the finished file */
    int retries_used;     /* resumptions after a dropped or stalled connection */
    long http_status;     /* of the last response; 0 when none came */
    int curl_code;        /* libcurl's CURLcode of the last attempt */
} dmz_fetch_stats;

typedef struct dmz_fetch_request {
    const char *url;
    const char *dest_path;        /* final name; NAME.part while incomplete */
    const char *expect_sha256;    /* hex or NULL */
    const char *expect_md5;       /* hex or NULL */
    const char *userpwd;          /* "user:key" for HTTP basic auth (Kaggle), or NULL */
    long connect_timeout_s;       /* default 20 */
    long stall_timeout_s;         /* abort when < 1 byte/s for this long; default 30 */
    int retries;                  /* resume attempts after a dropped connection; 0: 3, < 0: none */
    bool quiet;                   /* no progress bar */
} dmz_fetch_request;

/* Downloads one URL. 0 on success; on failure nothing is left under dest_path
 * (a .part may remain for resumption unless the checksum was wrong, in which
 * case it is deleted). */
int dmz_fetch_url(const dmz_fetch_request *req, dmz_fetch_stats *stats, char *err);

/* `dmzbench fetch` entry: dataset name from the manifest, or --url/--sha256.
 * Leaves the data set ready for dmz_dataset_load(name): files that do not load
 * strictly are not installed (DMZ_EXIT_FAIL says why). */
typedef struct dmz_fetch_options {
    const char *dataset;      /* "emnist-balanced" (default) or "fashion-mnist" */
    const char *url;          /* override the manifest */
    const char *sha256;       /* expected checksum for --url */
    const char *data_dir;     /* NULL: dmz_data_dir(NULL) */
    const char *manifest;     /* NULL: the installed datasets/sources.ini */
    bool quiet;
    bool no_cache;            /* do not build the binary cache after the fetch */
} dmz_fetch_options;

int dmz_fetch_dataset(const dmz_fetch_options *opt, char *err);

#endif
