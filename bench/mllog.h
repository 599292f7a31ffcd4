/* bench/mllog.h — MLPerf-style log lines (":::MLLOG {json}") for log.txt.
 * Internal to bench/. */
#ifndef DMZ_MLLOG_H
#define DMZ_MLLOG_H

#include <stdio.h>

typedef struct dmz_mllog {
    FILE *f;
} dmz_mllog;

/* event: "POINT_IN_TIME", "INTERVAL_START" or "INTERVAL_END". step and rep < 0: omitted. */
void dmz_mllog_number(dmz_mllog *log, const char *event, const char *key, double value, int rep, int step,
                      const char *file, int line);
void dmz_mllog_string(dmz_mllog *log, const char *event, const char *key, const char *value, int rep,
                      int step, const char *file, int line);

#define MLLOG_NUM(log, key, v, rep, step) \
    dmz_mllog_number(log, "POINT_IN_TIME", key, v, rep, step, __FILE__, __LINE__)
#define MLLOG_STR(log, key, v) dmz_mllog_string(log, "POINT_IN_TIME", key, v, -1, -1, __FILE__, __LINE__)
#define MLLOG_START(log, key, rep) dmz_mllog_string(log, "INTERVAL_START", key, NULL, rep, -1, __FILE__, __LINE__)
#define MLLOG_END(log, key, rep, status) \
    dmz_mllog_string(log, "INTERVAL_END", key, status, rep, -1, __FILE__, __LINE__)

#endif
