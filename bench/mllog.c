#include "mllog.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "common/dmz.h"

static void emit(dmz_mllog *log, const char *event, const char *key, cJSON *value, int rep, int step,
                 const char *file, int line) {
    if (!log || !log->f) {
        cJSON_Delete(value);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "namespace", "");
    cJSON_AddNumberToObject(o, "time_ms", floor(dmz_epoch_s() * 1000.0));
    cJSON_AddStringToObject(o, "event_type", event);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddItemToObject(o, "value", value);
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(meta, "file", file);
    cJSON_AddNumberToObject(meta, "lineno", line);
    if (rep >= 0) cJSON_AddNumberToObject(meta, "rep", rep);
    if (step >= 0) cJSON_AddNumberToObject(meta, "step_num", step);
    char *text = cJSON_PrintUnformatted(o);
    if (text) fprintf(log->f, ":::MLLOG %s\n", text);
    fflush(log->f); /* a watcher (or a crash) sees every line as it happens */
    free(text);
    cJSON_Delete(o);
}

void dmz_mllog_number(dmz_mllog *log, const char *event, const char *key, double value, int rep, int step,
                      const char *file, int line) {
    emit(log, event, key, isfinite(value) ? cJSON_CreateNumber(value) : cJSON_CreateNull(), rep, step,
         file, line);
}

void dmz_mllog_string(dmz_mllog *log, const char *event, const char *key, const char *value, int rep,
                      int step, const char *file, int line) {
    emit(log, event, key, value ? cJSON_CreateString(value) : cJSON_CreateNull(), rep, step, file, line);
}
