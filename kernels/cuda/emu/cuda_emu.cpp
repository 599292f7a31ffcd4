/* kernels/cuda/emu/cuda_emu.cpp — the emulator's runtime: the block scheduler
 * (threads as ucontext coroutines), barriers, warp exchanges, and the CUDA
 * runtime calls on host memory. See cuda_emu.h for what is emulated and how.
 *
 * Scheduling. A launch runs the blocks of its grid one after another on the
 * calling OS thread. For one block, the scheduler resumes every runnable thread
 * in turn (in thread order, or backwards in every other block); a thread runs
 * until it finishes or waits at a barrier (__syncthreads, or a warp operation),
 * and the last thread to arrive at a barrier releases the others. A sweep that
 * finds no runnable thread while some have not finished is a deadlock: the
 * scheduler says which threads wait where, and aborts.
 *
 * Coroutines. Each OS thread keeps a pool of up to 1024 coroutines, created on
 * first use and reused by every later block and launch: a coroutine loops
 * "run the kernel body for my thread index, report done, yield". Each has its
 * own mmap'd stack with a guard page below it (an overflow faults instead of
 * corrupting a neighbour). Under AddressSanitizer every switch is announced
 * with __sanitizer_start/finish_switch_fiber. */
#include "cuda_emu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <map>
#include <mutex>

#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define DMZ_EMU_ASAN 1
#else
#define DMZ_EMU_ASAN 0
#endif

namespace dmz_emu {

namespace {

thread_local thread_info *cur_thread;
thread_local block_info *cur_block;

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...);

} // namespace

const thread_info *this_thread() {
    if (!cur_thread) fail("threadIdx or a warp operation used outside a kernel");
    return cur_thread;
}

const block_info *this_block() {
    if (!cur_block) fail("blockIdx, blockDim or gridDim used outside a kernel");
    return cur_block;
}

namespace {

constexpr unsigned MAX_THREADS = 1024;
constexpr size_t MAX_DYNAMIC_SHARED = 48 * 1024; /* the default limit without opt-in */
/* Kernel frames are small; sanitizers make them larger. */
constexpr size_t STACK_BYTES = DMZ_EMU_ASAN ? 256 * 1024 : 64 * 1024;

enum thread_state { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

struct thread_slot {
    thread_info info; /* what threadIdx reads */
    ucontext_t ctx;
    void *map = nullptr; /* guard page + stack */
    size_t map_len = 0;
    char *stack = nullptr;
    size_t stack_len = 0;
    thread_state state = DONE;
    unsigned wait_mask = 0; /* the mask of the warp operation this thread waits in */
    void *asan_fake_stack = nullptr;
};

struct warp_state {
    unsigned exist; /* lanes that exist in this warp */
    unsigned done;  /* lanes that have finished */
    uint64_t slots[32];
};

struct block_run {
    block_info info; /* what blockIdx/blockDim/gridDim read */
    const char *kernel;
    unsigned nthreads, ndone, nwait_block;
    warp_state warps[MAX_THREADS / 32];
    body_fn body;
    void *ctx;
    void *dynamic_shared;
};

struct pool {
    thread_slot *slot[MAX_THREADS] = {};
    unsigned created = 0;
    ucontext_t sched;
    void *sched_fake_stack = nullptr;
    const void *sched_stack_bottom = nullptr;
    size_t sched_stack_len = 0;
    block_run *run = nullptr;       /* the block being run, or null */
    thread_slot *current = nullptr; /* the coroutine running now, or null */
    ~pool();
};

thread_local pool P;
thread_local cudaError_t last_error = cudaSuccess;

/* ---------------------------------------------------------------- diagnostics */
[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const block_run *b = P.run;
    const thread_slot *t = P.current;
    if (b && t)
        fprintf(stderr, "cuda-emu: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s\n", b->kernel, b->info.idx.x,
                b->info.idx.y, b->info.idx.z, t->info.tid.x, t->info.tid.y, t->info.tid.z, msg);
    else if (b)
        fprintf(stderr, "cuda-emu: kernel %s, block (%u,%u,%u): %s\n", b->kernel, b->info.idx.x, b->info.idx.y,
                b->info.idx.z, msg);
    else
        fprintf(stderr, "cuda-emu: %s\n", msg);
    fflush(stderr);
    abort();
}

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

/* ---------------------------------------------------------------- coroutines */
void fiber_leaving(void **save, const void *bottom, size_t len) {
#if DMZ_EMU_ASAN
    __sanitizer_start_switch_fiber(save, bottom, len);
#else
    (void)save, (void)bottom, (void)len;
#endif
}

void fiber_arrived(void *saved, const void **from_bottom, size_t *from_len) {
#if DMZ_EMU_ASAN
    __sanitizer_finish_switch_fiber(saved, from_bottom, from_len);
#else
    (void)saved, (void)from_bottom, (void)from_len;
#endif
}

#if DMZ_EMU_ASAN
/* ASan's swapcontext interceptor warns ("doesn't fully support makecontext/
 * swapcontext") and wipes the shadow of the whole target stack on every switch,
 * losing the redzones of the frames parked there. The fiber annotations above
 * tell ASan everything it needs, so switch with libc's own swapcontext. */
typedef int (*swapcontext_fn)(ucontext_t *, const ucontext_t *);
swapcontext_fn libc_swapcontext() {
    static const swapcontext_fn fn = [] {
        swapcontext_fn f = &swapcontext;
        if (void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD)) {
            if (void *sym = dlsym(libc, "swapcontext")) f = reinterpret_cast<swapcontext_fn>(sym);
            dlclose(libc);
        }
        return f;
    }();
    return fn;
}
#define SWAPCONTEXT (libc_swapcontext())
#else
#define SWAPCONTEXT swapcontext
#endif

/* From the scheduler into thread t, until t yields. */
void resume(thread_slot *t) {
    P.current = t;
    cur_thread = &t->info;
    fiber_leaving(&P.sched_fake_stack, t->stack, t->stack_len);
    if (SWAPCONTEXT(&P.sched, &t->ctx) != 0) fail("swapcontext: %s", strerror(errno));
    fiber_arrived(P.sched_fake_stack, nullptr, nullptr);
    P.current = nullptr;
    cur_thread = nullptr;
}

/* From thread t back to the scheduler; returns when the scheduler resumes t. */
void yield(thread_slot *t) {
    fiber_leaving(&t->asan_fake_stack, P.sched_stack_bottom, P.sched_stack_len);
    if (SWAPCONTEXT(&t->ctx, &P.sched) != 0) fail("swapcontext: %s", strerror(errno));
    fiber_arrived(t->asan_fake_stack, &P.sched_stack_bottom, &P.sched_stack_len);
}

void thread_finished(thread_slot *t);

/* Every coroutine runs this forever: one kernel body per resume-to-done. */
void coroutine_main() {
    fiber_arrived(nullptr, &P.sched_stack_bottom, &P.sched_stack_len);
    thread_slot *t = P.current;
    for (;;) {
        P.run->body(P.run->ctx);
        thread_finished(t); /* yields; comes back for the next block */
    }
}

thread_slot *create_slot() {
    long page = sysconf(_SC_PAGESIZE);
    thread_slot *t = new thread_slot();
    t->map_len = STACK_BYTES + (size_t)page;
    t->map = mmap(nullptr, t->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (t->map == MAP_FAILED) fail("mmap of a %zu-byte coroutine stack: %s", t->map_len, strerror(errno));
    if (mprotect(t->map, (size_t)page, PROT_NONE) != 0) fail("mprotect of a stack guard page: %s", strerror(errno));
    t->stack = static_cast<char *>(t->map) + page;
    t->stack_len = STACK_BYTES;
    if (getcontext(&t->ctx) != 0) fail("getcontext: %s", strerror(errno));
    t->ctx.uc_stack.ss_sp = t->stack;
    t->ctx.uc_stack.ss_size = t->stack_len;
    t->ctx.uc_link = nullptr; /* coroutine_main never returns */
    makecontext(&t->ctx, coroutine_main, 0);
    return t;
}

pool::~pool() {
    for (unsigned i = 0; i < created; i++) {
        thread_slot *t = slot[i];
#if DMZ_EMU_ASAN
        ASAN_UNPOISON_MEMORY_REGION(t->stack, t->stack_len); /* frames left poisoned by parked coroutines */
#endif
        munmap(t->map, t->map_len);
        delete t;
    }
}

/* ---------------------------------------------------------------- barriers */
void release_block_barrier(block_run *b) {
    for (unsigned i = 0; i < b->nthreads; i++)
        if (P.slot[i]->state == WAIT_BLOCK) P.slot[i]->state = RUNNABLE;
    b->nwait_block = 0;
}

thread_slot *lane_slot(unsigned warp, unsigned lane) { return P.slot[warp * 32 + lane]; }

void thread_finished(thread_slot *t) {
    block_run *b = P.run;
    unsigned lane = t->info.lane, warp = t->info.warp;
    warp_state &w = b->warps[warp];
    t->state = DONE;
    w.done |= 1u << lane;
    b->ndone++;
    for (unsigned l = 0; l < 32; l++) {
        if (!(w.exist & (1u << l))) continue;
        const thread_slot *o = lane_slot(warp, l);
        if (o->state == WAIT_WARP && (o->wait_mask & (1u << lane)))
            fail("exits while lane %u of its warp waits for it in a warp-synchronous operation "
                 "(__syncwarp/__shfl*_sync/__ballot_sync) with mask 0x%08x",
                 l, o->wait_mask);
    }
    if (b->nwait_block > 0 && b->nwait_block == b->nthreads - b->ndone) release_block_barrier(b);
    yield(t);
}

void deadlock(const block_run *b) {
    fprintf(stderr, "cuda-emu: kernel %s, block (%u,%u,%u): deadlock: no thread can run, %u of %u not finished\n",
            b->kernel, b->info.idx.x, b->info.idx.y, b->info.idx.z, b->nthreads - b->ndone, b->nthreads);
    unsigned nwarps = (b->nthreads + 31) / 32;
    for (unsigned w = 0; w < nwarps; w++) {
        unsigned at_block = 0, at_warp = 0, done = 0, mask = 0;
        for (unsigned l = 0; l < 32; l++) {
            if (!(b->warps[w].exist & (1u << l))) continue;
            const thread_slot *t = lane_slot(w, l);
            if (t->state == WAIT_BLOCK) at_block |= 1u << l;
            if (t->state == WAIT_WARP) at_warp |= 1u << l, mask = t->wait_mask;
            if (t->state == DONE) done |= 1u << l;
        }
        fprintf(stderr, "  warp %2u: lanes 0x%08x at __syncthreads, 0x%08x in a warp operation (mask 0x%08x), "
                        "0x%08x exited\n",
                w, at_block, at_warp, mask, done);
    }
    fflush(stderr);
    abort();
}

} // namespace

/* ---------------------------------------------------------------- device-side API */
void block_barrier() {
    thread_slot *t = P.current;
    block_run *b = P.run;
    if (!t) fail("__syncthreads called outside a kernel");
    t->state = WAIT_BLOCK;
    if (++b->nwait_block == b->nthreads - b->ndone) {
        release_block_barrier(b); /* the last to arrive goes on without yielding */
        return;
    }
    yield(t);
}

void warp_barrier(unsigned mask) {
    thread_slot *t = P.current;
    block_run *b = P.run;
    if (!t) fail("a warp operation called outside a kernel");
    unsigned lane = t->info.lane, warp = t->info.warp;
    const warp_state &w = b->warps[warp];
    if (!(mask & (1u << lane)))
        fail("warp operation with mask 0x%08x leaves out the calling lane %u", mask, lane);
    unsigned need = mask & w.exist;
    if (need & w.done)
        fail("warp operation with mask 0x%08x names lanes 0x%08x that have exited", mask, need & w.done);
    t->state = WAIT_WARP;
    t->wait_mask = mask;
    for (unsigned l = 0; l < 32; l++) {
        if (!(need & (1u << l))) continue;
        const thread_slot *o = lane_slot(warp, l);
        if (o->state != WAIT_WARP || o->wait_mask != mask) {
            yield(t); /* someone is missing: the last to arrive releases us */
            return;
        }
    }
    for (unsigned l = 0; l < 32; l++)
        if (need & (1u << l)) lane_slot(warp, l)->state = RUNNABLE;
}

const uint64_t *warp_exchange_begin(unsigned mask, uint64_t mine) {
    thread_slot *t = P.current;
    if (!t) fail("a warp operation called outside a kernel");
    warp_state &w = P.run->warps[t->info.warp];
    w.slots[t->info.lane] = mine;
    warp_barrier(mask);
    return w.slots;
}

void warp_exchange_end(unsigned mask) { warp_barrier(mask); }

unsigned warp_existing_lanes() { return P.run->warps[P.current->info.warp].exist; }

void *dynamic_shared() {
    if (!P.run) fail("dynamic shared memory used outside a kernel");
    return P.run->dynamic_shared;
}

/* ---------------------------------------------------------------- launches */
void run_grid(const char *kernel_name, dim3 grid, dim3 block, size_t shmem, body_fn body, void *ctx) {
    if (P.run)
        fail("kernel %s launched from inside kernel %s: dynamic parallelism is not emulated", kernel_name,
             P.run->kernel);
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        nthreads > MAX_THREADS || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu ||
        grid.y > 65535 || grid.z > 65535) {
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (shmem > MAX_DYNAMIC_SHARED) {
        set_error(cudaErrorInvalidValue);
        return;
    }
    while (P.created < nthreads) P.slot[P.created++] = create_slot();

    block_run b{};
    b.kernel = kernel_name;
    b.nthreads = (unsigned)nthreads;
    b.info.dim = block;
    b.info.grid = grid;
    b.body = body;
    b.ctx = ctx;
    b.dynamic_shared = shmem ? malloc(shmem) : nullptr;
    if (shmem && !b.dynamic_shared) fail("out of memory for %zu bytes of dynamic shared memory", shmem);
    unsigned nwarps = (b.nthreads + 31) / 32;
    for (unsigned w = 0; w < nwarps; w++) {
        unsigned lanes = b.nthreads - 32 * w < 32 ? b.nthreads - 32 * w : 32;
        b.warps[w].exist = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    }
    P.run = &b;
    cur_block = &b.info;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                b.info.idx = uint3{bx, by, bz};
                b.ndone = b.nwait_block = 0;
                for (unsigned w = 0; w < nwarps; w++) b.warps[w].done = 0;
                if (shmem) memset(b.dynamic_shared, 0xff, shmem); /* shared memory starts undefined */
                for (unsigned i = 0; i < b.nthreads; i++) {
                    thread_slot *t = P.slot[i];
                    t->info.tid = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
                    t->info.lane = i % 32;
                    t->info.warp = i / 32;
                    t->state = RUNNABLE;
                }
                /* Odd blocks sweep their threads backwards: a kernel that reads
                 * another thread's shared-memory write without a barrier between
                 * then sees stale data whichever thread wrote first. */
                bool backwards = (bx + by + bz) % 2 == 1;
                while (b.ndone < b.nthreads) {
                    bool ran = false;
                    for (unsigned k = 0; k < b.nthreads; k++) {
                        unsigned i = backwards ? b.nthreads - 1 - k : k;
                        if (P.slot[i]->state == RUNNABLE) {
                            resume(P.slot[i]);
                            ran = true;
                        }
                    }
                    if (!ran) deadlock(&b);
                }
            }
    P.run = nullptr;
    cur_block = nullptr;
    free(b.dynamic_shared);
}

} // namespace dmz_emu

/* ---------------------------------------------------------------- runtime API on host memory */
namespace {

/* Live allocations (address -> size), to check the device side of copies. Never
 * destroyed: a cudaFree during static destruction must still find it. */
std::mutex &alloc_lock() {
    static std::mutex *m = new std::mutex;
    return *m;
}
std::map<uintptr_t, size_t> &allocations() {
    static std::map<uintptr_t, size_t> *m = new std::map<uintptr_t, size_t>;
    return *m;
}

/* Whether [p, p+bytes) lies inside one live allocation. */
bool is_device_range(const void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p;
    std::lock_guard<std::mutex> g(alloc_lock());
    auto &m = allocations();
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

} // namespace

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    if (!ptr) return dmz_emu::set_error(cudaErrorInvalidValue);
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes) != 0) return dmz_emu::set_error(cudaErrorMemoryAllocation);
    memset(p, 0xff, bytes); /* device memory starts undefined */
    {
        std::lock_guard<std::mutex> g(alloc_lock());
        allocations()[(uintptr_t)p] = bytes;
    }
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    {
        std::lock_guard<std::mutex> g(alloc_lock());
        if (allocations().erase((uintptr_t)ptr) != 1) return dmz_emu::set_error(cudaErrorInvalidDevicePointer);
    }
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return cudaSuccess;
    if (!dst || !src) return dmz_emu::set_error(cudaErrorInvalidValue);
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
        return dmz_emu::set_error(cudaErrorInvalidMemcpyDirection);
    if ((dst_dev && !is_device_range(dst, bytes)) || (src_dev && !is_device_range(src, bytes)))
        return dmz_emu::set_error(cudaErrorInvalidValue);
    memcpy(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
    if (bytes == 0) return cudaSuccess;
    if (!is_device_range(ptr, bytes)) return dmz_emu::set_error(cudaErrorInvalidValue);
    memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; } /* launches run to completion */

cudaError_t cudaGetLastError() {
    cudaError_t e = dmz_emu::last_error;
    dmz_emu::last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError() { return dmz_emu::last_error; }

const char *cudaGetErrorName(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

/* The runtime's own wording, so that messages read the same on a GPU. */
const char *cudaGetErrorString(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return dmz_emu::set_error(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return dmz_emu::set_error(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : dmz_emu::set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (!prop) return dmz_emu::set_error(cudaErrorInvalidValue);
    if (device != 0) return dmz_emu::set_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CPU emulator (blocks in sequence, threads as coroutines)");
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    prop->totalGlobalMem = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
    if (!version) return dmz_emu::set_error(cudaErrorInvalidValue);
    *version = 0;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *version) {
    if (!version) return dmz_emu::set_error(cudaErrorInvalidValue);
    *version = 0;
    return cudaSuccess;
}
