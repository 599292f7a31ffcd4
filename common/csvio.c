/* common/csvio.c — RFC 4180 fields out, records in (libcsv); see csvio.h. */
#include "common/csvio.h"

#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dmz.h"

bool dmz_csv_needs_quotes(const char *s) {
    if (!s || !*s) return false;
    size_t n = strlen(s);
    return strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t';
}

int dmz_csv_write_field(FILE *f, const char *s) {
    if (!s) s = "";
    if (!dmz_csv_needs_quotes(s)) return fputs(s, f) < 0 ? EOF : 0;
    return csv_fwrite(f, s, strlen(s)) == 0 && !ferror(f) ? 0 : EOF;
}

int dmz_csv_write_row(FILE *f, const char *const *fields, int n) {
    if (n == 1 && (!fields[0] || !*fields[0])) /* one empty field: an empty line would be no record */
        return fputs("\"\"\n", f) < 0 ? EOF : 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && fputc(',', f) == EOF) return EOF;
        if (dmz_csv_write_field(f, fields[i]) != 0) return EOF;
    }
    return fputc('\n', f) == EOF ? EOF : 0;
}

typedef struct reader {
    const char *path;
    dmz_csv_row_fn fn;
    void *user;
    char **fields;
    int n, cap;
    long line, record_line; /* the line being read; where the record began (0: none yet) */
    int status;
    char *err;
} reader;

static void on_field(void *data, size_t len, void *opaque) {
    reader *r = opaque;
    if (r->status) return;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        char **grown = realloc(r->fields, (size_t)cap * sizeof *grown);
        if (!grown) {
            r->status = dmz_errorf(r->err, DMZ_EXIT_FAIL, "%s: out of memory", r->path);
            return;
        }
        r->fields = grown;
        r->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        r->status = dmz_errorf(r->err, DMZ_EXIT_FAIL, "%s: out of memory", r->path);
        return;
    }
    if (len) memcpy(copy, data, len);
    copy[len] = '\0';
    if (r->n == 0 && !r->record_line) r->record_line = r->line;
    r->fields[r->n++] = copy;
}

static void drop(reader *r) {
    for (int i = 0; i < r->n; i++) free(r->fields[i]);
    r->n = 0;
    r->record_line = 0;
}

static void on_record(int term, void *opaque) {
    reader *r = opaque;
    (void)term;
    if (!r->status && r->n > 0) r->status = r->fn(r->user, r->fields, r->n, r->record_line, r->err);
    drop(r);
}

/* One physical line of at most DMZ_CSV_LINE_MAX bytes; 0 at the end, -1 longer. */
static long read_line(FILE *f, char *buf) {
    long n = 0;
    int c;
    while (n < DMZ_CSV_LINE_MAX && (c = getc_unlocked(f)) != EOF) {
        buf[n++] = (char)c;
        if (c == '\n') return n;
    }
    return n == DMZ_CSV_LINE_MAX ? -1 : n;
}

int dmz_csv_each_row(const char *path, dmz_csv_row_fn fn, void *user, char *err) {
    int fd = dmz_open_regular(path, NULL, err);
    if (fd < 0) return DMZ_EXIT_USAGE;
    FILE *f = fdopen(fd, "r");
    char *buf = f ? malloc(DMZ_CSV_LINE_MAX) : NULL;
    struct csv_parser p;
    if (!buf || csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        free(buf);
        if (f) fclose(f);
        else close(fd);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    reader r = {.path = path, .fn = fn, .user = user, .err = err};
    long n;
    while (!r.status && (n = read_line(f, buf)) != 0) {
        r.line++;
        if (n < 0) {
            r.status = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld: longer than %d bytes", path, r.line,
                                  DMZ_CSV_LINE_MAX);
        } else if (csv_parse(&p, buf, (size_t)n, on_field, on_record, &r) != (size_t)n && !r.status) {
            r.status = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld, field %d: %s", path, r.line, r.n + 1,
                                  csv_strerror(csv_error(&p)));
        } else if (!r.status && p.entry_pos > DMZ_CSV_LINE_MAX) {
            r.status = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld, field %d: longer than %d bytes", path,
                                  r.line, r.n + 1, DMZ_CSV_LINE_MAX);
        }
    }
    if (!r.status && ferror(f)) r.status = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: read failed", path);
    if (!r.status && csv_fini(&p, on_field, on_record, &r) != 0)
        r.status = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld: %s (a quoted field never ends)", path, r.line,
                              csv_strerror(csv_error(&p)));
    drop(&r);
    free(r.fields);
    csv_free(&p);
    free(buf);
    fclose(f);
    return r.status;
}
