/* bench/devices.c — the device table and name matching (see devices.h). */
#include "bench/devices.h"

#include "bench/report_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void dmz_devices_path(char *out, size_t len) {
    const char *env = getenv("DMZBENCH_DEVICES");
    snprintf(out, len, "%s", env && *env ? env : DMZ_SOURCE_DIR "/bench/devices.csv");
}

static const char *const required[] = {"name", "match", "compute_capability", "sms",
                                       "boost_mhz", "fp32_tflops", "memory_gbps",
                                       "memory_gb", "tdp_w", "source", NULL};
static const char *const numeric[] = {"sms", "boost_mhz", "fp32_tflops", "memory_gbps",
                                      "memory_gb", "tdp_w", NULL};

/* A figure every row needs to be positive: the projection divides by it. */
static int positive(const rpt_table *t, size_t r, const char *col, double *out, char *err) {
    int c = rpt_table_col(t, col);
    int rc = rpt_table_num(t, r, c, out, err);
    if (rc != DMZ_OK) return rc;
    if (!(*out > 0))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld, column %d (%s): '%s' must be a "
                          "positive number", t->path, t->line[r], c + 1, col, rpt_table_cell(t, r, c));
    return DMZ_OK;
}

static int load_row(const rpt_table *t, size_t r, dmz_device *d, char *err) {
    rpt_copy(d->name, sizeof d->name, rpt_table_cell(t, r, rpt_table_col(t, "name")));
    rpt_copy(d->match, sizeof d->match, rpt_table_cell(t, r, rpt_table_col(t, "match")));
    rpt_copy(d->cc, sizeof d->cc, rpt_table_cell(t, r, rpt_table_col(t, "compute_capability")));
    rpt_copy(d->source, sizeof d->source, rpt_table_cell(t, r, rpt_table_col(t, "source")));
    if (!d->name[0])
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: line %ld, column %d (name): empty", t->path,
                          t->line[r], rpt_table_col(t, "name") + 1);
    double sms;
    int rc = positive(t, r, "sms", &sms, err);
    if (!rc) rc = positive(t, r, "boost_mhz", &d->boost_mhz, err);
    if (!rc) rc = positive(t, r, "fp32_tflops", &d->fp32_tflops, err);
    if (!rc) rc = positive(t, r, "memory_gbps", &d->memory_gbps, err);
    if (!rc) rc = positive(t, r, "memory_gb", &d->memory_gb, err);
    if (!rc) rc = positive(t, r, "tdp_w", &d->tdp_w, err);
    d->sms = (int)sms;
    return rc;
}

int dmz_devices_load(dmz_device_table *t, const char *path, char *err) {
    memset(t, 0, sizeof *t);
    if (path) rpt_copy(t->path, sizeof t->path, path);
    else dmz_devices_path(t->path, sizeof t->path);
    rpt_table csv;
    int rc = rpt_table_read(t->path, &csv, err);
    if (rc != DMZ_OK) return dmz_errorf(err, rc, "%s (the device table; DMZBENCH_DEVICES overrides it)", err);
    rc = rpt_table_require(&csv, required, err);
    if (!rc) rc = rpt_table_check_numeric(&csv, numeric, err);
    if (!rc && csv.nrows == 0) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "%s: no rows after the header", t->path);
    if (!rc && !(t->rows = calloc(csv.nrows, sizeof *t->rows)))
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", t->path);
    for (size_t r = 0; !rc && r < csv.nrows; r++, t->n++) rc = load_row(&csv, r, &t->rows[r], err);
    rpt_table_free(&csv);
    if (rc) dmz_devices_free(t);
    return rc;
}

void dmz_devices_free(dmz_device_table *t) {
    free(t->rows);
    t->rows = NULL;
    t->n = 0;
}

static bool vendor_word(const char *w, size_t n) {
    static const char *const words[] = {"nvidia", "geforce", "tesla", "quadro", NULL};
    for (int i = 0; words[i]; i++)
        if (strlen(words[i]) == n && strncmp(w, words[i], n) == 0) return true;
    return false;
}

void dmz_devices_normalise(const char *name, char *out, size_t len) {
    size_t used = 0;
    if (len == 0) return;
    out[0] = '\0';
    for (const char *p = name ? name : ""; *p;) {
        char word[64];
        size_t n = 0;
        while (*p && !isalnum((unsigned char)*p)) p++;
        for (; *p && isalnum((unsigned char)*p); p++)
            if (n + 1 < sizeof word) word[n++] = (char)tolower((unsigned char)*p);
        word[n] = '\0';
        if (n == 0 || vendor_word(word, n)) continue;
        if (used + n + 2 > len) break;
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", word);
    }
}

/* Does the normalised name equal the row's name or one of its match entries? */
static bool row_means(const dmz_device *d, const char *norm) {
    char cand[256];
    dmz_devices_normalise(d->name, cand, sizeof cand);
    if (norm[0] && strcmp(cand, norm) == 0) return true;
    for (const char *p = d->match; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        char entry[256];
        snprintf(entry, sizeof entry, "%.*s", (int)(n < 255 ? n : 255), p);
        dmz_devices_normalise(entry, cand, sizeof cand);
        if (norm[0] && strcmp(cand, norm) == 0) return true;
        p += n + (bar != NULL);
    }
    return false;
}

const dmz_device *dmz_devices_match(const dmz_device_table *t, const char *gpu_name) {
    char norm[256];
    dmz_devices_normalise(gpu_name, norm, sizeof norm);
    for (int i = 0; i < t->n; i++)
        if (row_means(&t->rows[i], norm)) return &t->rows[i];
    return NULL;
}

const dmz_device *dmz_devices_find(const dmz_device_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcasecmp(t->rows[i].name, name) == 0) return &t->rows[i];
    return dmz_devices_match(t, name);
}

void dmz_devices_list(const dmz_device_table *t, char *out, size_t len) {
    size_t used = 0;
    if (len) out[0] = '\0';
    for (int i = 0; i < t->n && used + 1 < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", t->rows[i].name);
}

cJSON *dmz_devices_meta_match(const cJSON *gpus) {
    char text[600];
    const cJSON *first = cJSON_IsArray(gpus) ? cJSON_GetArrayItem(gpus, 0) : NULL;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(first, "name");
    if (!cJSON_IsString(name) || !name->valuestring) {
        const char *why = cJSON_IsString(gpus) ? gpus->valuestring : "no device listed";
        snprintf(text, sizeof text, "unmatched: no GPU (%.500s)", why ? why : "?");
        return cJSON_CreateString(text);
    }
    dmz_device_table t;
    char err[DMZ_ERR_LEN];
    if (dmz_devices_load(&t, NULL, err) != DMZ_OK) {
        snprintf(text, sizeof text, "unmatched: %.200s (device table: %.300s)", name->valuestring, err);
        return cJSON_CreateString(text);
    }
    const dmz_device *d = dmz_devices_match(&t, name->valuestring);
    if (d) snprintf(text, sizeof text, "%s", d->name);
    else snprintf(text, sizeof text, "unmatched: %.500s", name->valuestring);
    dmz_devices_free(&t);
    return cJSON_CreateString(text);
}
