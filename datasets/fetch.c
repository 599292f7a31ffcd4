/* datasets/fetch.c — dmz_fetch_url: one URL to one verified file.
 *
 * The body goes to DEST.part. A .part left by an earlier run or a dropped
 * connection is resumed with a Range request; a server that ignores Range
 * (libcurl reports CURLE_RANGE_ERROR) makes us start again from byte 0 once.
 * Only a file whose checksums match is renamed to DEST. */
#include "datasets/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

#ifndef DMZ_GIT_REV
#define DMZ_GIT_REV "unknown"
#endif

enum { DEFAULT_CONNECT_S = 20, DEFAULT_STALL_S = 30, DEFAULT_RETRIES = 3, MAX_REDIRECTS = 10 };

#define HTML_HINT "URL answered with an HTML page, not the data set (the old www.itl.nist.gov " \
                  "address does this; use https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip)"

typedef struct progress {
    bool on;
    const char *name;
    double t0, last_draw;
    bool drawn;
} progress;

/* One download; the fields from offset to stalled are reset for each attempt. */
typedef struct transfer {
    CURL *curl;
    const char *part;
    FILE *fp;                /* opened at the first body byte, so a 404 leaves no file */
    curl_off_t offset;       /* bytes of .part on disk when the attempt began */
    curl_off_t written;      /* body bytes this attempt wrote */
    curl_off_t range_total;  /* total size from Content-Range, -1 unknown */
    bool got_response;       /* a status line arrived: the server is there */
    bool html;               /* Content-Type was text/html */
    bool restarted;          /* answered 200 to a Range request: .part truncated */
    long stall_s;            /* abort when no byte came for this long */
    double last_byte_t;      /* when the byte count last moved */
    curl_off_t last_now;
    bool stalled;
    int write_errno;
    char curl_err[CURL_ERROR_SIZE];
    progress prog;
} transfer;

static curl_off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (curl_off_t)st.st_size : -1;
}

static void progress_draw(progress *p, double offset, double total, double now, bool final) {
    double t = dmz_now_s();
    if (!p->on || (!final && t - p->last_draw < 0.1)) return;  /* at most ~10 redraws a second */
    p->last_draw = t;
    double elapsed = t - p->t0, rate = elapsed > 0 ? now / elapsed : 0, done = offset + now;
    if (total > 0) {
        char eta[32];
        dmz_format_eta(rate > 0 ? (offset + total - done) / rate : -1, eta, sizeof eta);
        fprintf(stderr, "\r  %-30.30s %9.1f / %.1f MB %5.1f%% %8.1f MB/s  ETA %-8s", p->name,
                done / 1e6, (offset + total) / 1e6, 100.0 * done / (offset + total), rate / 1e6, eta);
    } else {
        fprintf(stderr, "\r  %-30.30s %9.1f MB %8.1f MB/s", p->name, done / 1e6, rate / 1e6);
    }
    p->drawn = true;
}

/* Called at least once a second. The stall check lives here because
 * CURLOPT_LOW_SPEED_TIME judges a speed averaged over ~5 s: after a burst it
 * notices a stall only seconds late. LOW_SPEED stays set as a backstop. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    transfer *t = user;
    double now = dmz_now_s();
    if (dlnow != t->last_now) {
        t->last_now = dlnow;
        t->last_byte_t = now;
    } else if (now - t->last_byte_t > (double)t->stall_s) {
        t->stalled = true;
        return 1;  /* aborts with CURLE_ABORTED_BY_CALLBACK */
    }
    progress_draw(&t->prog, (double)t->offset, (double)dltotal, (double)dlnow, false);
    return 0;
}

static bool content_type_is_html(CURL *curl) {
    char *type = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    return type && strncasecmp(type, "text/html", 9) == 0;
}

static bool open_part(transfer *t) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (t->offset > 0 && code == 200) {  /* whole body despite Range: start over */
        t->offset = 0;
        t->restarted = true;
    }
    t->fp = fopen(t->part, t->offset > 0 ? "ab" : "wb");
    if (!t->fp) t->write_errno = errno;
    return t->fp != NULL;
}

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    if (!t->fp) {
        if (content_type_is_html(t->curl)) {
            t->html = true;
            return 0;  /* aborts the transfer */
        }
        if (!open_part(t)) return 0;
    }
    if (fwrite(data, 1, len, t->fp) != len) {
        t->write_errno = errno ? errno : EIO;
        return 0;
    }
    t->written += (curl_off_t)len;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), data);
    if (strncmp(line, "HTTP/", 5) == 0) {  /* a new response (e.g. after a redirect) */
        t->got_response = true;
        t->range_total = -1;
    } else if (strncasecmp(line, "Content-Range:", 14) == 0) {
        const char *slash = strchr(line, '/');
        if (slash && slash[1] >= '0' && slash[1] <= '9') t->range_total = strtoll(slash + 1, NULL, 10);
    }
    return len;
}

static void configure(CURL *curl, const dmz_fetch_request *req, transfer *t) {
    long connect_s = req->connect_timeout_s > 0 ? req->connect_timeout_s : DEFAULT_CONNECT_S;
    long stall_s = req->stall_timeout_s > 0 ? req->stall_timeout_s : DEFAULT_STALL_S;
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "dmzbench/" DMZ_GIT_REV);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, connect_s);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, t->curl_err);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
    if (req->userpwd) {  /* libcurl sends it to the original host only, not to a redirect target */
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERPWD, req->userpwd);
    }
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    t->stall_s = stall_s;
}

static CURLcode transfer_once(transfer *t, long *http) {
    curl_off_t have = file_size(t->part);
    t->offset = have > 0 ? have : 0;
    t->written = 0;
    t->range_total = -1;
    t->got_response = t->html = t->restarted = t->stalled = false;
    t->last_now = 0;
    t->last_byte_t = dmz_now_s();
    t->write_errno = 0;
    t->curl_err[0] = '\0';
    t->prog.t0 = dmz_now_s();
    t->prog.last_draw = 0;
    curl_easy_setopt(t->curl, CURLOPT_RESUME_FROM_LARGE, t->offset);
    CURLcode rc = curl_easy_perform(t->curl);
    if (rc == CURLE_ABORTED_BY_CALLBACK && t->stalled) rc = CURLE_OPERATION_TIMEDOUT;
    if (t->fp && fclose(t->fp) != 0 && rc == CURLE_OK) {
        t->write_errno = errno;
        rc = CURLE_WRITE_ERROR;
    }
    t->fp = NULL;
    *http = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, http);
    curl_off_t total = -1;
    curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    progress_draw(&t->prog, (double)t->offset, (double)total, (double)t->written, true);
    return rc;
}

/* A connection that broke or stalled after the server answered: worth resuming. */
static bool is_transient(CURLcode rc, long http, bool got_response) {
    switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    case CURLE_OPERATION_TIMEDOUT:  /* a connect timeout is not retried: the host is not there */
        return got_response;
    case CURLE_HTTP_RETURNED_ERROR:
        return http >= 500 || http == 429;
    default:
        return false;
    }
}

bool dmz_curl_network_down(int curl_code, long http) {
    return http == 0 && (curl_code == CURLE_COULDNT_RESOLVE_HOST || curl_code == CURLE_COULDNT_CONNECT ||
                         curl_code == CURLE_COULDNT_RESOLVE_PROXY ||
                         curl_code == CURLE_OPERATION_TIMEDOUT);
}

static int describe_failure(const dmz_fetch_request *req, const transfer *t, CURLcode rc, long http,
                            int retries, char *err) {
    char stalled[96];
    snprintf(stalled, sizeof stalled, "no data for %ld s", t->stall_s);
    const char *why = t->stalled ? stalled : t->curl_err[0] ? t->curl_err : curl_easy_strerror(rc);
    curl_off_t kept = file_size(t->part);
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        char *where = NULL;
        curl_easy_getinfo(t->curl, CURLINFO_EFFECTIVE_URL, &where);
        bool moved = where && strcmp(where, req->url) != 0;
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: server answered HTTP %ld%s%s%s", req->url, http,
                          moved ? " (at " : "", moved ? where : "", moved ? ")" : "");
    }
    if (t->write_errno)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot write: %s", t->part, strerror(t->write_errno));
    const char *stall = rc == CURLE_OPERATION_TIMEDOUT && t->got_response ? "transfer stalled: " : "";
    if (kept > 0)
        return dmz_errorf(err, DMZ_EXIT_FAIL,
                          "%s: %s%s (curl error %d, %d retries); %lld bytes kept in %s: run again to resume",
                          req->url, stall, why, (int)rc, retries, (long long)kept, t->part);
    return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %s%s (curl error %d)", req->url, stall, why, (int)rc);
}

/* After a 416, a .part of another size than the file's (Content-Range:
 * bytes * /TOTAL) is stale. */
static bool part_overshoots(const transfer *t, long http) {
    return http == 416 && t->range_total >= 0 && t->range_total != t->offset;
}

static int run_attempts(const dmz_fetch_request *req, transfer *t, dmz_fetch_stats *stats, char *err) {
    int retries = req->retries == 0 ? DEFAULT_RETRIES : (req->retries < 0 ? 0 : req->retries);
    bool restarted = false;
    for (;;) {
        long http = 0;
        double t0 = dmz_now_s();
        CURLcode rc = transfer_once(t, &http);
        stats->seconds += dmz_now_s() - t0;
        stats->bytes += (double)t->written;
        stats->http_status = http;
        stats->curl_code = (int)rc;
        if (t->restarted) stats->resumed_from = 0;
        if (t->html)  /* caught before any byte was written: an older .part, if any, stays */
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %s", req->url, HTML_HINT);
        if (http == 416 && t->offset > 0 && (rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR))
            rc = CURLE_OK;  /* nothing after our offset: .part may be whole (checked below and by checksum) */
        bool restart = rc == CURLE_RANGE_ERROR || (rc == CURLE_OK && part_overshoots(t, http));
        if (restart && !restarted) {
            restarted = true;
            unlink(t->part);
            stats->resumed_from = 0;
            continue;
        }
        if (rc == CURLE_OK) return DMZ_OK;
        if (!t->write_errno && is_transient(rc, http, t->got_response) && stats->retries_used < retries) {
            stats->retries_used++;
            usleep(200000u << (stats->retries_used < 5 ? stats->retries_used - 1 : 4));
            continue;
        }
        return describe_failure(req, t, rc, http, stats->retries_used, err);
    }
}

static int verify_and_place(const dmz_fetch_request *req, const char *part, dmz_fetch_stats *stats,
                            char *err) {
    if (dmz_looks_like_html(part)) {
        unlink(part);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %s", req->url, HTML_HINT);
    }
    char md5[33] = "";
    if (dmz_hash_file(part, stats->sha256, req->expect_md5 ? md5 : NULL, err) != DMZ_OK) return DMZ_EXIT_FAIL;
    const char *kind = NULL, *want = NULL, *got = NULL;
    if (req->expect_sha256 && strcasecmp(req->expect_sha256, stats->sha256) != 0)
        kind = "SHA-256", want = req->expect_sha256, got = stats->sha256;
    else if (req->expect_md5 && strcasecmp(req->expect_md5, md5) != 0)
        kind = "MD5", want = req->expect_md5, got = md5;
    if (kind) {
        unlink(part);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %s mismatch: expected %s, got %s (download deleted)",
                          req->url, kind, want, got);
    }
    if (rename(part, req->dest_path) != 0)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot rename into place: %s", req->dest_path,
                          strerror(errno));
    return DMZ_OK;
}

static int check_request(const dmz_fetch_request *req, char *part, size_t len, char *err) {
    if (!req || !req->url || !req->dest_path)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "fetch: a URL and a destination are required");
    if (req->expect_sha256 && !dmz_is_hex(req->expect_sha256, 64))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "fetch: --sha256 '%s' is not 64 hex digits", req->expect_sha256);
    if (req->expect_md5 && !dmz_is_hex(req->expect_md5, 32))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "fetch: MD5 '%s' is not 32 hex digits", req->expect_md5);
    if ((size_t)snprintf(part, len, "%s.part", req->dest_path) >= len)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "fetch: destination path too long: %s", req->dest_path);
    return DMZ_OK;
}

int dmz_fetch_url(const dmz_fetch_request *req, dmz_fetch_stats *stats, char *err) {
    dmz_fetch_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    char part[4096];
    int rc = check_request(req, part, sizeof part, err);
    if (rc != DMZ_OK) return rc;
    transfer t = {.part = part, .curl = curl_easy_init()};
    if (!t.curl) return dmz_errorf(err, DMZ_EXIT_FAIL, "fetch: cannot initialise libcurl");
    const char *slash = strrchr(req->dest_path, '/');
    t.prog = (progress){.on = dmz_progress_enabled(req->quiet), .name = slash ? slash + 1 : req->dest_path};
    configure(t.curl, req, &t);
    curl_off_t have = file_size(part);
    stats->resumed_from = have > 0 ? (double)have : 0;
    rc = run_attempts(req, &t, stats, err);
    curl_easy_cleanup(t.curl);
    if (t.prog.drawn) fputc('\n', stderr);
    if (rc == DMZ_OK) rc = verify_and_place(req, part, stats, err);
    stats->mbytes_per_s = stats->seconds > 0 ? stats->bytes / stats->seconds / 1e6 : 0;
    return rc;
}
