/* datasets/fetch_dataset.c — `dmzbench fetch`: from the manifest (or --url) to
 * the directory the loader reads, <data_dir>/<dataset>/, with FETCHED.json
 * beside the files. Downloads land in <data_dir>/downloads/ first; a zip stays
 * there (a cache: extraction can be redone without the network), other files
 * are moved on.
 *
 * Nothing is installed unverified: new files go to a staging copy of the set,
 * <data_dir>/.incoming-<dataset>.<pid>/<dataset>/ (the files already there
 * linked in), which is loaded strictly; only when it passes are the new files
 * renamed into <data_dir>/<dataset>/. A failure removes the staging copy and
 * leaves the set as it was. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dmz.h"
#include "datasets/datasets.h"
#include "datasets/fetch.h"
#include "datasets/fetch_internal.h"

#define NO_NETWORK_HINT                                                                     \
    "no network? the loader falls back to Fashion-MNIST from the Debian package "           \
    "dataset-fashion-mnist; or pass --data PATH"
#define MAX_NAMES 64

typedef struct fetch_ctx {
    const dmz_fetch_options *opt;
    const char *dataset;
    const dmz_manifest *manifest;
    char data_dir[4096];
    char downloads[4096]; /* <data_dir>/downloads */
    char final_dir[4096]; /* <data_dir>/<dataset> */
    char stage_root[4096]; /* <data_dir>/.incoming-<dataset>.<pid>, while staging */
    char set_dir[4096];   /* where new files go: <stage_root>/<dataset> while staging, else final_dir */
    int n_new;            /* files placed into set_dir by this attempt */
    char new_names[MAX_NAMES][DMZ_NAME_LEN];
    cJSON *record;        /* FETCHED.json as it will be written */
} fetch_ctx;

static int join(char *out, size_t len, const char *dir, const char *name, char *err) {
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s/%s: path too long", dir, name);
    return DMZ_OK;
}

static bool have_file(const char *dir, const char *name) {
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* ---------------------------------------------------------------- FETCHED.json */

/* parent.key as an object; anything else there is replaced (adding a second
 * "key" would write JSON whose first, stale member wins when read back). */
static cJSON *object_in(cJSON *parent, const char *key) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (cJSON_IsObject(o)) return o;
    cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
    return cJSON_AddObjectToObject(parent, key);
}

static cJSON *fresh_entry(cJSON *record, const char *group, const char *name) {
    cJSON *g = object_in(record, group);
    cJSON_DeleteItemFromObjectCaseSensitive(g, name);
    cJSON *e = cJSON_AddObjectToObject(g, name);
    char utc[32];
    dmz_utc_stamp(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ");
    cJSON_AddStringToObject(e, "utc", utc);
    return e;
}

static void record_download(fetch_ctx *c, const char *name, const char *url, const dmz_fetch_stats *st,
                            const char *md5) {
    cJSON *e = fresh_entry(c->record, "downloads", name);
    cJSON_AddStringToObject(e, "url", url);
    cJSON_AddNumberToObject(e, "bytes", st->bytes);
    cJSON_AddNumberToObject(e, "seconds", st->seconds);
    cJSON_AddNumberToObject(e, "mbytes_per_s", st->mbytes_per_s);
    cJSON_AddNumberToObject(e, "resumed_from", st->resumed_from);
    cJSON_AddNumberToObject(e, "retries", st->retries_used);
    cJSON_AddStringToObject(e, "sha256", st->sha256);
    if (md5) cJSON_AddStringToObject(e, "md5", md5);
}

void dmz_fetched_add_file(cJSON *record, const char *name, const char *from, double bytes, const char *sha256) {
    cJSON *e = fresh_entry(record, "files", name);
    cJSON_AddStringToObject(e, "from", from);
    cJSON_AddNumberToObject(e, "bytes", bytes);
    cJSON_AddStringToObject(e, "sha256", sha256);
}

static void record_file(fetch_ctx *c, const char *name, const char *from, double bytes, const char *sha256) {
    int seen = 0;
    for (int i = 0; i < c->n_new; i++) seen |= strcmp(c->new_names[i], name) == 0;
    if (!seen && c->n_new < MAX_NAMES) snprintf(c->new_names[c->n_new++], DMZ_NAME_LEN, "%.255s", name);
    dmz_fetched_add_file(c->record, name, from, bytes, sha256);
}

cJSON *dmz_fetched_load(const char *path) {
    char *text = NULL;
    cJSON *j = dmz_read_file(path, (size_t)1 << 20, &text, NULL, NULL) == DMZ_OK ? cJSON_Parse(text) : NULL;
    /* unreadable: start again, the files are the truth */
    free(text);
    return cJSON_IsObject(j) ? j : (cJSON_Delete(j), cJSON_CreateObject());
}

static int save_record(fetch_ctx *c, const char *source, char *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/FETCHED.json", c->final_dir);
    cJSON_DeleteItemFromObjectCaseSensitive(c->record, "dataset");
    cJSON_DeleteItemFromObjectCaseSensitive(c->record, "source");
    cJSON_AddStringToObject(c->record, "dataset", c->dataset);
    cJSON_AddStringToObject(c->record, "source", source);
    char *text = cJSON_Print(c->record);
    if (!text) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    dmz_clean_stale_tmp(c->final_dir, "FETCHED.json.tmp.", 60); /* a fetch killed mid-write */
    int rc = dmz_write_file_atomic(path, text, strlen(text), err);
    cJSON_free(text);
    if (rc == DMZ_OK) printf("fetch: %s ready in %s\n", c->dataset, c->final_dir);
    return rc;
}

/* ---------------------------------------------------------------- one file */

static void print_download(const char *name, const dmz_fetch_stats *st, const char *md5) {
    printf("  %-44s %12.0f bytes %8.2f s %9.2f MB/s  sha256 %s%s", name, st->bytes, st->seconds,
           st->mbytes_per_s, st->sha256, md5 ? "  md5 ok" : "");
    if (st->resumed_from > 0) printf("  (resumed at byte %.0f)", st->resumed_from);
    if (st->retries_used > 0) printf("  (%d retries)", st->retries_used);
    printf("\n");
}

static int add_hint(int rc, const dmz_fetch_stats *st, bool kaggle, char *err) {
    char msg[DMZ_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", err);
    if (dmz_curl_network_down(st->curl_code, st->http_status))
        snprintf(err, DMZ_ERR_LEN, "%.700s; " NO_NETWORK_HINT, msg);
    else if (kaggle && (st->http_status == 401 || st->http_status == 403))
        snprintf(err, DMZ_ERR_LEN, "%.900s (check KAGGLE_USERNAME and KAGGLE_KEY)", msg);
    return rc;
}

/* Downloads one file into downloads/, or reuses one a previous run left there. */
static int obtain(fetch_ctx *c, const dmz_source_file *f, const char *userpwd, const char *dl, char *err) {
    const char *md5 = f->md5[0] ? f->md5 : NULL;
    if (have_file(c->downloads, f->name)) {
        char sha[65], got_md5[33];
        if (dmz_hash_file(dl, sha, got_md5, err) != DMZ_OK) return DMZ_EXIT_FAIL;
        bool ok = (!f->sha256[0] || !strcasecmp(sha, f->sha256)) && (!md5 || !strcasecmp(got_md5, md5));
        if (ok) {
            printf("  %-44s reused from %s  sha256 %s\n", f->name, c->downloads, sha);
            return DMZ_OK;
        }
        unlink(dl);  /* a stale or damaged earlier download */
    }
    dmz_fetch_request req = {.url = f->url, .dest_path = dl, .expect_md5 = md5,
                             .expect_sha256 = f->sha256[0] ? f->sha256 : NULL, .userpwd = userpwd,
                             .quiet = c->opt->quiet};
    dmz_fetch_stats st;
    fflush(stdout);  /* before the progress bar on stderr */
    int rc = dmz_fetch_url(&req, &st, err);
    if (rc != DMZ_OK) return add_hint(rc, &st, userpwd != NULL, err);
    print_download(f->name, &st, md5);
    record_download(c, f->name, f->url, &st, md5);
    return DMZ_OK;
}

static int missing_member(const char *zip, const char *const want[], int nwant, const dmz_unzipped out[],
                          int n, char *err) {
    for (int w = 0; w < nwant; w++) {
        const char *slash = strrchr(want[w], '/');
        int found = 0;
        for (int i = 0; i < n; i++) found |= strcmp(out[i].name, slash ? slash + 1 : want[w]) == 0;
        if (!found) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: the archive lacks %s", zip, want[w]);
    }
    return DMZ_OK;
}

/* need_all: every wanted member must be there (a manifest's zip); otherwise
 * whichever are (a zip given with --url). */
static int unzip_into_set(fetch_ctx *c, const char *zip, const char *const want[], int nwant, bool need_all,
                          char *err) {
    dmz_unzipped out[MAX_NAMES];
    int n = 0;
    int rc = dmz_unzip(zip, want, nwant, c->set_dir, out, MAX_NAMES, &n, err);
    const char *slash = strrchr(zip, '/');
    for (int i = 0; i < n; i++) {
        printf("  -> %-41s %12.0f bytes  sha256 %s\n", out[i].name, out[i].bytes, out[i].sha256);
        record_file(c, out[i].name, slash ? slash + 1 : zip, out[i].bytes, out[i].sha256);
    }
    if (rc == DMZ_OK && need_all) rc = missing_member(zip, want, nwant, out, n, err);
    return rc;
}

static int move_into_set(fetch_ctx *c, const char *dl, const char *name, char *err) {
    char dest[4200], sha[65];
    struct stat st;
    if (join(dest, sizeof dest, c->set_dir, name, err) != DMZ_OK) return DMZ_EXIT_USAGE;
    if (rename(dl, dest) != 0)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot move to %s: %s", dl, dest, strerror(errno));
    if (dmz_hash_file(dest, sha, NULL, err) != DMZ_OK || stat(dest, &st) != 0) return DMZ_EXIT_FAIL;
    record_file(c, name, name, (double)st.st_size, sha);
    return DMZ_OK;
}

/* ---------------------------------------------------------------- staging */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* .incoming-* of fetches that were killed (their process is gone). */
static void remove_dead_stages(const char *data_dir) {
    DIR *d = opendir(data_dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (strncmp(e->d_name, ".incoming-", 10) != 0 || !dot || dot == e->d_name) continue;
        char *end;
        long pid = strtol(dot + 1, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || !(kill((pid_t)pid, 0) != 0 && errno == ESRCH)) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", data_dir, e->d_name);
        remove_tree(path);
    }
    closedir(d);
}

/* A staging copy of the set: the files it holds now, linked (hard, else symbolic). */
static int stage_begin(fetch_ctx *c, char *err) {
    c->n_new = 0;
    if ((size_t)snprintf(c->stage_root, sizeof c->stage_root, "%s/.incoming-%s.%ld", c->data_dir, c->dataset,
                         (long)getpid()) >= sizeof c->stage_root ||
        join(c->set_dir, sizeof c->set_dir, c->stage_root, c->dataset, err) != DMZ_OK)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s: path too long", c->data_dir);
    remove_tree(c->stage_root);
    int rc = dmz_mkdirs(c->set_dir, err);
    DIR *d = rc == DMZ_OK ? opendir(c->final_dir) : NULL;
    for (struct dirent *e; d && rc == DMZ_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "FETCHED.json") == 0 || !have_file(c->final_dir, e->d_name))
            continue;
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", c->final_dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", c->set_dir, e->d_name);
        char *abs = realpath(from, NULL);
        if (link(from, to) != 0 && (!abs || symlink(abs, to) != 0))
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot link into %s: %s", from, c->set_dir, strerror(errno));
        free(abs);
    }
    if (d) closedir(d);
    return rc;
}

static void stage_abort(fetch_ctx *c) {
    cJSON *files = cJSON_GetObjectItemCaseSensitive(c->record, "files");
    for (int i = 0; i < c->n_new; i++) cJSON_DeleteItemFromObjectCaseSensitive(files, c->new_names[i]);
    remove_tree(c->stage_root);
    snprintf(c->set_dir, sizeof c->set_dir, "%s", c->final_dir);
    c->n_new = 0;
}

static int stage_commit(fetch_ctx *c, char *err) {
    int rc = dmz_mkdirs(c->final_dir, err);
    for (int i = 0; i < c->n_new && rc == DMZ_OK; i++) {
        char from[4200], to[4200];
        snprintf(from, sizeof from, "%s/%s", c->set_dir, c->new_names[i]);
        snprintf(to, sizeof to, "%s/%s", c->final_dir, c->new_names[i]);
        if (rename(from, to) != 0)
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot move to %s: %s", from, to, strerror(errno));
    }
    remove_tree(c->stage_root);
    snprintf(c->set_dir, sizeof c->set_dir, "%s", c->final_dir);
    return rc;
}

/* The shape of the data sets the fetcher knows; NULL for others (no check). */
typedef struct known_set { const char *name; size_t train, test; int classes; } known_set;
static const known_set *known_set_of(const char *dataset) {
    static const known_set known[] = {{"emnist-balanced", 112800, 18800, 47}, {"fashion-mnist", 60000, 10000, 10}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].name, dataset) == 0) return &known[i];
    return NULL;
}

/* A message about a staged file names the file's place in the set instead. */
static void unstage_message(const fetch_ctx *c, char *msg) {
    char out[DMZ_ERR_LEN];
    size_t n = 0, from = strlen(c->set_dir);
    for (const char *p = msg; *p && n + 1 < sizeof out;) {
        if (from && strncmp(p, c->set_dir, from) == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", c->final_dir);
            if (n >= sizeof out) n = sizeof out - 1;
            p += from;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    memcpy(msg, out, n + 1);
}

/* Each new file alone, strictly, with its row count where its name says its split. */
static int check_new_files(const fetch_ctx *c, const known_set *k, char *err) {
    for (int i = 0; i < c->n_new; i++) {
        char path[4200], why[DMZ_ERR_LEN];
        snprintf(path, sizeof path, "%s/%s", c->set_dir, c->new_names[i]);
        size_t rows = 0;
        if (dmz_data_file_check(path, k->classes, &rows, why) != DMZ_OK)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s", why);
        const char *name = c->new_names[i];
        size_t want = strstr(name, "train") ? k->train : (strstr(name, "test") || strstr(name, "t10k")) ? k->test : 0;
        if (want && rows != want)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %zu rows; %s has %zu (an incomplete or different file)", path,
                              rows, k->name, want);
    }
    return DMZ_OK;
}

/* Kaggle publishes no checksum: a fetched set is checked by structure instead
 * (the strict loader: 785 fields, labels in range; then the row counts). */
static int check_counts(const dmz_dataset *ds, const known_set *k, char *err) {
    if (ds->train.count == k->train && ds->test.count == k->test && ds->num_classes == k->classes) return DMZ_OK;
    return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: %zu train / %zu test rows, %d classes; %s has %zu / %zu, %d "
                      "classes (an incomplete or different file)", ds->source, ds->train.count, ds->test.count,
                      ds->num_classes, k->name, k->train, k->test, k->classes);
}

/* The staged set, strictly (a known data set only): each new file alone, then
 * the whole set. need_complete: a manifest's source must make the set whole;
 * a file given with --url may be half of it (the note says what is missing). */
static int verify_stage(fetch_ctx *c, bool need_complete, char *err) {
    const known_set *k = known_set_of(c->dataset);
    if (!k) return DMZ_OK;
    int rc = check_new_files(c, k, err);
    if (rc != DMZ_OK) {
        unstage_message(c, err);
        return rc;
    }
    dmz_load_options lo;
    dmz_load_options_default(&lo);
    lo.data_dir = c->stage_root;
    lo.allow_fallback = false;
    lo.use_cache = false; /* the cache is built from the installed files (build_cache) */
    dmz_dataset ds;
    char why[DMZ_ERR_LEN];
    rc = dmz_dataset_load(c->dataset, &lo, &ds, why);
    bool here = rc == DMZ_OK && strstr(ds.source, c->set_dir) == ds.source;
    if (rc == DMZ_OK && !here)
        snprintf(why, sizeof why, "%.400s is incomplete (the loader would read %.400s instead)", c->final_dir,
                 ds.source);
    if (here) {
        rc = check_counts(&ds, k, err);
        if (rc != DMZ_OK) unstage_message(c, err);
        if (rc == DMZ_OK && !c->opt->quiet)
            printf("fetch: verified %s: %zu train / %zu test rows, %d classes, sha256 %s\n", ds.name,
                   ds.train.count, ds.test.count, ds.num_classes, ds.sha256);
    }
    if (rc == DMZ_OK) dmz_dataset_free(&ds);
    if (here) return rc;
    unstage_message(c, why);
    if (need_complete) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s", why);
    printf("fetch: note: %s is not complete yet: %s\n", c->dataset, why);
    return DMZ_OK;
}

/* Loads the installed set once, so that the first training run starts from the cache. */
static void build_cache(const fetch_ctx *c) {
    if (c->opt->no_cache || !known_set_of(c->dataset)) return;
    dmz_load_options lo;
    dmz_load_options_default(&lo);
    lo.data_dir = c->opt->data_dir;
    lo.allow_fallback = false;
    dmz_dataset ds;
    if (dmz_dataset_load(c->dataset, &lo, &ds, NULL) == DMZ_OK) dmz_dataset_free(&ds);
}

/* ---------------------------------------------------------------- sources */

static bool source_complete(const fetch_ctx *c, const dmz_source *s) {
    const char *names[MAX_NAMES];
    int n = dmz_source_final_names(s, names, MAX_NAMES);
    for (int i = 0; i < n; i++)
        if (!have_file(c->final_dir, names[i])) return false;
    return n > 0;
}

static int fetch_source(fetch_ctx *c, const dmz_source *s, const char *userpwd, char *err) {
    printf("fetch: %s from [%s %s]\n", c->dataset, s->dataset, s->label);
    for (int i = 0; i < s->nfiles; i++) {
        const dmz_source_file *f = &s->files[i];
        char dl[4200];
        if (join(dl, sizeof dl, c->downloads, f->name, err) != DMZ_OK) return DMZ_EXIT_USAGE;
        if (f->size > 0) printf("  %s (%.1f MB)\n", f->url, f->size / 1e6);
        else printf("  %s\n", f->url);
        int rc = obtain(c, f, userpwd, dl, err);
        if (rc != DMZ_OK) return rc;
        bool zip = dmz_is_zip(dl), declared_zip = strcmp(s->format, "zip") == 0;
        if (declared_zip && !zip) {
            unlink(dl);
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: not a zip archive (deleted)", f->url);
        }
        if (!zip) {
            rc = move_into_set(c, dl, f->name, err);
        } else if (declared_zip) {
            const char *want[MAX_NAMES];
            int nwant = 0;
            for (; nwant < s->nmembers; nwant++) want[nwant] = s->members[nwant];
            rc = unzip_into_set(c, dl, want, nwant, true, err);
        } else {  /* Kaggle's API may answer a file request with that file zipped */
            const char *want[1] = {f->name};
            rc = unzip_into_set(c, dl, want, 1, true, err);
            if (rc == DMZ_OK) unlink(dl);
        }
        if (rc != DMZ_OK) return rc;
    }
    return DMZ_OK;
}

static int fetch_from_manifest(fetch_ctx *c, char *err) {
    const dmz_manifest *m = c->manifest;
    for (int i = 0; i < m->nsources; i++) {
        const dmz_source *s = &m->sources[i];
        if (strcmp(s->dataset, c->dataset) == 0 && source_complete(c, s)) {
            printf("fetch: %s already present in %s (complete from [%s %s]); delete it to fetch again\n",
                   c->dataset, c->final_dir, s->dataset, s->label);
            return DMZ_OK;
        }
    }
    int rc = dmz_errorf(err, DMZ_EXIT_FAIL, "fetch: no usable source for %s in %s", c->dataset, m->path);
    bool failed = false;
    for (int i = 0; i < m->nsources; i++) {
        const dmz_source *s = &m->sources[i];
        char userpwd[512];
        if (strcmp(s->dataset, c->dataset) != 0) continue;
        bool kaggle = strcmp(s->auth, "kaggle") == 0;
        if (kaggle && !dmz_kaggle_userpwd(userpwd, sizeof userpwd)) {
            printf("fetch: skipping [%s %s]: KAGGLE_USERNAME and KAGGLE_KEY (a Kaggle API token) are not set\n",
                   s->dataset, s->label);
            continue;
        }
        if (failed) {
            fflush(stdout);  /* keep the order of the lines when both go to one file */
            fprintf(stderr, "fetch: %s; trying the next source\n", err);
        }
        rc = stage_begin(c, err);
        if (rc == DMZ_OK) rc = fetch_source(c, s, kaggle ? userpwd : NULL, err);
        if (rc == DMZ_OK) rc = verify_stage(c, true, err);
        if (rc == DMZ_OK) rc = stage_commit(c, err);
        if (rc == DMZ_OK) rc = save_record(c, s->label, err);
        if (rc == DMZ_OK) return DMZ_OK;
        stage_abort(c);
        failed = true;
    }
    return rc;
}

static int wanted_names(const fetch_ctx *c, const char *names[], int max) {
    int n = 0;
    for (int i = 0; i < c->manifest->nsources; i++) {
        const dmz_source *s = &c->manifest->sources[i];
        if (strcmp(s->dataset, c->dataset) != 0) continue;
        const char *mine[MAX_NAMES];
        int k = dmz_source_final_names(s, mine, MAX_NAMES);
        for (int j = 0; j < k && n < max; j++) {
            int seen = 0;
            for (int q = 0; q < n; q++) seen |= strcmp(names[q], mine[j]) == 0;
            if (!seen) names[n++] = mine[j];
        }
    }
    return n;
}

static int place_url_download(fetch_ctx *c, const char *dl, const char *name, char *err) {
    const char *want[MAX_NAMES];
    int nwant = wanted_names(c, want, MAX_NAMES);
    if (dmz_is_zip(dl)) return unzip_into_set(c, dl, want, nwant, false, err);
    int rc = move_into_set(c, dl, name, err);
    int known = 0;
    for (int i = 0; i < nwant; i++) known |= strcmp(want[i], name) == 0;
    if (rc == DMZ_OK && !known)
        printf("fetch: note: %s is not a name the %s loader looks for (see %s)\n", name, c->dataset,
               c->manifest->path);
    return rc;
}

static int fetch_explicit_url(fetch_ctx *c, char *err) {
    const dmz_fetch_options *opt = c->opt;
    char name[DMZ_NAME_LEN], dl[4200];
    dmz_url_basename(opt->url, name, sizeof name);
    if (join(dl, sizeof dl, c->downloads, name, err) != DMZ_OK) return DMZ_EXIT_USAGE;
    printf("fetch: %s from %s\n", c->dataset, opt->url);
    dmz_fetch_request req = {.url = opt->url, .dest_path = dl, .expect_sha256 = opt->sha256, .quiet = opt->quiet};
    dmz_fetch_stats st;
    fflush(stdout);
    int rc = dmz_fetch_url(&req, &st, err);
    if (rc != DMZ_OK) return add_hint(rc, &st, false, err);
    print_download(name, &st, NULL);
    record_download(c, name, opt->url, &st, NULL);
    rc = stage_begin(c, err);
    if (rc == DMZ_OK) rc = place_url_download(c, dl, name, err);
    if (rc == DMZ_OK && (rc = verify_stage(c, false, err)) != DMZ_OK) {
        char why[DMZ_ERR_LEN];
        snprintf(why, sizeof why, "%s", err);
        dmz_errorf(err, rc, "%.800s; not installed (the download is deleted)", why);
    }
    if (rc == DMZ_OK) rc = stage_commit(c, err);
    if (rc != DMZ_OK) {
        stage_abort(c);
        unlink(dl);
        return rc;
    }
    return save_record(c, "url", err);
}

/* ---------------------------------------------------------------- entry */

static int check_dataset(const dmz_manifest *m, const char *dataset, char *err) {
    char known[512] = "";
    for (int i = 0; i < m->nsources; i++) {
        if (strcmp(m->sources[i].dataset, dataset) == 0) return DMZ_OK;
        if (!strstr(known, m->sources[i].dataset)) {
            size_t used = strlen(known);
            snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", m->sources[i].dataset);
        }
    }
    return dmz_errorf(err, DMZ_EXIT_USAGE, "fetch: unknown data set '%s' (%s lists: %s)", dataset, m->path, known);
}

/* Only the default data directory is created: a named one that is not there is most likely mistyped. */
static int check_data_dir(const char *data_dir, bool is_default, char *err) {
    struct stat st;
    if (stat(data_dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "data directory %s is %s", data_dir, dmz_file_kind(st.st_mode));
    if (stat(data_dir, &st) != 0 && !is_default)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "data directory %s: %s (only the default one is created; "
                          "mkdir it first if it is meant)", data_dir, strerror(errno));
    return DMZ_OK;
}

static int prepare(fetch_ctx *c, char *err) {
    const char *data_dir = dmz_data_dir(c->opt->data_dir);
    int rc = check_dataset(c->manifest, c->dataset, err);
    if (rc == DMZ_OK) rc = check_data_dir(data_dir, dmz_data_dir_is_default(c->opt->data_dir), err);
    if (rc == DMZ_OK) rc = join(c->data_dir, sizeof c->data_dir, data_dir, ".", err);
    if (rc == DMZ_OK) snprintf(c->data_dir, sizeof c->data_dir, "%s", data_dir);
    if (rc == DMZ_OK) rc = join(c->downloads, sizeof c->downloads, data_dir, "downloads", err);
    if (rc == DMZ_OK) rc = join(c->final_dir, sizeof c->final_dir, data_dir, c->dataset, err);
    if (rc == DMZ_OK) snprintf(c->set_dir, sizeof c->set_dir, "%s", c->final_dir);
    if (rc == DMZ_OK) rc = dmz_mkdirs(c->downloads, err);
    if (rc == DMZ_OK) {
        remove_dead_stages(data_dir);
        char path[4200];
        snprintf(path, sizeof path, "%s/FETCHED.json", c->final_dir);
        c->record = dmz_fetched_load(path);
    }
    return rc;
}

int dmz_fetch_dataset(const dmz_fetch_options *opt, char *err) {
    dmz_manifest *m = calloc(1, sizeof *m);
    if (!m) return dmz_errorf(err, DMZ_EXIT_FAIL, "fetch: out of memory");
    fetch_ctx c = {.opt = opt, .manifest = m,
                   .dataset = opt->dataset && *opt->dataset ? opt->dataset : "emnist-balanced"};
    int rc = dmz_manifest_load(dmz_manifest_path(opt->manifest), m, err);
    if (rc == DMZ_OK) rc = prepare(&c, err);
    if (rc == DMZ_OK) rc = opt->url ? fetch_explicit_url(&c, err) : fetch_from_manifest(&c, err);
    if (rc == DMZ_OK) build_cache(&c);
    cJSON_Delete(c.record);
    free(m);
    return rc;
}
