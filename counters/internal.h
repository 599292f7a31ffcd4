/* counters/internal.h — shared between the files of counters/ only. */
#ifndef DMZ_COUNTERS_INTERNAL_H
#define DMZ_COUNTERS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef DMZ_HAVE_HWLOC
#include <hwloc.h>
/* The machine's topology with important I/O devices, loaded once per process;
 * NULL with the reason (hwloc's) in why. */
hwloc_topology_t dmz_hwloc_topology(char *why, size_t len);
#endif

/* Op brackets for kernel timing (kernels.c), called by the counted backend. */
void dmz_kernels_op_begin(int op, uint64_t call);
void dmz_kernels_op_end(int op, uint64_t call);
int dmz_kernels_active(void);
void dmz_kernels_synced(void); /* after the backend synchronised */
/* The accounting of one op call (opcount.c), for kernels.c's attribution. */
void dmz_opcount_call_of(uint64_t call, int *op, double *flops, double *bytes);
const char *dmz_opcount_name(int op);
void dmz_opcount_add_event_ms(int op, double ms);

#endif
