/* bench/report_csv.c — the runner's CSV files as tables of strings, read
 * with common/csvio (libcsv, RFC 4180) so that errors can name the line. */
#include "bench/report_impl.h"

#include "common/csvio.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct table_state {
    rpt_table *table;
    bool have_header;
    size_t rows_cap;
} table_state;

static int on_row(void *user, char **fields, int n, long line, char *err) {
    table_state *st = user;
    rpt_table *t = st->table;
    if (!st->have_header) {
        t->header = calloc((size_t)n, sizeof *t->header);
        if (!t->header) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
        for (int i = 0; i < n; i++) {
            if (!(t->header[i] = strdup(fields[i]))) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
            t->ncols = i + 1;
        }
        st->have_header = true;
        return DMZ_OK;
    }
    if (n != t->ncols)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld: %d fields, but the header has %d", t->path, line, n,
                          t->ncols);
    if (t->nrows == st->rows_cap) {
        size_t cap = st->rows_cap ? 2 * st->rows_cap : 64;
        char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof *cells);
        if (!cells) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
        t->cells = cells;
        long *lines = realloc(t->line, cap * sizeof *lines);
        if (!lines) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
        t->line = lines;
        st->rows_cap = cap;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int i = 0; i < n; i++) {
        row[i] = strdup(fields[i]);
        if (!row[i]) {
            while (i-- > 0) free(row[i]);
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
        }
    }
    t->line[t->nrows++] = line;
    return DMZ_OK;
}

/* RFC 4180 through common/csvio (quoted fields, lines capped, a FIFO refused). */
int rpt_table_read(const char *path, rpt_table *t, char *err) {
    memset(t, 0, sizeof *t);
    rpt_copy(t->path, sizeof t->path, path);
    table_state st = {.table = t};
    int rc = dmz_csv_each_row(path, on_row, &st, err);
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
