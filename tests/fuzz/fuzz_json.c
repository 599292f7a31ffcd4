/* tests/fuzz/fuzz_json.c — FETCHED.json read back by `dmzbench fetch`
 * (dmz_fetched_load: cJSON, anything but an object starts again), then
 * updated and printed as a fetch does. */
#include "tests/fuzz/fuzz.h"

#include <cjson/cJSON.h>

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path);
    if (fd < 0) return 0;
    cJSON *rec = dmz_fetched_load(path);
    if (!cJSON_IsObject(rec)) abort();
    dmz_fetched_add_file(rec, "emnist-balanced-train.csv", "url", 1234, "00");
    dmz_fetched_add_file(rec, "emnist-balanced-train.csv", "url", 1235, "01"); /* replaces */
    cJSON *files = cJSON_GetObjectItemCaseSensitive(rec, "files");
    cJSON *e = cJSON_GetObjectItemCaseSensitive(files, "emnist-balanced-train.csv");
    if (!cJSON_IsObject(e) || cJSON_GetNumberValue(cJSON_GetObjectItem(e, "bytes")) != 1235) abort();
    char *text = cJSON_PrintUnformatted(rec);
    if (text) {
        cJSON *again = cJSON_Parse(text); /* what is written parses */
        if (!again) abort();
        cJSON_Delete(again);
    }
    cJSON_free(text);
    cJSON_Delete(rec);
    close(fd);
    return 0;
}
