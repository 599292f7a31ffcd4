/* kernels/cuda/emu/emu_race.cpp — the emulator as a race detector (the race
 * build, `make test-race`): kernel files are compiled with -fsanitize=thread,
 * the emulator itself is not (its bookkeeping is no kernel memory), and
 * ThreadSanitizer is told what a GPU would order:
 *
 *   - every emulated thread is a ThreadSanitizer fiber; switching between
 *     them establishes nothing (__tsan_switch_to_fiber_no_sync);
 *   - every barrier meeting (__syncthreads episode, warp operation) is a sync
 *     object: released by each thread as it arrives, acquired as it leaves
 *     (cuda_emu.cpp); blocks run on two OS threads and never synchronise with
 *     each other; the launch happens before its blocks, the blocks before the
 *     host's next call;
 *   - so ThreadSanitizer reports exactly the accesses that no barrier orders:
 *     a missing __syncthreads, a race between blocks on global memory.
 *
 * Beside ThreadSanitizer's own report, each race gets a racecheck-style summary
 * (hazard kind, address and memory space, both threads as block and thread,
 * both source lines, the schedule) from __tsan_on_report. And the hooks
 * __tsan_readN and __tsan_writeN (called by the instrumented kernel code; defined
 * here, they take precedence over the runtime's and forward to it) keep a
 * "written by this block" map of its shared memory: the static __shared__
 * variables (this OS thread's TLS block of the executable, where the kernel
 * files' `static thread_local` storage lives) and the dynamic shared buffer.
 * A read of a byte the block never wrote is reported with its source line;
 * the static __shared__ bytes earlier blocks used are refilled with 0xff at
 * each block's start (dynamic shared memory always is, in every build).
 *
 * Without DMZ_EMU_RACE the functions below do nothing. */
#include <string>

#include "emu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" int dmz_emu_race_enabled(void) { return DMZ_EMU_RACE; }

#if DMZ_EMU_RACE

#include <link.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/tsan_interface.h>

extern "C" {
/* ThreadSanitizer's instrumentation entry points with an explicit caller pc,
 * and its report-inspection API (tsan_debugging; not in the public header). */
void __tsan_read1_pc(void *addr, void *pc);
void __tsan_read2_pc(void *addr, void *pc);
void __tsan_read4_pc(void *addr, void *pc);
void __tsan_read8_pc(void *addr, void *pc);
void __tsan_read16_pc(void *addr, void *pc);
void __tsan_write1_pc(void *addr, void *pc);
void __tsan_write2_pc(void *addr, void *pc);
void __tsan_write4_pc(void *addr, void *pc);
void __tsan_write8_pc(void *addr, void *pc);
void __tsan_write16_pc(void *addr, void *pc);
void __tsan_read_range_pc(void *addr, unsigned long size, void *pc);
void __tsan_write_range_pc(void *addr, unsigned long size, void *pc);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
int __tsan_get_report_data(void *report, const char **description, int *count, int *stack_count, int *mop_count,
                           int *loc_count, int *mutex_count, int *thread_count, int *unique_tid_count,
                           void **sleep_trace, unsigned long trace_size);
int __tsan_get_report_mop(void *report, unsigned long idx, int *tid, void **addr, int *size, int *write, int *atomic,
                          void **trace, unsigned long trace_size);
int __tsan_get_report_thread(void *report, unsigned long idx, int *tid, unsigned long *os_id, int *running,
                             const char **name, int *parent_tid, void **trace, unsigned long trace_size);
}

namespace dmz_emu {
namespace detail {

void *race_fiber_create(unsigned worker, unsigned slot) {
    void *f = __tsan_create_fiber(0);
    char name[48];
    snprintf(name, sizeof name, "dmz-emu w%u t%u", worker, slot);
    __tsan_set_fiber_name(f, name);
    return f;
}
void *race_fiber_current() { return __tsan_get_current_fiber(); }
void race_fiber_switch(void *fiber) { __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync); }
void race_release(void *sync) { __tsan_release(sync); }
void race_acquire(void *sync) { __tsan_acquire(sync); }
void race_ignore_begin() { __tsan_ignore_thread_begin(); }
void race_ignore_end() { __tsan_ignore_thread_end(); }

namespace {

/* ---------------------------------------------------------------- symbolising */
/* "file:line" of pc, and where a header's inline function was inlined into a
 * .cu file: "kernels/cuda/common.cuh:115 (dmz_block_sum, inlined at tests/race_kernels.cu:40)". */
std::string source_of(void *pc) {
    char buf[4096];
    buf[0] = buf[1] = 0;
    __sanitizer_symbolize_pc(pc, "%s:%l|%f", buf, sizeof buf);
    std::string first, func, cu;
    for (const char *p = buf; *p && p < buf + sizeof buf; p += strlen(p) + 1) {
        std::string frame(p);
        size_t bar = frame.find('|');
        std::string loc = frame.substr(0, bar), fn = bar == std::string::npos ? "" : frame.substr(bar + 1);
        loc = short_path(loc.c_str());
        if (first.empty()) first = loc, func = fn;
        else if (cu.empty() && loc.find(".cu:") != std::string::npos) cu = loc;
        if (!cu.empty()) break;
    }
    if (first.empty()) {
        snprintf(buf, sizeof buf, "pc %p (no symbols)", pc);
        return buf;
    }
    if (first.find(".cu:") != std::string::npos || cu.empty()) return first;
    size_t paren = func.find('(');
    return first + " (" + func.substr(0, paren) + ", inlined at " + cu + ")";
}

/* ---------------------------------------------------------------- shared memory written by this block */
struct shared_map {
    bool active;
    uintptr_t tls_lo, dyn_lo;
    size_t tls_n, dyn_n, dyn_cap;
    unsigned char *tls_written, *dyn_written;
    unsigned char *tls_kernel; /* TLS bytes kernel code ever touched: static __shared__ storage */
};
thread_local shared_map S; /* plain data: the hooks run before any constructor could */

int find_tls(struct dl_phdr_info *info, size_t, void *out) {
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            shared_map *m = static_cast<shared_map *>(out);
            m->tls_lo = (uintptr_t)info->dlpi_tls_data;
            m->tls_n = info->dlpi_tls_data ? info->dlpi_phdr[i].p_memsz : 0;
        }
    return 1; /* the first object is the executable: stop there */
}

void uninitialised_read(uintptr_t a, size_t size, bool dynamic, size_t offset, void *pc) {
    std::string src = source_of((char *)pc - 1);
    char where[256], sched[256], text[1024];
    where_now(where, sizeof where);
    schedule_now(sched, sizeof sched);
    snprintf(text, sizeof text,
             "cuda-emu racecheck: read of uninitialised shared memory in %s\n"
             "    Read of %zu bytes at %s __shared__ 0x%zx (offset %zu) at %s: no thread of this block wrote it\n"
             "    %s\n",
             where, size, dynamic ? "dynamic" : "static", (size_t)a, offset, src.c_str(), sched);
    hazard(("uninit|" + src).c_str(), text);
}

inline void track(void *addr, size_t size, bool write, void *pc) {
    if (!S.active) return;
    uintptr_t a = (uintptr_t)addr;
    unsigned char *w;
    size_t off, n;
    bool dynamic;
    if (a - S.tls_lo < S.tls_n) w = S.tls_written, off = a - S.tls_lo, n = S.tls_n, dynamic = false;
    else if (a - S.dyn_lo < S.dyn_n) w = S.dyn_written, off = a - S.dyn_lo, n = S.dyn_n, dynamic = true;
    else return;
    if (!in_kernel_thread()) return;
    if (size > n - off) size = n - off;
    if (!dynamic) {
        volatile unsigned char *k = S.tls_kernel + off;
        for (size_t i = 0; i < size; i++) k[i] = 1;
    }
    volatile unsigned char *v = w + off; /* volatile: no memset call, which ThreadSanitizer would see */
    bool unwritten = false;
    for (size_t i = 0; i < size; i++) {
        unwritten = unwritten || !v[i];
        v[i] = 1; /* a read marks too: each place is reported once */
    }
    if (unwritten && !write) {
        race_quiet q;
        uninitialised_read(a, size, dynamic, off, pc);
    }
}

} // namespace

void race_block_begin(void *dyn, size_t bytes) {
    if (!S.tls_written) {
        dl_iterate_phdr(find_tls, &S);
        S.tls_written = static_cast<unsigned char *>(calloc(S.tls_n ? S.tls_n : 1, 1));
        S.tls_kernel = static_cast<unsigned char *>(calloc(S.tls_n ? S.tls_n : 1, 1));
        if (!S.tls_written || !S.tls_kernel) fail("out of memory for the shared-memory map");
    }
    memset(S.tls_written, 0, S.tls_n);
    /* Static __shared__ memory starts undefined in every block: the bytes earlier
     * blocks used are filled with 0xff (NaN as floats), by plain stores that
     * ThreadSanitizer does not see (the emulator is not instrumented). */
    volatile unsigned char *tls = reinterpret_cast<unsigned char *>(S.tls_lo);
    for (size_t i = 0; i < S.tls_n; i++)
        if (S.tls_kernel[i]) tls[i] = 0xff;
    if (bytes > S.dyn_cap) {
        free(S.dyn_written);
        S.dyn_written = static_cast<unsigned char *>(malloc(bytes));
        if (!S.dyn_written) fail("out of memory for the shared-memory map");
        S.dyn_cap = bytes;
    }
    if (bytes) memset(S.dyn_written, 0, bytes);
    S.dyn_lo = (uintptr_t)dyn;
    S.dyn_n = bytes;
    S.active = true;
}

void race_block_end() { S.active = false; }

namespace {

/* ---------------------------------------------------------------- race reports */
std::string thread_text(void *report, int tid, int nthreads) {
    for (int i = 0; i < nthreads; i++) {
        int t = -1, running = 0, parent = 0;
        unsigned long os = 0;
        const char *name = nullptr;
        void *trace[1];
        if (!__tsan_get_report_thread(report, (unsigned long)i, &t, &os, &running, &name, &parent, trace, 1) ||
            t != tid)
            continue;
        unsigned w, s;
        if (name && sscanf(name, "dmz-emu w%u t%u", &w, &s) == 2) {
            char buf[512];
            describe_slot(w, s, buf, sizeof buf);
            return buf;
        }
        return tid == 0 ? "the host (main thread)" : "a host thread";
    }
    return "thread T" + std::to_string(tid);
}

const char *space_of(uintptr_t a) {
    if (a - S.tls_lo < S.tls_n) return "static __shared__ memory";
    if (a - S.dyn_lo < S.dyn_n) return "dynamic __shared__ memory";
    return "global memory";
}

} // namespace
} // namespace detail
} // namespace dmz_emu

using namespace dmz_emu::detail;

/* ThreadSanitizer's defaults for the race build (TSAN_OPTIONS still wins):
 * no 1-second sleep at exit (it waits for "other threads", and every
 * emulated thread is one). */
extern "C" const char *__tsan_default_options(void) { return "atexit_sleep_ms=0"; }

/* Called by ThreadSanitizer for every report, after printing it. */
extern "C" void __tsan_on_report(void *report) {
    const char *desc = "";
    int count = 0, stacks = 0, mops = 0, locs = 0, mutexes = 0, threads = 0, unique = 0;
    void *sleep[1];
    __tsan_get_report_data(report, &desc, &count, &stacks, &mops, &locs, &mutexes, &threads, &unique, sleep, 1);
    if (strcmp(desc, "data-race") != 0 || mops < 2) {
        count_hazard();
        return;
    }
    int tid[2] = {0, 0}, size[2] = {0, 0}, write[2] = {0, 0}, atomic[2] = {0, 0};
    void *addr[2] = {nullptr, nullptr}, *trace[2][8] = {};
    for (int i = 0; i < 2; i++)
        __tsan_get_report_mop(report, (unsigned long)i, &tid[i], &addr[i], &size[i], &write[i], &atomic[i], trace[i], 8);
    const char *kind = write[0] ? (write[1] ? "Write-after-Write" : "Write-after-Read") : "Read-after-Write";
    std::string now_src = source_of(trace[0][0]), prev_src = source_of(trace[1][0]);
    char now_who[256], sched[256];
    where_now(now_who, sizeof now_who);
    schedule_now(sched, sizeof sched);
    std::string prev_who = thread_text(report, tid[1], threads);
    const char *comma = strstr(now_who, ", block");
    std::string kernel = comma ? std::string(now_who, (size_t)(comma - now_who)) : std::string("host code");
    std::string who = comma ? std::string(comma + 2) : std::string(now_who);
    char text[2048];
    snprintf(text, sizeof text,
             "cuda-emu racecheck: %s hazard on %s at 0x%zx (%d bytes) in %s\n"
             "    %-5s by %s at %s\n"
             "    %-5s by %s at %s (earlier; no barrier orders the two)\n"
             "    %s\n",
             kind, space_of((uintptr_t)addr[0]), (size_t)addr[0], size[0], kernel.c_str(), write[0] ? "Write" : "Read",
             who.c_str(), now_src.c_str(), write[1] ? "Write" : "Read", prev_who.c_str(), prev_src.c_str(), sched);
    hazard(("race|" + now_src + "|" + prev_src).c_str(), text);
}

/* The instrumentation's entry points: note shared-memory writes and check
 * reads, then hand the access to ThreadSanitizer with the kernel's pc. */
#define DMZ_HOOK(n)                                                                                                   \
    extern "C" void __tsan_read##n(void *a) {                                                                         \
        void *pc = __builtin_return_address(0);                                                                       \
        track(a, n, false, pc);                                                                                       \
        __tsan_read##n##_pc(a, pc);                                                                                   \
    }                                                                                                                 \
    extern "C" void __tsan_write##n(void *a) {                                                                        \
        void *pc = __builtin_return_address(0);                                                                       \
        track(a, n, true, pc);                                                                                        \
        __tsan_write##n##_pc(a, pc);                                                                                  \
    }
DMZ_HOOK(1)
DMZ_HOOK(2)
DMZ_HOOK(4)
DMZ_HOOK(8)
DMZ_HOOK(16)

extern "C" void __tsan_read_range(void *a, unsigned long size) {
    void *pc = __builtin_return_address(0);
    track(a, size, false, pc);
    __tsan_read_range_pc(a, size, pc);
}
extern "C" void __tsan_write_range(void *a, unsigned long size) {
    void *pc = __builtin_return_address(0);
    track(a, size, true, pc);
    __tsan_write_range_pc(a, size, pc);
}

#else /* !DMZ_EMU_RACE */

namespace dmz_emu {
namespace detail {
void *race_fiber_create(unsigned, unsigned) { return nullptr; }
void *race_fiber_current() { return nullptr; }
void race_fiber_switch(void *) {}
void race_release(void *) {}
void race_acquire(void *) {}
void race_block_begin(void *, size_t) {}
void race_block_end() {}
void race_ignore_begin() {}
void race_ignore_end() {}
} // namespace detail
} // namespace dmz_emu

#endif
