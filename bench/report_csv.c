/* bench/report_csv.c — the runner's CSV files as tables of strings, read
 * with libcsv one physical line at a time so that errors can name the line. */
#include "bench/report_impl.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct csv_state {
    rpt_table *table;
    char **fields;   /* the record being read */
    int nfields, cap;
    long line;
    bool have_header;
    size_t rows_cap;
    int status;
    char *err;
} csv_state;

static int fail_oom(csv_state *st) {
    st->status = dmz_errorf(st->err, DMZ_EXIT_FAIL, "%s: out of memory", st->table->path);
    return st->status;
}

static void on_field(void *data, size_t len, void *opaque) {
    csv_state *st = opaque;
    if (st->status != DMZ_OK) return;
    if (st->nfields == st->cap) {
        int cap = st->cap ? 2 * st->cap : 32;
        char **grown = realloc(st->fields, (size_t)cap * sizeof *grown);
        if (!grown) { fail_oom(st); return; }
        st->fields = grown;
        st->cap = cap;
    }
    char *copy = strndup(data ? data : "", len);
    if (!copy) { fail_oom(st); return; }
    st->fields[st->nfields++] = copy;
}

static void drop_fields(csv_state *st) {
    for (int i = 0; i < st->nfields; i++) free(st->fields[i]);
    st->nfields = 0;
}

static int append_row(csv_state *st) {
    rpt_table *t = st->table;
    if (t->nrows == st->rows_cap) {
        size_t cap = st->rows_cap ? 2 * st->rows_cap : 64;
        char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof *cells);
        if (!cells) return fail_oom(st);
        t->cells = cells;
        long *lines = realloc(t->line, cap * sizeof *lines);
        if (!lines) return fail_oom(st);
        t->line = lines;
        st->rows_cap = cap;
    }
    memcpy(t->cells + t->nrows * (size_t)t->ncols, st->fields, (size_t)t->ncols * sizeof(char *));
    t->line[t->nrows++] = st->line;
    st->nfields = 0; /* the row owns the strings now */
    return DMZ_OK;
}

static void on_record(int terminator, void *opaque) {
    csv_state *st = opaque;
    rpt_table *t = st->table;
    if (st->status != DMZ_OK) return;
    if (!st->have_header) {
        t->header = st->fields;
        t->ncols = st->nfields;
        st->fields = NULL;
        st->nfields = st->cap = 0;
        st->have_header = true;
        return;
    }
    if (st->nfields != t->ncols) {
        st->status = dmz_errorf(st->err, DMZ_EXIT_USAGE,
                                "%s: line %ld: %d fields, but the header has %d", t->path,
                                st->line, st->nfields, t->ncols);
        drop_fields(st);
        return;
    }
    append_row(st);
}

/* Reads one physical line (with its '\n') of at most LINE_MAX bytes into buf;
 * 0 at the end, -1 when the line is longer (a result file never is: a broken or
 * foreign one must not be buffered whole). */
enum { LINE_MAX_BYTES = 1 << 20 };
static ssize_t read_line(FILE *f, char *buf) {
    size_t n = 0;
    int c;
    while (n < LINE_MAX_BYTES && (c = getc_unlocked(f)) != EOF) {
        buf[n++] = (char)c;
        if (c == '\n') return (ssize_t)n;
    }
    return n == LINE_MAX_BYTES ? -1 : (ssize_t)n;
}

static int parse_lines(FILE *f, struct csv_parser *p, csv_state *st) {
    char *buf = malloc(LINE_MAX_BYTES);
    if (!buf) return fail_oom(st);
    ssize_t n;
    while (st->status == DMZ_OK && (n = read_line(f, buf)) != 0) {
        st->line++;
        if (n < 0) {
            st->status = dmz_errorf(st->err, DMZ_EXIT_USAGE, "%s: line %ld: longer than %d bytes",
                                    st->table->path, st->line, LINE_MAX_BYTES);
            break;
        }
        size_t done = csv_parse(p, buf, (size_t)n, on_field, on_record, st);
        if (done != (size_t)n && st->status == DMZ_OK)
            st->status = dmz_errorf(st->err, DMZ_EXIT_USAGE, "%s: line %ld, column %d: %s",
                                    st->table->path, st->line, st->nfields + 1,
                                    csv_strerror(csv_error(p)));
        if (st->status == DMZ_OK && p->entry_pos > LINE_MAX_BYTES) /* a quoted field over many lines */
            st->status = dmz_errorf(st->err, DMZ_EXIT_USAGE, "%s: line %ld, column %d: a field longer "
                                    "than %d bytes", st->table->path, st->line, st->nfields + 1,
                                    LINE_MAX_BYTES);
    }
    if (ferror(f) && st->status == DMZ_OK)
        st->status = dmz_errorf(st->err, DMZ_EXIT_USAGE, "%s: read failed", st->table->path);
    free(buf);
    if (st->status == DMZ_OK && csv_fini(p, on_field, on_record, st) != 0)
        st->status = dmz_errorf(st->err, DMZ_EXIT_USAGE, "%s: line %ld: %s", st->table->path,
                                st->line, csv_strerror(csv_error(p)));
    return st->status;
}

int rpt_table_read(const char *path, rpt_table *t, char *err) {
    memset(t, 0, sizeof *t);
    rpt_copy(t->path, sizeof t->path, path);
    int fd = dmz_open_regular(path, NULL, err); /* a FIFO would block the report */
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return fd >= 0 ? dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path) : DMZ_EXIT_USAGE;
    }
    struct csv_parser parser;
    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        fclose(f);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot start the CSV parser", path);
    }
    csv_state st = {.table = t, .err = err};
    int rc = parse_lines(f, &parser, &st);
    csv_free(&parser);
    fclose(f);
    drop_fields(&st);
    free(st.fields);
    if (rc == DMZ_OK && !st.have_header)
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line 1: empty file, expected a header row", path);
    if (rc != DMZ_OK) rpt_table_free(t);
    return rc;
}

void rpt_table_free(rpt_table *t) {
    for (int i = 0; i < t->ncols && t->header; i++) free(t->header[i]);
    for (size_t i = 0; t->cells && i < t->nrows * (size_t)t->ncols; i++) free(t->cells[i]);
    free(t->header);
    free(t->cells);
    free(t->line);
    t->header = NULL;
    t->cells = NULL;
    t->line = NULL;
    t->nrows = 0;
    t->ncols = 0;
}

int rpt_table_col(const rpt_table *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->header[i], name) == 0) return i;
    return -1;
}

const char *rpt_table_cell(const rpt_table *t, size_t row, int col) {
    if (col < 0 || col >= t->ncols || row >= t->nrows) return "NA";
    return t->cells[row * (size_t)t->ncols + (size_t)col];
}

int rpt_table_num(const rpt_table *t, size_t row, int col, double *out, char *err) {
    *out = NAN;
    const char *s = rpt_table_cell(t, row, col);
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '\0' || strcmp(s, "NA") == 0) return DMZ_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "%s: line %ld, column %d (%s): '%s' is not a number (nor NA)", t->path,
                          t->line[row], col + 1, t->header[col], rpt_table_cell(t, row, col));
    *out = v;
    return DMZ_OK;
}

int rpt_table_require(const rpt_table *t, const char *const *names, char *err) {
    for (; *names; names++)
        if (rpt_table_col(t, *names) < 0)
            return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line 1: no column '%s' in the header",
                              t->path, *names);
    return DMZ_OK;
}

int rpt_table_check_numeric(const rpt_table *t, const char *const *names, char *err) {
    for (; *names; names++) {
        int col = rpt_table_col(t, *names);
        if (col < 0) continue;
        for (size_t r = 0; r < t->nrows; r++) {
            double v;
            int rc = rpt_table_num(t, r, col, &v, err);
            if (rc != DMZ_OK) return rc;
        }
    }
    return DMZ_OK;
}
