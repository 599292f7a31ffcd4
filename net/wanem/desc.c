/* The link description (see wanem.h): parsing, checks, names. */
#include "wanem.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"

void dmz_wan_desc_init(dmz_wan_desc *d) {
    memset(d, 0, sizeof *d);
    snprintf(d->prefix, sizeof d->prefix, "dmz");
    snprintf(d->net, sizeof d->net, "10.213");
    d->seed = 1;
    d->mtu = 9000;
    d->queue_bytes = (size_t)64 << 20;
}

/* A number then a unit from the table (scale per unit); "" as unit only when allowed. */
static int parse_unit(const char *s, const char *const *units, const double *scale, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v)) return -1;
    for (int i = 0; units[i]; i++)
        if (strcasecmp(end, units[i]) == 0) {
            *out = v * scale[i];
            return 0;
        }
    return -1;
}

int dmz_wan_parse_time(const char *s, double *out_s) {
    static const char *const u[] = {"us", "ms", "s", NULL};
    static const double k[] = {1e-6, 1e-3, 1};
    return parse_unit(s, u, k, out_s);
}

int dmz_wan_parse_rate(const char *s, double *out_bps) {
    static const char *const u[] = {"bit", "kbit", "mbit", "gbit", "tbit", NULL};
    static const double k[] = {1, 1e3, 1e6, 1e9, 1e12};
    return parse_unit(s, u, k, out_bps);
}

static int site_index(dmz_wan_desc *d, const char *name, bool add) {
    for (int i = 0; i < d->n_sites; i++)
        if (strcmp(d->sites[i], name) == 0) return i;
    if (!add || d->n_sites == DMZ_WAN_MAX_SITES) return -1;
    snprintf(d->sites[d->n_sites], DMZ_WAN_NAME_LEN, "%s", name);
    return d->n_sites++;
}

static bool good_site_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= DMZ_WAN_NAME_LEN - 1 || strcmp(s, "hub") == 0 || strcmp(s, "br") == 0) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return false;
    return true;
}

static int bad(char *err, const char *where, const char *tok, const char *why) {
    return dmz_errorf(err, DMZ_EXIT_USAGE, "%s%sbad link description token '%s': %s", where ? where : "",
                      where ? ": " : "", tok, why);
}

static int parse_sites(dmz_wan_desc *d, char *rest, const char *where, char *err) {
    char *save = NULL;
    for (char *t = strtok_r(rest, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
        if (!good_site_name(t)) return bad(err, where, t, "a site name is letters, digits and '_' (at most 22; not hub or br)");
        if (site_index(d, t, false) >= 0) return bad(err, where, t, "site named twice");
        if (site_index(d, t, true) < 0) return bad(err, where, t, "more than 8 sites");
    }
    d->sites_declared = true;
    return DMZ_OK;
}

static int parse_link_key(dmz_wan_link *l, char *tok, const char *where, char *err) {
    char *eq = strchr(tok, '=');
    if (!eq) return bad(err, where, tok, "expected key=value (rtt=, delay=, jitter=, rate=, loss=)");
    *eq = '\0';
    const char *key = tok, *val = eq + 1;
    char full[256];
    snprintf(full, sizeof full, "%s=%s", key, val);
    double v;
    if (strcmp(key, "rtt") == 0 || strcmp(key, "delay") == 0 || strcmp(key, "jitter") == 0) {
        if (dmz_wan_parse_time(val, &v)) return bad(err, where, full, "a time is a number with us, ms or s");
        if (v < 0) return bad(err, where, full, "a negative delay");
        if (v > 10) return bad(err, where, full, "more than 10 s");
        if (strcmp(key, "rtt") == 0) l->rtt_s = v;
        else if (strcmp(key, "delay") == 0) l->rtt_s = 2 * v;
        else l->jitter_s = v;
    } else if (strcmp(key, "rate") == 0) {
        if (strtod(val, NULL) <= 0) return bad(err, where, full, "a rate must be above 0");
        if (dmz_wan_parse_rate(val, &v)) return bad(err, where, full, "a rate is a number with bit, kbit, mbit, gbit or tbit");
        if (v <= 0) return bad(err, where, full, "a rate must be above 0");
        if (v < 8000) return bad(err, where, full, "below 8 kbit/s, the shaper's smallest");
        l->rate_bps = v;
    } else if (strcmp(key, "loss") == 0) {
        char num[64];
        snprintf(num, sizeof num, "%s", val);
        size_t n = strlen(num);
        if (n && num[n - 1] == '%') num[n - 1] = '\0';
        char *end;
        errno = 0;
        v = strtod(num, &end);
        if (errno || end == num || *end || !isfinite(v)) return bad(err, where, full, "loss is a percentage, e.g. 0.01%");
        if (v < 0 || v > 100) return bad(err, where, full, "loss must be in 0..100%");
        l->loss = v / 100;
    } else {
        return bad(err, where, full, "unknown key (rtt=, delay=, jitter=, rate=, loss=)");
    }
    return DMZ_OK;
}

static int parse_link(dmz_wan_desc *d, char *first, char *rest, const char *where, char *err) {
    char pair[1024];
    snprintf(pair, sizeof pair, "%s", first);
    char *dash = strchr(first, '-');
    if (!dash || strchr(dash + 1, '-')) return bad(err, where, pair, "a link is SITE-SITE (site names without '-')");
    *dash = '\0';
    const char *an = first, *bn = dash + 1;
    const char *names[2] = {an, bn};
    int idx[2];
    for (int k = 0; k < 2; k++) {
        if (!good_site_name(names[k])) return bad(err, where, names[k], "a site name is letters, digits and '_' (not hub or br)");
        idx[k] = site_index(d, names[k], !d->sites_declared);
        if (idx[k] < 0) {
            char why[1200];
            snprintf(why, sizeof why, d->sites_declared ? "unknown site in '%s' (not in the sites list)"
                                                        : "more than 8 sites in '%s'", pair);
            return bad(err, where, names[k], why);
        }
    }
    if (idx[0] == idx[1]) return bad(err, where, pair, "a link joins two different sites");
    if (dmz_wan_find_link(d, idx[0], idx[1])) return bad(err, where, pair, "this link is described twice");
    dmz_wan_link l = {.a = idx[0], .b = idx[1], .rate_bps = 10e9};
    char *save = NULL;
    for (char *t = strtok_r(rest, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        int rc = parse_link_key(&l, t, where, err);
        if (rc) return rc;
    }
    if (l.jitter_s > l.rtt_s / 2) {
        char tok[64];
        snprintf(tok, sizeof tok, "jitter=%gms", l.jitter_s * 1e3);
        return bad(err, where, tok, "jitter larger than the one-way delay (rtt/2)");
    }
    d->links[d->n_links++] = l;
    return DMZ_OK;
}

int dmz_wan_parse_line(dmz_wan_desc *d, const char *line, const char *where, char *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", line);
    char *hash = strchr(buf, '#');
    if (hash) *hash = '\0';
    char *p = buf;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) return DMZ_OK;
    char *first = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    if (*p) *p++ = '\0';
    char *rest = p;
    size_t rl = strlen(rest);
    while (rl && isspace((unsigned char)rest[rl - 1])) rest[--rl] = '\0';
    if (strcmp(first, "sites") == 0) return parse_sites(d, rest, where, err);
    if (strcmp(first, "net") == 0) {
        if (strlen(rest) >= sizeof d->net) return bad(err, where, rest, "expected two octets, e.g. 10.213");
        snprintf(d->net, sizeof d->net, "%s", rest);
        return DMZ_OK;
    }
    if (strcmp(first, "seed") == 0 || strcmp(first, "mtu") == 0 || strcmp(first, "queue") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(rest, &end, 10);
        bool mib = strcasecmp(end, "MiB") == 0;
        if (errno || end == rest || rest[0] == '-' || (*end && !mib)) return bad(err, where, rest, "expected a non-negative integer");
        if (strcmp(first, "seed") == 0) d->seed = v;
        else if (strcmp(first, "mtu") == 0) {
            if (v < 1280 || v > 65000) return bad(err, where, rest, "mtu must be in 1280..65000");
            d->mtu = (int)v;
        } else {
            if (mib) v <<= 20;
            if (v < (1u << 20) || v > (4ull << 30)) return bad(err, where, rest, "queue must be 1MiB..4096MiB");
            d->queue_bytes = (size_t)v;
        }
        return DMZ_OK;
    }
    if (d->n_links == DMZ_WAN_MAX_LINKS) return bad(err, where, first, "too many links");
    return parse_link(d, first, rest, where, err);
}

int dmz_wan_parse_file(dmz_wan_desc *d, const char *path, char *err) {
    char *text = NULL;
    int rc = dmz_read_file(path, 1 << 20, &text, NULL, err);
    if (rc) return rc;
    char *save = NULL;
    int lineno = 0;
    /* strtok_r skips empty lines, so line numbers come from counting newlines */
    for (char *p = text; p && *p && !rc;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        char where[1100];
        snprintf(where, sizeof where, "%s:%d", path, ++lineno);
        rc = dmz_wan_parse_line(d, p, where, err);
        p = nl ? nl + 1 : NULL;
    }
    (void)save;
    free(text);
    return rc;
}

const dmz_wan_link *dmz_wan_find_link(const dmz_wan_desc *d, int a, int b) {
    for (int i = 0; i < d->n_links; i++) {
        const dmz_wan_link *l = &d->links[i];
        if ((l->a == a && l->b == b) || (l->a == b && l->b == a)) return l;
    }
    return NULL;
}

int dmz_wan_desc_check(const dmz_wan_desc *d, char *err) {
    if (d->n_sites < 2) return dmz_errorf(err, DMZ_EXIT_USAGE, "a WAN needs at least 2 sites and a link (e.g. siteA-siteB rtt=1ms rate=10gbit)");
    for (int s = 0; s < d->n_sites; s++) {
        bool linked = false;
        for (int i = 0; i < d->n_links; i++) linked |= d->links[i].a == s || d->links[i].b == s;
        if (!linked) return dmz_errorf(err, DMZ_EXIT_USAGE, "bad link description token '%s': a site without a link", d->sites[s]);
        char ns[64];
        dmz_wan_netns(d, s, ns, sizeof ns);
        if (strlen(ns) > 31) return dmz_errorf(err, DMZ_EXIT_USAGE, "bad link description token '%s': name too long", ns);
    }
    if (!d->prefix[0] || strchr(d->prefix, '-') || strlen(d->prefix) > 8)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "bad prefix '%s': 1 to 8 letters or digits, no '-'", d->prefix);
    int o1, o2;
    char tail;
    if (sscanf(d->net, "%d.%d%c", &o1, &o2, &tail) != 2 || o1 < 1 || o1 > 254 || o2 < 0 || o2 > 255 || o1 == 127)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "bad --net '%s': the first two octets, e.g. 10.213", d->net);
    return DMZ_OK;
}

void dmz_wan_desc_format(const dmz_wan_desc *d, char *out, size_t len) {
    size_t k = 0;
    k += (size_t)snprintf(out + k, len - k, "sites");
    for (int s = 0; s < d->n_sites && k < len; s++) k += (size_t)snprintf(out + k, len - k, " %s", d->sites[s]);
    if (k < len) k += (size_t)snprintf(out + k, len - k, "\nnet %s\nseed %llu\nmtu %d\nqueue %zu\n", d->net, (unsigned long long)d->seed, d->mtu, d->queue_bytes);
    for (int i = 0; i < d->n_links && k < len; i++) {
        const dmz_wan_link *l = &d->links[i];
        k += (size_t)snprintf(out + k, len - k, "%s-%s rtt=%.9gms jitter=%.9gms rate=%.9gmbit loss=%.9g%%\n",
                              d->sites[l->a], d->sites[l->b], l->rtt_s * 1e3, l->jitter_s * 1e3, l->rate_bps / 1e6,
                              l->loss * 100);
    }
}

void dmz_wan_netns(const dmz_wan_desc *d, int site, char *out, size_t len) {
    snprintf(out, len, "%s-%s", d->prefix, d->sites[site]);
}

void dmz_wan_state_dir(const char *prefix, char *out, size_t len) {
    const char *base = getenv("DMZBENCH_WAN_RUN_DIR");
    snprintf(out, len, "%s/%s", base && *base ? base : "/run/dmzbench-wan", prefix);
}

void dmz_wan_data_ip(const dmz_wan_desc *d, int site, char *out, size_t len) {
    snprintf(out, len, "%s.1.%d", d->net, site + 1);
}

void dmz_wan_default_net(const char *prefix, char *out, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = prefix; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    snprintf(out, len, "10.%u", 200 + h % 50);
}
