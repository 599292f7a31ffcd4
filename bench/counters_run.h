/* bench/counters_run.h — the counters of one run (counters/counters.h) as the
 * runner uses them: started before the data load, read around every
 * repetition, gathered at rank 0 and written into gpu.csv, kernels.csv,
 * papi.csv, summary.csv's counter columns and meta.json. Internal to bench/. */
#ifndef DMZ_COUNTERS_RUN_H
#define DMZ_COUNTERS_RUN_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "bench.h"
#include "counters/counters.h"
#include "kernels/backend.h"

/* Per rank and repetition; travels to rank 0 inside dmz_rep_result (fixed size). */
typedef struct dmz_rep_counters {
    dmz_binding bind;
    dmz_papi_counts papi;        /* the measured steps' phases; load only in repetition 0 */
    double energy_j, power_w;    /* over the measured steps, this rank's devices; NAN: unknown */
    char energy_source[200];
    double gpu_t0_s, gpu_t1_s;   /* the measured steps on gpu.csv's clock (t_s) */
} dmz_rep_counters;

void dmz_rep_counters_init(dmz_rep_counters *c);
/* Around the measured steps of a repetition (after warm-up). */
void dmz_rep_counters_begin(dmz_rep_counters *c);
void dmz_rep_counters_end(dmz_rep_counters *c, int rep);

/* Before the data load: binding, PAPI, the NVML sampler, kernel timing.
 * Returns the backend to build the model on (the counted one for GPU
 * backends). A --bind list that cannot be applied fails the run. */
int dmz_counters_run_start(const dmz_train_config *cfg, const dmz_backend *be, int rank, const dmz_backend **use,
                           char *err);
/* The data load, counted (PAPI phase "load"). */
void dmz_counters_load_begin(void);
void dmz_counters_load_end(void);
/* After training: stops the sampler, collects kernel rows. */
void dmz_counters_run_stop(void);

typedef struct dmz_comm dmz_comm;
typedef struct dmz_rundir dmz_rundir;
typedef struct dmz_rank_rows dmz_rank_rows;
/* Ranks other than 0 send their samples and kernel rows; rank 0 keeps them.
 * Only after a successful run (a failed rank may be gone). */
int dmz_counters_gather(dmz_comm *c, char *err);
/* Rank 0: gpu.csv, kernels.csv, papi.csv, and meta.json's "counters". */
int dmz_counters_write(const dmz_rundir *rd, cJSON *meta, const dmz_rank_rows *rows, int n_rows, char *err);
void dmz_counters_run_free(void);

#endif
