/* bench/rank_devices.c — every rank's device, gathered at rank 0 into
 * meta.json's mpi.ranks[i].device (and device_match), so that the report of a
 * cross-site run can say which GPU each site had. A rank's device: the first
 * GPU its process sees for a GPU backend (with the count when there are
 * several), else "cpu: <CPU model>". One broadcast per rank, at start. */
#include "bench/devices.h"
#include "bench/meta.h"
#include "bench/rank_devices.h"

#include <stdio.h>
#include <string.h>

#define DEVICE_LEN 256

static void my_device(const char *backend, char *out, size_t len) {
    if (strcmp(backend, "cpu") != 0) {
        cJSON *gpus = dmz_meta_gpus();
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(gpus, 0), "name");
        int n = cJSON_IsArray(gpus) ? cJSON_GetArraySize(gpus) : 0;
        if (cJSON_IsString(name) && n > 1) snprintf(out, len, "%.200s (first of %d GPUs)", name->valuestring, n);
        else if (cJSON_IsString(name)) snprintf(out, len, "%.200s", name->valuestring);
        else snprintf(out, len, "no GPU: %.200s", cJSON_IsString(gpus) ? gpus->valuestring : "none listed");
        cJSON_Delete(gpus);
        return;
    }
    cJSON *host = dmz_meta_host();
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(host, "cpu_model");
    snprintf(out, len, "cpu: %.200s", cJSON_IsString(model) ? model->valuestring : "unknown");
    cJSON_Delete(host);
}

int dmz_ranks_add_devices(dmz_comm *c, const char *backend, cJSON *mpi, char *err) {
    char mine[DEVICE_LEN], buf[DEVICE_LEN];
    my_device(backend, mine, sizeof mine);
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(mpi, "ranks");
    for (int r = 0; r < c->size; r++) {
        memset(buf, 0, sizeof buf);
        if (r == c->rank) memcpy(buf, mine, sizeof buf);
        int rc = c->bcast(c, buf, sizeof buf, r, err);
        if (rc) return rc;
        buf[DEVICE_LEN - 1] = '\0';
        cJSON *o = cJSON_GetArrayItem(ranks, r);
        if (!o) continue; /* not rank 0, or no mpi object */
        cJSON_AddStringToObject(o, "device", buf);
        cJSON *gpu = cJSON_CreateArray();
        cJSON *one = cJSON_CreateObject();
        cJSON_AddStringToObject(one, "name", buf);
        cJSON_AddItemToArray(gpu, one);
        cJSON_AddItemToObject(o, "device_match", strncmp(buf, "cpu: ", 5) == 0
                                  ? cJSON_CreateString("unmatched: a CPU (the table lists GPUs)")
                                  : dmz_devices_meta_match(gpu));
        cJSON_Delete(gpu);
    }
    return 0;
}
