/* kernels/cuda/emu/cuda_emu.cpp — the emulator's scheduler: blocks, threads as
 * ucontext coroutines, barriers, warp exchanges and their checks. See
 * cuda_emu.h for what is emulated and how; emu_runtime.cpp has the CUDA runtime
 * calls, emu_race.cpp the race detector.
 *
 * Scheduling. A launch lists its blocks (in order, or shuffled by DMZ_EMU_SEED)
 * and runs them on the calling OS thread, or spread over DMZ_EMU_WORKERS
 * emulator worker threads (position p of the list on worker p % workers; the
 * race build uses 2, so that blocks are unordered for ThreadSanitizer). For one
 * block, the scheduler resumes every runnable thread in turn (forward, backward
 * or a seeded random order); a thread runs until it finishes or waits at a
 * barrier (__syncthreads, or a warp operation), and the last thread to arrive
 * at a barrier releases the others. A sweep that finds no runnable thread while
 * some have not finished is a deadlock: the scheduler says which threads wait
 * where, and aborts.
 *
 * Checks at every barrier: the threads meeting at a __syncthreads must have
 * called the same one (else: divergent __syncthreads); lanes meeting in a warp
 * operation must run the same operation from the same call site (__syncwarp
 * may differ in site, as Volta allows, except under DMZ_EMU_WARP_RULES=pascal,
 * which also rejects masks naming lanes a partial warp lacks).
 *
 * Coroutines. Each OS thread keeps a pool of up to 1024 coroutines, created on
 * first use and reused by every later block and launch: a coroutine loops
 * "run the kernel body for my thread index, report done, yield". Each has its
 * own mmap'd stack with a guard page below it (an overflow faults instead of
 * corrupting a neighbour). Under AddressSanitizer every switch is announced
 * with __sanitizer_start/finish_switch_fiber; in the race build every
 * coroutine is a ThreadSanitizer fiber. */
/* The C++ library first: cuda_emu.h defines __noinline__, which <thread> uses. */
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emu_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define DMZ_EMU_ASAN 1
#else
#define DMZ_EMU_ASAN 0
#endif

namespace dmz_emu {

using namespace detail;

namespace {

thread_local thread_info *cur_thread;
thread_local block_info *cur_block;

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
constexpr size_t STACK_BYTES = (DMZ_EMU_ASAN || DMZ_EMU_RACE) ? 256 * 1024 : 64 * 1024;

enum thread_state { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

/* One barrier meeting (a __syncthreads episode, or one warp operation's lanes):
 * its address is the ThreadSanitizer sync object every arriving thread releases
 * to and every departing thread acquires from; freed by the last to depart, so
 * that no later meeting inherits its clock. */
struct episode {
    unsigned refs;
};

struct thread_slot {
    thread_info info; /* what threadIdx reads */
    unsigned index;   /* linear thread index in the block */
    ucontext_t ctx;
    void *map = nullptr; /* guard page + stack */
    size_t map_len = 0;
    char *stack = nullptr;
    size_t stack_len = 0;
    thread_state state = DONE;
    unsigned wait_mask = 0; /* the mask of the warp operation this thread waits in */
    site wait_site{};       /* where it waits */
    episode *ep = nullptr;  /* the meeting it waits in */
    void *asan_fake_stack = nullptr;
    void *fiber = nullptr; /* ThreadSanitizer fiber (race build) */
};

struct warp_state {
    unsigned exist; /* lanes that exist in this warp */
    unsigned done;  /* lanes that have finished */
    uint64_t slots[32];
};

enum thread_order { FORWARD, BACKWARD, RANDOM };
const char *const order_names[] = {"forward", "backward", "random"};

/* One launch, as every worker sees it. */
struct grid_job {
    const char *kernel;
    dim3 grid, block;
    size_t shmem;
    body_fn body;
    void *ctx;
    unsigned long launch; /* launches so far in this process, this one included */
    unsigned nthreads, nworkers;
    std::vector<unsigned> blocks; /* linear block indices in the order they are handed out */
};

struct block_run {
    block_info info; /* what blockIdx/blockDim/gridDim read */
    const grid_job *job;
    unsigned nthreads, ndone, nwait_block;
    warp_state warps[MAX_THREADS / 32];
    void *dynamic_shared;
    episode *bar_ep; /* the open __syncthreads meeting, or null */
    thread_order order;
    std::vector<unsigned> sweep; /* thread indices in the order the scheduler resumes them */
};

struct pool {
    thread_slot *slot[MAX_THREADS] = {};
    unsigned created = 0;
    unsigned worker = 0; /* which emulator worker this OS thread is */
    ucontext_t sched;
    void *sched_fake_stack = nullptr;
    const void *sched_stack_bottom = nullptr;
    size_t sched_stack_len = 0;
    void *sched_fiber = nullptr;
    block_run *run = nullptr;       /* the block being run, or null */
    thread_slot *current = nullptr; /* the coroutine running now, or null */
    /* Happens-before from one block to the next on this OS thread (they share
     * static __shared__ storage and coroutines): every thread releases `end`
     * when it finishes, the scheduler acquires it and releases `start`, which
     * the next block's threads acquire when they begin. */
    episode *start_sync = nullptr, *end_sync = nullptr;
    ~pool();
};

thread_local pool P;

/* Which blocks each worker ran in the current launch: names the thread behind a
 * coroutine in a race report. Written by the worker, read by reports. */
std::mutex &ran_lock = *new std::mutex; /* never destroyed: workers outlive static destruction */
std::vector<std::vector<unsigned>> &ran_blocks = *new std::vector<std::vector<unsigned>>;
const grid_job *current_job = nullptr;

/* ---------------------------------------------------------------- configuration */
uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end = nullptr;
    unsigned long long x = strtoull(v, &end, 0);
    if (*end) {
        fprintf(stderr, "cuda-emu: %s=%s is not a number\n", name, v);
        abort();
    }
    return x;
}

uint64_t mix(uint64_t x) { /* splitmix64 */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void shuffle(std::vector<unsigned> &v, uint64_t h) {
    for (size_t i = v.size(); i > 1; i--) {
        h = mix(h);
        std::swap(v[i - 1], v[h % i]);
    }
}

} // namespace

namespace detail {

const config &cfg() {
    static const config c = [] {
        config k{};
        k.seed = env_u64("DMZ_EMU_SEED", 0);
        k.workers = (unsigned)env_u64("DMZ_EMU_WORKERS", DMZ_EMU_RACE ? 2 : 0);
        if (k.workers > 64) k.workers = 64;
        const char *rules = getenv("DMZ_EMU_WARP_RULES");
        k.pascal = rules && strcmp(rules, "pascal") == 0;
        if (rules && *rules && !k.pascal && strcmp(rules, "volta") != 0) {
            fprintf(stderr, "cuda-emu: DMZ_EMU_WARP_RULES=%s: use volta (the default) or pascal\n", rules);
            abort();
        }
        k.halt = env_u64("DMZ_EMU_HALT", 0) != 0;
        return k;
    }();
    return c;
}

bool in_kernel_thread() { return P.current != nullptr; }

const char *short_path(const char *file) {
    static const std::string cwd = [] {
        char buf[4096];
        return getcwd(buf, sizeof buf) ? std::string(buf) + "/" : std::string();
    }();
    if (file && !cwd.empty() && strncmp(file, cwd.c_str(), cwd.size()) == 0) return file + cwd.size();
    return file ? file : "?";
}

void where_now(char *buf, size_t len) {
    const block_run *b = P.run;
    const thread_slot *t = P.current;
    if (b && t)
        snprintf(buf, len, "kernel %s, block (%u,%u,%u) thread (%u,%u,%u)", b->job->kernel, b->info.idx.x,
                 b->info.idx.y, b->info.idx.z, t->info.tid.x, t->info.tid.y, t->info.tid.z);
    else if (b)
        snprintf(buf, len, "kernel %s, block (%u,%u,%u)", b->job->kernel, b->info.idx.x, b->info.idx.y,
                 b->info.idx.z);
    else
        snprintf(buf, len, "host code");
}

void schedule_now(char *buf, size_t len) {
    const block_run *b = P.run;
    const grid_job *j = b ? b->job : current_job;
    if (!j) {
        snprintf(buf, len, "schedule: DMZ_EMU_SEED=%llu", (unsigned long long)cfg().seed);
        return;
    }
    snprintf(buf, len, "schedule: DMZ_EMU_SEED=%llu, launch %lu of this process, blocks %s on %u %s, threads %s",
             (unsigned long long)cfg().seed, j->launch, cfg().seed ? "shuffled" : "in order", j->nworkers,
             j->nworkers == 1 ? "OS thread" : "OS threads", b ? order_names[b->order] : "?");
}

void describe_slot(unsigned worker, unsigned slot, char *buf, size_t len) {
    std::lock_guard<std::mutex> g(ran_lock);
    const grid_job *j = current_job;
    if (!j || worker >= ran_blocks.size() || ran_blocks[worker].empty()) {
        snprintf(buf, len, "an emulated thread (worker %u, coroutine %u)", worker, slot);
        return;
    }
    dim3 bd = j->block, gd = j->grid;
    unsigned tx = slot % bd.x, ty = (slot / bd.x) % bd.y, tz = slot / (bd.x * bd.y);
    const std::vector<unsigned> &ran = ran_blocks[worker];
    auto coords = [&](unsigned lin) {
        char c[48];
        snprintf(c, sizeof c, "(%u,%u,%u)", lin % gd.x, (lin / gd.x) % gd.y, lin / (gd.x * gd.y));
        return std::string(c);
    };
    std::string blocks = coords(ran.back());
    if (ran.size() > 1) {
        blocks = "one of (" + std::to_string(ran.size()) + " run by OS thread " + std::to_string(worker) + ") ";
        for (size_t i = 0; i < ran.size() && i < 4; i++) blocks += (i ? " " : "") + coords(ran[i]);
        if (ran.size() > 4) blocks += " ...";
    }
    snprintf(buf, len, "block %s thread (%u,%u,%u)", blocks.c_str(), tx, ty, tz);
}

void fail(const char *fmt, ...) {
    char msg[1024], where[256], sched[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    where_now(where, sizeof where);
    schedule_now(sched, sizeof sched);
    if (P.run) fprintf(stderr, "cuda-emu: %s: %s\n  %s\n", where, msg, sched);
    else fprintf(stderr, "cuda-emu: %s\n", msg);
    fflush(stderr);
    abort();
}

namespace {
std::mutex &hazard_lock = *new std::mutex;
std::set<std::string> &hazards_seen = *new std::set<std::string>;
std::atomic<unsigned> hazards{0};

void hazards_at_exit() {
    unsigned n = hazards.load();
    if (n == 0) return;
    fprintf(stderr, "cuda-emu racecheck: %u hazard%s reported (each distinct one printed once): exit status 66\n", n,
            n == 1 ? "" : "s");
    fflush(stderr);
    _exit(66);
}
} // namespace

void count_hazard() {
    if (hazards.fetch_add(1) == 0) atexit(hazards_at_exit);
}

void hazard(const char *key, const char *text) {
    bool first;
    {
        std::lock_guard<std::mutex> g(hazard_lock);
        first = hazards_seen.insert(key).second;
    }
    count_hazard();
    if (first) {
        fprintf(stderr, "%s", text);
        fflush(stderr);
    }
    if (cfg().halt) abort();
}

} // namespace detail

namespace {

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
    race_fiber_switch(t->fiber);
    if (SWAPCONTEXT(&P.sched, &t->ctx) != 0) fail("swapcontext: %s", strerror(errno));
    fiber_arrived(P.sched_fake_stack, nullptr, nullptr);
    P.current = nullptr;
    cur_thread = nullptr;
}

/* From thread t back to the scheduler; returns when the scheduler resumes t. */
void yield(thread_slot *t) {
    fiber_leaving(&t->asan_fake_stack, P.sched_stack_bottom, P.sched_stack_len);
    race_fiber_switch(P.sched_fiber);
    if (SWAPCONTEXT(&t->ctx, &P.sched) != 0) fail("swapcontext: %s", strerror(errno));
    fiber_arrived(t->asan_fake_stack, &P.sched_stack_bottom, &P.sched_stack_len);
}

void thread_finished(thread_slot *t);

/* Every coroutine runs this forever: one kernel body per resume-to-done. */
void coroutine_main() {
    fiber_arrived(nullptr, &P.sched_stack_bottom, &P.sched_stack_len);
    thread_slot *t = P.current;
    for (;;) {
        race_acquire(P.start_sync);
        P.run->job->body(P.run->job->ctx);
        race_release(P.end_sync);
        thread_finished(t); /* yields; comes back for the next block */
    }
}

thread_slot *create_slot(unsigned index) {
    long page = sysconf(_SC_PAGESIZE);
    thread_slot *t = new thread_slot();
    t->index = index;
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
    t->fiber = race_fiber_create(P.worker, index);
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
    delete start_sync;
    delete end_sync;
}

/* ---------------------------------------------------------------- meetings */
/* Every thread that arrives at a barrier releases to the meeting; every one
 * that leaves it acquires from it: ThreadSanitizer then orders what came
 * before the barrier in any thread before what comes after it in any other,
 * and nothing else (threads and blocks are otherwise unordered fibers). */
void arrive(thread_slot *t, episode *&open) {
    if (!DMZ_EMU_RACE) return; /* only ThreadSanitizer needs them */
    if (!open) open = new episode{0};
    t->ep = open;
    open->refs++;
    race_release(open);
}

void depart(thread_slot *t) {
    if (!DMZ_EMU_RACE) return;
    episode *e = t->ep;
    t->ep = nullptr;
    race_acquire(e);
    if (--e->refs == 0) delete e;
}

thread_slot *lane_slot(unsigned warp, unsigned lane) { return P.slot[warp * 32 + lane]; }

std::string site_text(const site &s) { return std::string(short_path(s.file)) + ":" + std::to_string(s.line); }

const char *op_name(int op) {
    switch (op) {
    case -1: return "__syncthreads";
    case OP_SYNCWARP: return "__syncwarp";
    case OP_SHFL_IDX: return "__shfl_sync";
    case OP_SHFL_UP: return "__shfl_up_sync";
    case OP_SHFL_DOWN: return "__shfl_down_sync";
    case OP_SHFL_XOR: return "__shfl_xor_sync";
    case OP_BALLOT: return "__ballot_sync";
    case OP_ANY: return "__any_sync";
    case OP_ALL: return "__all_sync";
    }
    return "?";
}

std::string tid_text(const thread_slot *t) {
    char c[48];
    snprintf(c, sizeof c, "(%u,%u,%u)", t->info.tid.x, t->info.tid.y, t->info.tid.z);
    return c;
}

/* A hazard found by the scheduler: kind, what, the threads and lines. */
void sched_hazard(const std::string &key, const std::string &title, const std::string &body) {
    char where[256], sched[256];
    where_now(where, sizeof where);
    schedule_now(sched, sizeof sched);
    const block_run *b = P.run;
    char blk[64];
    snprintf(blk, sizeof blk, "block (%u,%u,%u)", b->info.idx.x, b->info.idx.y, b->info.idx.z);
    std::string text = "cuda-emu racecheck: " + title + " in kernel " + b->job->kernel + ", " + blk + "\n" + body +
                       "    " + sched + "\n";
    hazard((std::string(b->job->kernel) + "|" + key).c_str(), text.c_str());
}

/* The threads released from a __syncthreads must all have called the same one. */
void check_block_meeting(block_run *b) {
    const thread_slot *first = nullptr;
    for (unsigned i = 0; i < b->nthreads; i++) {
        const thread_slot *t = P.slot[i];
        if (t->state != WAIT_BLOCK) continue;
        if (!first) {
            first = t;
            continue;
        }
        if (t->wait_site.line == first->wait_site.line && strcmp(t->wait_site.file, first->wait_site.file) == 0)
            continue;
        sched_hazard("divergent|" + site_text(first->wait_site) + "|" + site_text(t->wait_site),
                     "__syncthreads in divergent code (threads of the block meet at different __syncthreads)",
                     "    thread " + tid_text(first) + " waits at " + site_text(first->wait_site) + "\n    thread " +
                         tid_text(t) + " waits at " + site_text(t->wait_site) + "\n");
        return;
    }
}

void release_block_barrier(block_run *b) {
    check_block_meeting(b);
    for (unsigned i = 0; i < b->nthreads; i++)
        if (P.slot[i]->state == WAIT_BLOCK) P.slot[i]->state = RUNNABLE;
    b->nwait_block = 0;
    b->bar_ep = nullptr; /* the next __syncthreads is a new meeting */
}

/* The lanes `need` of warp `warp` meet in one warp operation: the same one, from
 * the same call site (any __syncwarp may meet any other, as on Volta and later,
 * except under the Pascal rules). */
void check_warp_meeting(unsigned warp, unsigned need, unsigned mask) {
    const thread_slot *first = nullptr;
    for (unsigned l = 0; l < 32; l++) {
        if (!(need & (1u << l))) continue;
        const thread_slot *t = lane_slot(warp, l);
        if (!first) {
            first = t;
            continue;
        }
        const site &a = first->wait_site, &s = t->wait_site;
        bool same_site = a.line == s.line && strcmp(a.file, s.file) == 0;
        if (a.op == s.op && (same_site || (a.op == OP_SYNCWARP && !cfg().pascal))) continue;
        char m[16];
        snprintf(m, sizeof m, "0x%08x", mask);
        std::string title = a.op != s.op ? "different warp operations meet" : "warp operation lanes meet at different call sites";
        if (a.op == OP_SYNCWARP && s.op == OP_SYNCWARP) title += " (Pascal rules: __syncwarp must be the same one)";
        sched_hazard("warp|" + site_text(a) + "|" + site_text(s),
                     title + " (mask " + m + ")",
                     "    lane " + std::to_string(first->info.lane) + " thread " + tid_text(first) + ": " +
                         op_name(a.op) + " at " + site_text(a) + "\n    lane " + std::to_string(t->info.lane) +
                         " thread " + tid_text(t) + ": " + op_name(s.op) + " at " + site_text(s) + "\n");
        return;
    }
}

void thread_finished(thread_slot *t) {
    race_quiet q;
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
                 "(__syncwarp/__shfl*_sync/__ballot_sync) with mask 0x%08x at %s",
                 l, o->wait_mask, site_text(o->wait_site).c_str());
    }
    if (b->nwait_block > 0 && b->nwait_block == b->nthreads - b->ndone) release_block_barrier(b);
    yield(t);
}

void deadlock(const block_run *b) {
    char sched[256];
    schedule_now(sched, sizeof sched);
    fprintf(stderr, "cuda-emu: kernel %s, block (%u,%u,%u): deadlock: no thread can run, %u of %u not finished\n",
            b->job->kernel, b->info.idx.x, b->info.idx.y, b->info.idx.z, b->nthreads - b->ndone, b->nthreads);
    unsigned nwarps = (b->nthreads + 31) / 32;
    for (unsigned w = 0; w < nwarps; w++) {
        unsigned at_block = 0, at_warp = 0, done = 0, mask = 0;
        const thread_slot *example = nullptr;
        for (unsigned l = 0; l < 32; l++) {
            if (!(b->warps[w].exist & (1u << l))) continue;
            const thread_slot *t = lane_slot(w, l);
            if (t->state == WAIT_BLOCK) at_block |= 1u << l;
            if (t->state == WAIT_WARP) at_warp |= 1u << l, mask = t->wait_mask;
            if (t->state == DONE) done |= 1u << l;
            if (t->state != DONE && !example) example = t;
        }
        fprintf(stderr, "  warp %2u: lanes 0x%08x at __syncthreads, 0x%08x in a warp operation (mask 0x%08x), "
                        "0x%08x exited%s%s\n",
                w, at_block, at_warp, mask, done, example ? "; e.g. at " : "",
                example ? site_text(example->wait_site).c_str() : "");
    }
    fprintf(stderr, "  %s\n", sched);
    fflush(stderr);
    abort();
}

} // namespace

/* ---------------------------------------------------------------- device-side API */
void block_barrier(site s) {
    race_quiet q;
    thread_slot *t = P.current;
    block_run *b = P.run;
    if (!t) fail("__syncthreads called outside a kernel");
    t->state = WAIT_BLOCK;
    t->wait_site = s;
    arrive(t, b->bar_ep);
    if (++b->nwait_block == b->nthreads - b->ndone) {
        release_block_barrier(b); /* the last to arrive goes on without yielding */
        depart(t);
        return;
    }
    yield(t);
    depart(t);
}

void warp_barrier(unsigned mask, site s) {
    race_quiet q;
    thread_slot *t = P.current;
    block_run *b = P.run;
    if (!t) fail("a warp operation called outside a kernel");
    unsigned lane = t->info.lane, warp = t->info.warp;
    const warp_state &w = b->warps[warp];
    if (!(mask & (1u << lane)))
        fail("%s at %s with mask 0x%08x leaves out the calling lane %u", op_name(s.op), site_text(s).c_str(), mask,
             lane);
    unsigned need = mask & w.exist;
    if (need & w.done)
        fail("%s at %s with mask 0x%08x names lanes 0x%08x that have exited", op_name(s.op), site_text(s).c_str(),
             mask, need & w.done);
    if (cfg().pascal && (mask & ~w.exist)) {
        char m[96];
        snprintf(m, sizeof m, "    mask 0x%08x, lanes of this warp 0x%08x\n", mask, w.exist);
        sched_hazard("partial|" + site_text(s), std::string(op_name(s.op)) + " at " + site_text(s) +
                                                    " names lanes a partial warp lacks (Pascal rules)",
                     m);
    }
    t->state = WAIT_WARP;
    t->wait_mask = mask;
    t->wait_site = s;
    /* Join the meeting the other lanes waiting with this mask opened, or open
     * one. Only __syncwarp orders memory (as in CUDA's memory model): shuffles
     * and votes exchange values, and ThreadSanitizer is told nothing. */
    bool orders = s.op == OP_SYNCWARP;
    episode *open = nullptr;
    bool complete = true;
    for (unsigned l = 0; l < 32; l++) {
        if (!(need & (1u << l)) || l == lane) continue;
        const thread_slot *o = lane_slot(warp, l);
        if (o->state == WAIT_WARP && o->wait_mask == mask) open = o->ep;
        else complete = false;
    }
    if (orders) arrive(t, open);
    if (!complete) {
        yield(t); /* someone is missing: the last to arrive releases us */
        if (orders) depart(t);
        return;
    }
    check_warp_meeting(warp, need, mask);
    for (unsigned l = 0; l < 32; l++)
        if (need & (1u << l)) lane_slot(warp, l)->state = RUNNABLE;
    if (orders) depart(t);
}

const uint64_t *warp_exchange_begin(unsigned mask, uint64_t mine, site s) {
    thread_slot *t = P.current;
    if (!t) fail("a warp operation called outside a kernel");
    warp_state &w = P.run->warps[t->info.warp];
    w.slots[t->info.lane] = mine;
    warp_barrier(mask, s);
    return w.slots;
}

void warp_exchange_end(unsigned mask, site s) { warp_barrier(mask, s); }

unsigned warp_existing_lanes() { return P.run->warps[P.current->info.warp].exist; }

void bad_shuffle_source(unsigned mask, int src, site s) {
    race_quiet q;
    const thread_slot *t = P.current;
    const warp_state &w = P.run->warps[t->info.warp];
    const char *why = src < 0 || src >= 32 || !(w.exist & (1u << src)) ? "a lane this warp lacks" : "outside the mask";
    char body[160];
    snprintf(body, sizeof body, "    lane %u thread %s reads lane %d (mask 0x%08x): the value is undefined on a GPU\n",
             t->info.lane, tid_text(t).c_str(), src, mask);
    sched_hazard("src|" + site_text(s),
                 std::string(op_name(s.op)) + " at " + site_text(s) + " reads from " + why, body);
}

void *dynamic_shared() {
    if (!P.run) fail("dynamic shared memory used outside a kernel");
    return P.run->dynamic_shared;
}

/* ---------------------------------------------------------------- launches */
namespace {

thread_order order_for(const grid_job &j, unsigned lin, uint3 idx) {
    if (cfg().seed == 0) return (idx.x + idx.y + idx.z) % 2 == 1 ? BACKWARD : FORWARD;
    return (thread_order)(mix(cfg().seed ^ mix(j.launch * 0x10001ull + lin)) % 3);
}

/* Runs block `lin` of job j on the calling OS thread, whose pool has the coroutines. */
void run_block(block_run &b, unsigned lin) {
    const grid_job &j = *b.job;
    dim3 grid = j.grid, block = j.block;
    b.info.idx = uint3{lin % grid.x, (lin / grid.x) % grid.y, lin / (grid.x * grid.y)};
    b.ndone = b.nwait_block = 0;
    b.bar_ep = nullptr;
    unsigned nwarps = (b.nthreads + 31) / 32;
    for (unsigned w = 0; w < nwarps; w++) b.warps[w].done = 0;
    if (j.shmem) memset(b.dynamic_shared, 0xff, j.shmem); /* shared memory starts undefined (NaN as floats) */
    for (unsigned i = 0; i < b.nthreads; i++) {
        thread_slot *t = P.slot[i];
        t->info.tid = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
        t->info.lane = i % 32;
        t->info.warp = i / 32;
        t->state = RUNNABLE;
        t->wait_site = site{"(not at a barrier)", 0, -2};
    }
    b.order = order_for(j, lin, b.info.idx);
    b.sweep.resize(b.nthreads);
    for (unsigned k = 0; k < b.nthreads; k++) b.sweep[k] = b.order == BACKWARD ? b.nthreads - 1 - k : k;
    if (b.order == RANDOM) shuffle(b.sweep, mix(cfg().seed + lin) ^ j.launch);
    {
        std::lock_guard<std::mutex> g(ran_lock);
        ran_blocks[P.worker].push_back(lin);
    }
    race_block_begin(b.dynamic_shared, j.shmem);
    race_release(P.start_sync);
    while (b.ndone < b.nthreads) {
        bool ran = false;
        for (unsigned k = 0; k < b.nthreads; k++) {
            unsigned i = b.sweep[k];
            if (P.slot[i]->state == RUNNABLE) {
                resume(P.slot[i]);
                ran = true;
            }
        }
        if (!ran) deadlock(&b);
    }
    race_acquire(P.end_sync);
    race_block_end();
}

/* This OS thread's share of job j: positions worker, worker + nworkers, ... */
void run_blocks(const grid_job &j, unsigned worker) {
    P.worker = worker;
    if (!P.start_sync) {
        P.sched_fiber = race_fiber_current();
        P.start_sync = new episode{0};
        P.end_sync = new episode{0};
    }
    while (P.created < j.nthreads) {
        P.slot[P.created] = create_slot(P.created);
        P.created++;
    }
    block_run b{};
    b.job = &j;
    b.nthreads = j.nthreads;
    b.info.dim = j.block;
    b.info.grid = j.grid;
    b.dynamic_shared = j.shmem ? malloc(j.shmem) : nullptr;
    if (j.shmem && !b.dynamic_shared) fail("out of memory for %zu bytes of dynamic shared memory", j.shmem);
    unsigned nwarps = (b.nthreads + 31) / 32;
    for (unsigned w = 0; w < nwarps; w++) {
        unsigned lanes = b.nthreads - 32 * w < 32 ? b.nthreads - 32 * w : 32;
        b.warps[w].exist = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    }
    P.run = &b;
    cur_block = &b.info;
    for (size_t p = worker; p < j.blocks.size(); p += j.nworkers) run_block(b, j.blocks[p]);
    P.run = nullptr;
    cur_block = nullptr;
    free(b.dynamic_shared);
}

/* Emulator worker threads: started on the first launch that needs them, then
 * kept; each waits for a job, runs its share, reports done. A mutex and
 * condition variables hand jobs over (ThreadSanitizer sees them: the launch
 * happens before its blocks, the blocks before what the host does next); the
 * blocks of a launch never synchronise with each other through them. */
struct workers {
    std::mutex m;
    std::condition_variable go, done;
    const grid_job *job = nullptr;
    unsigned long generation = 0;
    unsigned pending = 0;
    unsigned started = 0;
};
workers &W = *new workers; /* never destroyed: the workers wait on it until the process ends */
/* A forked child has no workers (only the forking thread survives a fork):
 * it runs its blocks on the launching thread. */
bool forked_child = false;
const bool atfork_registered = [] {
    pthread_atfork(nullptr, nullptr, [] { forked_child = true; });
    return true;
}();

void worker_main(unsigned id) {
    unsigned long seen = 0;
    for (;;) {
        std::unique_lock<std::mutex> lk(W.m);
        W.go.wait(lk, [&] { return W.generation != seen; });
        seen = W.generation;
        const grid_job *j = W.job;
        lk.unlock();
        if (id < j->nworkers) run_blocks(*j, id);
        lk.lock();
        if (--W.pending == 0) W.done.notify_all();
    }
}

void run_on_workers(const grid_job &j) {
    std::unique_lock<std::mutex> lk(W.m);
    while (W.started < j.nworkers) {
        std::thread(worker_main, W.started).detach();
        W.started++;
    }
    W.job = &j;
    W.pending = W.started;
    W.generation++;
    W.go.notify_all();
    W.done.wait(lk, [] { return W.pending == 0; });
}

std::mutex &launch_lock = *new std::mutex; /* one launch at a time (the workers and ran_blocks are shared) */
std::atomic<unsigned long> launches{0};

} // namespace

namespace detail {
unsigned long kernels_run() { return launches.load(); }
} // namespace detail

void run_grid(const char *kernel_name, dim3 grid, dim3 block, size_t shmem, body_fn body, void *ctx) {
    if (P.run)
        fail("kernel %s launched from inside kernel %s: dynamic parallelism is not emulated", kernel_name,
             P.run->job->kernel);
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
    std::lock_guard<std::mutex> g(launch_lock);
    grid_job j;
    j.kernel = kernel_name;
    j.grid = grid;
    j.block = block;
    j.shmem = shmem;
    j.body = body;
    j.ctx = ctx;
    j.launch = ++launches;
    j.nthreads = (unsigned)nthreads;
    unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    if (nblocks > 0xffffffffull) fail("kernel %s: %llu blocks: more than the emulator handles", kernel_name, nblocks);
    j.blocks.resize((size_t)nblocks);
    for (size_t i = 0; i < j.blocks.size(); i++) j.blocks[i] = (unsigned)i;
    if (cfg().seed) shuffle(j.blocks, mix(cfg().seed) ^ j.launch);
    (void)atfork_registered;
    unsigned nw = forked_child ? 0 : cfg().workers;
    j.nworkers = nw == 0 ? 1 : (nblocks < nw ? (unsigned)nblocks : nw);
    {
        std::lock_guard<std::mutex> r(ran_lock);
        current_job = &j;
        ran_blocks.assign(nw == 0 ? 1 : nw, std::vector<unsigned>());
    }
    if (nw == 0) run_blocks(j, 0);
    else run_on_workers(j);
    std::lock_guard<std::mutex> r(ran_lock);
    current_job = nullptr;
}

} // namespace dmz_emu
