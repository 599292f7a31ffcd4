/* bench/ranks.h — what a cross-site run adds around the training loop: each
 * rank's role (batch share, data order, speed), gathering every rank's
 * results at rank 0, and the straggler. Internal to bench/. */
#ifndef DMZ_RANKS_H
#define DMZ_RANKS_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "bench.h"
#include "net/comm.h"
#include "results.h"
#include "train.h"

/* The role of this rank, from the config and the communicator. Every rank
 * reaches the same verdict on bad options (exit 2, same message). */
int dmz_role_for_rank(const dmz_train_config *cfg, const dmz_comm *c, dmz_train_role *role, char *err);
/* The --rank-speed factor of `rank` (NAN for the async-ps server). */
double dmz_role_speed_of(const dmz_train_config *cfg, const dmz_comm *c, int rank);
/* Samples per step of `rank`. */
int dmz_role_batch_of(const dmz_train_config *cfg, const dmz_comm *c, int rank);

/* Rank 0 receives repetition `rep` of every other rank into all[rank][rep];
 * the others send theirs. */
int dmz_gather_rep(dmz_comm *c, const dmz_rep_result *mine, dmz_rep_result **all, int rep, char *err);
/* All ranks must run the same dmzbench build (results travel as structs). */
int dmz_check_same_build(dmz_comm *c, char *err);

/* The slowest computing rank against the fastest, by median wall time. */
typedef struct dmz_straggler {
    int slowest, fastest;
    double slowest_s, fastest_s, slower_pct;
} dmz_straggler;
int dmz_find_straggler(const dmz_rank_rows *ranks, int n_ranks, dmz_straggler *out); /* 0: fewer than 2 */

/* meta.json's "mpi" object: size, transport, and per rank: site, host, role, batch, speed. */
cJSON *dmz_ranks_meta(const dmz_train_config *cfg, const dmz_comm *c);

#endif
