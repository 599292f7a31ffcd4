/* counters/sampler.c — one thread per rank reading NVML every --sample-ms:
 * clocks, power, energy, temperature, utilisation, memory, PCIe, throttle
 * reasons of this rank's devices; the rows of gpu.csv. It times itself so
 * the run can report what the sampling cost. */
#include "counters/counters.h"
#include "counters/nvml_abi.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dmz.h"

enum { MAX_DEVICES = 16 };

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int running, stop, failed;
    double epoch, period_s, fail_t;
    int n_dev;
    unsigned index[MAX_DEVICES];
    nvmlDevice_t dev[MAX_DEVICES];
    dmz_gpu_sample *samples;
    size_t n, cap;
    double cost_sum, cost_max;
    size_t rounds;
    char status[DMZ_CTR_REASON_LEN];
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int soft(int rc) { return rc == NVML_SUCCESS || rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_FUNCTION_NOT_FOUND; }

/* One field: its value, NAN when the device does not support it; a hard
 * error (lost GPU, ...) names the call in *bad. */
#define FIELD(call, name, ok_expr)                                                                             \
    do {                                                                                                       \
        int rc_ = (call);                                                                                      \
        if (rc_ == NVML_SUCCESS) { ok_expr; }                                                                  \
        else if (!soft(rc_) && !*bad) snprintf(bad, badlen, "%s: %s", name, dmz_nvml_error(rc_));              \
    } while (0)

static void read_device(int k, dmz_gpu_sample *s, char *bad, size_t badlen) {
    nvmlDevice_t d = S.dev[k];
    dmz_nvml_fns *f = &dmz_nvml;
    *s = (dmz_gpu_sample){.device = (int)S.index[k], .sm_clock_mhz = NAN, .mem_clock_mhz = NAN, .power_w = NAN,
                          .energy_j = NAN, .temp_c = NAN, .gpu_util_pct = NAN, .mem_util_pct = NAN,
                          .mem_used_bytes = NAN, .pcie_tx_bytes_per_s = NAN, .pcie_rx_bytes_per_s = NAN,
                          .throttle_reasons = -1};
    unsigned v = 0;
    unsigned long long u = 0;
    if (f->DeviceGetClockInfo) {
        FIELD(f->DeviceGetClockInfo(d, NVML_CLOCK_SM, &v), "nvmlDeviceGetClockInfo(SM)", s->sm_clock_mhz = v);
        FIELD(f->DeviceGetClockInfo(d, NVML_CLOCK_MEM, &v), "nvmlDeviceGetClockInfo(MEM)", s->mem_clock_mhz = v);
    }
    if (f->DeviceGetPowerUsage) FIELD(f->DeviceGetPowerUsage(d, &v), "nvmlDeviceGetPowerUsage", s->power_w = v / 1000.0);
    if (f->DeviceGetTotalEnergyConsumption)
        FIELD(f->DeviceGetTotalEnergyConsumption(d, &u), "nvmlDeviceGetTotalEnergyConsumption", s->energy_j = (double)u / 1000.0);
    if (f->DeviceGetTemperature)
        FIELD(f->DeviceGetTemperature(d, NVML_TEMPERATURE_GPU, &v), "nvmlDeviceGetTemperature", s->temp_c = v);
    nvmlUtilization_t ut;
    if (f->DeviceGetUtilizationRates)
        FIELD(f->DeviceGetUtilizationRates(d, &ut), "nvmlDeviceGetUtilizationRates",
              (s->gpu_util_pct = ut.gpu, s->mem_util_pct = ut.memory));
    nvmlMemory_t m;
    if (f->DeviceGetMemoryInfo) FIELD(f->DeviceGetMemoryInfo(d, &m), "nvmlDeviceGetMemoryInfo", s->mem_used_bytes = (double)m.used);
    if (f->DeviceGetPcieThroughput) {
        FIELD(f->DeviceGetPcieThroughput(d, NVML_PCIE_UTIL_TX_BYTES, &v), "nvmlDeviceGetPcieThroughput(TX)",
              s->pcie_tx_bytes_per_s = v * 1024.0);
        FIELD(f->DeviceGetPcieThroughput(d, NVML_PCIE_UTIL_RX_BYTES, &v), "nvmlDeviceGetPcieThroughput(RX)",
              s->pcie_rx_bytes_per_s = v * 1024.0);
    }
    if (f->DeviceGetCurrentClocksThrottleReasons)
        FIELD(f->DeviceGetCurrentClocksThrottleReasons(d, &u), "nvmlDeviceGetCurrentClocksThrottleReasons",
              s->throttle_reasons = (long long)u);
}

static int push(const dmz_gpu_sample *s) {
    if (S.n == S.cap) {
        size_t cap = S.cap ? 2 * S.cap : 1024;
        dmz_gpu_sample *g = realloc(S.samples, cap * sizeof *g);
        if (!g) return 0;
        S.samples = g, S.cap = cap;
    }
    S.samples[S.n++] = *s;
    return 1;
}

static void sample_once(void) {
    double t0 = dmz_now_s();
    dmz_gpu_sample got[MAX_DEVICES];
    char bad[300] = "";
    for (int k = 0; k < S.n_dev && !bad[0]; k++) {
        read_device(k, &got[k], bad, sizeof bad);
        got[k].t_s = t0 - S.epoch;
    }
    double cost = dmz_now_s() - t0;
    pthread_mutex_lock(&S.lock);
    if (bad[0]) {
        snprintf(S.status, sizeof S.status, "unavailable: sampling stopped after %zu samples at t=%.3f s: %s", S.n,
                 t0 - S.epoch, bad);
        S.failed = 1, S.fail_t = t0 - S.epoch;
    } else {
        for (int k = 0; k < S.n_dev; k++)
            if (!push(&got[k])) {
                snprintf(S.status, sizeof S.status, "unavailable: out of memory after %zu samples", S.n);
                S.failed = 1;
                break;
            }
        S.cost_sum += cost, S.rounds++;
        if (cost > S.cost_max) S.cost_max = cost;
    }
    pthread_mutex_unlock(&S.lock);
}

static void *sampler_main(void *arg) {
    (void)arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&S.lock);
    while (!S.stop && !S.failed) {
        pthread_mutex_unlock(&S.lock);
        sample_once();
        long ns = (long)(S.period_s * 1e9);
        next.tv_sec += ns / 1000000000L;
        next.tv_nsec += ns % 1000000000L;
        if (next.tv_nsec >= 1000000000L) next.tv_sec++, next.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&S.lock);
        while (!S.stop && pthread_cond_timedwait(&S.wake, &S.lock, &next) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

int dmz_sampler_start(int sample_ms, const char *pci_bus_id) {
    dmz_sampler_stop();
    free(S.samples);
    S.samples = NULL, S.n = S.cap = 0, S.cost_sum = S.cost_max = 0, S.rounds = 0, S.failed = 0, S.n_dev = 0;
    S.epoch = dmz_now_s();
    S.period_s = (sample_ms > 0 ? sample_ms : 100) / 1000.0;
    char why[DMZ_CTR_REASON_LEN];
    if (!dmz_nvml_load(why, sizeof why)) {
        snprintf(S.status, sizeof S.status, "unavailable: %.380s", why);
        return 0;
    }
    unsigned n = 0;
    int rc = dmz_nvml.DeviceGetCount(&n);
    if (rc != NVML_SUCCESS) {
        snprintf(S.status, sizeof S.status, "unavailable: nvmlDeviceGetCount_v2: %s", dmz_nvml_error(rc));
        return 0;
    }
    unsigned want = 0;
    if (pci_bus_id && !dmz_nvml_find(pci_bus_id, &want)) {
        snprintf(S.status, sizeof S.status, "unavailable: NVML has no device with PCI bus id %.40s", pci_bus_id);
        return 0;
    }
    for (unsigned i = 0; i < n && S.n_dev < MAX_DEVICES; i++) {
        if (pci_bus_id && i != want) continue;
        if ((rc = dmz_nvml.DeviceGetHandleByIndex(i, &S.dev[S.n_dev])) != NVML_SUCCESS) {
            snprintf(S.status, sizeof S.status, "unavailable: nvmlDeviceGetHandleByIndex_v2(%u): %s", i, dmz_nvml_error(rc));
            return 0;
        }
        S.index[S.n_dev++] = i;
    }
    if (S.n_dev == 0) {
        snprintf(S.status, sizeof S.status, "unavailable: NVML sees no device");
        return 0;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&S.wake, &ca);
    pthread_condattr_destroy(&ca);
    S.stop = 0;
    if ((rc = pthread_create(&S.thread, NULL, sampler_main, NULL)) != 0) {
        snprintf(S.status, sizeof S.status, "unavailable: pthread_create: %s", strerror(rc));
        return 0;
    }
    S.running = 1;
    snprintf(S.status, sizeof S.status, "sampling %d device%s every %.0f ms%s", S.n_dev, S.n_dev == 1 ? "" : "s",
             S.period_s * 1000, pci_bus_id ? "" : " (every device NVML sees)");
    return 1;
}

double dmz_sampler_now(void) { return dmz_now_s() - S.epoch; }

void dmz_sampler_mark(dmz_energy_mark *m) {
    m->t_s = dmz_sampler_now();
    m->energy_j = NAN;
    pthread_mutex_lock(&S.lock);
    int usable = S.running && !S.failed && dmz_nvml.DeviceGetTotalEnergyConsumption;
    pthread_mutex_unlock(&S.lock);
    if (!usable) return;
    double sum = 0;
    for (int k = 0; k < S.n_dev; k++) {
        unsigned long long mj = 0;
        if (dmz_nvml.DeviceGetTotalEnergyConsumption(S.dev[k], &mj) != NVML_SUCCESS) return;
        sum += (double)mj / 1000.0;
    }
    m->energy_j = sum;
}

/* Trapezoids over the power samples of each device inside [t0, t1]. */
static double integrate_power(double t0, double t1, int *used) {
    double total = 0;
    *used = 0;
    for (int k = 0; k < S.n_dev; k++) {
        double e = 0, pt = NAN, pp = NAN;
        int n = 0;
        for (size_t i = 0; i < S.n; i++) {
            const dmz_gpu_sample *s = &S.samples[i];
            if (s->device != (int)S.index[k] || s->t_s < t0 || s->t_s > t1 || isnan(s->power_w)) continue;
            if (!isnan(pt)) e += 0.5 * (s->power_w + pp) * (s->t_s - pt);
            pt = s->t_s, pp = s->power_w, n++;
        }
        if (n < 2) return NAN;
        total += e;
        *used += n;
    }
    return total;
}

void dmz_sampler_energy(const dmz_energy_mark *a, const dmz_energy_mark *b, double *energy_j, double *power_w,
                        char *source, size_t len) {
    *energy_j = *power_w = NAN;
    double dt = b->t_s - a->t_s;
    if (isfinite(a->energy_j) && isfinite(b->energy_j) && dt > 0) {
        *energy_j = b->energy_j - a->energy_j;
        *power_w = *energy_j / dt;
        snprintf(source, len, "nvml energy counter");
        return;
    }
    pthread_mutex_lock(&S.lock);
    int used = 0;
    /* samples that stop inside the interval (NVML failed) do not cover it */
    double e = (S.running || S.n) && !(S.failed && S.fail_t < b->t_s) ? integrate_power(a->t_s, b->t_s, &used) : NAN;
    pthread_mutex_unlock(&S.lock);
    if (isfinite(e) && dt > 0) {
        /* the samples span a little less than [a, b]: scale the mean power to the interval */
        *energy_j = e, *power_w = e / dt;
        snprintf(source, len, "power samples integrated (%d samples)", used);
    } else {
        snprintf(source, len, "%s", S.status[0] == 'u' ? S.status : "unavailable: fewer than 2 power samples in the interval");
    }
}

void dmz_sampler_stop(void) {
    if (!S.running) return;
    pthread_mutex_lock(&S.lock);
    S.stop = 1;
    pthread_cond_signal(&S.wake);
    pthread_mutex_unlock(&S.lock);
    pthread_join(S.thread, NULL);
    pthread_cond_destroy(&S.wake);
    S.running = 0;
}

const dmz_gpu_sample *dmz_sampler_samples(size_t *n) {
    *n = S.n;
    return S.samples;
}

const char *dmz_sampler_status(void) { return S.status[0] ? S.status : "unavailable: the sampler was not started"; }

void dmz_sampler_cost_of(dmz_sampler_cost *c) {
    pthread_mutex_lock(&S.lock);
    c->samples = S.rounds;
    c->mean_s = S.rounds ? S.cost_sum / (double)S.rounds : NAN;
    c->max_s = S.rounds ? S.cost_max : NAN;
    c->period_s = S.period_s;
    c->cpu_fraction = S.rounds && S.period_s > 0 ? c->mean_s / S.period_s : NAN;
    pthread_mutex_unlock(&S.lock);
}
