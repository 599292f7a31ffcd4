/* bench/rank_devices.h — each rank's device into meta.json (bench/rank_devices.c).
 * Internal to bench/. */
#ifndef DMZ_RANK_DEVICES_H
#define DMZ_RANK_DEVICES_H

#include <cjson/cJSON.h>

#include "net/comm.h"

/* A collective: every rank calls it once. Rank 0 adds "device" and
 * "device_match" to each element of mpi.ranks (mpi may be NULL elsewhere). */
int dmz_ranks_add_devices(dmz_comm *c, const char *backend, cJSON *mpi, char *err);

#endif
