#include "meta.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/devices.h"
#include "common/dmz.h"
#include "counters/counters.h"
#ifdef DMZ_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

#ifndef DMZ_GIT_REV
#define DMZ_GIT_REV "unknown"
#endif
#define DMZ_VERSION "0.1.0"

extern char **environ;

static void cpu_model(char *out, size_t len) {
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(out, len, "%s", colon);
        break;
    }
    fclose(f);
}

cJSON *dmz_meta_host(void) {
    cJSON *h = cJSON_CreateObject();
    char name[256] = "", model[256];
    gethostname(name, sizeof name - 1);
    cJSON_AddStringToObject(h, "hostname", name);
    struct utsname u;
    if (uname(&u) == 0) {
        char kernel[600];
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
        cJSON_AddStringToObject(h, "kernel", kernel);
    }
    cpu_model(model, sizeof model);
    cJSON_AddStringToObject(h, "cpu_model", model);
    cJSON_AddNumberToObject(h, "cpus_online", (double)sysconf(_SC_NPROCESSORS_ONLN));
    struct sysinfo si;
    if (sysinfo(&si) == 0) cJSON_AddNumberToObject(h, "memory_bytes", (double)si.totalram * si.mem_unit);
    cJSON_AddNumberToObject(h, "openmp_max_threads", omp_get_max_threads());
    cJSON_AddStringToObject(h, "compiler", "gcc " __VERSION__);
    return h;
}

/* An allow-list: the whole environment would leak tokens (KAGGLE_KEY...). */
static cJSON *environment_allowlist(void) {
    static const char *const prefixes[] = {"CUDA_", "NCCL_", "OMPI_", "OMP_", "DMZBENCH_", "GOMP_", NULL};
    cJSON *env = cJSON_CreateObject();
    for (char **e = environ; *e; e++) {
        for (int i = 0; prefixes[i]; i++) {
            if (strncmp(*e, prefixes[i], strlen(prefixes[i])) != 0) continue;
            char key[256];
            const char *eq = strchr(*e, '=');
            if (!eq || (size_t)(eq - *e) >= sizeof key) break;
            memcpy(key, *e, (size_t)(eq - *e));
            key[eq - *e] = '\0';
            cJSON_AddStringToObject(env, key, eq + 1);
            break;
        }
    }
    return env;
}

#ifndef DMZ_ARCH_FLAGS
#define DMZ_ARCH_FLAGS "unknown"
#endif
#ifndef DMZ_NATIVE_MARCH
#define DMZ_NATIVE_MARCH ""
#endif

/* The vector ISA the cpu backend was compiled for: the Makefile's flag
 * (-march=native, or none under PORTABLE=1), what native meant on the build
 * host, and the extensions the compiler then enabled. */
static void add_isa(cJSON *build) {
    cJSON_AddStringToObject(build, "arch_flags", DMZ_ARCH_FLAGS);
    if (DMZ_NATIVE_MARCH[0]) cJSON_AddStringToObject(build, "march", DMZ_NATIVE_MARCH);
    cJSON_AddStringToObject(build, "isa", ""
#if defined(__AVX512F__)
                            "avx512f "
#endif
#if defined(__AVX2__)
                            "avx2 "
#elif defined(__AVX__)
                            "avx "
#endif
#if defined(__FMA__)
                            "fma "
#endif
#if defined(__SSE4_2__)
                            "sse4.2 "
#endif
#if defined(__SSE2__)
                            "sse2"
#endif
#if defined(__aarch64__)
                            "aarch64 neon"
#endif
    );
}

static cJSON *config_json(const dmz_train_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddStringToObject(o, "backend", c->backend);
    cJSON_AddStringToObject(o, "mode", c->mode);
    cJSON_AddNumberToObject(o, "steps", c->steps);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddNumberToObject(o, "repeat", c->repeat);
    cJSON_AddNumberToObject(o, "warmup_steps", c->warmup);
    cJSON_AddStringToObject(o, "optimizer", "adam (TensorFlow 1.x form)");
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "beta1", c->beta1);
    cJSON_AddNumberToObject(o, "beta2", c->beta2);
    cJSON_AddNumberToObject(o, "eps", c->eps);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddStringToObject(o, "loss", "cross-entropy summed over the batch, probabilities clipped to [1e-10, 1]");
    if (c->target_accuracy > 0) cJSON_AddNumberToObject(o, "target_accuracy", c->target_accuracy);
    cJSON_AddNumberToObject(o, "eval_every", c->eval_every);
    cJSON_AddNumberToObject(o, "log_every", c->log_every);
    cJSON_AddBoolToObject(o, "graph", c->graph);
    return o;
}

static cJSON *unavailable(const char *reason) {
    char text[600];
    snprintf(text, sizeof text, "unavailable: %s", reason);
    return cJSON_CreateString(text);
}

#ifdef DMZ_HAVE_CUDA
static cJSON *gpu_json(const dmz_gpu_info *g) {
    cJSON *o = cJSON_CreateObject();
    char cc[16], version[32];
    cJSON_AddNumberToObject(o, "index", g->index);
    cJSON_AddStringToObject(o, "name", g->name);
    snprintf(cc, sizeof cc, "%d.%d", g->cc_major, g->cc_minor);
    cJSON_AddStringToObject(o, "compute_capability", cc);
    cJSON_AddNumberToObject(o, "sms", g->sms);
    cJSON_AddNumberToObject(o, "memory_bytes", g->memory_bytes);
    cJSON_AddNumberToObject(o, "l2_bytes", g->l2_bytes);
    cJSON_AddNumberToObject(o, "memory_bus_bits", g->memory_bus_bits);
    cJSON_AddStringToObject(o, "pci_bus_id", g->pci_bus_id);
    snprintf(version, sizeof version, "%d.%d", g->runtime_version / 1000, g->runtime_version % 1000 / 10);
    cJSON_AddStringToObject(o, "cuda_runtime", version);
    snprintf(version, sizeof version, "%d.%d", g->driver_version / 1000, g->driver_version % 1000 / 10);
    cJSON_AddStringToObject(o, "cuda_driver", version);
    /* clocks from NVML (CUDA 13 dropped them from cudaDeviceProp), peaks computed */
    double sm = 0, mem = 0, flops, bw;
    char src[400];
    int have = dmz_gpu_clocks(g->pci_bus_id, g->index, &sm, &mem, src, sizeof src);
    cJSON *clk = have ? cJSON_CreateObject() : cJSON_CreateString(src);
    if (have) {
        cJSON_AddNumberToObject(clk, "max_sm_clock_mhz", sm);
        cJSON_AddNumberToObject(clk, "max_mem_clock_mhz", mem);
        cJSON_AddStringToObject(clk, "source", src);
    }
    cJSON_AddItemToObject(o, "clocks", clk);
    dmz_gpu_peaks(g->cc_major, g->cc_minor, g->sms, have ? sm : 0, have ? mem : 0, g->memory_bus_bits, &flops, &bw);
    cJSON_AddNumberToObject(o, "fp32_lanes_per_sm", dmz_fp32_lanes_per_sm(g->cc_major, g->cc_minor));
    if (flops == flops) cJSON_AddNumberToObject(o, "peak_fp32_flops", flops);
    else cJSON_AddItemToObject(o, "peak_fp32_flops", unavailable("needs the SM clock and a known compute capability"));
    if (bw == bw) cJSON_AddNumberToObject(o, "peak_memory_bytes_per_s", bw);
    else cJSON_AddItemToObject(o, "peak_memory_bytes_per_s", unavailable("needs the memory clock"));
    cJSON_AddStringToObject(o, "peaks_from", "FP32: 2 x lanes/SM x SMs x max SM clock; memory: 2 x max memory clock x bus width / 8");
    return o;
}
#endif

/* Every CUDA device this process sees, or why there is none. */
cJSON *dmz_meta_gpus(void) {
#ifdef DMZ_HAVE_CUDA
    char reason[512];
    if (!dmz_cuda_available(reason, sizeof reason)) return unavailable(reason);
    cJSON *list = cJSON_CreateArray();
    for (int d = 0; d < dmz_cuda_device_count(); d++) {
        dmz_gpu_info g;
        if (dmz_cuda_gpu_info(d, &g, reason, sizeof reason)) cJSON_AddItemToArray(list, gpu_json(&g));
        else cJSON_AddItemToArray(list, unavailable(reason));
    }
    return list;
#else
    return unavailable("this build has no CUDA (nvcc not found at build time, or NO_CUDA=1)");
#endif
}

cJSON *dmz_meta_begin(const dmz_train_config *cfg, int argc, char **argv, const dmz_rundir *rd,
                      const char *site) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "run", rd->name);
    cJSON_AddStringToObject(m, "status", "running");
    cJSON_AddStringToObject(m, "started_utc", rd->started_utc);
    cJSON *args = cJSON_AddArrayToObject(m, "command_line");
    for (int i = 0; i < argc; i++) cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
    cJSON_AddItemToObject(m, "config", config_json(cfg));
    cJSON *build = cJSON_AddObjectToObject(m, "build");
    cJSON_AddStringToObject(build, "version", DMZ_VERSION);
    cJSON_AddStringToObject(build, "git_revision", DMZ_GIT_REV);
    add_isa(build);
#ifdef DMZ_HAVE_CUDA
    cJSON_AddStringToObject(build, "cuda", "nvcc " DMZ_NVCC_VERSION ", CUDA_ARCH " DMZ_CUDA_ARCH);
#else
    cJSON_AddStringToObject(build, "cuda", "not built (nvcc not found at build time, or NO_CUDA=1)");
#endif
    cJSON_AddItemToObject(m, "host", dmz_meta_host());
    cJSON_AddItemToObject(m, "gpus", dmz_meta_gpus());
    cJSON_AddItemToObject(m, "device_match", dmz_devices_meta_match(cJSON_GetObjectItem(m, "gpus")));
    cJSON_AddItemToObject(m, "topology", dmz_topology_json());
    cJSON_AddItemToObject(m, "counters", unavailable("not started (the run ended before its counters began)"));
    cJSON *mpi = cJSON_AddObjectToObject(m, "mpi");
    cJSON_AddNumberToObject(mpi, "size", 1);
    cJSON *ranks = cJSON_AddArrayToObject(mpi, "ranks");
    cJSON *r0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(r0, "rank", 0);
    cJSON_AddStringToObject(r0, "host", cJSON_GetObjectItem(cJSON_GetObjectItem(m, "host"), "hostname")->valuestring);
    cJSON_AddStringToObject(r0, "site", site);
    cJSON_AddNumberToObject(r0, "pid", getpid());
    cJSON_AddItemToArray(ranks, r0);
    cJSON_AddItemToObject(m, "environment", environment_allowlist());
    return m;
}

void dmz_meta_set_dataset(cJSON *meta, const dmz_dataset *ds) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", ds->name);
    cJSON_AddStringToObject(d, "source", ds->source);
    cJSON_AddStringToObject(d, "format", ds->format);
    cJSON_AddStringToObject(d, "sha256", ds->sha256);
    cJSON_AddNumberToObject(d, "classes", ds->num_classes);
    cJSON_AddNumberToObject(d, "train_samples", (double)ds->train.count);
    cJSON_AddNumberToObject(d, "test_samples", (double)ds->test.count);
    cJSON_AddBoolToObject(d, "from_cache", ds->from_cache);
    cJSON_AddNumberToObject(d, "load_s", ds->load_s);
    cJSON_AddBoolToObject(d, "fallback", ds->fallback);
    if (ds->fallback) cJSON_AddStringToObject(d, "fallback_reason", ds->fallback_reason);
    cJSON_DeleteItemFromObject(meta, "dataset");
    cJSON_AddItemToObject(meta, "dataset", d);
}

void dmz_meta_set_backend(cJSON *meta, const char *description, int threads) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "description", description);
    cJSON_AddNumberToObject(b, "threads", threads);
    cJSON_DeleteItemFromObject(meta, "backend");
    cJSON_AddItemToObject(meta, "backend", b);
}

int dmz_meta_finish(cJSON *meta, const dmz_rundir *rd, const char *status, const char *error, char *err) {
    char ended[32];
    dmz_utc_stamp(ended, sizeof ended, "%Y-%m-%dT%H:%M:%SZ");
    cJSON_ReplaceItemInObject(meta, "status", cJSON_CreateString(status));
    cJSON_AddStringToObject(meta, "ended_utc", ended);
    if (error) cJSON_AddStringToObject(meta, "error", error);
    char *text = cJSON_Print(meta);
    if (!text) return dmz_errorf(err, DMZ_EXIT_FAIL, "meta.json: out of memory");
    FILE *f = dmz_rundir_fopen(rd, "meta.json", err);
    if (!f) {
        free(text);
        return DMZ_EXIT_FAIL;
    }
    errno = 0;
    bool bad = fputs(text, f) == EOF || fputc('\n', f) == EOF || ferror(f); /* fclose forgets an earlier error */
    int e = errno;
    free(text);
    if (fclose(f) != 0 || bad)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s/meta.json: write failed: %s", rd->work,
                          strerror(bad && e ? e : errno ? errno : EIO));
    return DMZ_OK;
}
