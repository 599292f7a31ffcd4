/* datasets/csv.c — Kaggle's EMNIST CSV (no header; each row label,p0,...,p783)
 * read with libcsv and validated strictly: every error names the file, the
 * 1-based line and the 1-based field ("label" or "pixel N").
 *
 * libcsv tokenises (quoting, CR/LF); numbers are parsed here by hand because
 * strtol per field costs as much as the whole tokeniser. */
#include "datasets/internal.h"
#include "common/dmz.h"
#include "common/interrupt.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* FIELD_MAX: a label or pixel needs 3 characters; anything near this long is
 * broken, and a 2 GB line without a separator must not be buffered whole. */
enum { CSV_FIELDS = 1 + DMZ_IMG_PIXELS, READ_CHUNK = 1 << 16, QUOTE_MAX = 24, FIELD_MAX = 4096 };

typedef struct csv_reader {
    const char *path;
    long max_label;                  /* labels lie in 0..max_label */
    uint16_t dest[DMZ_IMG_PIXELS];   /* where the p-th pixel of a row goes in its image */
    uint8_t *images, *labels;
    size_t rows, capacity;
    size_t line;                     /* 1-based line of the row being read */
    int field;                       /* 0-based index of the next field in this row */
    int last_term;                   /* the character that ended the last row */
    size_t blank_line;               /* a blank line seen; an error unless only blank lines follow */
    char *err;
    int rc;
} csv_reader;

/* "label", "pixel 17" or "after pixel 783" for field index f (0-based). */
static void field_role(int f, char *out, size_t len) {
    if (f == 0) snprintf(out, len, "label");
    else if (f < CSV_FIELDS) snprintf(out, len, "pixel %d", f - 1);
    else snprintf(out, len, "after pixel %d", DMZ_IMG_PIXELS - 1);
}

__attribute__((format(printf, 4, 5)))
static void fail_at(csv_reader *r, size_t line, int f, const char *fmt, ...) {
    if (r->rc) return;
    char role[64], what[512];
    field_role(f, role, sizeof role);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    r->rc = dmz_errorf(r->err, DMZ_EXIT_USAGE, "%s:%zu: field %d (%s): %s", r->path, line, f + 1, role, what);
}

/* The field as it appeared, shortened and with unprintable bytes as '?'. */
static void quote_field(const unsigned char *s, size_t len, char out[QUOTE_MAX + 4]) {
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
    for (size_t i = 0; i < n; i++) out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    strcpy(out + n, len > n ? "..." : "");
}

enum { FIELD_OK, FIELD_EMPTY, FIELD_NOT_INTEGER };

static int parse_integer(const unsigned char *s, size_t len, long *value) {
    if (len == 0) return FIELD_EMPTY;
    size_t i = s[0] == '-';
    if (i == len) return FIELD_NOT_INTEGER;
    long v = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)s[i] - '0';
        if (d > 9) return FIELD_NOT_INTEGER;
        if (v < 1000000000L) v = v * 10 + d; /* saturates: anything that long is out of range */
    }
    *value = s[0] == '-' ? -v : v;
    return FIELD_OK;
}

/* Up to three digits: nearly every field of an image file. */
static inline bool small_number(const unsigned char *s, size_t len, long *v) {
    if (len - 1 > 2) return false;
    long x = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)s[i] - '0';
        if (d > 9) return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* Why field f is not an integer in 0..max, recorded in r; false. */
static bool reject_field(csv_reader *r, int f, const unsigned char *s, size_t len, long max) {
    char text[QUOTE_MAX + 4];
    if (r->line == 1 && f == 0 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        fail_at(r, r->line, f, "the file starts with a UTF-8 byte order mark (bytes EF BB BF); "
                "save it without one");
        return false;
    }
    quote_field(s, len, text);
    long v = 0;
    int kind = parse_integer(s, len, &v);
    if (kind == FIELD_EMPTY) fail_at(r, r->line, f, "empty; expected an integer 0..%ld", max);
    else if (kind == FIELD_NOT_INTEGER) fail_at(r, r->line, f, "'%s' is not an integer", text);
    else if (v < 0 || v > max) fail_at(r, r->line, f, "'%s' is out of range 0..%ld", text, max);
    else return true; /* e.g. "0042": an integer in range, only longer than usual */
    return false;
}

/* Parses field f's text into 0..max, or records the error. */
static inline bool field_value(csv_reader *r, int f, const unsigned char *s, size_t len, long max, long *v) {
    if (small_number(s, len, v) && *v <= max) return true;
    if (!reject_field(r, f, s, len, max)) return false;
    parse_integer(s, len, v);
    return true;
}

static bool make_room_for_row(csv_reader *r) {
    if (r->rows < r->capacity) return true;
    size_t cap = r->capacity ? 2 * r->capacity : 64;
    uint8_t *images = realloc(r->images, cap * DMZ_IMG_PIXELS);
    if (images) r->images = images;
    uint8_t *labels = images ? realloc(r->labels, cap) : NULL;
    if (labels) r->labels = labels;
    if (!images || !labels) {
        r->rc = dmz_errorf(r->err, DMZ_EXIT_FAIL, "%s:%zu: out of memory for %zu rows", r->path, r->line, cap);
        return false;
    }
    r->capacity = cap;
    return true;
}

static void on_field(void *text, size_t len, void *data) {
    csv_reader *r = data;
    if (r->rc) return;
    if (r->blank_line) {
        fail_at(r, r->blank_line, 0, "missing: blank line (a row has %d fields)", CSV_FIELDS);
        return;
    }
    int f = r->field++;
    long v = 0;
    if (f >= CSV_FIELDS) {
        fail_at(r, r->line, f, "unexpected: a row has %d fields (label, %d pixels)", CSV_FIELDS, DMZ_IMG_PIXELS);
    } else if (f == 0) {
        if (make_room_for_row(r) && field_value(r, f, text, len, r->max_label, &v))
            r->labels[r->rows] = (uint8_t)v;
    } else if (field_value(r, f, text, len, 255, &v)) {
        r->images[r->rows * DMZ_IMG_PIXELS + r->dest[f - 1]] = (uint8_t)v;
    }
}

static void on_row_end(int term, void *data) {
    csv_reader *r = data;
    if (r->rc) return;
    if (r->field == 0) {
        bool lf_of_crlf = term == '\n' && r->last_term == '\r';
        r->last_term = term;
        if (lf_of_crlf) return;
        if (!r->blank_line) r->blank_line = r->line;
        r->line++;
        return;
    }
    if (r->field < CSV_FIELDS) {
        fail_at(r, r->line, r->field, "missing: the row ends after %d fields, a row has %d", r->field, CSV_FIELDS);
        return;
    }
    r->rows++;
    r->field = 0;
    r->line++;
    r->last_term = term;
}

static int no_spaces(unsigned char c) { (void)c; return 0; } /* " 12" is not a number */

static int parse_stream(csv_reader *r, FILE *f) {
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL) != 0)
        return dmz_errorf(r->err, DMZ_EXIT_FAIL, "%s: csv_init failed", r->path);
    csv_set_space_func(&p, no_spaces);
    char *buf = malloc(READ_CHUNK);
    if (!buf) r->rc = dmz_errorf(r->err, DMZ_EXIT_FAIL, "%s: out of memory", r->path);
    while (buf && !r->rc) {
        size_t n = fread(buf, 1, READ_CHUNK, f);
        if (n == 0) {
            if (ferror(f)) r->rc = dmz_errorf(r->err, DMZ_EXIT_USAGE, "%s: read failed", r->path);
            break;
        }
        if ((r->rc = dmz_interrupt_check(r->err))) break; /* a big file must not outlast a Ctrl-C */
        if (csv_parse(&p, buf, n, on_field, on_row_end, r) != n)
            fail_at(r, r->line, r->field, "malformed CSV (%s)", csv_strerror(csv_error(&p)));
        if (p.entry_pos > FIELD_MAX) /* libcsv holds the unfinished field: bounded by a chunk */
            fail_at(r, r->line, r->field, "longer than %d bytes (no separator or line end in sight)", FIELD_MAX);
    }
    if (!r->rc && csv_fini(&p, on_field, on_row_end, r) != 0)
        fail_at(r, r->line, r->field, "malformed CSV (%s)", csv_strerror(csv_error(&p)));
    csv_free(&p);
    free(buf);
    return r->rc;
}

static void init_reader(csv_reader *r, const char *path, int num_classes, bool transpose, char *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->max_label = num_classes == DMZ_CLASSES_INFER ? 255 : num_classes - 1;
    for (int p = 0; p < DMZ_IMG_PIXELS; p++)
        r->dest[p] = (uint16_t)(transpose ? (p % DMZ_IMG_SIDE) * DMZ_IMG_SIDE + p / DMZ_IMG_SIDE : p);
    r->line = 1;
    r->err = err;
}

int dmz_csv_read(const char *path, int num_classes, bool transpose, dmz_owned_split *out, char *err) {
    memset(out, 0, sizeof *out);
    int fd = dmz_open_regular(path, NULL, err);
    if (fd < 0) return DMZ_EXIT_USAGE;
    int rc = ds_csv_read_fd(fd, path, num_classes, transpose, out, err);
    close(fd);
    return rc;
}

int ds_csv_read_fd(int fd, const char *path, int num_classes, bool transpose, dmz_owned_split *out, char *err) {
    memset(out, 0, sizeof *out);
    if (num_classes < 0 || num_classes > 256)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: %d classes cannot be 8-bit labels", path, num_classes);
    int own = dup(fd); /* its offset is ours: the hasher reads the same file with pread */
    FILE *f = own >= 0 ? fdopen(own, "rb") : NULL;
    if (!f) {
        if (own >= 0) close(own);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot read: %s", path, strerror(errno));
    }
    csv_reader r;
    init_reader(&r, path, num_classes, transpose, err);
    int rc = parse_stream(&r, f);
    fclose(f);
    if (rc == DMZ_OK && r.rows == 0)
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s:1: field 1 (label): missing: the file holds no rows "
                        "(expected rows of label and %d pixels)", path, DMZ_IMG_PIXELS);
    if (rc != DMZ_OK) {
        free(r.images);
        free(r.labels);
        return rc;
    }
    out->count = r.rows;
    out->images = realloc(r.images, r.rows * DMZ_IMG_PIXELS); /* shrinking cannot fail in practice */
    out->labels = realloc(r.labels, r.rows);
    if (!out->images) out->images = r.images;
    if (!out->labels) out->labels = r.labels;
    return DMZ_OK;
}
