/* common/csvio.h — RFC 4180 CSV for the result files (summary.csv, index.csv,
 * stats.csv, steps.csv, fig-*.csv): a field writer that quotes only what needs
 * it, and a row reader that takes quoted fields back, both on libcsv.
 *
 * Writing: a field holding a comma, a double quote, CR or LF, or starting or
 * ending with a space, is written quoted with its quotes doubled (libcsv's
 * csv_fwrite): `my "best", run` -> `"my ""best"", run"`. Anything else is
 * written as it is, so numbers and NA stay unquoted for gnuplot and awk.
 * Rows end with "\n".
 *
 * Reading: dmz_csv_each_row calls a function per record with its fields
 * unquoted; a record may span lines (a quoted newline). Lines are capped at
 * DMZ_CSV_LINE_MAX bytes and so are fields, so a broken file is never
 * buffered whole; errors name the file and line (DMZ_EXIT_USAGE). */
#ifndef DMZ_COMMON_CSVIO_H
#define DMZ_COMMON_CSVIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DMZ_CSV_LINE_MAX (1 << 20)

/* true when s must be quoted to stay one field */
bool dmz_csv_needs_quotes(const char *s);
/* One field (NULL: empty); 0, or EOF when the stream failed. */
int dmz_csv_write_field(FILE *f, const char *s);
/* n fields separated by commas, then "\n"; 0 or EOF. */
int dmz_csv_write_row(FILE *f, const char *const *fields, int n);

/* Called per record: fields[0..n) (NUL-terminated, unquoted; valid during the
 * call only), line = the 1-based line where its first field ended. A non-zero
 * return stops the reading and is returned (err is the callee's to fill). */
typedef int (*dmz_csv_row_fn)(void *user, char **fields, int n, long line, char *err);
/* Reads path (a regular file) record by record. DMZ_OK; DMZ_EXIT_USAGE naming
 * file and line (cannot open, malformed quoting, a line or field too long);
 * or what fn returned. */
int dmz_csv_each_row(const char *path, dmz_csv_row_fn fn, void *user, char *err);

#endif
