/* `dmzbench info`: what this machine and this build can do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "net/comm.h"
#include "common/dmz.h"
#include "datasets/datasets.h"
#include "kernels/backend.h"
#include "meta.h"

static void print_host(void) {
    cJSON *h = dmz_meta_host();
    printf("host\n");
    for (cJSON *it = h->child; it; it = it->next) {
        if (cJSON_IsString(it)) printf("  %-20s %s\n", it->string, it->valuestring);
        else printf("  %-20s %.0f\n", it->string, it->valuedouble);
    }
    cJSON_Delete(h);
}

static void print_backends(void) {
    printf("backends\n");
    for (int i = 0; dmz_backend_names[i]; i++) {
        char err[DMZ_ERR_LEN] = "", desc[256] = "";
        const dmz_backend *be = dmz_backend_get(dmz_backend_names[i], err);
        if (be) be->describe(desc, sizeof desc);
        printf("  %-8s %s\n", dmz_backend_names[i], be ? desc : err);
    }
}

static void print_datasets(void) {
    static const char *const names[] = {"emnist-balanced", "fashion-mnist", NULL};
    printf("data sets (data dir %s)\n", dmz_data_dir(NULL));
    for (int i = 0; names[i]; i++) {
        dmz_load_options opt;
        dmz_load_options_default(&opt);
        opt.allow_fallback = false;
        dmz_dataset ds;
        char err[DMZ_ERR_LEN];
        if (dmz_dataset_load(names[i], &opt, &ds, err) == DMZ_OK) {
            printf("  %-16s %zu train / %zu test, %s, sha256 %.16s...\n", names[i], ds.train.count,
                   ds.test.count, ds.source, ds.sha256);
            dmz_dataset_free(&ds);
        } else {
            printf("  %-16s missing: %s\n", names[i], err);
        }
    }
}

static void print_gpus(void) {
    printf("gpus\n");
    cJSON *gpus = dmz_meta_gpus();
    if (cJSON_IsString(gpus)) printf("  %s\n", gpus->valuestring);
    cJSON *g;
    cJSON_ArrayForEach(g, gpus) {
        char *text = cJSON_PrintUnformatted(g);
        printf("  %s\n", text);
        free(text);
    }
    cJSON_Delete(gpus);
}

int dmz_info_main(void) {
    print_host();
    print_backends();
    print_gpus();
    char why[512];
    printf("cross-site\n");
    int mpi = dmz_comm_mpi_built(why, sizeof why);
    printf("  %-8s %s%s\n", "mpi", mpi ? "" : "unavailable: ", why);
    int nccl = dmz_comm_nccl_built(why, sizeof why);
    printf("  %-8s %s%s\n", "nccl", nccl ? "" : "unavailable: ", why);
    printf("counters\n");
    printf("  %-8s unavailable: PAPI support is not built yet\n", "papi");
    printf("  %-8s unavailable: NVML support is not built yet\n", "nvml");
    printf("topology\n  unavailable: hwloc support is not built yet\n");
    print_datasets();
    return DMZ_OK;
}
