/* kernels/cuda/emu/emu_internal.h — what the emulator's three parts share:
 *   cuda_emu.cpp     the scheduler: blocks, threads as coroutines, barriers, warp checks
 *   emu_runtime.cpp  the CUDA runtime calls on host memory
 *   emu_race.cpp     the race detector (ThreadSanitizer fibers; `make test-race`)
 * Not for kernels: they see cuda_emu.h only. */
#ifndef DMZ_CUDA_EMU_INTERNAL_H
#define DMZ_CUDA_EMU_INTERNAL_H

#include "cuda_emu.h"

#include <stddef.h>
#include <stdint.h>

/* DMZ_EMU_RACE=1: the emulator is linked into a -fsanitize=thread program
 * (the Makefile's RACE=1 build); the emulator itself is not instrumented. */
#ifndef DMZ_EMU_RACE
#define DMZ_EMU_RACE 0
#endif

namespace dmz_emu {
namespace detail {

/* Read once from the environment (see cuda_emu.h for the variables). */
struct config {
    uint64_t seed;    /* DMZ_EMU_SEED: 0 = the fixed default order */
    unsigned workers; /* DMZ_EMU_WORKERS: OS threads running blocks; 0 = the launching thread */
    bool pascal;      /* DMZ_EMU_WARP_RULES=pascal: pre-Volta warp rules */
    bool halt;        /* DMZ_EMU_HALT=1: abort at the first hazard */
};
const config &cfg();

/* A bug in the program that the emulator cannot run past (deadlock, misuse):
 * printed with the kernel, block, thread and schedule, then abort(). */
[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...);

/* A hazard (race, divergent barrier, bad warp operation, uninitialised shared
 * memory): printed once per distinct `key`, counted; the program goes on and
 * exits with status 66 at the end (as ThreadSanitizer does), or aborts at once
 * under DMZ_EMU_HALT=1. `text` is the whole report, lines ending in '\n'. */
void hazard(const char *key, const char *text);
void count_hazard(); /* one found by ThreadSanitizer, which printed it itself */

/* "kernel K, block (x,y,z), thread (x,y,z)" for the thread running now
 * (or less, outside a kernel). */
void where_now(char *buf, size_t len);
/* The schedule of the current launch, to reproduce a report:
 * "schedule: DMZ_EMU_SEED=1, launch 12 of this process, 2 workers, threads backward". */
void schedule_now(char *buf, size_t len);
/* Names the emulated thread behind coroutine `slot` of emulator worker
 * `worker`: "block (x,y,z) thread (x,y,z)" (or the blocks it may have been). */
void describe_slot(unsigned worker, unsigned slot, char *buf, size_t len);
/* Whether the calling OS thread is inside an emulated thread now. */
bool in_kernel_thread();

/* "file:line" with the source directory stripped. */
const char *short_path(const char *file);

cudaError_t set_error(cudaError_t e);
unsigned long kernels_run(); /* grids run so far (cuda_emu.cpp) */

/* ---------------------------------------------------------------- race layer (emu_race.cpp) */
/* Without DMZ_EMU_RACE these do nothing. */
void *race_fiber_create(unsigned worker, unsigned slot);
void *race_fiber_current();
void race_fiber_switch(void *fiber); /* just before swapcontext: no happens-before */
void race_release(void *sync);
void race_acquire(void *sync);
/* Around each block on the calling OS thread: the shared memory it may use
 * (its static __shared__ variables live in this OS thread's TLS block of the
 * executable; dynamic shared memory is [dyn, dyn+bytes)), for the check of
 * reads of shared memory the block never wrote. */
void race_block_begin(void *dyn, size_t bytes);
void race_block_end();
/* The emulator's own work inside an emulated thread (bookkeeping that calls
 * intercepted functions: malloc, memcpy, printing) is hidden from
 * ThreadSanitizer for the guard's lifetime; sync events still count. */
void race_ignore_begin();
void race_ignore_end();
struct race_quiet {
    race_quiet() { race_ignore_begin(); }
    ~race_quiet() { race_ignore_end(); }
    race_quiet(const race_quiet &) = delete;
    race_quiet &operator=(const race_quiet &) = delete;
};

} // namespace detail
} // namespace dmz_emu

#endif
