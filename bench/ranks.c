#include "ranks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

enum { TAG_REP = 31301, TAG_STEPS = 31302 };

static int is_ps(const dmz_train_config *cfg) { return strcmp(cfg->mode, "async-ps") == 0; }
static int is_sync(const dmz_train_config *cfg) { return strcmp(cfg->mode, "sync") == 0; }

static int check_options(const dmz_train_config *cfg, const dmz_comm *c, char *err) {
    if (is_ps(cfg) && c->size < 2)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "--mode async-ps needs at least 2 ranks (rank 0 serves the parameters, ranks 1..N-1 "
                          "work): mpirun -np 2 dmzbench train --mode async-ps ...; this job has %d", c->size);
    if (cfg->global_batch && !is_sync(cfg))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--global-batch applies to --mode sync only");
    if (cfg->global_batch && cfg->global_batch < c->size)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--global-batch %d is smaller than the %d ranks that share it",
                          cfg->global_batch, c->size);
    if (cfg->check_consistency && !is_sync(cfg))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--check-consistency applies to --mode sync only");
    if (cfg->rank_speed) {
        int want = is_ps(cfg) ? c->size - 1 : c->size, got = 0;
        int rc = dmz_parse_rank_speed(cfg->rank_speed, NULL, 0, &got, err);
        if (rc) return rc;
        if (got != want)
            return dmz_errorf(err, DMZ_EXIT_USAGE, "--rank-speed '%s' has %d factor%s; this job needs %d (one per %s)",
                              cfg->rank_speed, got, got == 1 ? "" : "s", want, is_ps(cfg) ? "worker" : "rank");
    }
    return DMZ_OK;
}

double dmz_role_speed_of(const dmz_train_config *cfg, const dmz_comm *c, int rank) {
    int idx = is_ps(cfg) ? rank - 1 : rank;
    if (idx < 0) return NAN;
    if (!cfg->rank_speed) return 1.0;
    double v[4096];
    int n = 0;
    if (dmz_parse_rank_speed(cfg->rank_speed, v, 4096, &n, NULL) || idx >= n || idx >= 4096) return 1.0;
    (void)c;
    return v[idx];
}

/* --global-batch: shares in proportion to the ranks' speeds; remainders to the first ranks. */
static void global_share(const dmz_train_config *cfg, const dmz_comm *c, int rank, int *count, int *offset) {
    double total = 0;
    for (int r = 0; r < c->size; r++) total += dmz_role_speed_of(cfg, c, r);
    int given = 0, off = 0;
    int *share = calloc((size_t)c->size, sizeof(int));
    for (int r = 0; r < c->size; r++) {
        share[r] = (int)floor(cfg->global_batch * dmz_role_speed_of(cfg, c, r) / total);
        if (share[r] < 1) share[r] = 1;
        given += share[r];
    }
    for (int r = 0; given < cfg->global_batch; r = (r + 1) % c->size) share[r]++, given++;
    for (int r = c->size - 1; given > cfg->global_batch; r = (r + c->size - 1) % c->size)
        if (share[r] > 1) share[r]--, given--;
    for (int r = 0; r < rank; r++) off += share[r];
    *count = share[rank], *offset = off;
    free(share);
}

int dmz_role_batch_of(const dmz_train_config *cfg, const dmz_comm *c, int rank) {
    if (is_ps(cfg) && rank == 0) return 0;
    if (!cfg->global_batch) return cfg->batch;
    int count, offset;
    global_share(cfg, c, rank, &count, &offset);
    return count;
}

/* Each rank's own data order; rank 0 (async-ps: the first worker) keeps the
 * run's seed, so that one rank walks the data exactly as a single run does. */
static uint64_t data_seed(uint64_t seed, int index) {
    return index == 0 ? seed : seed + 0x9E3779B97F4A7C15ULL * (uint64_t)index;
}

int dmz_role_for_rank(const dmz_train_config *cfg, const dmz_comm *c, dmz_train_role *role, char *err) {
    int rc = check_options(cfg, c, err);
    if (rc) return rc;
    *role = (dmz_train_role){.rank = c->rank, .size = c->size, .local_batch = cfg->batch, .speed = 1,
                             .grad_scale = 1, .consistency_every = cfg->check_consistency};
    role->speed = dmz_role_speed_of(cfg, c, c->rank);
    if (is_ps(cfg)) {
        role->data_seed = data_seed(cfg->seed, c->rank - 1);
        if (c->rank == 0) role->local_batch = 0, role->speed = NAN;
    } else if (cfg->global_batch) {
        /* one shared order; the summed gradient is the global batch's, as a single run with --batch N */
        role->data_seed = cfg->seed;
        role->global_batch = cfg->global_batch;
        global_share(cfg, c, c->rank, &role->local_batch, &role->offset);
    } else {
        /* each rank its own batch; averaged, so one step keeps the scale of one batch's summed loss */
        role->data_seed = data_seed(cfg->seed, c->rank);
        role->grad_scale = 1.0f / (float)c->size;
    }
    return DMZ_OK;
}

int dmz_gather_rep(dmz_comm *c, const dmz_rep_result *mine, dmz_rep_result **all, int rep, char *err) {
    if (c->size < 2) return DMZ_OK;
    if (c->rank != 0) {
        int rc = c->send(c, 0, TAG_REP, mine, sizeof *mine, "sending results to rank 0", err);
        if (!rc && mine->n_steps > 0)
            rc = c->send(c, 0, TAG_STEPS, mine->steps, (size_t)mine->n_steps * sizeof *mine->steps,
                         "sending step records to rank 0", err);
        return rc;
    }
    for (int r = 1; r < c->size; r++) {
        dmz_rep_result *dst = &all[r][rep];
        int rc = c->recv(c, r, TAG_REP, dst, sizeof *dst, NULL, NULL, "collecting every rank's results", err);
        if (rc) return rc;
        dst->steps = NULL, dst->cap_steps = 0;
        if (dst->n_steps <= 0) continue;
        dst->steps = calloc((size_t)dst->n_steps, sizeof *dst->steps);
        if (!dst->steps) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory for rank %d's step records", r);
        dst->cap_steps = dst->n_steps;
        rc = c->recv(c, r, TAG_STEPS, dst->steps, (size_t)dst->n_steps * sizeof *dst->steps, NULL, NULL,
                     "collecting every rank's step records", err);
        if (rc) return rc;
    }
    return DMZ_OK;
}

int dmz_check_same_build(dmz_comm *c, char *err) {
    if (c->size < 2) return DMZ_OK;
    char mine[128], root[128];
    snprintf(mine, sizeof mine, "%s/%zu/%zu", DMZ_GIT_REV, sizeof(dmz_rep_result), sizeof(dmz_step_record));
    memcpy(root, mine, sizeof root);
    int rc = c->bcast(c, root, sizeof root, 0, err);
    if (rc) return rc;
    if (strcmp(mine, root) != 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE,
                          "rank %d (site %s) runs dmzbench build %s but rank 0 runs %s: run one build on every site",
                          c->rank, dmz_comm_site(c, c->rank), mine, root);
    return DMZ_OK;
}

static double median_wall(const dmz_rank_rows *rk) {
    double *v = malloc(sizeof(double) * (size_t)(rk->n_reps > 0 ? rk->n_reps : 1));
    if (!v) return NAN;
    for (int i = 0; i < rk->n_reps; i++) v[i] = rk->reps[i].wall_s;
    dmz_stat st;
    dmz_stat_compute(&st, "wall_s", v, rk->n_reps);
    free(v);
    return st.median;
}

int dmz_find_straggler(const dmz_rank_rows *ranks, int n_ranks, dmz_straggler *out) {
    *out = (dmz_straggler){.slowest = -1, .fastest = -1, .slowest_s = NAN, .fastest_s = NAN, .slower_pct = NAN};
    int computing = 0;
    for (int k = 0; k < n_ranks; k++) {
        if (ranks[k].batch == 0) continue; /* the server computes no samples */
        double w = median_wall(&ranks[k]);
        if (isnan(w)) continue;
        computing++;
        if (out->slowest < 0 || w > out->slowest_s) out->slowest = ranks[k].rank, out->slowest_s = w;
        if (out->fastest < 0 || w < out->fastest_s) out->fastest = ranks[k].rank, out->fastest_s = w;
    }
    if (computing < 2) return 0;
    out->slower_pct = 100.0 * (out->slowest_s / out->fastest_s - 1.0);
    return 1;
}

cJSON *dmz_ranks_meta(const dmz_train_config *cfg, const dmz_comm *c) {
    cJSON *mpi = cJSON_CreateObject();
    cJSON_AddStringToObject(mpi, "communicator", c->name);
    cJSON_AddNumberToObject(mpi, "size", c->size);
    cJSON_AddStringToObject(mpi, "transport", c->transport);
    cJSON_AddNumberToObject(mpi, "timeout_s", cfg->timeout_s);
    if (cfg->rank_speed) cJSON_AddStringToObject(mpi, "rank_speed", cfg->rank_speed);
    if (cfg->global_batch) cJSON_AddNumberToObject(mpi, "global_batch", cfg->global_batch);
    cJSON *ranks = cJSON_AddArrayToObject(mpi, "ranks");
    for (int r = 0; r < c->size; r++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", r);
        cJSON_AddStringToObject(o, "site", dmz_comm_site(c, r));
        cJSON_AddStringToObject(o, "host", c->host_of ? c->host_of[r] : "?");
        const char *role = is_ps(cfg) ? (r == 0 ? "server" : "worker") : is_sync(cfg) ? "sync" : "single";
        cJSON_AddStringToObject(o, "role", role);
        cJSON_AddNumberToObject(o, "batch", dmz_role_batch_of(cfg, c, r));
        double sp = dmz_role_speed_of(cfg, c, r);
        if (isnan(sp)) cJSON_AddNullToObject(o, "speed");
        else cJSON_AddNumberToObject(o, "speed", sp);
        cJSON_AddItemToArray(ranks, o);
    }
    return mpi;
}
