/* tests/httpd.h — a tiny HTTP/1.1 server for tests: 127.0.0.1 only, one
 * thread, one connection at a time, "Connection: close" on every answer.
 *
 * It serves byte buffers at paths (GET, "Range: bytes=N-" answered 206, or 416
 * past the end; unknown paths 404) and can misbehave on purpose to exercise a
 * client: drop the connection, ignore Range, stall, answer HTML. It stops when
 * asked and after lifetime_s at the latest, so a test cannot hang on it. */
#ifndef DMZ_TEST_HTTPD_H
#define DMZ_TEST_HTTPD_H

#include <stddef.h>

#define HTTPD_MAX_FILES 8

typedef enum httpd_mode {
    HTTPD_NORMAL,
    HTTPD_DROP,          /* send after_bytes of the body, then close */
    HTTPD_IGNORE_RANGE,  /* answer 200 with the whole body to a Range request */
    HTTPD_STALL,         /* send after_bytes of the body, then go silent until stopped */
    HTTPD_HTML,          /* answer 200 with an HTML page instead of the body */
} httpd_mode;

typedef struct httpd_file {
    const char *path;          /* "/data.bin"; NULL ends the list */
    const void *body;
    size_t len;
    const char *content_type;  /* NULL: application/octet-stream (text/html in HTTPD_HTML) */
} httpd_file;

typedef struct httpd_config {
    httpd_file files[HTTPD_MAX_FILES];
    httpd_mode mode;
    size_t after_bytes;        /* HTTPD_DROP, HTTPD_STALL */
    int bad_requests;          /* the mode applies to the first N requests; 0: to all */
    const char *redirect_from; /* a path answered "302 Found", Location: redirect_to */
    const char *redirect_to;
    double lifetime_s;         /* 0: 10 s */
} httpd_config;

typedef struct httpd httpd;

httpd *httpd_start(const httpd_config *cfg);  /* NULL on failure (reason on stderr) */
int httpd_port(const httpd *h);
/* "http://127.0.0.1:PORT" + path */
void httpd_url(const httpd *h, const char *path, char *out, size_t len);
int httpd_requests(const httpd *h);           /* requests answered so far */
long long httpd_last_range(const httpd *h);   /* N of the last "Range: bytes=N-"; -1: none */
void httpd_stop(httpd *h);                    /* stops, joins, frees */

#endif
