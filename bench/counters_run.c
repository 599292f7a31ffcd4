/* bench/counters_run.c — the counters of a run, from the binding before the
 * data load to gpu.csv, kernels.csv and papi.csv at the end (counters_run.h). */
#include "counters_run.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"
#include "net/comm.h"
#include "results.h"
#ifdef DMZ_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

enum { TAG_CTR_INFO = 31401, TAG_CTR_SAMPLES = 31402, TAG_CTR_ROWS = 31403, MAX_LOCAL_GPUS = 16 };

/* What each rank sends rank 0 besides its samples and rows. */
typedef struct rank_info {
    int rank, n_rows;
    uint64_t n_samples;
    double peak_flops, peak_bytes_per_s;
    char device[128], peak_how[200];
    dmz_sampler_cost cost;
    char sampler[DMZ_CTR_REASON_LEN], kernels[DMZ_CTR_REASON_LEN];
} rank_info;

static struct {
    bool started, stopped;
    int rank, size;
    double sample_ms;
    dmz_binding bind;
    dmz_papi_counts load;
    dmz_energy_mark mark0;
    rank_info me;
    dmz_kernel_row rows[DMZ_MAX_KERNEL_ROWS];
    rank_info *info;            /* rank 0: [size] */
    dmz_gpu_sample **samples;   /* rank 0: [size] (its own points into the sampler) */
    dmz_kernel_row **krows;     /* rank 0: [size] */
} R;

void dmz_rep_counters_init(dmz_rep_counters *c) {
    memset(c, 0, sizeof *c);
    c->energy_j = c->power_w = c->gpu_t0_s = c->gpu_t1_s = NAN;
    for (int p = 0; p < DMZ_NPHASES; p++)
        for (int e = 0; e < DMZ_PAPI_MAX_EVENTS; e++) c->papi.v[p][e] = NAN;
    snprintf(c->papi.status, sizeof c->papi.status, "%s", dmz_papi_status());
    snprintf(c->energy_source, sizeof c->energy_source, "unavailable: not measured");
}

void dmz_rep_counters_begin(dmz_rep_counters *c) {
    dmz_papi_counts warmup;
    dmz_papi_take(&warmup); /* the warm-up's counts are not the repetition's */
    dmz_sampler_mark(&R.mark0);
    c->gpu_t0_s = R.mark0.t_s;
    c->bind = R.bind;
}

void dmz_rep_counters_end(dmz_rep_counters *c, int rep) {
    dmz_papi_take(&c->papi);
    for (int e = 0; e < DMZ_PAPI_MAX_EVENTS; e++)
        c->papi.v[DMZ_PHASE_LOAD][e] = rep == 0 && e < R.load.n_events ? R.load.v[DMZ_PHASE_LOAD][e] : NAN;
    dmz_energy_mark m1;
    dmz_sampler_mark(&m1);
    c->gpu_t1_s = m1.t_s;
    dmz_sampler_energy(&R.mark0, &m1, &c->energy_j, &c->power_w, c->energy_source, sizeof c->energy_source);
    c->bind = R.bind;
}

void dmz_counters_load_begin(void) { dmz_phase_begin(DMZ_PHASE_LOAD); }

void dmz_counters_load_end(void) {
    dmz_phase_end(DMZ_PHASE_LOAD);
    dmz_papi_take(&R.load);
}

/* The PCI bus ids of the GPUs the local ranks use (device = local rank mod
 * count, as the nccl transport picks them), and this rank's device. */
static int local_gpus(const char *backend, char (*bus)[32], const char **ids, int *my_dev, bool *have_device) {
    *have_device = false, *my_dev = 0;
    if (strcmp(backend, "cpu") == 0) return 0;
#ifdef DMZ_HAVE_CUDA
    char why[256];
    int count = dmz_cuda_available(why, sizeof why) ? dmz_cuda_device_count() : 0;
    if (count <= 0) return 0;
    *have_device = true;
    int lr, ls, n = 0;
    dmz_local_rank(&lr, &ls);
    for (int r = 0; r < ls && r < MAX_LOCAL_GPUS; r++) {
        dmz_gpu_info g;
        if (!dmz_cuda_gpu_info(r % count, &g, why, sizeof why)) continue;
        snprintf(bus[n], 32, "%s", g.pci_bus_id);
        ids[n] = bus[n];
        n++;
    }
    *my_dev = lr % count;
    return n;
#else
    (void)bus, (void)ids;
    return 0;
#endif
}

static void device_peaks(int dev, const char *bus, rank_info *me) {
    me->peak_flops = me->peak_bytes_per_s = NAN;
    snprintf(me->device, sizeof me->device, "none");
#ifdef DMZ_HAVE_CUDA
    dmz_gpu_info g;
    char why[256], src[300];
    if (!dmz_cuda_gpu_info(dev, &g, why, sizeof why)) return;
    snprintf(me->device, sizeof me->device, "%.90s (%.24s)", g.name, g.pci_bus_id);
    double sm, mem;
    dmz_gpu_clocks(bus, dev, &sm, &mem, src, sizeof src);
    dmz_gpu_peaks(g.cc_major, g.cc_minor, g.sms, sm, mem, g.memory_bus_bits, &me->peak_flops, &me->peak_bytes_per_s);
    snprintf(me->peak_how, sizeof me->peak_how, "%.180s", src);
#else
    (void)dev, (void)bus;
#endif
}

int dmz_counters_run_start(const dmz_train_config *cfg, const dmz_backend *be, int rank, const dmz_backend **use,
                           char *err) {
    *use = be;
    R.rank = rank, R.sample_ms = cfg->sample_ms;
    char bus[MAX_LOCAL_GPUS][32];
    const char *ids[MAX_LOCAL_GPUS];
    int dev;
    bool have_device;
    int n = local_gpus(be->name, bus, ids, &dev, &have_device);
    int threads = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
    int rc = dmz_bind_apply(cfg->bind, ids, n, threads, &R.bind, err);
    if (rc) return rc;
    if (cfg->threads == 0 && strcmp(R.bind.mode, "none") != 0 && R.bind.pus > 0 && R.bind.pus < threads) {
        threads = R.bind.pus; /* one OpenMP thread per bound PU unless --threads says otherwise */
        omp_set_num_threads(threads);
    }
    dmz_papi_open(cfg->papi_events, threads);
    const char *my_bus = have_device && n > 0 ? ids[R.bind.local_rank % n] : NULL;
    if (have_device || R.bind.local_rank == 0) dmz_sampler_start(cfg->sample_ms, my_bus);
    if (dmz_kernels_start(be->name, have_device)) *use = dmz_opcount_wrap(be);
    memset(&R.me, 0, sizeof R.me);
    R.me.rank = rank;
    device_peaks(dev, my_bus, &R.me);
    R.started = true;
    return DMZ_OK;
}

void dmz_counters_run_stop(void) {
    if (!R.started || R.stopped) return;
    R.stopped = true;
    dmz_sampler_stop();
    R.me.n_rows = dmz_kernels_collect(R.rows, DMZ_MAX_KERNEL_ROWS);
    dmz_kernels_stop();
    size_t n;
    dmz_sampler_samples(&n);
    R.me.n_samples = n;
    dmz_sampler_cost_of(&R.me.cost);
    snprintf(R.me.sampler, sizeof R.me.sampler, "%s", dmz_sampler_status());
    snprintf(R.me.kernels, sizeof R.me.kernels, "%s", dmz_kernels_status());
    dmz_papi_close();
}

static int keep_own(int size) {
    R.size = size;
    R.info = calloc((size_t)size, sizeof *R.info);
    R.samples = calloc((size_t)size, sizeof *R.samples);
    R.krows = calloc((size_t)size, sizeof *R.krows);
    if (!R.info || !R.samples || !R.krows) return 0;
    for (int r = 0; r < size; r++) R.info[r].rank = -1;
    size_t n;
    R.info[0] = R.me;
    R.samples[0] = (dmz_gpu_sample *)dmz_sampler_samples(&n);
    R.krows[0] = R.rows;
    return 1;
}

int dmz_counters_gather(dmz_comm *c, char *err) {
    if (c->rank != 0) {
        size_t n;
        const dmz_gpu_sample *s = dmz_sampler_samples(&n);
        int rc = c->send(c, 0, TAG_CTR_INFO, &R.me, sizeof R.me, "sending counters to rank 0", err);
        if (!rc && n) rc = c->send(c, 0, TAG_CTR_SAMPLES, s, n * sizeof *s, "sending GPU samples to rank 0", err);
        if (!rc && R.me.n_rows)
            rc = c->send(c, 0, TAG_CTR_ROWS, R.rows, (size_t)R.me.n_rows * sizeof *R.rows, "sending kernel rows", err);
        return rc;
    }
    if (!keep_own(c->size)) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    for (int r = 1; r < c->size; r++) {
        rank_info *in = &R.info[r];
        int rc = c->recv(c, r, TAG_CTR_INFO, in, sizeof *in, NULL, NULL, "collecting every rank's counters", err);
        if (rc) return rc;
        if (in->n_samples) {
            R.samples[r] = calloc(in->n_samples, sizeof **R.samples);
            if (!R.samples[r]) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for rank %d's GPU samples", r);
            rc = c->recv(c, r, TAG_CTR_SAMPLES, R.samples[r], in->n_samples * sizeof **R.samples, NULL, NULL,
                         "collecting GPU samples", err);
        }
        if (!rc && in->n_rows > 0 && in->n_rows <= DMZ_MAX_KERNEL_ROWS) {
            R.krows[r] = calloc((size_t)in->n_rows, sizeof **R.krows);
            if (!R.krows[r]) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
            rc = c->recv(c, r, TAG_CTR_ROWS, R.krows[r], (size_t)in->n_rows * sizeof **R.krows, NULL, NULL,
                         "collecting kernel rows", err);
        }
        if (rc) return rc;
    }
    return DMZ_OK;
}

/* ------------------------------------------------------------ files */
static void num(FILE *f, double v) {
    fputc(',', f);
    dmz_csv_number(f, v);
}

static int close_file(FILE *f, const dmz_rundir *rd, const char *name, char *err) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s/%s: write failed: %s", rd->work, name, strerror(errno ? errno : EIO));
    return DMZ_OK;
}

static int write_gpu_csv(const dmz_rundir *rd, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "gpu.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    fputs("rank,device,t_s,sm_clock_mhz,mem_clock_mhz,power_w,energy_j,temp_c,gpu_util_pct,mem_util_pct,"
          "mem_used_bytes,pcie_tx_bytes_per_s,pcie_rx_bytes_per_s,throttle_reasons\n", f);
    for (int r = 0; r < R.size; r++) {
        if (R.info[r].rank < 0) continue;
        for (uint64_t i = 0; i < R.info[r].n_samples; i++) {
            const dmz_gpu_sample *s = &R.samples[r][i];
            fprintf(f, "%d,%d", r, s->device);
            double v[] = {s->t_s, s->sm_clock_mhz, s->mem_clock_mhz, s->power_w, s->energy_j, s->temp_c,
                          s->gpu_util_pct, s->mem_util_pct, s->mem_used_bytes, s->pcie_tx_bytes_per_s,
                          s->pcie_rx_bytes_per_s};
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) num(f, v[k]);
            if (s->throttle_reasons >= 0) fprintf(f, ",0x%llx\n", (unsigned long long)s->throttle_reasons);
            else fputs(",NA\n", f);
        }
    }
    return close_file(f, rd, "gpu.csv", err);
}

/* Fraction of the roofline: achieved over min(peak FLOP/s, intensity x peak
 * bandwidth) = the larger of the two fractions; what is known of it. */
static double peak_fraction(double flops_s, double bytes_s, const rank_info *in) {
    double a = isfinite(flops_s) && in->peak_flops > 0 ? flops_s / in->peak_flops : NAN;
    double b = isfinite(bytes_s) && in->peak_bytes_per_s > 0 ? bytes_s / in->peak_bytes_per_s : NAN;
    return isnan(a) ? b : isnan(b) ? a : a > b ? a : b;
}

static int write_kernels_csv(const dmz_rundir *rd, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "kernels.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    fputs("rank,kind,name,calls,total_ms,mean_us,flops,bytes,gflops,gbps,peak_fraction,source\n", f);
    for (int r = 0; r < R.size; r++) {
        const rank_info *in = &R.info[r];
        for (int i = 0; in->rank >= 0 && i < in->n_rows; i++) {
            const dmz_kernel_row *k = &R.krows[r][i];
            double s = k->total_ms / 1e3;
            double fl = s > 0 ? k->flops / s : NAN, by = s > 0 ? k->bytes / s : NAN;
            fprintf(f, "%d,%s,", r, k->kind);
            dmz_csv_write_field(f, k->name);
            num(f, k->calls), num(f, k->total_ms), num(f, k->calls > 0 ? k->total_ms * 1e3 / k->calls : NAN);
            num(f, k->flops), num(f, k->bytes), num(f, fl / 1e9), num(f, by / 1e9), num(f, peak_fraction(fl, by, in));
            fprintf(f, ",%s\n", k->source);
        }
    }
    return close_file(f, rd, "kernels.csv", err);
}

static int write_papi_csv(const dmz_rundir *rd, const dmz_rank_rows *rows, int n_rows, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "papi.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    fputs("rank,rep,phase,event,count,per_sample\n", f);
    for (int k = 0; k < n_rows; k++)
        for (int i = 0; i < rows[k].n_reps; i++) {
            const dmz_rep_result *r = &rows[k].reps[i];
            const dmz_papi_counts *p = &r->ctr.papi;
            double samples = (double)r->steps_done * rows[k].batch;
            for (int ph = 0; ph < DMZ_NPHASES; ph++)
                for (int e = 0; e < p->n_events && e < DMZ_PAPI_MAX_EVENTS; e++) {
                    if (isnan(p->v[ph][e])) continue;
                    fprintf(f, "%d,%d,%s,%s", rows[k].rank, r->rep, dmz_phase_names[ph], p->events[e]);
                    num(f, p->v[ph][e]);
                    num(f, ph != DMZ_PHASE_LOAD && samples > 0 ? p->v[ph][e] / samples : NAN);
                    fputc('\n', f);
                }
        }
    return close_file(f, rd, "papi.csv", err);
}

static double median_step_s(const dmz_rank_rows *rows, int n_rows) {
    double sum = 0;
    int n = 0;
    for (int i = 0; n_rows > 0 && i < rows[0].n_reps; i++)
        if (rows[0].reps[i].steps_done > 0) sum += rows[0].reps[i].wall_s / rows[0].reps[i].steps_done, n++;
    return n ? sum / n : NAN;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static cJSON *rank_json(const rank_info *in, const dmz_rank_rows *row, double step_s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rank", in->rank);
    if (row && row->n_reps > 0) {
        cJSON_AddItemToObject(o, "binding", dmz_binding_json(&row->reps[0].ctr.bind));
        cJSON_AddStringToObject(o, "papi", row->reps[row->n_reps - 1].ctr.papi.status);
        cJSON_AddStringToObject(o, "energy_source", row->reps[0].ctr.energy_source);
    }
    cJSON_AddStringToObject(o, "device", in->device);
    add_num(o, "peak_fp32_flops", in->peak_flops);
    add_num(o, "peak_memory_bytes_per_s", in->peak_bytes_per_s);
    if (in->peak_how[0]) cJSON_AddStringToObject(o, "clocks_from", in->peak_how);
    cJSON *s = cJSON_AddObjectToObject(o, "sampler");
    cJSON_AddStringToObject(s, "status", in->sampler);
    cJSON_AddNumberToObject(s, "rows", (double)in->n_samples);
    cJSON_AddNumberToObject(s, "rounds", (double)in->cost.samples);
    add_num(s, "period_ms", in->cost.period_s * 1e3);
    add_num(s, "mean_sample_us", in->cost.mean_s * 1e6);
    add_num(s, "max_sample_us", in->cost.max_s * 1e6);
    add_num(s, "cpu_fraction", in->cost.cpu_fraction);
    /* the sampler's time per step: cost per sample x samples per second x step time */
    add_num(s, "step_s", step_s);
    add_num(s, "overhead_s_per_step", in->cost.mean_s / in->cost.period_s * step_s);
    add_num(s, "overhead_pct_of_step", 100.0 * in->cost.mean_s / in->cost.period_s);
    cJSON_AddStringToObject(o, "kernels", in->kernels);
    cJSON_AddNumberToObject(o, "kernel_rows", in->n_rows);
    return o;
}

int dmz_counters_write(const dmz_rundir *rd, cJSON *meta, const dmz_rank_rows *rows, int n_rows, char *err) {
    if (!R.info) { /* no gather (single rank, or a failed run): this rank only */
        dmz_counters_run_stop();
        if (!keep_own(1)) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    }
    int rc = write_gpu_csv(rd, err);
    if (!rc) rc = write_kernels_csv(rd, err);
    if (!rc) rc = write_papi_csv(rd, rows, n_rows, err);
    cJSON *c = cJSON_CreateObject();
    cJSON *papi = dmz_papi_json();
    cJSON_AddItemToObject(c, "papi", papi);
    cJSON_AddItemToObject(c, "nvml", dmz_nvml_json());
    char why[DMZ_CTR_REASON_LEN];
    cJSON_AddItemToObject(c, "cupti", dmz_cupti_built(why, sizeof why) ? cJSON_CreateString("built (libcupti loaded at run time)")
                                                                       : dmz_ctr_unavailable(why));
    cJSON_AddNumberToObject(c, "sample_ms", R.sample_ms);
    cJSON *ranks = cJSON_AddArrayToObject(c, "ranks");
    double step_s = median_step_s(rows, n_rows);
    for (int r = 0; r < R.size; r++) {
        if (R.info[r].rank < 0) continue;
        const dmz_rank_rows *row = NULL;
        for (int k = 0; k < n_rows; k++)
            if (rows[k].rank == r) row = &rows[k];
        cJSON_AddItemToArray(ranks, rank_json(&R.info[r], row, step_s));
    }
    cJSON_DeleteItemFromObject(meta, "counters");
    cJSON_AddItemToObject(meta, "counters", c);
    return rc;
}

void dmz_counters_run_free(void) {
    for (int r = 1; R.samples && r < R.size; r++) free(R.samples[r]);
    for (int r = 1; R.krows && r < R.size; r++) free(R.krows[r]);
    free(R.info), free(R.samples), free(R.krows);
    R.info = NULL, R.samples = NULL, R.krows = NULL, R.size = 0;
    dmz_sampler_stop();
    dmz_papi_close();
    R.started = R.stopped = false; /* a second run in this process starts afresh */
}
