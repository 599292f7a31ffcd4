/* tests/fake_nvml.c — a stand-in for libnvidia-ml.so.1 with the symbols
 * dmzbench loads (counters/nvml_abi.h), for machines without a driver. The
 * tests point DMZBENCH_NVML_LIB at it. Behaviour from the environment:
 *   FAKE_NVML_DEVICES=N     devices (default 1): "Fake GTX 1080 Ti", 0000:0N:00.0
 *   FAKE_NVML_MODE=ok       every field answers (default)
 *                 init      nvmlInit_v2 fails (NVML_ERROR_DRIVER_NOT_LOADED)
 *                 lost=K    from the K-th power reading on: NVML_ERROR_GPU_IS_LOST
 *                 no_energy the energy counter is not supported (as on Pascal)
 * Power is 150 W + 10 W per device index; the energy counter integrates it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct fake_dev { int index; } *nvmlDevice_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

enum { OK = 0, UNINIT = 1, NOT_SUPPORTED = 3, DRIVER_NOT_LOADED = 9, GPU_IS_LOST = 15 };

static struct fake_dev devs[8];
static int inited, power_reads;
static double t_init;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static const char *mode(void) {
    const char *m = getenv("FAKE_NVML_MODE");
    return m ? m : "ok";
}
static int ndev(void) {
    const char *n = getenv("FAKE_NVML_DEVICES");
    int v = n ? atoi(n) : 1;
    return v < 0 ? 0 : v > 8 ? 8 : v;
}
static int lost(void) {
    if (strncmp(mode(), "lost=", 5) != 0) return 0;
    return power_reads >= atoi(mode() + 5);
}

nvmlReturn_t nvmlInit_v2(void) {
    if (strcmp(mode(), "init") == 0) return DRIVER_NOT_LOADED;
    for (int i = 0; i < 8; i++) devs[i].index = i;
    inited = 1, power_reads = 0, t_init = now();
    return OK;
}
nvmlReturn_t nvmlShutdown(void) {
    inited = 0;
    return OK;
}
const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case OK: return "Success";
    case UNINIT: return "Uninitialized";
    case NOT_SUPPORTED: return "Not Supported";
    case DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}
nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int n) {
    snprintf(v, n, "999.99-fake");
    return OK;
}
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!inited) return UNINIT;
    *n = (unsigned)ndev();
    return OK;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
    if (!inited) return UNINIT;
    if ((int)i >= ndev()) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *d = &devs[i];
    return OK;
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int n) {
    snprintf(name, n, "Fake GTX 1080 Ti #%d", d->index);
    return OK;
}
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p) {
    memset(p, 0, sizeof *p);
    p->bus = (unsigned)d->index + 1;
    snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", d->index + 1);
    return OK;
}
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, int which, unsigned int *mhz) {
    (void)d;
    *mhz = which == 2 ? 5505 : 1911;
    return OK;
}
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int which, unsigned int *mhz) {
    (void)d;
    if (lost()) return GPU_IS_LOST;
    *mhz = which == 2 ? 5505 : 1582;
    return OK;
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
    power_reads++;
    if (lost()) return GPU_IS_LOST;
    *mw = 150000u + 10000u * (unsigned)d->index;
    return OK;
}
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
    (void)d;
    *mw = 250000;
    return OK;
}
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
    if (strcmp(mode(), "no_energy") == 0) return NOT_SUPPORTED;
    if (lost()) return GPU_IS_LOST;
    *mj = (unsigned long long)((150.0 + 10.0 * d->index) * (now() - t_init) * 1000.0);
    return OK;
}
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *c) {
    (void)sensor;
    *c = 60u + (unsigned)d->index;
    return OK;
}
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    (void)d;
    u->gpu = 87, u->memory = 40;
    return OK;
}
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    (void)d;
    m->total = 11ull << 30, m->used = 2ull << 30, m->free = m->total - m->used;
    return OK;
}
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned int *kbs) {
    (void)d;
    *kbs = counter == 0 ? 1000 : 2000;
    return OK;
}
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *r) {
    (void)d;
    *r = 0x4; /* SW power cap */
    return OK;
}
