/* counters/counters.h — what the hardware did during a run, or why it cannot
 * be told. The front door of counters/; bench/ calls it, nothing else does.
 *
 * One file per source, each behind a small table so tests can swap it:
 *   topology.c  hwloc: packages, NUMA nodes, cores, PUs, caches, GPUs and NICs
 *   bind.c      --bind none|auto|CPULIST (hwloc), the binding in effect
 *   papi.c      PAPI: events counted around each phase, on every OpenMP thread
 *   nvml.c      NVML loaded at run time (dlopen), device clocks and peaks
 *   sampler.c   a thread per rank sampling NVML into gpu.csv rows, energy
 *   opcount.c   FLOP and byte counts per backend op, from the shapes it gets
 *   kernels.c   per-kernel times: CUPTI activity records (libcupti loaded at
 *               run time), else CUDA events around each op, else the reason
 *
 * Honest numbers: whatever cannot be read is NAN (NA in CSV files) and comes
 * with a reason string "unavailable: ..."; never a 0 standing in for it.
 * DMZBENCH_DISABLE=hwloc,papi,nvml,cupti switches sources off at run time
 * (their reason then says so). */
#ifndef DMZ_COUNTERS_H
#define DMZ_COUNTERS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

enum { DMZ_CTR_REASON_LEN = 400 };

/* 1 when `component` ("hwloc", "papi", "nvml", "cupti") is built and not
 * switched off by DMZBENCH_DISABLE; else 0 and why. */
int dmz_counters_enabled(const char *component, char *why, size_t len);
/* "unavailable: <reason>" as a JSON string. */
cJSON *dmz_ctr_unavailable(const char *reason);

/* ------------------------------------------------------------ topology (hwloc) */
/* Packages, NUMA nodes, cores, PUs, caches, PCI GPUs and NICs with their
 * locality; or the string "unavailable: <reason>". */
cJSON *dmz_topology_json(void);
/* The text form of dmz_topology_json (for `dmzbench info`). */
void dmz_topology_print(const cJSON *topology, void *file /* FILE * */);

/* ------------------------------------------------------------ binding */
/* One rank's binding: fixed size, no pointers (it travels to rank 0 as bytes). */
typedef struct dmz_binding {
    char mode[16];          /* none | auto | list */
    char cpuset[256];       /* CPUs this process may run on, as a list ("0-3,8"); after binding */
    int pus;                /* how many */
    int local_rank, local_size; /* among the ranks on this host */
    char how[200];          /* "near GPU 0000:65:00.0 (NUMA node 1)", "spread over 2 packages", ... */
    char reason[200];       /* why auto could not bind (empty when it did or was not asked) */
} dmz_binding;

/* Syntax of --bind (none, auto, or a CPU list "0-3,8,10-11"): DMZ_EXIT_USAGE
 * naming the bad token. */
int dmz_bind_parse(const char *spec, char *err);
/* The CPUs of a list must exist here (hwloc, else the online CPUs). */
int dmz_bind_check_cpus(const char *spec, char *err);
/* This process's rank among the ranks of its host, from the launcher's
 * variables (OMPI_COMM_WORLD_LOCAL_RANK/SIZE, MPI_LOCALRANKID/MPI_LOCALNRANKS,
 * SLURM_LOCALID/SLURM_NTASKS_PER_NODE); 0 of 1 without a launcher. */
void dmz_local_rank(int *rank, int *size);
/* Applies spec: none leaves the process as it is; auto binds to the cores
 * nearest this rank's GPU, gpu_bus_ids[local rank] (its NUMA node or package,
 * shared out among the local ranks whose GPUs sit there), or, with no GPU
 * list (n_gpus 0: a CPU run), spreads the local ranks over packages and
 * cores; a list binds to it. The process and each of its `threads` OpenMP
 * threads (one PU each, in turn) are bound. *out says what is in effect. An
 * auto that cannot bind is not an error (out->reason says why); a list that
 * cannot be applied is (DMZ_EXIT_FAIL). */
int dmz_bind_apply(const char *spec, const char *const *gpu_bus_ids, int n_gpus, int threads, dmz_binding *out,
                   char *err);
/* The CPUs this process may run on now, as a list ("0-1"). */
void dmz_current_cpuset(char *out, size_t len);
cJSON *dmz_binding_json(const dmz_binding *b);

/* ------------------------------------------------------------ phases (PAPI) */
enum { DMZ_PHASE_LOAD, DMZ_PHASE_DATA, DMZ_PHASE_FWD, DMZ_PHASE_BWD, DMZ_PHASE_UPDATE, DMZ_NPHASES };
extern const char *const dmz_phase_names[DMZ_NPHASES]; /* "load", "data", "fwd", "bwd", "update" */
enum { DMZ_PAPI_MAX_EVENTS = 8, DMZ_PAPI_EVENT_LEN = 48 };
#define DMZ_PAPI_DEFAULT_EVENTS "PAPI_TOT_INS,PAPI_TOT_CYC,PAPI_L1_DCM,PAPI_L2_DCM"

/* PAPI's functions this file uses, in PAPI's own shapes (PAPI_OK = 0,
 * negative codes are errors). The real table wraps libpapi; tests install a
 * fake one with dmz_papi_set_api before dmz_papi_open. */
typedef struct dmz_papi_api {
    const char *name;                           /* "libpapi 7.0.0.0", "fake" */
    int (*library_init)(void);                  /* PAPI_OK or an error code */
    int (*thread_init)(void);                   /* PAPI_thread_init(pthread_self) */
    const char *(*strerror)(int code);
    /* why no counter can work, or NULL: a disabled component's own reason */
    const char *(*disabled_reason)(void);
    int (*create_eventset)(int *set);
    int (*add_named_event)(int set, const char *name);
    int (*start)(int set);
    int (*read)(int set, long long *values);
    int (*stop)(int set, long long *values);
    int (*destroy)(int set);                    /* cleanup + destroy */
} dmz_papi_api;
void dmz_papi_set_api(const dmz_papi_api *api); /* NULL: the real one (or none) */

/* Per rank and repetition: fixed size, no pointers. */
typedef struct dmz_papi_counts {
    int n_events;
    char events[DMZ_PAPI_MAX_EVENTS][DMZ_PAPI_EVENT_LEN];
    double v[DMZ_NPHASES][DMZ_PAPI_MAX_EVENTS]; /* summed over threads; NAN: not counted */
    char status[DMZ_CTR_REASON_LEN];            /* "counting ..." or "unavailable: ..." */
} dmz_papi_counts;

/* Starts counting `events` (a comma list; NULL: the default list, keeping
 * those that exist) on `threads` OpenMP threads. Returns 1 when counting; 0
 * when not (the reason, PAPI's own words, in dmz_papi_status). Never fails a run. */
int dmz_papi_open(const char *events, int threads);
/* Checks the syntax of --papi-events (DMZ_EXIT_USAGE naming the token). */
int dmz_papi_parse(const char *events, char *err);
/* Phase boundaries (cheap no-ops while PAPI is not counting). A read that
 * fails stops counting for the rest of the run: counts become NAN, the status
 * says where and why. */
void dmz_phase_begin(int phase);
void dmz_phase_end(int phase);
/* The counts since the last take (or open), then zeroed. */
void dmz_papi_take(dmz_papi_counts *out);
const char *dmz_papi_status(void);
cJSON *dmz_papi_json(void);                 /* for info / meta: status, events */
void dmz_papi_close(void);

/* ------------------------------------------------------------ NVML */
/* NVML's functions, in NVML's ABI (nvml.h is not needed: the few types are
 * declared in nvml.c). Loaded by dlopen of $DMZBENCH_NVML_LIB, else
 * "libnvidia-ml.so.1". 1: loaded and initialised; else 0 and why. */
int dmz_nvml_load(char *reason, size_t len);
void dmz_nvml_unload(void);
/* Driver version and every device (name, PCI bus id, max clocks, memory,
 * power limit), or the string "unavailable: <reason>". */
cJSON *dmz_nvml_json(void);
/* Max SM and memory clocks (MHz) of the device with this PCI bus id
 * (NULL: index 0); 0 when NVML cannot say. */
int dmz_nvml_max_clocks(const char *pci_bus_id, double *sm_mhz, double *mem_mhz);

/* One NVML sample of one device; NAN for what NVML did not answer. */
typedef struct dmz_gpu_sample {
    int device;                  /* NVML index */
    double t_s;                  /* seconds since the sampler started */
    double sm_clock_mhz, mem_clock_mhz, power_w, energy_j, temp_c;
    double gpu_util_pct, mem_util_pct, mem_used_bytes;
    double pcie_tx_bytes_per_s, pcie_rx_bytes_per_s;
    long long throttle_reasons;  /* bit mask; -1: not available */
} dmz_gpu_sample;

/* A sampler thread: every sample_ms, every device with pci_bus_id (NULL: all
 * devices NVML sees). 1 when sampling; else 0, no thread, the reason in
 * dmz_sampler_status. */
int dmz_sampler_start(int sample_ms, const char *pci_bus_id);
double dmz_sampler_now(void);                /* seconds on the samples' clock */
/* Energy (J) and mean power (W) between two times on that clock, summed over
 * the sampled devices: from NVML's energy counter read at the two moments
 * (dmz_sampler_mark), else the power samples integrated. NAN when unknown. */
typedef struct dmz_energy_mark { double t_s; double energy_j; } dmz_energy_mark;
void dmz_sampler_mark(dmz_energy_mark *m);
void dmz_sampler_energy(const dmz_energy_mark *a, const dmz_energy_mark *b, double *energy_j, double *power_w,
                        char *source, size_t len);
void dmz_sampler_stop(void);
const dmz_gpu_sample *dmz_sampler_samples(size_t *n);
const char *dmz_sampler_status(void);
/* The sampler's own cost: its samples, mean and max seconds per sample, period. */
typedef struct dmz_sampler_cost { size_t samples; double mean_s, max_s, period_s, cpu_fraction; } dmz_sampler_cost;
void dmz_sampler_cost_of(dmz_sampler_cost *c);

/* ------------------------------------------------------------ devices */
/* FP32 lanes per SM for a compute capability (0 when unknown). */
int dmz_fp32_lanes_per_sm(int cc_major, int cc_minor);
/* Peak FP32 FLOP/s (2 x lanes x SMs x clock) and memory bandwidth
 * (2 x memory clock x bus width / 8, NVML's clock of a DDR bus); NAN when unknown. */
void dmz_gpu_peaks(int cc_major, int cc_minor, int sms, double sm_mhz, double mem_mhz, int bus_bits,
                   double *flops, double *bytes_per_s);

/* Max SM and memory clocks (MHz) of a device: NVML by PCI bus id, else the
 * CUDA runtime's attributes of `cuda_device` (CUDA 13 keeps those, not the
 * cudaDeviceProp fields). 0 and why when neither answers. */
int dmz_gpu_clocks(const char *pci_bus_id, int cuda_device, double *sm_mhz, double *mem_mhz, char *source,
                   size_t len);

/* ------------------------------------------------------------ ops and kernels */
/* The backend `inner` with every op counted (calls, FLOP, bytes from the
 * shapes it is given) and, when kernel timing is on, bracketed for CUPTI or
 * timed with CUDA events. The same name as inner. */
const dmz_backend *dmz_opcount_wrap(const dmz_backend *inner);
enum { DMZ_OP_NAME_LEN = 40, DMZ_MAX_OPS = 24 };
typedef struct dmz_op_total {
    char name[DMZ_OP_NAME_LEN];
    double calls, flops, bytes;  /* bytes: the op's inputs read + outputs written once */
    double event_ms;             /* CUDA-event time; NAN without */
} dmz_op_total;
int dmz_opcount_totals(dmz_op_total *out, int max);  /* ops called at least once */
void dmz_opcount_reset(void);

enum { DMZ_KERNEL_NAME_LEN = 96, DMZ_MAX_KERNEL_ROWS = 64 };
typedef struct dmz_kernel_row {        /* one line of kernels.csv; fixed size */
    char kind[8];                      /* kernel | memcpy */
    char name[DMZ_KERNEL_NAME_LEN];
    double calls, total_ms, flops, bytes; /* flops/bytes NAN: unknown */
    char source[8];                    /* cupti | events */
} dmz_kernel_row;
/* Starts per-kernel timing for a run on `backend` ("cuda", ...): CUPTI when
 * libcupti loads ($DMZBENCH_CUPTI_LIB, else libcupti.so from the toolkit),
 * else CUDA events around each op of the wrapped backend. 1: timing; 0 and
 * the reason in dmz_kernels_status ("unavailable: no CUDA device", ...). */
int dmz_kernels_start(const char *backend, bool have_device);
/* Everything timed so far, aggregated by kind and name (at most max rows). */
int dmz_kernels_collect(dmz_kernel_row *rows, int max);
const char *dmz_kernels_status(void);
void dmz_kernels_stop(void);
/* 1 when this build can use CUPTI (cupti.h found), with why not otherwise. */
int dmz_cupti_built(char *why, size_t len);

#endif
