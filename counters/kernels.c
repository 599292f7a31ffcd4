/* counters/kernels.c — time per kernel and per memcpy on the GPU.
 *
 *   cupti   CUPTI activity records (CONCURRENT_KERNEL, MEMCPY), libcupti
 *           loaded at run time, so a binary without it still runs. Each op
 *           call of the counted backend pushes its call number as an
 *           external correlation id: a kernel that is the only one its op
 *           call launched gets that call's FLOP and bytes; one of several
 *           gets NA (the split among them is not known).
 *   events  CUDA events around each op when CUPTI is missing: one row per
 *           op, read at the backend's sync points.
 *   none    the reason (the cpu backend, no CUDA device, a build without CUDA).
 *
 * Rows are aggregated by kind and name into dmz_kernel_row (kernels.csv). */
#include "counters/counters.h"
#include "counters/internal.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DMZ_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_backend.h"
#endif
#ifdef DMZ_HAVE_CUPTI
#include <cupti.h>
#endif

enum { MODE_NONE, MODE_CUPTI, MODE_EVENTS };
static int mode;
static char status[DMZ_CTR_REASON_LEN] = "unavailable: kernel timing was not started";

int dmz_kernels_active(void) { return mode != MODE_NONE; }
const char *dmz_kernels_status(void) { return status; }

int dmz_cupti_built(char *why, size_t len) { return dmz_counters_enabled("cupti", why, len); }

/* ------------------------------------------------------------ CUDA events */
#ifdef DMZ_HAVE_CUDA
typedef struct pending { int op; cudaEvent_t a, b; } pending;
static pending *pend;
static size_t n_pend, cap_pend;
static cudaEvent_t *spare;
static size_t n_spare, cap_spare;

static cudaEvent_t take_event(void) {
    if (n_spare) return spare[--n_spare];
    cudaEvent_t e = NULL;
    if (cudaEventCreate(&e) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return e;
}

static void give_event(cudaEvent_t e) {
    if (!e) return;
    if (n_spare == cap_spare) {
        size_t cap = cap_spare ? 2 * cap_spare : 256;
        cudaEvent_t *g = realloc(spare, cap * sizeof *g);
        if (!g) {
            cudaEventDestroy(e);
            return;
        }
        spare = g, cap_spare = cap;
    }
    spare[n_spare++] = e;
}

/* The stream the op's kernels go to (a non-blocking one: an event on the
 * legacy stream would not order with them), or NULL while it is being captured
 * into a graph (--graph: an event there would become a node of the graph). */
static cudaStream_t op_stream(bool *ok) {
    cudaStream_t s = (cudaStream_t)dmz_cuda_current_stream();
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    *ok = cudaStreamIsCapturing(s, &capturing) == cudaSuccess && capturing == cudaStreamCaptureStatusNone;
    if (!*ok) cudaGetLastError();
    return s;
}

static void events_begin(int op) {
    bool ok;
    cudaStream_t s = op_stream(&ok);
    if (!ok) return;
    if (n_pend == cap_pend) {
        size_t cap = cap_pend ? 2 * cap_pend : 256;
        pending *g = realloc(pend, cap * sizeof *g);
        if (!g) return;
        pend = g, cap_pend = cap;
    }
    pending *p = &pend[n_pend];
    p->op = op, p->a = take_event(), p->b = NULL;
    if (p->a && cudaEventRecord(p->a, s) == cudaSuccess) n_pend++;
    else give_event(p->a), cudaGetLastError();
}

static void events_end(int op) {
    if (n_pend == 0 || pend[n_pend - 1].op != op || pend[n_pend - 1].b) return;
    pending *p = &pend[n_pend - 1];
    bool ok;
    cudaStream_t s = op_stream(&ok);
    if (!ok) return;
    p->b = take_event();
    if (!p->b || cudaEventRecord(p->b, s) != cudaSuccess) cudaGetLastError();
}

static void events_resolve(void) {
    for (size_t i = 0; i < n_pend; i++) {
        float ms = 0;
        if (pend[i].b && cudaEventSynchronize(pend[i].b) == cudaSuccess &&
            cudaEventElapsedTime(&ms, pend[i].a, pend[i].b) == cudaSuccess)
            dmz_opcount_add_event_ms(pend[i].op, ms);
        else cudaGetLastError();
        give_event(pend[i].a), give_event(pend[i].b);
    }
    n_pend = 0;
}
#endif

/* ------------------------------------------------------------ CUPTI */
#ifdef DMZ_HAVE_CUPTI
#ifndef DMZ_CUPTI_LIBDIR
#define DMZ_CUPTI_LIBDIR "/usr/local/cuda/lib64"
#endif
static struct {
    void *lib;
    CUptiResult (*RegisterCallbacks)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
    CUptiResult (*Enable)(CUpti_ActivityKind);
    CUptiResult (*Disable)(CUpti_ActivityKind);
    CUptiResult (*FlushAll)(uint32_t);
    CUptiResult (*GetNextRecord)(uint8_t *, size_t, CUpti_Activity **);
    CUptiResult (*GetResultString)(CUptiResult, const char **);
    CUptiResult (*PushExternal)(CUpti_ExternalCorrelationKind, uint64_t);
    CUptiResult (*PopExternal)(CUpti_ExternalCorrelationKind, uint64_t *);
} C;

typedef struct krec { int name; int memcpy_kind; double ns, bytes; uint32_t corr; int32_t grid[3], block[3], regs, smem; } krec;
static krec *recs;
static size_t n_recs, cap_recs;
typedef struct xrec { uint32_t corr; uint64_t call; } xrec;
static xrec *xrecs;
static size_t n_x, cap_x;
static char **names;
static int n_names;
static size_t dropped;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *cupti_error(CUptiResult r) {
    const char *s = NULL;
    if (C.GetResultString) C.GetResultString(r, &s);
    return s ? s : "unknown CUPTI error";
}

/* "_Z17dense_fwd_kernelPfPKfi" -> "dense_fwd_kernel": the Itanium name's first identifier. */
static void short_name(const char *mangled, char *out, size_t len) {
    const char *p = mangled;
    if (p && strncmp(p, "_Z", 2) == 0) {
        p += 2;
        if (*p == 'N') p++;
        char *end;
        long n = strtol(p, &end, 10);
        if (n > 0 && (size_t)n < len && strlen(end) >= (size_t)n) {
            snprintf(out, len, "%.*s", (int)n, end);
            return;
        }
    }
    snprintf(out, len, "%s", mangled ? mangled : "?");
}

static int intern(const char *mangled) {
    char s[DMZ_KERNEL_NAME_LEN];
    short_name(mangled, s, sizeof s);
    for (int i = 0; i < n_names; i++)
        if (strcmp(names[i], s) == 0) return i;
    char **g = realloc(names, (size_t)(n_names + 1) * sizeof *g);
    if (!g) return 0;
    names = g;
    names[n_names] = strdup(s);
    return n_names++;
}

static void grow(void **p, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return;
    size_t c = *cap ? 2 * *cap : 4096;
    void *g = realloc(*p, c * size);
    if (g) *p = g, *cap = c;
}

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *size = 4u << 20;
    *buffer = aligned_alloc(8, *size);
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    (void)ctx, (void)stream, (void)size;
    CUpti_Activity *r = NULL;
    pthread_mutex_lock(&rec_lock);
    while (C.GetNextRecord(buffer, valid, &r) == CUPTI_SUCCESS) {
        if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || r->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            /* the fields used here sit at the same place in every version since Kernel4 */
            const CUpti_ActivityKernel4 *k = (const CUpti_ActivityKernel4 *)r;
            grow((void **)&recs, &cap_recs, n_recs, sizeof *recs);
            if (n_recs == cap_recs) { dropped++; continue; }
            recs[n_recs++] = (krec){intern(k->name), -1, (double)(k->end - k->start), NAN, k->correlationId,
                                    {k->gridX, k->gridY, k->gridZ}, {k->blockX, k->blockY, k->blockZ},
                                    k->registersPerThread, k->staticSharedMemory + k->dynamicSharedMemory};
        } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const CUpti_ActivityMemcpy *m = (const CUpti_ActivityMemcpy *)r;
            grow((void **)&recs, &cap_recs, n_recs, sizeof *recs);
            if (n_recs == cap_recs) { dropped++; continue; }
            recs[n_recs++] = (krec){-1, m->copyKind, (double)(m->end - m->start), (double)m->bytes, m->correlationId,
                                    {0, 0, 0}, {0, 0, 0}, 0, 0};
        } else if (r->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
            const CUpti_ActivityExternalCorrelation *x = (const CUpti_ActivityExternalCorrelation *)r;
            grow((void **)&xrecs, &cap_x, n_x, sizeof *xrecs);
            if (n_x < cap_x) xrecs[n_x++] = (xrec){x->correlationId, x->externalId};
        }
    }
    pthread_mutex_unlock(&rec_lock);
    free(buffer);
}

#define CUPTI_SYM(f, n)                                                                                         \
    if (!(*(void **)&C.f = dlsym(C.lib, n))) {                                                                  \
        snprintf(why, len, "%s: no symbol %s", path, n);                                                        \
        return 0;                                                                                               \
    }

static int cupti_open(char *why, size_t len) {
    const char *path = getenv("DMZBENCH_CUPTI_LIB");
    if (!path || !*path) path = "libcupti.so";
    C.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!C.lib && !getenv("DMZBENCH_CUPTI_LIB")) C.lib = dlopen(path = DMZ_CUPTI_LIBDIR "/libcupti.so", RTLD_NOW | RTLD_LOCAL);
    if (!C.lib) {
        snprintf(why, len, "dlopen(%s): %s", path, dlerror());
        return 0;
    }
    CUPTI_SYM(RegisterCallbacks, "cuptiActivityRegisterCallbacks");
    CUPTI_SYM(Enable, "cuptiActivityEnable");
    CUPTI_SYM(Disable, "cuptiActivityDisable");
    CUPTI_SYM(FlushAll, "cuptiActivityFlushAll");
    CUPTI_SYM(GetNextRecord, "cuptiActivityGetNextRecord");
    CUPTI_SYM(GetResultString, "cuptiGetResultString");
    CUPTI_SYM(PushExternal, "cuptiActivityPushExternalCorrelationId");
    CUPTI_SYM(PopExternal, "cuptiActivityPopExternalCorrelationId");
    CUptiResult r = C.RegisterCallbacks(buffer_requested, buffer_completed);
    static const CUpti_ActivityKind kinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                               CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};
    for (size_t i = 0; r == CUPTI_SUCCESS && i < sizeof kinds / sizeof kinds[0]; i++) r = C.Enable(kinds[i]);
    if (r != CUPTI_SUCCESS) {
        snprintf(why, len, "CUPTI activity API: %s", cupti_error(r));
        return 0;
    }
    return 1;
}

static int cmp_x(const void *a, const void *b) {
    uint32_t x = ((const xrec *)a)->corr, y = ((const xrec *)b)->corr;
    return (x > y) - (x < y);
}

static uint64_t call_of(uint32_t corr) {
    size_t lo = 0, hi = n_x;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (xrecs[mid].corr < corr) lo = mid + 1;
        else hi = mid;
    }
    return lo < n_x && xrecs[lo].corr == corr ? xrecs[lo].call : 0;
}

static const char *copy_kind(int k) {
    switch (k) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    default: return "memcpy other";
    }
}

static int find_row(dmz_kernel_row *rows, int *n, int max, const char *kind, const char *name) {
    for (int i = 0; i < *n; i++)
        if (strcmp(rows[i].kind, kind) == 0 && strcmp(rows[i].name, name) == 0) return i;
    if (*n >= max) return -1;
    dmz_kernel_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->source, sizeof r->source, "cupti");
    return *n - 1;
}

static int cupti_collect(dmz_kernel_row *rows, int max) {
    C.FlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&rec_lock);
    qsort(xrecs, n_x, sizeof *xrecs, cmp_x);
    /* kernels per op call: a kernel alone in its call gets the call's counts */
    uint64_t max_call = 0;
    for (size_t i = 0; i < n_recs; i++) {
        uint64_t c = recs[i].name >= 0 ? call_of(recs[i].corr) : 0;
        if (c > max_call) max_call = c;
    }
    int *per_call = calloc((size_t)max_call + 1, sizeof *per_call);
    for (size_t i = 0; per_call && i < n_recs; i++)
        if (recs[i].name >= 0) per_call[call_of(recs[i].corr)]++;
    int n = 0;
    for (size_t i = 0; i < n_recs; i++) {
        const krec *k = &recs[i];
        int row = k->name >= 0 ? find_row(rows, &n, max, "kernel", names[k->name])
                               : find_row(rows, &n, max, "memcpy", copy_kind(k->memcpy_kind));
        if (row < 0) continue;
        dmz_kernel_row *r = &rows[row];
        r->calls += 1, r->total_ms += k->ns / 1e6;
        if (k->name < 0) {
            r->flops = NAN, r->bytes += k->bytes;
            continue;
        }
        uint64_t c = call_of(k->corr);
        int op;
        double f, b;
        dmz_opcount_call_of(c, &op, &f, &b);
        if (!c || !per_call || per_call[c] != 1 || isnan(f)) r->flops = r->bytes = NAN; /* stays NA */
        else r->flops += f, r->bytes += b;
    }
    free(per_call);
    pthread_mutex_unlock(&rec_lock);
    return n;
}
#endif

/* ------------------------------------------------------------ the brackets */
void dmz_kernels_op_begin(int op, uint64_t call) {
#ifdef DMZ_HAVE_CUPTI
    if (mode == MODE_CUPTI) {
        C.PushExternal(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, call);
        return;
    }
#endif
#ifdef DMZ_HAVE_CUDA
    if (mode == MODE_EVENTS) events_begin(op);
#endif
    (void)op, (void)call;
}

void dmz_kernels_op_end(int op, uint64_t call) {
#ifdef DMZ_HAVE_CUPTI
    if (mode == MODE_CUPTI) {
        uint64_t last;
        C.PopExternal(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
        return;
    }
#endif
#ifdef DMZ_HAVE_CUDA
    if (mode == MODE_EVENTS) events_end(op);
#endif
    (void)op, (void)call;
}

void dmz_kernels_synced(void) {
#ifdef DMZ_HAVE_CUDA
    if (mode == MODE_EVENTS) events_resolve();
#endif
}

int dmz_kernels_start(const char *backend, bool have_device) {
    mode = MODE_NONE;
    if (strcmp(backend, "cpu") == 0) {
        snprintf(status, sizeof status, "unavailable: --backend cpu launches no CUDA kernels%s",
                 have_device ? "" : " (and there is no CUDA device here)");
        return 0;
    }
#ifndef DMZ_HAVE_CUDA
    snprintf(status, sizeof status, "unavailable: this build has no CUDA");
    return 0;
#else
    if (!have_device) {
        snprintf(status, sizeof status, "unavailable: no CUDA device");
        return 0;
    }
    char why[DMZ_CTR_REASON_LEN] = "";
#ifdef DMZ_HAVE_CUPTI
    if (dmz_cupti_built(why, sizeof why) && cupti_open(why, sizeof why)) {
        mode = MODE_CUPTI;
        snprintf(status, sizeof status, "cupti: activity records of every kernel and memcpy");
        return 1;
    }
#else
    dmz_cupti_built(why, sizeof why);
#endif
    mode = MODE_EVENTS;
    snprintf(status, sizeof status, "events: CUDA events around each op (CUPTI unavailable: %.300s)", why);
    return 1;
#endif
}

int dmz_kernels_collect(dmz_kernel_row *rows, int max) {
#ifdef DMZ_HAVE_CUPTI
    if (mode == MODE_CUPTI) return cupti_collect(rows, max);
#endif
    if (mode != MODE_EVENTS) return 0;
    dmz_kernels_synced();
    dmz_op_total t[DMZ_MAX_OPS];
    int n = dmz_opcount_totals(t, DMZ_MAX_OPS), k = 0;
    for (int i = 0; i < n && k < max; i++) {
        if (isnan(t[i].event_ms)) continue;
        dmz_kernel_row *r = &rows[k++];
        memset(r, 0, sizeof *r);
        int mem = strncmp(t[i].name, "memcpy_", 7) == 0;
        snprintf(r->kind, sizeof r->kind, "%s", mem ? "memcpy" : "kernel");
        snprintf(r->name, sizeof r->name, "%.40s", t[i].name);
        snprintf(r->source, sizeof r->source, "events");
        r->calls = t[i].calls, r->total_ms = t[i].event_ms;
        r->flops = mem ? NAN : t[i].flops, r->bytes = t[i].bytes;
    }
    return k;
}

void dmz_kernels_stop(void) {
#ifdef DMZ_HAVE_CUPTI
    if (mode == MODE_CUPTI) {
        C.FlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
        C.Disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
        C.Disable(CUPTI_ACTIVITY_KIND_MEMCPY);
        C.Disable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
    }
#endif
    mode = MODE_NONE;
}

int dmz_gpu_clocks(const char *pci_bus_id, int cuda_device, double *sm_mhz, double *mem_mhz, char *source,
                   size_t len) {
    char why[DMZ_CTR_REASON_LEN] = "";
    if (dmz_nvml_load(why, sizeof why) && dmz_nvml_max_clocks(pci_bus_id, sm_mhz, mem_mhz)) {
        snprintf(source, len, "nvml max clocks");
        return 1;
    }
#ifdef DMZ_HAVE_CUDA
    int sm = 0, mem = 0;
    if (cudaDeviceGetAttribute(&sm, cudaDevAttrClockRate, cuda_device) == cudaSuccess &&
        cudaDeviceGetAttribute(&mem, cudaDevAttrMemoryClockRate, cuda_device) == cudaSuccess && sm > 0 && mem > 0) {
        *sm_mhz = sm / 1000.0, *mem_mhz = mem / 1000.0;
        snprintf(source, len, "cudaDeviceGetAttribute peak clocks (NVML: %.200s)", why[0] ? why : "no such device");
        return 1;
    }
    cudaGetLastError();
#endif
    (void)cuda_device;
    *sm_mhz = *mem_mhz = NAN;
    snprintf(source, len, "unavailable: NVML: %.200s; the CUDA runtime has no clock attributes for it",
             why[0] ? why : "no such device");
    return 0;
}
