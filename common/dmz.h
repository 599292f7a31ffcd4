/* common/dmz.h — the few things every folder shares: exit codes, error messages,
 * clocks, a seeded random generator and the "may I draw progress?" rule.
 *
 * Errors: a function that can fail returns DMZ_OK (0) or the exit code the
 * process should end with (DMZ_EXIT_FAIL: the run failed; DMZ_EXIT_USAGE: bad
 * usage or bad input), and writes one line into a caller-provided buffer of
 * DMZ_ERR_LEN bytes that names the file, line and field where it can. */
#ifndef DMZ_COMMON_H
#define DMZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stat;

enum { DMZ_OK = 0, DMZ_EXIT_FAIL = 1, DMZ_EXIT_USAGE = 2 };
#define DMZ_ERR_LEN 1024

/* Writes the formatted message into err (if non-NULL) and returns code. */
int dmz_errorf(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

double dmz_now_s(void);   /* CLOCK_MONOTONIC seconds: for durations */
double dmz_epoch_s(void); /* CLOCK_REALTIME seconds: for time stamps */
void dmz_utc_stamp(char *out, size_t len, const char *fmt); /* strftime of now, UTC */

/* xoshiro256** seeded through splitmix64: same seed, same sequence, every platform. */
typedef struct { uint64_t s[4]; } dmz_rng;
void dmz_rng_seed(dmz_rng *rng, uint64_t seed);
uint64_t dmz_rng_next(dmz_rng *rng);
uint32_t dmz_rng_below(dmz_rng *rng, uint32_t n);   /* uniform in [0, n), unbiased */
double dmz_rng_uniform(dmz_rng *rng);               /* uniform in [0, 1) */
double dmz_rng_normal(dmz_rng *rng);                /* standard normal (Box-Muller) */
/* TensorFlow's truncated_normal: N(0, stddev^2), values beyond 2 stddev redrawn. */
float dmz_rng_truncated_normal(dmz_rng *rng, float stddev);
/* Fisher-Yates shuffle of idx[0..n). */
void dmz_rng_shuffle(dmz_rng *rng, uint32_t *idx, size_t n);

/* Progress lines go to stderr only when it is a terminal, CI is not set and
 * the user did not ask for --quiet. */
bool dmz_progress_enabled(bool quiet);

/* A time left for progress lines: "h:mm:ss", or "--" when unknown (negative, NaN, > 99 h). */
void dmz_format_eta(double seconds, char *out, size_t len);

/* Writes `len` bytes to `path` atomically: `path.tmp.PID`, fsync, rename. */
int dmz_write_file_atomic(const char *path, const void *data, size_t len, char *err);
/* Removes the files in `dir` named "...<tag><PID>" (tag e.g. ".tmp.") that a
 * killed process left: PID gone and the file older than grace_s (0: any age,
 * for callers that hold the lock its writers take). Says so on stderr; warns
 * about such a file older than an hour whose PID still runs. */
void dmz_clean_stale_tmp(const char *dir, const char *tag, double grace_s);
/* Reads a whole file into a malloc'd, NUL-terminated buffer (*len may be NULL).
 * Cannot open, or larger than max_bytes: DMZ_EXIT_USAGE; a read error: DMZ_EXIT_FAIL. */
int dmz_read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *err);
/* Opens path for reading only when it is a regular file: a FIFO, device,
 * socket or directory is refused (DMZ_EXIT_USAGE, "PATH: not a regular file
 * (a FIFO)") before anything could block on it. Returns the descriptor (>= 0,
 * O_CLOEXEC, blocking) and fills *st when st is non-NULL; -1 with err set. */
int dmz_open_regular(const char *path, struct stat *st, char *err);
/* "a FIFO", "a directory", "a character device", ... for a st_mode. */
const char *dmz_file_kind(unsigned mode);
/* mkdir -p */
int dmz_mkdirs(const char *path, char *err);

#endif
