/* bench/meta.h — meta.json: the provenance of a run. Internal to bench/. */
#ifndef DMZ_META_H
#define DMZ_META_H

#include <cjson/cJSON.h>

#include "bench.h"
#include "datasets/datasets.h"
#include "results.h"

/* The host part (also printed by `dmzbench info`). */
cJSON *dmz_meta_host(void);
/* Every CUDA device (name, compute capability, SMs, memory, PCI, versions), or
 * the string "unavailable: <reason>". */
cJSON *dmz_meta_gpus(void);
/* Everything known before training: argv, config, build, host, devices, env. */
cJSON *dmz_meta_begin(const dmz_train_config *cfg, int argc, char **argv, const dmz_rundir *rd,
                      const char *site);
void dmz_meta_set_dataset(cJSON *meta, const dmz_dataset *ds);
void dmz_meta_set_backend(cJSON *meta, const char *description, int threads);
/* Adds status, error and end time, then writes meta.json into the run directory. */
int dmz_meta_finish(cJSON *meta, const dmz_rundir *rd, const char *status, const char *error, char *err);

#endif
