/* counters/bind.c — --bind none|auto|CPULIST: where a rank and its OpenMP
 * threads run, and the record of what was in effect. */
#include "counters/counters.h"
#include "counters/internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dmz.h"

enum { MAX_CPUS = CPU_SETSIZE };

/* Parses "0-3,8" into ids (sorted as given, duplicates kept out); the count,
 * or -1 with err naming the bad token. */
static int parse_list(const char *spec, int *ids, int max, char *err) {
    static char seen[MAX_CPUS];
    memset(seen, 0, sizeof seen);
    int n = 0;
    const char *p = spec;
    if (!*p) return dmz_errorf(err, DMZ_EXIT_USAGE, "--bind: empty CPU list (use none, auto or a list such as 0-3,8)"), -1;
    for (;;) {
        size_t len = strcspn(p, ",");
        char tok[64];
        snprintf(tok, sizeof tok, "%.*s", (int)(len < 60 ? len : 60), p);
        char *end;
        errno = 0;
        long a = isdigit((unsigned char)tok[0]) ? strtol(tok, &end, 10) : -1, b = a;
        if (a >= 0 && *end == '-' && isdigit((unsigned char)end[1])) b = strtol(end + 1, &end, 10);
        if (a < 0 || errno || *end || len == 0 || len >= 60 || b < a || b >= MAX_CPUS) {
            dmz_errorf(err, DMZ_EXIT_USAGE,
                       "--bind: '%s' in '%s' is not a CPU number or range N-M (CPUs 0..%d; use none, auto or a "
                       "list such as 0-3,8)", tok, spec, MAX_CPUS - 1);
            return -1;
        }
        for (long c = a; c <= b; c++)
            if (!seen[c] && n < max) seen[c] = 1, ids[n++] = (int)c;
        if (!p[len]) break;
        p += len + 1;
    }
    return n;
}

int dmz_bind_parse(const char *spec, char *err) {
    if (!spec) return dmz_errorf(err, DMZ_EXIT_USAGE, "--bind: missing value");
    if (strcmp(spec, "none") == 0 || strcmp(spec, "auto") == 0) return DMZ_OK;
    static int ids[MAX_CPUS];
    return parse_list(spec, ids, MAX_CPUS, err) < 0 ? DMZ_EXIT_USAGE : DMZ_OK;
}

static void set_to_list(const cpu_set_t *set, char *out, size_t len) {
    size_t used = 0;
    out[0] = '\0';
    for (int c = 0; c < MAX_CPUS; c++) {
        if (!CPU_ISSET(c, set)) continue;
        int e = c;
        while (e + 1 < MAX_CPUS && CPU_ISSET(e + 1, set)) e++;
        int w = e > c ? snprintf(out + used, len - used, "%s%d-%d", used ? "," : "", c, e)
                      : snprintf(out + used, len - used, "%s%d", used ? "," : "", c);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
        c = e;
    }
}

void dmz_current_cpuset(char *out, size_t len) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        snprintf(out, len, "unknown (sched_getaffinity: %s)", strerror(errno));
        return;
    }
    set_to_list(&set, out, len);
}

/* CPUs this process could be given: hwloc's allowed set, else the current affinity. */
static void allowed_cpus(cpu_set_t *set) {
    CPU_ZERO(set);
#ifdef DMZ_HAVE_HWLOC
    hwloc_topology_t t = dmz_counters_enabled("hwloc", NULL, 0) ? dmz_hwloc_topology(NULL, 0) : NULL;
    if (t) {
        int c;
        hwloc_bitmap_foreach_begin(c, hwloc_topology_get_allowed_cpuset(t)) {
            if (c < MAX_CPUS) CPU_SET(c, set);
        }
        hwloc_bitmap_foreach_end();
        return;
    }
#endif
    sched_getaffinity(0, sizeof *set, set);
}

int dmz_bind_check_cpus(const char *spec, char *err) {
    int rc = dmz_bind_parse(spec, err);
    if (rc || strcmp(spec, "none") == 0 || strcmp(spec, "auto") == 0) return rc;
    static int ids[MAX_CPUS];
    int n = parse_list(spec, ids, MAX_CPUS, err);
    cpu_set_t ok;
    allowed_cpus(&ok);
    for (int i = 0; i < n; i++)
        if (!CPU_ISSET(ids[i], &ok)) {
            char have[256];
            set_to_list(&ok, have, sizeof have);
            return dmz_errorf(err, DMZ_EXIT_USAGE, "--bind: CPU %d in '%s' is not one this process may use here (%s)",
                              ids[i], spec, have);
        }
    return DMZ_OK;
}

/* The process on `set`, then OpenMP thread i on the i-th CPU of it (in turn). */
static int bind_to(const cpu_set_t *set, int threads, char *err) {
    int ids[MAX_CPUS], n = 0;
    for (int c = 0; c < MAX_CPUS; c++)
        if (CPU_ISSET(c, set)) ids[n++] = c;
    if (n == 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "--bind: no CPU to bind to");
#ifdef DMZ_HAVE_HWLOC
    hwloc_topology_t t = dmz_counters_enabled("hwloc", NULL, 0) ? dmz_hwloc_topology(NULL, 0) : NULL;
    if (t) { /* every thread the process has now, not only this one */
        hwloc_bitmap_t b = hwloc_bitmap_alloc();
        for (int i = 0; i < n; i++) hwloc_bitmap_set(b, (unsigned)ids[i]);
        int r = hwloc_set_cpubind(t, b, HWLOC_CPUBIND_PROCESS);
        hwloc_bitmap_free(b);
        if (r != 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "--bind: hwloc_set_cpubind: %s", strerror(errno));
    }
#endif
    if (sched_setaffinity(0, sizeof *set, set) != 0)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "--bind: sched_setaffinity: %s", strerror(errno));
    int failed = 0;
    if (threads < 1) threads = 1;
#pragma omp parallel num_threads(threads) reduction(+ : failed)
    {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(ids[omp_get_thread_num() % n], &one);
        failed += sched_setaffinity(0, sizeof one, &one) != 0;
    }
    if (failed) return dmz_errorf(err, DMZ_EXIT_FAIL, "--bind: %d OpenMP threads could not be bound", failed);
    return DMZ_OK;
}

#ifdef DMZ_HAVE_HWLOC
static void hw_to_set(hwloc_const_bitmap_t b, cpu_set_t *set) {
    CPU_ZERO(set);
    int c;
    hwloc_bitmap_foreach_begin(c, b) {
        if (c < MAX_CPUS) CPU_SET(c, set);
    }
    hwloc_bitmap_foreach_end();
}

/* The cpuset nearest a GPU (its non-I/O ancestor), or NULL. */
static hwloc_const_bitmap_t gpu_cpuset(hwloc_topology_t t, const char *bus) {
    hwloc_obj_t pci = bus ? hwloc_get_pcidev_by_busidstring(t, bus) : NULL;
    hwloc_obj_t anc = pci ? hwloc_get_non_io_ancestor_obj(t, pci) : NULL;
    return anc ? anc->cpuset : NULL;
}

/* `of` split into `parts` (packages first, then cores: hwloc_distrib); part `k`. */
static void share_of(hwloc_topology_t t, hwloc_const_bitmap_t of, int parts, int k, cpu_set_t *set) {
    hwloc_obj_t root = hwloc_get_obj_covering_cpuset(t, of);
    if (!root) root = hwloc_get_root_obj(t);
    hwloc_bitmap_t *sets = calloc((size_t)parts, sizeof *sets);
    hwloc_distrib(t, &root, 1, sets, (unsigned)parts, INT_MAX, 0);
    hwloc_bitmap_t mine = hwloc_bitmap_dup(sets[k]);
    /* hwloc_distrib gives one PU per part; widen to the whole cores of the part
     * when there are more cores than parts */
    int cores = hwloc_get_nbobjs_inside_cpuset_by_type(t, of, HWLOC_OBJ_CORE);
    if (cores >= parts && parts > 0) {
        int per = cores / parts, first = k * per;
        hwloc_bitmap_zero(mine);
        for (int i = first; i < first + per; i++) {
            hwloc_obj_t c = hwloc_get_obj_inside_cpuset_by_type(t, of, HWLOC_OBJ_CORE, (unsigned)i);
            if (c) hwloc_bitmap_or(mine, mine, c->cpuset);
        }
    }
    hwloc_bitmap_and(mine, mine, of);
    if (hwloc_bitmap_iszero(mine)) hwloc_bitmap_copy(mine, sets[k]);
    hw_to_set(mine, set);
    hwloc_bitmap_free(mine);
    for (int i = 0; i < parts; i++) hwloc_bitmap_free(sets[i]);
    free(sets);
}

static int auto_set(const char *const *gpus, int n_gpus, dmz_binding *b, cpu_set_t *set) {
    char why[DMZ_CTR_REASON_LEN];
    if (!dmz_counters_enabled("hwloc", why, sizeof why)) {
        snprintf(b->reason, sizeof b->reason, "auto needs hwloc: %.150s", why);
        return 0;
    }
    hwloc_topology_t t = dmz_hwloc_topology(why, sizeof why);
    if (!t) {
        snprintf(b->reason, sizeof b->reason, "hwloc: %.180s", why);
        return 0;
    }
    hwloc_const_bitmap_t all = hwloc_topology_get_allowed_cpuset(t);
    if (n_gpus > 0) {
        const char *bus = gpus[b->local_rank % n_gpus];
        hwloc_const_bitmap_t near = gpu_cpuset(t, bus);
        if (!near) {
            snprintf(b->reason, sizeof b->reason, "hwloc does not see GPU %.40s on PCI; spread over the cores instead",
                     bus ? bus : "?");
        } else {
            int sharing = 0, me = 0; /* local ranks whose GPU sits at the same place */
            for (int r = 0; r < b->local_size; r++) {
                hwloc_const_bitmap_t o = gpu_cpuset(t, gpus[r % n_gpus]);
                if (o && hwloc_bitmap_isequal(o, near)) {
                    if (r == b->local_rank) me = sharing;
                    sharing++;
                }
            }
            hwloc_bitmap_t mine = hwloc_bitmap_alloc();
            hwloc_bitmap_and(mine, near, all);
            share_of(t, mine, sharing > 0 ? sharing : 1, me, set);
            hwloc_bitmap_free(mine);
            char list[128];
            set_to_list(set, list, sizeof list);
            snprintf(b->how, sizeof b->how, "auto: near GPU %.40s (its CPUs; part %d of %d local ranks there)", bus,
                     me + 1, sharing);
            return 1;
        }
    }
    share_of(t, all, b->local_size, b->local_rank, set);
    snprintf(b->how, sizeof b->how, "auto: local rank %d of %d spread over %d package%s, %d cores", b->local_rank,
             b->local_size, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE),
             hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE) == 1 ? "" : "s",
             hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE));
    return 1;
}
#else
static int auto_set(const char *const *gpus, int n_gpus, dmz_binding *b, cpu_set_t *set) {
    (void)gpus, (void)n_gpus, (void)set;
    char why[DMZ_CTR_REASON_LEN];
    dmz_counters_enabled("hwloc", why, sizeof why);
    snprintf(b->reason, sizeof b->reason, "auto needs hwloc: %.150s", why);
    return 0;
}
#endif

int dmz_bind_apply(const char *spec, const char *const *gpus, int n_gpus, int threads, dmz_binding *b, char *err) {
    memset(b, 0, sizeof *b);
    dmz_local_rank(&b->local_rank, &b->local_size);
    if (!spec) spec = "none";
    int rc = dmz_bind_check_cpus(spec, err);
    if (rc) return rc;
    cpu_set_t set;
    CPU_ZERO(&set);
    int apply = 0;
    if (strcmp(spec, "none") == 0) {
        snprintf(b->mode, sizeof b->mode, "none");
        snprintf(b->how, sizeof b->how, "none: as the launcher left it");
    } else if (strcmp(spec, "auto") == 0) {
        snprintf(b->mode, sizeof b->mode, "auto");
        apply = auto_set(gpus, n_gpus, b, &set);
        if (!apply) snprintf(b->how, sizeof b->how, "auto: not bound (%.150s)", b->reason);
    } else {
        static int ids[MAX_CPUS];
        int n = parse_list(spec, ids, MAX_CPUS, err);
        for (int i = 0; i < n; i++) CPU_SET(ids[i], &set);
        snprintf(b->mode, sizeof b->mode, "list");
        snprintf(b->how, sizeof b->how, "list %.150s", spec);
        apply = 1;
    }
    if (apply && (rc = bind_to(&set, threads, err))) return rc;
    if (apply) set_to_list(&set, b->cpuset, sizeof b->cpuset);
    else dmz_current_cpuset(b->cpuset, sizeof b->cpuset);
    cpu_set_t now;
    CPU_ZERO(&now);
    if (!apply) sched_getaffinity(0, sizeof now, &now);
    b->pus = CPU_COUNT(apply ? &set : &now);
    if (apply && threads > b->pus) {
        size_t l = strlen(b->how);
        snprintf(b->how + l, sizeof b->how - l, "; %d threads on %d PU%s", threads, b->pus, b->pus == 1 ? "" : "s");
    }
    return DMZ_OK;
}

cJSON *dmz_binding_json(const dmz_binding *b) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mode", b->mode);
    cJSON_AddStringToObject(o, "cpuset", b->cpuset);
    cJSON_AddNumberToObject(o, "pus", b->pus);
    cJSON_AddNumberToObject(o, "local_rank", b->local_rank);
    cJSON_AddNumberToObject(o, "local_size", b->local_size);
    cJSON_AddStringToObject(o, "how", b->how);
    if (b->reason[0]) cJSON_AddStringToObject(o, "reason", b->reason);
    return o;
}
