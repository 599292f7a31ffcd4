/* datasets/fetch_sources.c — the manifest of download sources (sources.ini,
 * parsed with inih; the format is described at the top of that file). */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif

enum { MAX_MANIFEST_BYTES = 1 << 20, INI_LINE_MAX = 196 /* inih r55: INI_MAX_LINE 200 less CR, LF, NUL, one spare */ };

typedef struct parse_state {
    dmz_manifest *m;
    char msg[256]; /* the first problem; inih gives its line */
} parse_state;

const char *dmz_manifest_path(const char *explicit_path) {
    const char *env = getenv("DMZBENCH_SOURCES");
    if (explicit_path && *explicit_path) return explicit_path;
    if (env && *env) return env;
    return DMZ_SOURCE_DIR "/datasets/sources.ini";
}

bool dmz_kaggle_userpwd(char *out, size_t len) {
    const char *user = getenv("KAGGLE_USERNAME"), *key = getenv("KAGGLE_KEY");
    if (!user || !*user || !key || !*key) return false;
    return (size_t)snprintf(out, len, "%s:%s", user, key) < len;
}

int dmz_source_final_names(const dmz_source *src, const char *names[], int max) {
    int n = 0;
    if (src->nmembers > 0) {
        for (int i = 0; i < src->nmembers && n < max; i++) {
            const char *slash = strrchr(src->members[i], '/');
            names[n++] = slash ? slash + 1 : src->members[i];
        }
        return n;
    }
    for (int i = 0; i < src->nfiles && n < max; i++) names[n++] = src->files[i].name;
    return n;
}

__attribute__((format(printf, 2, 3))) static int fail(parse_state *ps, const char *fmt, ...) {
    if (!ps->msg[0]) {  /* keep the first problem: inih reports the first bad line */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->msg, sizeof ps->msg, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static dmz_source *source_for(parse_state *ps, const char *section) {
    dmz_manifest *m = ps->m;
    const char *space = strchr(section, ' ');
    if (!space || space == section || !space[1] || strchr(space + 1, ' ')) {
        fail(ps, "section [%s] must be named [DATASET SOURCE]", section);
        return NULL;
    }
    int dlen = (int)(space - section);
    for (int i = 0; i < m->nsources; i++) {
        dmz_source *s = &m->sources[i];
        if ((int)strlen(s->dataset) == dlen && strncmp(s->dataset, section, dlen) == 0 &&
            strcmp(s->label, space + 1) == 0)
            return s;
    }
    if (m->nsources == DMZ_MANIFEST_MAX_SOURCES) {
        fail(ps, "more than %d sources", DMZ_MANIFEST_MAX_SOURCES);
        return NULL;
    }
    dmz_source *s = &m->sources[m->nsources++];
    snprintf(s->dataset, sizeof s->dataset, "%.*s", dlen, section);
    snprintf(s->label, sizeof s->label, "%s", space + 1);
    return s;
}

static int add_members(parse_state *ps, dmz_source *s, const char *value) {
    char copy[DMZ_URL_LEN];
    snprintf(copy, sizeof copy, "%s", value);
    for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (s->nmembers == DMZ_SOURCE_MAX_MEMBERS) return fail(ps, "too many members (max %d)", DMZ_SOURCE_MAX_MEMBERS);
        snprintf(s->members[s->nmembers++], DMZ_NAME_LEN, "%s", tok);
    }
    return 1;
}

static int set_file_key(parse_state *ps, dmz_source *s, const char *key, const char *value) {
    if (s->nfiles == 0) return fail(ps, "'%s' before the first url of [%s %s]", key, s->dataset, s->label);
    dmz_source_file *f = &s->files[s->nfiles - 1];
    if (strcmp(key, "name") == 0) {
        if (strchr(value, '/') || !strcmp(value, ".") || !strcmp(value, ".."))
            return fail(ps, "name '%s' must be a plain file name", value);
        snprintf(f->name, sizeof f->name, "%s", value);
    } else if (strcmp(key, "md5") == 0) {
        if (!dmz_is_hex(value, 32)) return fail(ps, "md5 '%s' is not 32 hex digits", value);
        snprintf(f->md5, sizeof f->md5, "%s", value);
    } else if (strcmp(key, "sha256") == 0) {
        if (!dmz_is_hex(value, 64)) return fail(ps, "sha256 '%s' is not 64 hex digits", value);
        snprintf(f->sha256, sizeof f->sha256, "%s", value);
    } else {
        char *end = NULL;
        f->size = strtod(value, &end);
        if (end == value || *end || f->size < 0) return fail(ps, "size '%s' is not a byte count", value);
    }
    return 1;
}

static int on_key(void *user, const char *section, const char *key, const char *value) {
    parse_state *ps = user;
    dmz_source *s = source_for(ps, section);
    if (!s) return 0;
    if (strcmp(key, "url") == 0) {
        if (s->nfiles == DMZ_SOURCE_MAX_FILES) return fail(ps, "more than %d files in [%s]", DMZ_SOURCE_MAX_FILES, section);
        if (strlen(value) >= DMZ_URL_LEN) return fail(ps, "url too long in [%s]", section);
        dmz_source_file *f = &s->files[s->nfiles++];
        snprintf(f->url, sizeof f->url, "%s", value);
        dmz_url_basename(value, f->name, sizeof f->name);
        return 1;
    }
    if (!strcmp(key, "name") || !strcmp(key, "md5") || !strcmp(key, "sha256") || !strcmp(key, "size"))
        return set_file_key(ps, s, key, value);
    if (strcmp(key, "members") == 0) return add_members(ps, s, value);
    if (strcmp(key, "auth") == 0) {
        if (*value && strcmp(value, "kaggle") != 0) return fail(ps, "auth '%s' unknown (kaggle or empty)", value);
        snprintf(s->auth, sizeof s->auth, "%s", value);
        return 1;
    }
    if (strcmp(key, "format") == 0) {
        if (strcmp(value, "zip") && strcmp(value, "gz") && strcmp(value, "csv"))
            return fail(ps, "format '%s' unknown (zip, gz or csv)", value);
        snprintf(s->format, sizeof s->format, "%s", value);
        return 1;
    }
    return fail(ps, "unknown key '%s' in [%s]", key, section);
}

static int read_manifest(const char *path, char **text, char *err) {
    char *buf;
    char why[DMZ_ERR_LEN];
    int rc = dmz_read_file(path, MAX_MANIFEST_BYTES, &buf, NULL, why);
    if (rc) return dmz_errorf(err, rc, "the sources manifest %s", why);
    int line = 1;
    for (const char *p = buf; *p; line++) {
        size_t len = strcspn(p, "\n");
        p += len + (p[len] == '\n');
        if (len > INI_LINE_MAX) {  /* inih would silently cut it in two */
            free(buf);
            return dmz_errorf(err, DMZ_EXIT_USAGE, "%s:%d: line longer than %d characters", path, line, INI_LINE_MAX);
        }
    }
    *text = buf;
    return DMZ_OK;
}

static int check_sources(const dmz_manifest *m, char *err) {
    for (int i = 0; i < m->nsources; i++) {
        const dmz_source *s = &m->sources[i];
        if (s->nfiles == 0)
            return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: [%s %s] has no url", m->path, s->dataset, s->label);
        if (strcmp(s->format, "zip") == 0 && s->nmembers == 0)
            return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: [%s %s] is a zip but lists no members", m->path,
                              s->dataset, s->label);
    }
    return DMZ_OK;
}

int dmz_manifest_load(const char *path, dmz_manifest *m, char *err) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    char *text = NULL;
    int rc = read_manifest(path, &text, err);
    if (rc != DMZ_OK) return rc;
    parse_state ps = {.m = m};
    int line = ini_parse_string(text, on_key, &ps);
    free(text);
    if (line != 0)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s:%d: %s", path, line, ps.msg[0] ? ps.msg : "syntax error");
    return check_sources(m, err);
}
