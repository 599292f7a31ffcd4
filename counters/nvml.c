/* counters/nvml.c — NVML, loaded at run time: dlopen("libnvidia-ml.so.1")
 * (or $DMZBENCH_NVML_LIB), so one binary runs with or without a driver.
 * nvml.h is not needed: the few types and functions are declared here as
 * NVML's ABI has them (nvml.h of CUDA 11.8 to 13). */
#include "counters/counters.h"
#include "counters/nvml_abi.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dmz_nvml_fns dmz_nvml;
static void *lib;
static int loaded;
static char load_error[DMZ_CTR_REASON_LEN];
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

const char *dmz_nvml_error(int rc) {
    const char *s = dmz_nvml.ErrorString ? dmz_nvml.ErrorString(rc) : NULL;
    return s ? s : "unknown NVML error";
}

#define NVML_SYM(field, name, required)                                                                        \
    do {                                                                                                       \
        *(void **)&dmz_nvml.field = dlsym(lib, name);                                                          \
        if (!dmz_nvml.field && (required)) {                                                                   \
            snprintf(load_error, sizeof load_error, "%s: no symbol %s", path, name);                           \
            return 0;                                                                                          \
        }                                                                                                      \
    } while (0)

static int bind_symbols(const char *path) {
    NVML_SYM(Init, "nvmlInit_v2", 1);
    NVML_SYM(Shutdown, "nvmlShutdown", 1);
    NVML_SYM(ErrorString, "nvmlErrorString", 1);
    NVML_SYM(DeviceGetCount, "nvmlDeviceGetCount_v2", 1);
    NVML_SYM(DeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2", 1);
    NVML_SYM(DeviceGetHandleByPciBusId, "nvmlDeviceGetHandleByPciBusId_v2", 0);
    NVML_SYM(DeviceGetName, "nvmlDeviceGetName", 0);
    NVML_SYM(DeviceGetPciInfo, "nvmlDeviceGetPciInfo_v3", 0);
    NVML_SYM(SystemGetDriverVersion, "nvmlSystemGetDriverVersion", 0);
    NVML_SYM(DeviceGetClockInfo, "nvmlDeviceGetClockInfo", 0);
    NVML_SYM(DeviceGetMaxClockInfo, "nvmlDeviceGetMaxClockInfo", 0);
    NVML_SYM(DeviceGetPowerUsage, "nvmlDeviceGetPowerUsage", 0);
    NVML_SYM(DeviceGetEnforcedPowerLimit, "nvmlDeviceGetEnforcedPowerLimit", 0);
    NVML_SYM(DeviceGetTotalEnergyConsumption, "nvmlDeviceGetTotalEnergyConsumption", 0);
    NVML_SYM(DeviceGetTemperature, "nvmlDeviceGetTemperature", 0);
    NVML_SYM(DeviceGetUtilizationRates, "nvmlDeviceGetUtilizationRates", 0);
    NVML_SYM(DeviceGetMemoryInfo, "nvmlDeviceGetMemoryInfo", 0);
    NVML_SYM(DeviceGetPcieThroughput, "nvmlDeviceGetPcieThroughput", 0);
    NVML_SYM(DeviceGetCurrentClocksThrottleReasons, "nvmlDeviceGetCurrentClocksThrottleReasons", 0);
    if (!dmz_nvml.DeviceGetCurrentClocksThrottleReasons) /* renamed in newer drivers */
        NVML_SYM(DeviceGetCurrentClocksThrottleReasons, "nvmlDeviceGetCurrentClocksEventReasons", 0);
    return 1;
}

int dmz_nvml_load(char *reason, size_t len) {
    pthread_mutex_lock(&load_lock);
    if (!loaded && !load_error[0]) {
        char why[DMZ_CTR_REASON_LEN];
        const char *path = getenv("DMZBENCH_NVML_LIB");
        if (!path || !*path) path = "libnvidia-ml.so.1";
        if (!dmz_counters_enabled("nvml", why, sizeof why)) {
            snprintf(load_error, sizeof load_error, "%s", why);
        } else if (!(lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
            const char *e = dlerror();
            snprintf(load_error, sizeof load_error, "dlopen(%s): %s (no NVIDIA driver here?)", path,
                     e ? e : "failed");
        } else if (bind_symbols(path)) {
            int rc = dmz_nvml.Init();
            if (rc != NVML_SUCCESS) snprintf(load_error, sizeof load_error, "nvmlInit_v2: %s", dmz_nvml_error(rc));
            else loaded = 1;
        }
        if (!loaded && lib) {
            dlclose(lib);
            lib = NULL;
            memset(&dmz_nvml, 0, sizeof dmz_nvml);
        }
    }
    int ok = loaded;
    if (!ok && reason) snprintf(reason, len, "%s", load_error);
    pthread_mutex_unlock(&load_lock);
    return ok;
}

void dmz_nvml_unload(void) {
    pthread_mutex_lock(&load_lock);
    if (loaded) {
        dmz_nvml.Shutdown();
        dlclose(lib);
    }
    lib = NULL, loaded = 0, load_error[0] = '\0';
    memset(&dmz_nvml, 0, sizeof dmz_nvml);
    pthread_mutex_unlock(&load_lock);
}

/* "00000000:65:00.0" (NVML) and "0000:65:00.0" (CUDA) name the same device. */
static void short_bus_id(const char *in, char *out, size_t len) {
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    if (sscanf(in, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4) snprintf(out, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    else snprintf(out, len, "%s", in);
}

void dmz_nvml_bus_id(nvmlDevice_t d, char *out, size_t len) {
    nvmlPciInfo_t pci;
    if (dmz_nvml.DeviceGetPciInfo && dmz_nvml.DeviceGetPciInfo(d, &pci) == NVML_SUCCESS)
        short_bus_id(pci.busId, out, len);
    else snprintf(out, len, "unknown");
}

int dmz_nvml_find(const char *pci_bus_id, unsigned *index) {
    unsigned n = 0;
    if (dmz_nvml.DeviceGetCount(&n) != NVML_SUCCESS) return 0;
    char want[32];
    if (pci_bus_id) short_bus_id(pci_bus_id, want, sizeof want);
    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t d;
        if (dmz_nvml.DeviceGetHandleByIndex(i, &d) != NVML_SUCCESS) continue;
        char bus[32];
        dmz_nvml_bus_id(d, bus, sizeof bus);
        if (!pci_bus_id || strcasecmp(bus, want) == 0) {
            *index = i;
            return 1;
        }
    }
    return 0;
}

int dmz_nvml_max_clocks(const char *pci_bus_id, double *sm_mhz, double *mem_mhz) {
    *sm_mhz = *mem_mhz = NAN;
    unsigned idx;
    nvmlDevice_t d;
    if (!dmz_nvml_load(NULL, 0) || !dmz_nvml_find(pci_bus_id, &idx) ||
        dmz_nvml.DeviceGetHandleByIndex(idx, &d) != NVML_SUCCESS || !dmz_nvml.DeviceGetMaxClockInfo)
        return 0;
    unsigned sm = 0, mem = 0;
    if (dmz_nvml.DeviceGetMaxClockInfo(d, NVML_CLOCK_SM, &sm) == NVML_SUCCESS) *sm_mhz = sm;
    if (dmz_nvml.DeviceGetMaxClockInfo(d, NVML_CLOCK_MEM, &mem) == NVML_SUCCESS) *mem_mhz = mem;
    return sm > 0 && mem > 0;
}

static void add_clock(cJSON *o, const char *key, nvmlDevice_t d, int which) {
    unsigned v = 0;
    int rc = dmz_nvml.DeviceGetMaxClockInfo ? dmz_nvml.DeviceGetMaxClockInfo(d, which, &v) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (rc == NVML_SUCCESS) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddItemToObject(o, key, dmz_ctr_unavailable(dmz_nvml_error(rc)));
}

cJSON *dmz_nvml_json(void) {
    char why[DMZ_CTR_REASON_LEN];
    if (!dmz_nvml_load(why, sizeof why)) return dmz_ctr_unavailable(why);
    cJSON *o = cJSON_CreateObject();
    const char *path = getenv("DMZBENCH_NVML_LIB");
    cJSON_AddStringToObject(o, "library", path && *path ? path : "libnvidia-ml.so.1");
    char ver[96] = "";
    if (dmz_nvml.SystemGetDriverVersion && dmz_nvml.SystemGetDriverVersion(ver, sizeof ver) == NVML_SUCCESS)
        cJSON_AddStringToObject(o, "driver_version", ver);
    unsigned n = 0;
    int rc = dmz_nvml.DeviceGetCount(&n);
    if (rc != NVML_SUCCESS) {
        cJSON_AddItemToObject(o, "devices", dmz_ctr_unavailable(dmz_nvml_error(rc)));
        return o;
    }
    cJSON *list = cJSON_AddArrayToObject(o, "devices");
    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t d;
        cJSON *g = cJSON_CreateObject();
        cJSON_AddNumberToObject(g, "nvml_index", i);
        if ((rc = dmz_nvml.DeviceGetHandleByIndex(i, &d)) != NVML_SUCCESS) {
            cJSON_AddItemToObject(g, "error", dmz_ctr_unavailable(dmz_nvml_error(rc)));
            cJSON_AddItemToArray(list, g);
            continue;
        }
        char name[96] = "?", bus[32];
        if (dmz_nvml.DeviceGetName) dmz_nvml.DeviceGetName(d, name, sizeof name);
        cJSON_AddStringToObject(g, "name", name);
        dmz_nvml_bus_id(d, bus, sizeof bus);
        cJSON_AddStringToObject(g, "pci_bus_id", bus);
        add_clock(g, "max_sm_clock_mhz", d, NVML_CLOCK_SM);
        add_clock(g, "max_mem_clock_mhz", d, NVML_CLOCK_MEM);
        nvmlMemory_t m;
        if (dmz_nvml.DeviceGetMemoryInfo && dmz_nvml.DeviceGetMemoryInfo(d, &m) == NVML_SUCCESS)
            cJSON_AddNumberToObject(g, "memory_bytes", (double)m.total);
        unsigned mw = 0;
        if (dmz_nvml.DeviceGetEnforcedPowerLimit && dmz_nvml.DeviceGetEnforcedPowerLimit(d, &mw) == NVML_SUCCESS)
            cJSON_AddNumberToObject(g, "power_limit_w", mw / 1000.0);
        unsigned long long mj = 0;
        rc = dmz_nvml.DeviceGetTotalEnergyConsumption ? dmz_nvml.DeviceGetTotalEnergyConsumption(d, &mj)
                                                      : NVML_ERROR_FUNCTION_NOT_FOUND;
        cJSON_AddStringToObject(g, "energy_counter", rc == NVML_SUCCESS ? "yes" : dmz_nvml_error(rc));
        cJSON_AddItemToArray(list, g);
    }
    return o;
}
