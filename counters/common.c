/* counters/common.c — which sources are on, and the "unavailable" form. */
#include "counters/counters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ", ");
        if (len == n && strncmp(p, name, n) == 0) return 1;
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
}

static const char *build_reason(const char *component) {
#ifndef DMZ_HAVE_HWLOC
    if (strcmp(component, "hwloc") == 0)
        return "this build has no hwloc (libhwloc-dev not found at build time, or NO_HWLOC=1)";
#endif
#ifndef DMZ_HAVE_PAPI
    if (strcmp(component, "papi") == 0)
        return "this build has no PAPI (libpapi-dev not found at build time, or NO_PAPI=1)";
#endif
#ifdef DMZ_NO_NVML
    if (strcmp(component, "nvml") == 0) return "this build has no NVML support (NO_NVML=1)";
#endif
#ifndef DMZ_HAVE_CUPTI
    if (strcmp(component, "cupti") == 0)
        return "this build has no CUPTI (cupti.h not found under CUDA_HOME at build time, no nvcc, or NO_CUPTI=1)";
#endif
    (void)component;
    return NULL;
}

int dmz_counters_enabled(const char *component, char *why, size_t len) {
    const char *b = build_reason(component);
    if (b) {
        if (why) snprintf(why, len, "%s", b);
        return 0;
    }
    const char *off = getenv("DMZBENCH_DISABLE");
    if (off && (listed(off, component) || listed(off, "all"))) {
        if (why) snprintf(why, len, "%s switched off by DMZBENCH_DISABLE=%s", component, off);
        return 0;
    }
    if (why && len) why[0] = '\0';
    return 1;
}

cJSON *dmz_ctr_unavailable(const char *reason) {
    char text[DMZ_CTR_REASON_LEN + 32];
    snprintf(text, sizeof text, "unavailable: %s", reason && *reason ? reason : "unknown reason");
    return cJSON_CreateString(text);
}

const char *const dmz_phase_names[DMZ_NPHASES] = {"load", "data", "fwd", "bwd", "update"};

/* FP32 lanes per SM: CUDA C Programming Guide, "Arithmetic Instructions"
 * (throughput of 32-bit floating-point add/multiply/fma per SM per clock). */
int dmz_fp32_lanes_per_sm(int major, int minor) {
    switch (major) {
    case 3: return 192;
    case 5: return 128;
    case 6: return minor == 0 ? 64 : 128;
    case 7: return 64;
    case 8: return minor == 0 ? 64 : 128;
    case 9: return 128;
    case 10: case 11: case 12: return 128;
    default: return 0;
    }
}

void dmz_gpu_peaks(int cc_major, int cc_minor, int sms, double sm_mhz, double mem_mhz, int bus_bits,
                   double *flops, double *bytes_per_s) {
    int lanes = dmz_fp32_lanes_per_sm(cc_major, cc_minor);
    *flops = lanes > 0 && sms > 0 && sm_mhz > 0 ? 2.0 * lanes * sms * sm_mhz * 1e6 : (double)NAN;
    /* NVML and cudaDevAttrMemoryClockRate give the memory clock of a double-data-rate bus */
    *bytes_per_s = mem_mhz > 0 && bus_bits > 0 ? 2.0 * mem_mhz * 1e6 * bus_bits / 8.0 : (double)NAN;
}

void dmz_local_rank(int *rank, int *size) {
    static const char *const pairs[][2] = {{"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                           {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
                                           {"SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
                                           {"PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"}};
    *rank = 0, *size = 1;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *r = getenv(pairs[i][0]), *s = getenv(pairs[i][1]);
        if (!r) continue;
        int rv = atoi(r), sv = s ? atoi(s) : 0;
        *rank = rv >= 0 ? rv : 0;
        *size = sv > *rank ? sv : *rank + 1;
        return;
    }
}
