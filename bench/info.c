/* `dmzbench info [--json]`: what this machine and this build can do: host,
 * backends, GPUs, cross-site transports, counters (each available or why
 * not), topology and binding, data sets. One JSON document; the text form is
 * printed from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "common/dmz.h"
#include "counters/counters.h"
#include "datasets/datasets.h"
#include "kernels/backend.h"
#include "meta.h"
#include "net/comm.h"

static cJSON *backends_json(void) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; dmz_backend_names[i]; i++) {
        char err[DMZ_ERR_LEN] = "", desc[256] = "";
        const dmz_backend *be = dmz_backend_get(dmz_backend_names[i], err);
        if (be) be->describe(desc, sizeof desc);
        cJSON_AddItemToObject(o, dmz_backend_names[i], be ? cJSON_CreateString(desc) : dmz_ctr_unavailable(err));
    }
    return o;
}

static cJSON *datasets_json(void) {
    static const char *const names[] = {"emnist-balanced", "fashion-mnist", NULL};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data_dir", dmz_data_dir(NULL));
    for (int i = 0; names[i]; i++) {
        dmz_load_options opt;
        dmz_load_options_default(&opt);
        opt.allow_fallback = false;
        dmz_dataset ds;
        char err[DMZ_ERR_LEN], text[600];
        if (dmz_dataset_load(names[i], &opt, &ds, err) == DMZ_OK) {
            snprintf(text, sizeof text, "%zu train / %zu test, %.400s, sha256 %.16s...", ds.train.count, ds.test.count,
                     ds.source, ds.sha256);
            dmz_dataset_free(&ds);
        } else {
            snprintf(text, sizeof text, "missing: %.560s", err);
        }
        cJSON_AddStringToObject(o, names[i], text);
    }
    return o;
}

static cJSON *transport(int built, const char *why) {
    return built ? cJSON_CreateString(why) : dmz_ctr_unavailable(why);
}

static cJSON *counters_json(void) {
    cJSON *o = cJSON_CreateObject();
    char why[DMZ_CTR_REASON_LEN];
    int hw = dmz_counters_enabled("hwloc", why, sizeof why);
    cJSON_AddItemToObject(o, "hwloc", hw ? cJSON_CreateString("built: topology and --bind") : dmz_ctr_unavailable(why));
    dmz_papi_open(NULL, 1); /* what a run would get: the default events on one thread */
    cJSON_AddItemToObject(o, "papi", dmz_papi_json());
    dmz_papi_close();
    cJSON_AddItemToObject(o, "nvml", dmz_nvml_json());
    int cu = dmz_cupti_built(why, sizeof why);
    cJSON_AddItemToObject(o, "cupti", cu ? cJSON_CreateString("built: libcupti is loaded at run time by cuda runs")
                                         : dmz_ctr_unavailable(why));
    return o;
}

static cJSON *binding_json(void) {
    cJSON *o = cJSON_CreateObject();
    char set[256];
    dmz_current_cpuset(set, sizeof set);
    cJSON_AddStringToObject(o, "cpuset_now", set);
    int lr, ls;
    dmz_local_rank(&lr, &ls);
    cJSON_AddNumberToObject(o, "local_rank", lr);
    cJSON_AddNumberToObject(o, "local_size", ls);
    return o;
}

static cJSON *info_json(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "host", dmz_meta_host());
    cJSON_AddItemToObject(o, "backends", backends_json());
    cJSON_AddItemToObject(o, "gpus", dmz_meta_gpus());
    cJSON *x = cJSON_AddObjectToObject(o, "cross_site");
    char why[512];
    int mpi = dmz_comm_mpi_built(why, sizeof why);
    cJSON_AddItemToObject(x, "mpi", transport(mpi, why));
    int nccl = dmz_comm_nccl_built(why, sizeof why);
    cJSON_AddItemToObject(x, "nccl", transport(nccl, why));
    cJSON_AddItemToObject(o, "counters", counters_json());
    cJSON_AddItemToObject(o, "topology", dmz_topology_json());
    cJSON_AddItemToObject(o, "binding", binding_json());
    cJSON_AddItemToObject(o, "datasets", datasets_json());
    return o;
}

/* ------------------------------------------------------------ text */
static void print_value(const char *key, const cJSON *v, int indent) {
    if (cJSON_IsString(v)) {
        printf("%*s%-20s %s\n", indent, "", key, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        printf("%*s%-20s %.10g\n", indent, "", key, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        printf("%*s%-20s %s\n", indent, "", key, cJSON_IsTrue(v) ? "yes" : "no");
    } else if (cJSON_IsNull(v)) {
        printf("%*s%-20s NA\n", indent, "", key);
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        char *text = cJSON_PrintUnformatted(v);
        printf("%*s%-20s %s\n", indent, "", key, text);
        free(text);
    }
}

static void print_section(const char *title, const cJSON *o) {
    printf("%s\n", title);
    if (cJSON_IsString(o)) {
        printf("  %s\n", o->valuestring);
        return;
    }
    for (const cJSON *it = o ? o->child : NULL; it; it = it->next) print_value(it->string, it, 2);
}

static void print_gpus(const cJSON *gpus) {
    printf("gpus\n");
    if (cJSON_IsString(gpus)) {
        printf("  %s\n", gpus->valuestring);
        return;
    }
    const cJSON *g;
    cJSON_ArrayForEach(g, gpus) {
        if (cJSON_IsString(g)) {
            printf("  %s\n", g->valuestring);
            continue;
        }
        const cJSON *name = cJSON_GetObjectItem(g, "name"), *idx = cJSON_GetObjectItem(g, "index");
        printf("  device %d: %s\n", idx ? idx->valueint : -1, cJSON_IsString(name) ? name->valuestring : "?");
        for (const cJSON *it = g->child; it; it = it->next)
            if (strcmp(it->string, "name") && strcmp(it->string, "index")) print_value(it->string, it, 4);
    }
}

static void print_nvml(const cJSON *nvml) {
    if (cJSON_IsString(nvml)) {
        printf("  %-8s %s\n", "nvml", nvml->valuestring);
        return;
    }
    const cJSON *drv = cJSON_GetObjectItem(nvml, "driver_version"), *lib = cJSON_GetObjectItem(nvml, "library");
    printf("  %-8s %s, driver %s\n", "nvml", cJSON_IsString(lib) ? lib->valuestring : "?",
           cJSON_IsString(drv) ? drv->valuestring : "?");
    const cJSON *devs = cJSON_GetObjectItem(nvml, "devices"), *d;
    if (cJSON_IsString(devs)) printf("           devices: %s\n", devs->valuestring);
    if (!cJSON_IsArray(devs)) return;
    cJSON_ArrayForEach(d, devs) {
        char *text = cJSON_PrintUnformatted(d);
        printf("           %s\n", text);
        free(text);
    }
}

static void print_text(const cJSON *o) {
    print_section("host", cJSON_GetObjectItem(o, "host"));
    printf("backends\n");
    for (const cJSON *it = cJSON_GetObjectItem(o, "backends")->child; it; it = it->next)
        printf("  %-8s %s\n", it->string, it->valuestring);
    print_gpus(cJSON_GetObjectItem(o, "gpus"));
    printf("cross-site\n");
    for (const cJSON *it = cJSON_GetObjectItem(o, "cross_site")->child; it; it = it->next)
        printf("  %-8s %s\n", it->string, it->valuestring);
    printf("counters\n");
    const cJSON *c = cJSON_GetObjectItem(o, "counters");
    printf("  %-8s %s\n", "hwloc", cJSON_GetObjectItem(c, "hwloc")->valuestring);
    const cJSON *papi = cJSON_GetObjectItem(c, "papi");
    printf("  %-8s %s\n", "papi", cJSON_GetObjectItem(papi, "status")->valuestring);
    print_nvml(cJSON_GetObjectItem(c, "nvml"));
    printf("  %-8s %s\n", "cupti", cJSON_GetObjectItem(c, "cupti")->valuestring);
    printf("topology\n");
    dmz_topology_print(cJSON_GetObjectItem(o, "topology"), stdout);
    print_section("binding", cJSON_GetObjectItem(o, "binding"));
    printf("data sets\n");
    for (const cJSON *it = cJSON_GetObjectItem(o, "datasets")->child; it; it = it->next)
        printf("  %-16s %s\n", it->string, it->valuestring);
}

int dmz_info_main(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else {
            fprintf(stderr, "dmzbench info: bad option '%s' (usage: dmzbench info [--json])\n", argv[i]);
            return DMZ_EXIT_USAGE;
        }
    }
    cJSON *o = info_json();
    if (json) {
        char *text = cJSON_Print(o);
        puts(text ? text : "{}");
        free(text);
    } else {
        print_text(o);
    }
    cJSON_Delete(o);
    dmz_nvml_unload();
    return DMZ_OK;
}
