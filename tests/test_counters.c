/* counters/: what this machine answers (hwloc topology, PAPI's own "no
 * counters" reason, no NVML), the fake PAPI table and the fake NVML library
 * (present, absent, failing mid-run), `dmzbench info [--json]` with and
 * without each source, and --bind. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/bench.h"
#include "common/dmz.h"
#include "counters/counters.h"
#include "tests/support.h"
#ifdef DMZ_HAVE_PAPI
#include <papi.h>
#endif

static char fake_nvml[4200];

static void find_fake_nvml(void) {
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(fake_nvml, sizeof fake_nvml, "%s/fake-nvml/libnvidia-ml.so.1", exe);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void use_nvml(const char *lib, const char *mode) {
    dmz_nvml_unload();
    if (lib) setenv("DMZBENCH_NVML_LIB", lib, 1);
    else unsetenv("DMZBENCH_NVML_LIB");
    if (mode) setenv("FAKE_NVML_MODE", mode, 1);
    else unsetenv("FAKE_NVML_MODE");
}

/* ------------------------------------------------------------ hwloc */
static void test_topology_here(void **state) {
    (void)state;
    unsetenv("DMZBENCH_DISABLE");
    cJSON *t = dmz_topology_json();
#ifdef DMZ_HAVE_HWLOC
    assert_true(cJSON_IsObject(t));
    static const char *const keys[] = {"packages", "numa_nodes", "cores", "pus"};
    for (int i = 0; i < 4; i++) assert_true(cJSON_GetObjectItem(t, keys[i])->valuedouble >= 1);
    assert_true(cJSON_GetObjectItem(t, "pus")->valuedouble >= cJSON_GetObjectItem(t, "cores")->valuedouble);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(t, "caches")) >= 1);
    /* GPUs and NICs: a list, or a sentence saying none was found */
    cJSON *g = cJSON_GetObjectItem(t, "gpus");
    assert_true(cJSON_IsArray(g) || (cJSON_IsString(g) && strstr(g->valuestring, "none found")));
    assert_non_null(cJSON_GetObjectItem(t, "nics"));
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cJSON_GetObjectItem(t, "pus")->valuedouble >= 1 && online >= 1);
#else
    assert_true(cJSON_IsString(t));
    assert_non_null(strstr(t->valuestring, "unavailable: this build has no hwloc"));
#endif
    cJSON_Delete(t);
    setenv("DMZBENCH_DISABLE", "hwloc", 1);
    t = dmz_topology_json();
    assert_true(cJSON_IsString(t));
    assert_true(strncmp(t->valuestring, "unavailable: ", 13) == 0);
    cJSON_Delete(t);
    unsetenv("DMZBENCH_DISABLE");
}

/* ------------------------------------------------------------ PAPI */
static void test_papi_here_says_papis_reason(void **state) {
    (void)state;
    dmz_papi_set_api(NULL);
    int counting = dmz_papi_open(NULL, 1);
    const char *st = dmz_papi_status();
    fprintf(stderr, "PAPI here: %s\n", st);
#ifdef DMZ_HAVE_PAPI
    if (!counting) {
        /* the reason is PAPI's own: what PAPI answers this test for the first default event */
        assert_true(strncmp(st, "unavailable: ", 13) == 0);
        assert_int_equal(PAPI_library_init(PAPI_VER_CURRENT), PAPI_VER_CURRENT);
        int set = PAPI_NULL;
        assert_int_equal(PAPI_create_eventset(&set), PAPI_OK);
        int rc = PAPI_add_named_event(set, "PAPI_TOT_INS");
        if (rc != PAPI_OK) assert_non_null(strstr(st, PAPI_strerror(rc)));
        else assert_non_null(strstr(st, "PAPI"));
        PAPI_cleanup_eventset(set);
        PAPI_destroy_eventset(&set);
    } else {
        assert_true(strncmp(st, "counting ", 9) == 0);
    }
#else
    assert_false(counting);
    assert_non_null(strstr(st, "this build has no PAPI"));
#endif
    dmz_papi_counts c;
    dmz_phase_begin(DMZ_PHASE_FWD);
    dmz_phase_end(DMZ_PHASE_FWD);
    dmz_papi_take(&c);
    if (!counting) assert_true(isnan(c.v[DMZ_PHASE_FWD][0])); /* NA, never 0 */
    dmz_papi_close();
}

/* A fake PAPI: each read adds 1000 x (event + 1) to every counter of the set. */
static int fake_init_rc, fake_fail_after = -1;
static const char *fake_disabled;
static int fake_reads;
static long long fake_ctr[64][8];
static int fake_nev[64], fake_sets;
static int f_init(void) { return fake_init_rc; }
static int f_thread(void) { return 0; }
static const char *f_strerror(int c) { return c == -7 ? "Event does not exist (fake)" : c == -14 ? "fake read failure" : "fake error"; }
static const char *f_disabled(void) { return fake_disabled; }
static int f_create(int *s) {
    int id;
#pragma omp critical(fake_papi)
    id = fake_sets++;
    *s = id;
    fake_nev[id] = 0;
    memset(fake_ctr[id], 0, sizeof fake_ctr[id]);
    return 0;
}
static int f_add(int s, const char *name) {
    if (strcmp(name, "PAPI_L2_DCM") == 0) return -7; /* this "machine" has no L2 misses */
    fake_nev[s]++;
    return 0;
}
static int f_start(int s) { (void)s; return 0; }
static int f_read(int s, long long *v) {
    int n;
#pragma omp critical(fake_papi)
    n = ++fake_reads;
    if (fake_fail_after >= 0 && n > fake_fail_after) return -14;
    for (int e = 0; e < fake_nev[s]; e++) v[e] = (fake_ctr[s][e] += 1000LL * (e + 1));
    return 0;
}
static int f_stop(int s, long long *v) { (void)s, (void)v; return 0; }
static int f_destroy(int s) { (void)s; return 0; }
static const dmz_papi_api fake_papi = {"fake", f_init, f_thread, f_strerror, f_disabled, f_create,
                                       f_add, f_start, f_read, f_stop, f_destroy};

static void fake_reset(int init_rc, const char *disabled, int fail_after) {
    fake_init_rc = init_rc, fake_disabled = disabled, fake_fail_after = fail_after;
    fake_reads = 0, fake_sets = 0;
    dmz_papi_set_api(&fake_papi);
}

static void test_papi_fake_present(void **state) {
    (void)state;
    fake_reset(0, NULL, -1);
    assert_int_equal(dmz_papi_open("PAPI_TOT_INS,PAPI_TOT_CYC,PAPI_L2_DCM", 2), 1);
    const char *st = dmz_papi_status();
    assert_non_null(strstr(st, "counting PAPI_TOT_INS,PAPI_TOT_CYC on 2 threads"));
    assert_non_null(strstr(st, "PAPI_L2_DCM: Event does not exist (fake)"));
    dmz_papi_counts c;
    dmz_papi_take(&c); /* zero */
    for (int i = 0; i < 3; i++) {
        dmz_phase_begin(DMZ_PHASE_FWD);
        dmz_phase_end(DMZ_PHASE_FWD);
    }
    dmz_phase_begin(DMZ_PHASE_BWD);
    dmz_phase_end(DMZ_PHASE_BWD);
    dmz_papi_take(&c);
    assert_int_equal(c.n_events, 2);
    assert_string_equal(c.events[1], "PAPI_TOT_CYC");
    /* each phase: one read at each end per thread, 1000 (event 0) / 2000 (event 1) apart; 2 threads */
    assert_true(c.v[DMZ_PHASE_FWD][0] == 3 * 2 * 1000.0);
    assert_true(c.v[DMZ_PHASE_FWD][1] == 3 * 2 * 2000.0);
    assert_true(c.v[DMZ_PHASE_BWD][0] == 2 * 1000.0);
    assert_true(c.v[DMZ_PHASE_UPDATE][0] == 0); /* counted, nothing happened */
    assert_true(isnan(c.v[DMZ_PHASE_FWD][2]));  /* not an event of the set */
    dmz_papi_take(&c);
    assert_true(c.v[DMZ_PHASE_FWD][0] == 0);    /* take zeroes */
    dmz_papi_close();
    dmz_papi_set_api(NULL);
}

static void test_papi_fake_absent(void **state) {
    (void)state;
    fake_reset(-1, NULL, -1);
    assert_int_equal(dmz_papi_open(NULL, 2), 0);
    assert_string_equal(dmz_papi_status(), "unavailable: PAPI_library_init: fake error");
    fake_reset(0, "PAPI component perf_event disabled: no PMU (fake)", -1);
    assert_int_equal(dmz_papi_open(NULL, 1), 0);
    assert_non_null(strstr(dmz_papi_status(), "unavailable: PAPI component perf_event disabled: no PMU (fake)"));
    fake_reset(0, NULL, -1);
    assert_int_equal(dmz_papi_open("PAPI_L2_DCM", 1), 0);
    assert_non_null(strstr(dmz_papi_status(), "no event can be counted here"));
    dmz_papi_counts c;
    dmz_papi_take(&c);
    assert_true(isnan(c.v[DMZ_PHASE_DATA][0]));
    dmz_papi_close();
    dmz_papi_set_api(NULL);
}

static void test_papi_fake_fails_mid_run(void **state) {
    (void)state;
    fake_reset(0, NULL, -1);
    assert_int_equal(dmz_papi_open("PAPI_TOT_INS", 2), 1);
    fake_fail_after = fake_reads + 4; /* two boundaries of 2 threads, then failures */
    dmz_papi_counts c;
    dmz_phase_begin(DMZ_PHASE_DATA);
    dmz_phase_end(DMZ_PHASE_DATA);
    dmz_papi_take(&c);
    assert_true(c.v[DMZ_PHASE_DATA][0] == 2000.0); /* the repetition before the failure keeps its counts */
    dmz_phase_begin(DMZ_PHASE_FWD);
    dmz_phase_end(DMZ_PHASE_FWD);
    dmz_phase_begin(DMZ_PHASE_BWD);
    dmz_papi_take(&c);
    assert_true(isnan(c.v[DMZ_PHASE_FWD][0]));
    assert_true(isnan(c.v[DMZ_PHASE_DATA][0]));
    assert_non_null(strstr(c.status, "unavailable: counting stopped mid-run: PAPI_read failed at the fwd phase boundary: "
                                     "fake read failure"));
    int reads = fake_reads;
    dmz_phase_begin(DMZ_PHASE_DATA); /* counting stopped: no more reads */
    assert_int_equal(fake_reads, reads);
    dmz_papi_close();
    dmz_papi_set_api(NULL);
}

static void test_papi_events_parse(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_papi_parse("PAPI_TOT_INS,PAPI_TOT_CYC", err), DMZ_OK);
    assert_int_equal(dmz_papi_parse("PAPI_TOT_INS,,PAPI_TOT_CYC", err), DMZ_EXIT_USAGE);
    assert_int_equal(dmz_papi_parse("PAPI_TOT_INS,bad name", err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "'bad name'"));
}

/* ------------------------------------------------------------ NVML */
static void test_nvml_absent_here(void **state) {
    (void)state;
    use_nvml(NULL, NULL);
    char why[DMZ_CTR_REASON_LEN];
    if (dmz_nvml_load(why, sizeof why)) {
        fprintf(stderr, "NVML loads here (a driver): the absent case is covered by a missing path\n");
    } else {
        fprintf(stderr, "NVML here: %s\n", why);
        assert_non_null(strstr(why, "dlopen(libnvidia-ml.so.1)"));
    }
    use_nvml("/nonexistent/libnvidia-ml.so.1", NULL);
    assert_int_equal(dmz_nvml_load(why, sizeof why), 0);
    assert_non_null(strstr(why, "dlopen(/nonexistent/libnvidia-ml.so.1)"));
    assert_int_equal(dmz_sampler_start(10, NULL), 0);
    assert_non_null(strstr(dmz_sampler_status(), "unavailable: dlopen("));
    dmz_energy_mark a, b;
    dmz_sampler_mark(&a);
    dmz_sampler_mark(&b);
    double e, p;
    char src[300];
    dmz_sampler_energy(&a, &b, &e, &p, src, sizeof src);
    assert_true(isnan(e) && isnan(p));
    cJSON *j = dmz_nvml_json();
    assert_true(cJSON_IsString(j) && strncmp(j->valuestring, "unavailable: dlopen(", 20) == 0);
    cJSON_Delete(j);
    use_nvml(fake_nvml, "init");
    assert_int_equal(dmz_nvml_load(why, sizeof why), 0);
    assert_string_equal(why, "nvmlInit_v2: Driver Not Loaded");
    use_nvml(NULL, NULL);
}

static void test_nvml_fake_present(void **state) {
    (void)state;
    use_nvml(fake_nvml, NULL);
    setenv("FAKE_NVML_DEVICES", "2", 1);
    char why[DMZ_CTR_REASON_LEN];
    assert_int_equal(dmz_nvml_load(why, sizeof why), 1);
    cJSON *j = dmz_nvml_json();
    assert_string_equal(cJSON_GetObjectItem(j, "driver_version")->valuestring, "999.99-fake");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "devices")), 2);
    cJSON_Delete(j);
    double sm, mem;
    assert_int_equal(dmz_nvml_max_clocks("0000:02:00.0", &sm, &mem), 1);
    assert_true(sm == 1911 && mem == 5505);
    assert_int_equal(dmz_sampler_start(5, NULL), 1);
    dmz_energy_mark a, b;
    dmz_sampler_mark(&a);
    sleep_ms(80);
    dmz_sampler_mark(&b);
    dmz_sampler_stop();
    size_t n;
    const dmz_gpu_sample *s = dmz_sampler_samples(&n);
    assert_true(n >= 2 * 5);
    int dev1 = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(s[i].power_w == (s[i].device == 0 ? 150 : 160));
        assert_true(s[i].sm_clock_mhz == 1582 && s[i].throttle_reasons == 0x4);
        assert_true(s[i].pcie_rx_bytes_per_s == 2000 * 1024.0);
        dev1 += s[i].device == 1;
        if (i >= 2) assert_true(s[i].t_s >= s[i - 2].t_s);
    }
    assert_true(dev1 * 2 == (int)n);
    double e, p;
    char src[300];
    dmz_sampler_energy(&a, &b, &e, &p, src, sizeof src);
    assert_string_equal(src, "nvml energy counter");
    assert_true(fabs(p - 310) < 5); /* 150 W + 160 W */
    dmz_sampler_cost c;
    dmz_sampler_cost_of(&c);
    fprintf(stderr, "fake NVML sampler: %zu rounds of 2 devices, %.1f us per round (max %.1f), every %.0f ms: "
                    "%.4f%% of a CPU\n", c.samples, c.mean_s * 1e6, c.max_s * 1e6, c.period_s * 1e3,
            100 * c.cpu_fraction);
    assert_true(c.samples >= 5 && c.mean_s > 0 && c.cpu_fraction < 0.01);
    /* no energy counter (Pascal): the power samples integrated */
    use_nvml(fake_nvml, "no_energy");
    assert_int_equal(dmz_sampler_start(5, "0000:01:00.0"), 1); /* one device, by its bus id */
    dmz_sampler_mark(&a);
    sleep_ms(80);
    dmz_sampler_mark(&b);
    dmz_sampler_stop();
    dmz_sampler_energy(&a, &b, &e, &p, src, sizeof src);
    assert_non_null(strstr(src, "power samples integrated"));
    assert_true(p > 150 * 0.7 && p <= 150.001); /* the samples cover a little less than the interval */
    s = dmz_sampler_samples(&n);
    for (size_t i = 0; i < n; i++) assert_true(s[i].device == 0 && isnan(s[i].energy_j));
    unsetenv("FAKE_NVML_DEVICES");
    use_nvml(NULL, NULL);
}

static void test_nvml_fake_fails_mid_run(void **state) {
    (void)state;
    use_nvml(fake_nvml, "lost=6");
    assert_int_equal(dmz_sampler_start(5, NULL), 1);
    sleep_ms(100);
    dmz_energy_mark a, b;
    dmz_sampler_mark(&a);
    dmz_sampler_mark(&b);
    dmz_sampler_stop();
    size_t n;
    dmz_sampler_samples(&n);
    assert_int_equal((int)n, 5); /* the readings before the loss are kept */
    assert_non_null(strstr(dmz_sampler_status(), "unavailable: sampling stopped after 5 samples"));
    assert_non_null(strstr(dmz_sampler_status(), "nvmlDeviceGetPowerUsage: GPU is lost"));
    double e, p;
    char src[300];
    dmz_sampler_energy(&a, &b, &e, &p, src, sizeof src);
    assert_true(isnan(e) && isnan(p)); /* after the loss: NA, never 0 */
    use_nvml(NULL, NULL);
}

/* ------------------------------------------------------------ devices, ops, kernels */
static void test_peaks_and_ops(void **state) {
    (void)state;
    double f, b;
    dmz_gpu_peaks(6, 1, 28, 1911, 5505, 352, &f, &b); /* GTX 1080 Ti: 13.7 TFLOP/s, 484 GB/s */
    assert_true(fabs(f - 2.0 * 128 * 28 * 1911e6) < 1 && fabs(b / 1e9 - 484.44) < 0.01);
    dmz_gpu_peaks(9, 0, 132, 1980, 2619, 5120, &f, &b); /* H100 SXM: 66.9 TFLOP/s, 3.35 TB/s */
    assert_true(fabs(f / 1e12 - 66.9) < 0.1 && fabs(b / 1e12 - 3.352) < 0.01);
    dmz_gpu_peaks(99, 0, 10, 1000, 1000, 64, &f, &b);
    assert_true(isnan(f)); /* unknown architecture: NA */
    /* the counted backend: FLOP and bytes from the shapes; missing ops stay missing */
    dmz_backend partial = dmz_backend_cpu;
    partial.conv2d_forward = NULL;
    const dmz_backend *be = dmz_opcount_wrap(&partial);
    assert_null(be->conv2d_forward);
    assert_string_equal(be->name, "cpu");
    float in[6] = {1, 2, 3, 4, 5, 6}, w[12] = {0}, bias[4] = {1, 1, 1, 1}, out[8];
    be->dense_forward(out, in, w, bias, 2, 3, 4);
    be->dense_forward(out, in, w, bias, 2, 3, 4);
    assert_true(out[0] == 1 && out[7] == 1);
    dmz_op_total t[DMZ_MAX_OPS];
    int n = dmz_opcount_totals(t, DMZ_MAX_OPS);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].name, "dense_forward");
    assert_true(t[0].calls == 2 && t[0].flops == 2 * (2.0 * 2 * 3 * 4 + 8) && t[0].bytes == 2 * 4.0 * (6 + 12 + 4 + 8));
    assert_true(isnan(t[0].event_ms));
    /* kernel timing: says why not */
    assert_int_equal(dmz_kernels_start("cpu", false), 0);
    assert_non_null(strstr(dmz_kernels_status(), "unavailable: --backend cpu launches no CUDA kernels"));
    assert_int_equal(dmz_kernels_start("cuda", false), 0);
#ifdef DMZ_HAVE_CUDA
    assert_string_equal(dmz_kernels_status(), "unavailable: no CUDA device");
#else
    assert_string_equal(dmz_kernels_status(), "unavailable: this build has no CUDA");
#endif
    dmz_kernel_row rows[4];
    assert_int_equal(dmz_kernels_collect(rows, 4), 0);
}

/* ------------------------------------------------------------ binding */
static void test_bind_parse_and_apply(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_bind_parse("none", err), DMZ_OK);
    assert_int_equal(dmz_bind_parse("0-1,3", err), DMZ_OK);
    assert_int_equal(dmz_bind_parse("0-x", err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "'0-x'"));
    assert_int_equal(dmz_bind_parse("3-1", err), DMZ_EXIT_USAGE);
    assert_int_equal(dmz_bind_parse("", err), DMZ_EXIT_USAGE);
    assert_int_equal(dmz_bind_check_cpus("1000", err), DMZ_EXIT_USAGE);
    assert_non_null(strstr(err, "CPU 1000"));
    char before[256], now[256];
    dmz_current_cpuset(before, sizeof before);
    dmz_binding b;
    assert_int_equal(dmz_bind_apply("0", NULL, 0, 2, &b, err), DMZ_OK);
    assert_string_equal(b.cpuset, "0");
    assert_int_equal(b.pus, 1);
    dmz_current_cpuset(now, sizeof now);
    assert_string_equal(now, "0");
    assert_int_equal(dmz_bind_apply(before, NULL, 0, 2, &b, err), DMZ_OK); /* back as it was */
    assert_int_equal(dmz_bind_apply("auto", NULL, 0, 2, &b, err), DMZ_OK);
    assert_string_equal(b.mode, "auto");
#ifdef DMZ_HAVE_HWLOC
    assert_true(b.cpuset[0] && b.pus >= 1);
    assert_non_null(strstr(b.how, "auto: local rank 0 of 1 spread over"));
#else
    assert_non_null(strstr(b.reason, "auto needs hwloc"));
#endif
    assert_int_equal(dmz_bind_apply(before, NULL, 0, 2, &b, err), DMZ_OK);
}

/* ------------------------------------------------------------ the binary */
static const char *dmzbench_path(void) {
    const char *p = getenv("DMZBENCH");
    return p && *p ? p : DMZ_SOURCE_DIR "/build/dmzbench";
}

/* Runs dmzbench with env and args; stdout into *out (malloc'd), exit status returned. */
static int run(const char *env, const char *args, char **out) {
    char cmd[40000];
    snprintf(cmd, sizeof cmd, "env %s %s %s >/tmp/dmz_test_counters.out 2>/tmp/dmz_test_counters.err", env,
             dmzbench_path(), args);
    int st = system(cmd);
    if (out) *out = (char *)fs_slurp("/tmp/dmz_test_counters.out", NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *jstr(const cJSON *o, const char *path1, const char *path2) {
    const cJSON *x = cJSON_GetObjectItem(o, path1);
    if (path2) x = cJSON_GetObjectItem(x, path2);
    return cJSON_IsString(x) ? x->valuestring : "";
}

static void test_info_with_and_without(void **state) {
    (void)state;
    char *out, env[8192];
    /* as this machine is */
    assert_int_equal(run("-u DMZBENCH_NVML_LIB", "info --json", &out), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    cJSON *c = cJSON_GetObjectItem(j, "counters");
    const char *papi = jstr(cJSON_GetObjectItem(c, "papi"), "status", NULL);
    assert_true(strncmp(papi, "counting", 8) == 0 || strncmp(papi, "unavailable: ", 13) == 0);
#ifdef DMZ_HAVE_HWLOC
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "topology")));
#endif
    assert_non_null(cJSON_GetObjectItem(j, "binding"));
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "backends"), "cpu"));
    cJSON_Delete(j), free(out);
    /* with the fake NVML */
    snprintf(env, sizeof env, "DMZBENCH_NVML_LIB=%s FAKE_NVML_DEVICES=2", fake_nvml);
    assert_int_equal(run(env, "info --json", &out), 0);
    j = cJSON_Parse(out);
    cJSON *nv = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counters"), "nvml");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(nv, "devices")), 2);
    cJSON_Delete(j), free(out);
    assert_int_equal(run(env, "info", &out), 0);
    assert_non_null(strstr(out, "driver 999.99-fake"));
    assert_non_null(strstr(out, "Fake GTX 1080 Ti #1"));
    assert_non_null(strstr(out, "\ntopology\n"));
    free(out);
    /* NVML absent, the rest switched off */
    assert_int_equal(run("DMZBENCH_NVML_LIB=/nonexistent/libnvidia-ml.so.1 DMZBENCH_DISABLE=hwloc,papi,cupti",
                         "info --json", &out), 0);
    j = cJSON_Parse(out);
    c = cJSON_GetObjectItem(j, "counters");
    assert_non_null(strstr(jstr(c, "nvml", NULL), "unavailable: dlopen(/nonexistent/libnvidia-ml.so.1)"));
    assert_non_null(strstr(jstr(c, "papi", "status"), "unavailable:"));
    assert_non_null(strstr(jstr(c, "hwloc", NULL), "unavailable:"));
    assert_non_null(strstr(jstr(c, "cupti", NULL), "unavailable:"));
    assert_non_null(strstr(jstr(j, "topology", NULL), "unavailable:"));
    cJSON_Delete(j), free(out);
    assert_int_equal(run("DMZBENCH_DISABLE=all", "info", &out), 0);
    assert_non_null(strstr(out, "papi     unavailable: papi switched off by DMZBENCH_DISABLE=all"));
    assert_non_null(strstr(out, "nvml     unavailable: nvml switched off"));
    free(out);
    assert_int_equal(run("", "info --bogus", NULL), DMZ_EXIT_USAGE);
}

static char *read_in(const char *dir, const char *file) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return (char *)fs_slurp(path, NULL);
}

/* The value of column `col` in line `line` (0: the header) of a CSV without quotes. */
static void csv_cell(const char *csv, int line, const char *col, char *out, size_t len) {
    char header[4096];
    snprintf(header, sizeof header, "%.*s", (int)strcspn(csv, "\n"), csv);
    int idx = -1, k = 0;
    for (char *tok = strtok(header, ","); tok; tok = strtok(NULL, ","), k++)
        if (strcmp(tok, col) == 0) idx = k;
    out[0] = '\0';
    if (idx < 0) return;
    const char *p = csv;
    for (int i = 0; i < line && p; i++) p = strchr(p, '\n'), p = p ? p + 1 : NULL;
    for (int i = 0; p && i < idx; i++) p = strpbrk(p, ",\n"), p = p && *p == ',' ? p + 1 : NULL;
    if (p) snprintf(out, len, "%.*s", (int)strcspn(p, ",\n"), p);
}

static void test_bind_cli(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_ctr_XXXXXX", args[8192], dir[8192];
    assert_non_null(mkdtemp(root));
    snprintf(args, sizeof args, "train --data synthetic --steps 5 --repeat 1 --bind 0-x --out %s", root);
    assert_int_equal(run("", args, NULL), DMZ_EXIT_USAGE);
    char *err = (char *)fs_slurp("/tmp/dmz_test_counters.err", NULL);
    assert_non_null(strstr(err, "'0-x'"));
    free(err);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 0); /* nothing written */
    assert_int_equal(run("", "probe --bind 2,,3", NULL), DMZ_EXIT_USAGE);
    snprintf(args, sizeof args, "train --data synthetic --steps 20 --repeat 1 --warmup 1 --bind auto --quiet "
                                "--no-plots --out %s", root);
    assert_int_equal(run("-u DMZBENCH_NVML_LIB", args, NULL), 0);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    char *meta_text = read_in(dir, "meta.json");
    cJSON *meta = cJSON_Parse(meta_text);
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "counters"), "ranks"), 0);
    cJSON *b = cJSON_GetObjectItem(r0, "binding");
    assert_string_equal(jstr(b, "mode", NULL), "auto");
    assert_true(strlen(jstr(b, "cpuset", NULL)) > 0);
    char *summary = read_in(dir, "summary.csv");
    char cell[256];
    csv_cell(summary, 1, "cpuset", cell, sizeof cell);
    assert_string_equal(cell, jstr(b, "cpuset", NULL));
    /* nothing measured here stands in as 0 */
    if (strncmp(jstr(r0, "papi", NULL), "unavailable", 11) == 0) {
        csv_cell(summary, 1, "ipc", cell, sizeof cell);
        assert_string_equal(cell, "NA");
    }
    csv_cell(summary, 1, "energy_j", cell, sizeof cell);
    assert_string_equal(cell, "NA");
    assert_non_null(strstr(jstr(r0, "kernels", NULL), "unavailable: --backend cpu launches no CUDA kernels"));
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(meta, "topology")) || !strncmp(jstr(meta, "topology", NULL), "unavailable", 11));
    char *kernels = read_in(dir, "kernels.csv");
    assert_string_equal(kernels, "rank,kind,name,calls,total_ms,mean_us,flops,bytes,gflops,gbps,peak_fraction,source\n");
    free(kernels), free(summary), free(meta_text);
    cJSON_Delete(meta);
    fs_rm_rf(root);
}

/* A whole run with the fake NVML: gpu.csv, energy per repetition, the sampler's overhead. */
static void test_train_with_fake_nvml(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_ctr_XXXXXX", args[8192], dir[8192], env[8192];
    assert_non_null(mkdtemp(root));
    snprintf(env, sizeof env, "DMZBENCH_NVML_LIB=%s", fake_nvml);
    snprintf(args, sizeof args, "train --data synthetic --steps 60 --repeat 2 --warmup 1 --sample-ms 10 --quiet "
                                "--no-plots --out %s", root);
    assert_int_equal(run(env, args, NULL), 0);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    char *gpu = read_in(dir, "gpu.csv"), *summary = read_in(dir, "summary.csv"), *meta_text = read_in(dir, "meta.json");
    int rows = 0;
    for (char *p = gpu; *p; p++) rows += *p == '\n';
    assert_true(rows >= 3);
    char cell[256];
    csv_cell(gpu, 1, "power_w", cell, sizeof cell);
    assert_string_equal(cell, "150");
    for (int rep = 1; rep <= 2; rep++) {
        csv_cell(summary, rep, "power_w", cell, sizeof cell);
        assert_true(fabs(atof(cell) - 150) < 3);
        csv_cell(summary, rep, "energy_per_step_j", cell, sizeof cell);
        assert_true(atof(cell) > 0);
    }
    cJSON *meta = cJSON_Parse(meta_text);
    cJSON *s = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "counters"), "ranks"), 0),
                                   "sampler");
    cJSON *pct = cJSON_GetObjectItem(s, "overhead_pct_of_step");
    assert_true(cJSON_IsNumber(pct) && pct->valuedouble > 0 && pct->valuedouble < 1);
    fprintf(stderr, "sampler in a run (fake NVML, 10 ms): %.1f us per sample, %.4f%% of step time\n",
            cJSON_GetObjectItem(s, "mean_sample_us")->valuedouble, pct->valuedouble);
    /* the report: the GPU timeline drawn; kernels (here a hand-made kernels.csv, as a GPU run writes it,
     * with the device's peaks) per kernel and on the roofline; PAPI skipped with the run's reason */
    static const char kcsv[] = "rank,kind,name,calls,total_ms,mean_us,flops,bytes,gflops,gbps,peak_fraction,source\n"
                               "0,kernel,dense_forward,10,2,200,2e9,1e8,1000,50,0.073,cupti\n"
                               "0,memcpy,memcpy HtoD,10,1,100,NA,1e7,NA,10,0.02,cupti\n";
    char path[8400];
    snprintf(path, sizeof path, "%s/kernels.csv", dir);
    assert_true(fs_write(path, kcsv, strlen(kcsv)));
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "counters"), "ranks"), 0);
    cJSON_ReplaceItemInObject(r0, "peak_fp32_flops", cJSON_CreateNumber(13.7e12));
    cJSON_ReplaceItemInObject(r0, "peak_memory_bytes_per_s", cJSON_CreateNumber(484e9));
    char *text = cJSON_Print(meta);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    assert_true(fs_write(path, text, strlen(text)));
    free(text);
    snprintf(args, sizeof args, "report %.8000s", dir);
    assert_int_equal(run("", args, NULL), 0);
    char *html = read_in(dir, "plots/report.html");
    assert_non_null(html);
    assert_non_null(strstr(html, "<b>papi</b>: papi.csv has no counts: unavailable: "));
    if (system("command -v gnuplot >/dev/null") == 0) {
        static const char *const figs[] = {"gpu", "kernels", "roofline"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/plots/%s.png", dir, figs[i]);
            if (!fs_exists(path)) fprintf(stderr, "missing %s\n", path);
            assert_true(fs_exists(path));
        }
    }
    free(html);
    free(gpu), free(summary), free(meta_text);
    cJSON_Delete(meta);
    fs_rm_rf(root);
}

/* In process with the fake PAPI: IPC and misses per sample in summary.csv, papi.csv per phase. */
static void test_train_with_fake_papi(void **state) {
    (void)state;
    char root[] = "/tmp/dmz_ctr_XXXXXX", dir[8192];
    assert_non_null(mkdtemp(root));
    fake_reset(0, NULL, -1);
    dmz_train_config cfg;
    dmz_train_config_default(&cfg);
    cfg.data = "synthetic", cfg.steps = 10, cfg.repeat = 1, cfg.warmup = 1, cfg.quiet = true;
    cfg.out_dir = root, cfg.papi_events = "PAPI_TOT_CYC,PAPI_TOT_INS,PAPI_L1_DCM", cfg.threads = 1;
    char *argv[] = {"dmzbench", "train", NULL};
    use_nvml("/nonexistent/libnvidia-ml.so.1", NULL);
    assert_int_equal(dmz_train_main(&cfg, 2, argv), 0);
    dmz_papi_set_api(NULL);
    assert_int_equal(fs_find_run_dir(root, dir, sizeof dir), 1);
    char *summary = read_in(dir, "summary.csv"), *papi = read_in(dir, "papi.csv");
    char cell[256];
    csv_cell(summary, 1, "ipc", cell, sizeof cell); /* instructions 2000 per read, cycles 1000 */
    assert_true(fabs(atof(cell) - 2.0) < 1e-9);
    csv_cell(summary, 1, "l1_dcm_per_sample", cell, sizeof cell);
    /* 4 phases x 10 steps x 3000 per phase / (10 steps x 100 samples) */
    assert_true(fabs(atof(cell) - 4 * 10 * 3000.0 / 1000) < 1e-9);
    assert_non_null(strstr(papi, "0,0,fwd,PAPI_TOT_INS,20000,"));
    assert_non_null(strstr(papi, "0,0,load,PAPI_TOT_CYC,1000,NA"));
    char *html = read_in(dir, "plots/report.html");
    assert_non_null(strstr(html, "<b>gpu</b>: gpu.csv has no samples: unavailable: dlopen(/nonexistent/"));
    assert_non_null(strstr(html, "<b>kernels</b>: kernels.csv is empty: unavailable: --backend cpu"));
    if (system("command -v gnuplot >/dev/null") == 0) {
        char png[8400];
        snprintf(png, sizeof png, "%s/plots/papi.png", dir);
        assert_true(fs_exists(png));
    }
    free(html);
    free(summary), free(papi);
    fs_rm_rf(root);
    use_nvml(NULL, NULL);
}

int main(void) {
    find_fake_nvml();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology_here),          cmocka_unit_test(test_papi_here_says_papis_reason),
        cmocka_unit_test(test_papi_fake_present),      cmocka_unit_test(test_papi_fake_absent),
        cmocka_unit_test(test_papi_fake_fails_mid_run), cmocka_unit_test(test_papi_events_parse),
        cmocka_unit_test(test_nvml_absent_here),       cmocka_unit_test(test_nvml_fake_present),
        cmocka_unit_test(test_nvml_fake_fails_mid_run), cmocka_unit_test(test_peaks_and_ops),
        cmocka_unit_test(test_bind_parse_and_apply),   cmocka_unit_test(test_info_with_and_without),
        cmocka_unit_test(test_bind_cli),               cmocka_unit_test(test_train_with_fake_nvml),
        cmocka_unit_test(test_train_with_fake_papi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
