/* tests/fuzz/fuzz_csvio.c — common/csvio: any bytes are read as records or
 * refused naming the file; every record read, written back with
 * dmz_csv_write_row and read again, gives the same fields (RFC 4180 round trip). */
#include "tests/fuzz/fuzz.h"

#include "common/csvio.h"
#include "common/dmz.h"

typedef struct rows {
    char *text; /* the records written back */
    size_t len;
    FILE *out;
    int n;
    char ***fields;
    int *counts;
} rows;

static int keep(void *user, char **fields, int n, long line, char *err) {
    (void)line, (void)err;
    rows *r = user;
    if (dmz_csv_write_row(r->out, (const char *const *)fields, n) != 0) abort();
    r->fields = realloc(r->fields, (size_t)(r->n + 1) * sizeof *r->fields);
    r->counts = realloc(r->counts, (size_t)(r->n + 1) * sizeof *r->counts);
    r->fields[r->n] = malloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) r->fields[r->n][i] = strdup(fields[i]);
    r->counts[r->n++] = n;
    return 0;
}

typedef struct again { const rows *first; int n; } again;

static int compare(void *user, char **fields, int n, long line, char *err) {
    (void)line, (void)err;
    again *a = user;
    if (a->n >= a->first->n || n != a->first->counts[a->n]) abort();
    for (int i = 0; i < n; i++)
        if (strcmp(fields[i], a->first->fields[a->n][i]) != 0) abort();
    a->n++;
    return 0;
}

static void free_rows(rows *r) {
    for (int k = 0; k < r->n; k++) {
        for (int i = 0; i < r->counts[k]; i++) free(r->fields[k][i]);
        free(r->fields[k]);
    }
    free(r->fields);
    free(r->counts);
    free(r->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memchr(data, '\0', size)) return 0; /* a C string API: NUL cannot round-trip */
    char path[64], err[DMZ_ERR_LEN];
    int fd = fuzz_file(data, size, path);
    if (fd < 0) return 0;
    rows r = {0};
    r.out = open_memstream(&r.text, &r.len);
    int rc = dmz_csv_each_row(path, keep, &r, err);
    fclose(r.out);
    close(fd);
    if (rc != DMZ_OK) {
        if (!strstr(err, path)) abort();
    } else {
        int fd2 = fuzz_file((const uint8_t *)r.text, r.len, path);
        if (fd2 >= 0) {
            again a = {&r, 0};
            if (dmz_csv_each_row(path, compare, &a, err) != DMZ_OK || a.n != r.n) abort();
            close(fd2);
        }
    }
    free_rows(&r);
    return 0;
}
