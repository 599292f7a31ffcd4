/* counters/papi.c — PAPI counters around each phase (data load, and per step
 * data, forward, backward, update), on every OpenMP thread of the rank.
 *
 * Each OpenMP thread counts in its own event set, started once; a phase
 * boundary reads every thread's counters (one parallel region) and adds the
 * differences to the phase. PAPI is reached through dmz_papi_api, so tests
 * can put a fake in its place. Nothing here fails a run: a PAPI that cannot
 * count leaves the counts NAN and says why in PAPI's own words. */
#include "counters/counters.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

#ifdef DMZ_HAVE_PAPI
#include <papi.h>

static int real_init(void) {
    int v = PAPI_library_init(PAPI_VER_CURRENT);
    return v == PAPI_VER_CURRENT ? PAPI_OK : v < 0 ? v : PAPI_EINVAL;
}
static int real_thread_init(void) { return PAPI_thread_init(pthread_self); }
static const char *real_strerror(int code) {
    const char *s = PAPI_strerror(code);
    return s ? s : "unknown PAPI error";
}
/* The CPU component's own reason when PAPI disabled it (no PMU, perf_event_paranoid, ...). */
static const char *real_disabled_reason(void) {
    static char text[DMZ_CTR_REASON_LEN];
    for (int i = 0; i < PAPI_num_components(); i++) {
        const PAPI_component_info_t *c = PAPI_get_component_info(i);
        if (!c || strcmp(c->name, "perf_event") != 0) continue;
        if (!c->disabled) return NULL;
        snprintf(text, sizeof text, "PAPI component perf_event disabled: %.350s", c->disabled_reason);
        return text;
    }
    return "PAPI has no perf_event component (no CPU counters)";
}
static int real_create(int *set) {
    *set = PAPI_NULL;
    return PAPI_create_eventset(set);
}
static int real_add(int set, const char *name) { return PAPI_add_named_event(set, name); }
static int real_start(int set) { return PAPI_start(set); }
static int real_read(int set, long long *v) { return PAPI_read(set, v); }
static int real_stop(int set, long long *v) { return PAPI_stop(set, v); }
static int real_destroy(int set) {
    PAPI_cleanup_eventset(set);
    return PAPI_destroy_eventset(&set);
}
static const dmz_papi_api real_api = {"libpapi " /* version added at open */, real_init, real_thread_init,
                                      real_strerror, real_disabled_reason, real_create, real_add, real_start,
                                      real_read, real_stop, real_destroy};
#endif

enum { MAX_THREADS = 256 };

static struct {
    const dmz_papi_api *api;   /* installed by a test, else the real one */
    int counting, failed, failed_this_take;
    int threads, n;
    char names[DMZ_PAPI_MAX_EVENTS][DMZ_PAPI_EVENT_LEN];
    int sets[MAX_THREADS];
    long long start[MAX_THREADS][DMZ_PAPI_MAX_EVENTS];
    double acc[DMZ_NPHASES][DMZ_PAPI_MAX_EVENTS];
    int active_phase;          /* -1: none */
    char status[DMZ_CTR_REASON_LEN];
} P = {.active_phase = -1};

void dmz_papi_set_api(const dmz_papi_api *api) { P.api = api; }

static const dmz_papi_api *api_of(void) {
#ifdef DMZ_HAVE_PAPI
    return P.api ? P.api : &real_api;
#else
    return P.api;
#endif
}

int dmz_papi_parse(const char *events, char *err) {
    if (!events) return DMZ_OK;
    int n = 0;
    for (const char *p = events;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= DMZ_PAPI_EVENT_LEN || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:.=") < len)
            return dmz_errorf(err, DMZ_EXIT_USAGE,
                              "--papi-events: '%.*s' in '%s' is not an event name (a comma list such as %s)",
                              (int)(len < 60 ? len : 60), p, events, DMZ_PAPI_DEFAULT_EVENTS);
        if (++n > DMZ_PAPI_MAX_EVENTS)
            return dmz_errorf(err, DMZ_EXIT_USAGE, "--papi-events: at most %d events", DMZ_PAPI_MAX_EVENTS);
        if (!p[len]) break;
        p += len + 1;
    }
    return DMZ_OK;
}

static void set_unavailable(const char *fmt, const char *a, const char *b) {
    char text[DMZ_CTR_REASON_LEN];
    snprintf(text, sizeof text, fmt, a, b);
    snprintf(P.status, sizeof P.status, "unavailable: %.380s", text);
    P.counting = 0;
}

/* Every thread: its own event set with the chosen events, started. */
static int start_threads(const dmz_papi_api *api, char *why, size_t len) {
    int bad = 0, code = 0;
    P.threads = P.threads > MAX_THREADS ? MAX_THREADS : P.threads;
#pragma omp parallel num_threads(P.threads)
    {
        int t = omp_get_thread_num(), rc = 0, set = -1;
        rc = api->create_eventset(&set); /* PAPI registers the thread at its first call */
        for (int e = 0; !rc && e < P.n; e++) rc = api->add_named_event(set, P.names[e]);
        if (!rc) rc = api->start(set);
        if (!rc) rc = api->read(set, P.start[t]);
        P.sets[t] = set;
#pragma omp critical
        if (rc && !bad) bad = 1, code = rc;
    }
    if (bad) snprintf(why, len, "starting the event set on every thread: %s", api->strerror(code));
    return !bad;
}

int dmz_papi_open(const char *events, int threads) {
    dmz_papi_close();
    memset(P.acc, 0, sizeof P.acc);
    P.failed = P.failed_this_take = 0;
    P.threads = threads > 0 ? threads : 1;
    char why[DMZ_CTR_REASON_LEN];
    if (!dmz_counters_enabled("papi", why, sizeof why) && !P.api) {
        set_unavailable("%s%s", why, "");
        return 0;
    }
    const dmz_papi_api *api = api_of();
    if (!api) {
        set_unavailable("%s%s", why, "");
        return 0;
    }
    int rc = api->library_init();
    if (rc) {
        set_unavailable("PAPI_library_init: %s%s", api->strerror(rc), "");
        return 0;
    }
    if (api->thread_init && (rc = api->thread_init())) {
        set_unavailable("PAPI_thread_init: %s%s", api->strerror(rc), "");
        return 0;
    }
    const char *disabled = api->disabled_reason ? api->disabled_reason() : NULL;
    if (disabled) {
        set_unavailable("%s%s", disabled, "");
        return 0;
    }
    /* which of the events this machine can count, on the calling thread */
    const char *list = events ? events : DMZ_PAPI_DEFAULT_EVENTS;
    char missing[DMZ_CTR_REASON_LEN] = "";
    int probe = -1;
    if ((rc = api->create_eventset(&probe))) {
        set_unavailable("PAPI_create_eventset: %s%s", api->strerror(rc), "");
        return 0;
    }
    P.n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char name[DMZ_PAPI_EVENT_LEN];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        if ((rc = api->add_named_event(probe, name)) == 0 && P.n < DMZ_PAPI_MAX_EVENTS) {
            snprintf(P.names[P.n++], DMZ_PAPI_EVENT_LEN, "%s", name);
        } else if (rc) {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s: %s", l ? "; " : "", name, api->strerror(rc));
        }
        p += len;
        p += *p == ',';
    }
    api->destroy(probe);
    if (P.n == 0) {
        set_unavailable("no event can be counted here (PAPI_add_named_event: %s)%s", missing, "");
        return 0;
    }
    if (!start_threads(api, why, sizeof why)) {
        set_unavailable("%s%s", why, "");
        return 0;
    }
    char names[DMZ_CTR_REASON_LEN] = "";
    for (int e = 0; e < P.n; e++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", e ? "," : "", P.names[e]);
    }
    snprintf(P.status, sizeof P.status, "counting %s on %d thread%s (%s)%s%s%s", names, P.threads,
             P.threads == 1 ? "" : "s", api->name, missing[0] ? "; not available: " : "", missing,
             missing[0] ? "" : "");
    P.counting = 1;
    return 1;
}

/* Reads every thread; on the first failure counting stops for good. */
static int read_all(long long (*now)[DMZ_PAPI_MAX_EVENTS], const char *where) {
    const dmz_papi_api *api = api_of();
    int bad = 0, code = 0;
#pragma omp parallel num_threads(P.threads)
    {
        int t = omp_get_thread_num();
        int rc = api->read(P.sets[t], now[t]);
#pragma omp critical
        if (rc && !bad) bad = 1, code = rc;
    }
    if (bad) {
        char text[200];
        snprintf(text, sizeof text, "PAPI_read failed at the %s phase boundary: %s", where, api->strerror(code));
        snprintf(P.status, sizeof P.status, "unavailable: counting stopped mid-run: %s", text);
        P.counting = 0, P.failed = P.failed_this_take = 1;
    }
    return !bad;
}

void dmz_phase_begin(int phase) {
    if (!P.counting || phase < 0 || phase >= DMZ_NPHASES) return;
    static long long now[MAX_THREADS][DMZ_PAPI_MAX_EVENTS];
    if (!read_all(now, dmz_phase_names[phase])) return;
    memcpy(P.start, now, sizeof(long long) * DMZ_PAPI_MAX_EVENTS * (size_t)P.threads);
    P.active_phase = phase;
}

void dmz_phase_end(int phase) {
    if (!P.counting || phase != P.active_phase) return;
    static long long now[MAX_THREADS][DMZ_PAPI_MAX_EVENTS];
    P.active_phase = -1;
    if (!read_all(now, dmz_phase_names[phase])) return;
    for (int t = 0; t < P.threads; t++)
        for (int e = 0; e < P.n; e++) P.acc[phase][e] += (double)(now[t][e] - P.start[t][e]);
}

void dmz_papi_take(dmz_papi_counts *out) {
    memset(out, 0, sizeof *out);
    out->n_events = P.n;
    for (int e = 0; e < P.n; e++) snprintf(out->events[e], DMZ_PAPI_EVENT_LEN, "%s", P.names[e]);
    int ok = P.counting && !P.failed_this_take;
    for (int p = 0; p < DMZ_NPHASES; p++)
        for (int e = 0; e < DMZ_PAPI_MAX_EVENTS; e++) out->v[p][e] = ok && e < P.n ? P.acc[p][e] : NAN;
    snprintf(out->status, sizeof out->status, "%s", P.status);
    memset(P.acc, 0, sizeof P.acc);
    P.failed_this_take = 0;
}

const char *dmz_papi_status(void) {
    return P.status[0] ? P.status : "unavailable: PAPI was not opened in this process";
}

cJSON *dmz_papi_json(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", dmz_papi_status());
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    for (int e = 0; e < P.n && (P.failed || strncmp(P.status, "counting", 8) == 0); e++) cJSON_AddItemToArray(ev, cJSON_CreateString(P.names[e]));
    cJSON_AddNumberToObject(o, "threads", P.threads);
#ifdef DMZ_HAVE_PAPI
    char ver[48];
    snprintf(ver, sizeof ver, "%d.%d.%d", PAPI_VERSION_MAJOR(PAPI_VERSION), PAPI_VERSION_MINOR(PAPI_VERSION),
             PAPI_VERSION_REVISION(PAPI_VERSION));
    cJSON_AddStringToObject(o, "built_with", ver);
#endif
    return o;
}

void dmz_papi_close(void) {
    const dmz_papi_api *api = api_of();
    if (P.counting && api) {
#pragma omp parallel num_threads(P.threads)
        {
            int t = omp_get_thread_num();
            long long v[DMZ_PAPI_MAX_EVENTS];
            api->stop(P.sets[t], v);
            api->destroy(P.sets[t]);
        }
    }
    P.counting = 0;
    P.active_phase = -1;
}
