/* Execution contexts of the cuda backend (kernels/cuda/context.cuh): the
 * stream every op of a model runs on, its scratch, pinned staging; the launch
 * record and checks every DMZ_LAUNCH goes through; device selection.
 *
 * The scratch is the context's, not a file-scope __device__ array: two models
 * trained on two threads have two contexts, so their reductions never share
 * partial sums (a shared array gave wrong sums on the emulator). */
#include "context.cuh"

#ifndef __CUDACC_RTC__ /* host code only; NVRTC (kernel-resources) sees nothing here */
#include <mutex>
#include <stdlib.h>
#include <string.h>

namespace DMZ_CUDA_NS {
namespace {

thread_local context *cur = nullptr;
context *default_ctx = nullptr;
std::once_flag default_once;

/* The last kernels launched on this thread, for error messages. */
constexpr unsigned long RING = 16;
thread_local const char *ring[RING];
thread_local unsigned long ring_pos = 0;

/* Read at every launch (a few hundred nanoseconds), so that a test can set it. */
int check_mode() {
    const char *v = getenv("DMZ_CUDA_CHECK");
    return v && *v && strcmp(v, "0") != 0;
}

void recent_launches(char *buf, size_t len) {
    size_t n = ring_pos < RING ? ring_pos : RING, used = 0;
    buf[0] = 0;
    if (n == 0) {
        snprintf(buf, len, "none on this thread");
        return;
    }
    for (size_t i = 0; i < n && used < len; i++) {
        const char *k = ring[(ring_pos - n + i) % RING];
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", k);
    }
}

std::once_flag device_once;
int chosen_device = -1;
char device_reason[512];
thread_local bool thread_on_device = false;

void choose_device() {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        snprintf(device_reason, sizeof device_reason, "%s", e != cudaSuccess ? cudaGetErrorString(e) : "no device");
        return;
    }
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
                                       "MV2_COMM_WORLD_LOCAL_RANK", "PMI_LOCAL_RANK"};
    int local = 0;
    for (const char *v : vars) {
        const char *s = getenv(v);
        if (s && *s) {
            local = atoi(s);
            break;
        }
    }
    chosen_device = (local < 0 ? 0 : local) % count;
}

} // namespace

int device(char *reason, size_t len) {
    std::call_once(device_once, choose_device);
    if (chosen_device < 0) {
        if (reason) snprintf(reason, len, "%s", device_reason);
        return -1;
    }
    if (!thread_on_device) {
        cudaError_t e = cudaSetDevice(chosen_device);
        if (e != cudaSuccess) {
            cudaGetLastError();
            if (reason) snprintf(reason, len, "cudaSetDevice(%d): %s", chosen_device, cudaGetErrorString(e));
            return -1;
        }
        thread_on_device = true;
    }
    return chosen_device;
}

void fail(const char *what, cudaError_t e, const char *file, int line) {
    char host[256] = "?", recent[1024];
    gethostname(host, sizeof host - 1);
    recent_launches(recent, sizeof recent);
    fprintf(stderr, "[%s] %s:%d: %s failed: %s (%s)\n[%s] last kernels launched (oldest first): %s\n", host, file, line,
            what, cudaGetErrorString(e), cudaGetErrorName(e), host, recent);
    if (!check_mode())
        fprintf(stderr, "[%s] a kernel fault surfaces at the next call that waits; DMZ_CUDA_CHECK=1 checks after every "
                        "launch and names the kernel\n", host);
    fflush(stderr);
    abort();
}

void after_launch(const char *kernel, const char *file, int line) {
    ring[ring_pos++ % RING] = kernel;
    cudaError_t e = cudaGetLastError();
    char what[200];
    if (e != cudaSuccess) {
        snprintf(what, sizeof what, "launch of kernel %s", kernel);
        fail(what, e, file, line);
    }
    if (check_mode() && !capturing()) {
        e = cudaStreamSynchronize(current_stream());
        if (e == cudaSuccess) e = cudaGetLastError();
        if (e != cudaSuccess) {
            snprintf(what, sizeof what, "kernel %s (DMZ_CUDA_CHECK=1: checked right after it ran)", kernel);
            fail(what, e, file, line);
        }
    }
}

context *create(char *err, size_t len) {
    char reason[512];
    if (device(reason, sizeof reason) < 0) {
        snprintf(err, len, "no CUDA device: %s", reason);
        return nullptr;
    }
    context *c = (context *)calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, len, "out of host memory");
        return nullptr;
    }
    cudaError_t e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    const char *what = "cudaStreamCreateWithFlags";
    if (e == cudaSuccess) what = "cudaMalloc (scratch)", e = cudaMalloc((void **)&c->scratch, SCRATCH_FLOATS * sizeof(float));
    if (e == cudaSuccess)
        what = "cudaMalloc (counters)", e = cudaMalloc((void **)&c->counters, SCRATCH_COUNTERS * sizeof(unsigned));
    if (e == cudaSuccess) what = "cudaMemsetAsync", e = cudaMemsetAsync(c->counters, 0, SCRATCH_COUNTERS * sizeof(unsigned), c->stream);
    for (int k = 0; k < STAGING_SLOTS && e == cudaSuccess; k++) {
        what = "cudaMallocHost (staging)", e = cudaMallocHost((void **)&c->staging[k], STAGING_BYTES);
        if (e == cudaSuccess) what = "cudaEventCreateWithFlags", e = cudaEventCreateWithFlags(&c->staged[k], cudaEventDisableTiming);
    }
    if (e == cudaSuccess) what = "cudaStreamSynchronize", e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(err, len, "cuda context: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
        destroy(c);
        return nullptr;
    }
    return c;
}

void destroy(context *c) {
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (int k = 0; k < VENDOR_SLOTS; k++)
        if (c->vendor[k] && c->vendor_free[k]) c->vendor_free[k](c->vendor[k]);
    for (int k = 0; k < VENDOR_SLOTS; k++)
        if (c->vendor_memory[k]) cudaFree(c->vendor_memory[k]);
    for (int k = 0; k < STAGING_SLOTS; k++) {
        if (c->staging[k]) cudaFreeHost(c->staging[k]);
        if (c->staged[k]) cudaEventDestroy(c->staged[k]);
    }
    if (c->vendor_scratch) cudaFree(c->vendor_scratch);
    if (c->scratch) cudaFree(c->scratch);
    if (c->counters) cudaFree(c->counters);
    if (c->stream) cudaStreamDestroy(c->stream);
    cudaGetLastError();
    if (cur == c) cur = nullptr;
    free(c);
}

void use(context *c) {
    if (c) device(nullptr, 0);
    cur = c;
}

context *current() {
    if (cur) return cur;
    std::call_once(default_once, [] {
        char err[512];
        default_ctx = create(err, sizeof err);
        if (!default_ctx) {
            fprintf(stderr, "cuda backend: %s\n", err);
            abort();
        }
    });
    return default_ctx;
}

cudaStream_t current_stream() { return current()->stream; }

float *scratch(size_t floats) {
    if (floats > SCRATCH_FLOATS) fail("scratch request beyond the context's fixed size", cudaErrorInvalidValue, __FILE__, __LINE__);
    return current()->scratch;
}

unsigned *scratch_counters(size_t counters) {
    if (counters > SCRATCH_COUNTERS) fail("counter request beyond the context's fixed size", cudaErrorInvalidValue, __FILE__, __LINE__);
    return current()->counters;
}

size_t scratch_floats() { return SCRATCH_FLOATS; }
size_t scratch_counters_max() { return SCRATCH_COUNTERS; }

bool capturing() {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(current_stream(), &st) != cudaSuccess) cudaGetLastError();
    return st != cudaStreamCaptureStatusNone;
}

/* The staging slot to use next, once the copy that used it last is done. */
static int take_slot(context *c) {
    int k = c->next_slot;
    c->next_slot = (k + 1) % STAGING_SLOTS;
    cudaError_t e = cudaEventQuery(c->staged[k]);
    if (e == cudaErrorNotReady) {
        cudaGetLastError();
        DMZ_CUDA_CHECK(cudaEventSynchronize(c->staged[k]));
    } else if (e != cudaSuccess) {
        fail("cudaEventQuery (staging slot)", e, __FILE__, __LINE__);
    }
    return k;
}

static void no_capture(const char *what) {
    if (capturing()) {
        fprintf(stderr, "cuda backend: %s while a graph is being captured: a captured step must not move host data\n", what);
        abort();
    }
}

void upload(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    no_capture("an upload");
    context *c = current();
    if (bytes > STAGING_BYTES) { /* pageable: returns once the source is staged by the driver */
        DMZ_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
        return;
    }
    int k = take_slot(c);
    memcpy(c->staging[k], src, bytes);
    DMZ_CUDA_CHECK(cudaMemcpyAsync(dst, c->staging[k], bytes, cudaMemcpyHostToDevice, c->stream));
    DMZ_CUDA_CHECK(cudaEventRecord(c->staged[k], c->stream));
}

void download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    no_capture("a download");
    context *c = current();
    if (bytes > STAGING_BYTES) {
        DMZ_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
        DMZ_CUDA_CHECK(cudaStreamSynchronize(c->stream));
        return;
    }
    int k = take_slot(c);
    DMZ_CUDA_CHECK(cudaMemcpyAsync(c->staging[k], src, bytes, cudaMemcpyDeviceToHost, c->stream));
    DMZ_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    memcpy(dst, c->staging[k], bytes);
}

void copy(void *dst, const void *src, size_t bytes) {
    if (bytes) DMZ_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_stream()));
}

void sync() { DMZ_CUDA_CHECK(cudaStreamSynchronize(current_stream())); }

void *vendor_scratch(size_t bytes) {
    context *c = current();
    if (bytes <= c->vendor_scratch_bytes) return c->vendor_scratch;
    if (capturing() || c->graphs)
        fail("growing a library's scratch while a graph holds the old one (run one plain step before --graph)",
             cudaErrorInvalidValue, __FILE__, __LINE__);
    DMZ_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    if (c->vendor_scratch) DMZ_CUDA_CHECK(cudaFree(c->vendor_scratch));
    c->vendor_scratch = nullptr;
    DMZ_CUDA_CHECK(cudaMalloc(&c->vendor_scratch, bytes));
    c->vendor_scratch_bytes = bytes;
    return c->vendor_scratch;
}

} // namespace DMZ_CUDA_NS
#endif
