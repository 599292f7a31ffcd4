/* tests/fuzz/fuzz_cache.c — the binary cache reader (datasets/cache.c) on
 * bytes that claim to be a cache of a small real data set. The first byte
 * says which of the checks a random input cannot pass are made to pass
 * (ds_cache_fuzz_fixup: frame, source stamps, checksums), so the checks
 * behind them (shapes, offsets, labels) are fuzzed too. */
#include "tests/fuzz/fuzz.h"

#include <ftw.h>
#include <sys/stat.h>

#include "common/dmz.h"
#include "datasets/internal.h"

static char dir[64];
static ds_plan plan;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_fixture(void) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void write_rows(const char *path, int rows) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    for (int r = 0; r < rows; r++) {
        fprintf(f, "%d", r % 47);
        for (int p = 0; p < DMZ_IMG_PIXELS; p++) fprintf(f, ",%d", (r + p) % 256);
        fputc('\n', f);
    }
    fclose(f);
}

/* Two small EMNIST-named CSV files and their plan, made once per process. */
static const ds_plan *fixture(void) {
    if (dir[0]) return &plan;
    snprintf(dir, sizeof dir, "/tmp/dmz-fuzz-cache-XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(remove_fixture);
    char train[128], test[128], err[DMZ_ERR_LEN];
    snprintf(train, sizeof train, "%s/emnist-balanced-train.csv", dir);
    snprintf(test, sizeof test, "%s/emnist-balanced-test.csv", dir);
    write_rows(train, 3);
    write_rows(test, 2);
    if (ds_resolve_path(train, &plan, err) != DMZ_OK) abort();
    return &plan;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (8u << 20)) return 0;
    const ds_plan *p = fixture();
    size_t len = size - 1;
    uint64_t *buf = malloc(len + 8); /* 8-aligned, as a mapping would be */
    if (!buf) return 0;
    memcpy(buf, data + 1, len);
    ds_cache_fuzz_fixup(buf, len, p, data[0]);
    char path[64];
    int fd = fuzz_file((const uint8_t *)buf, len, path);
    free(buf);
    if (fd < 0) return 0;
    dmz_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds_mapping map = {0};
    bool restamp = false;
    if (ds_cache_open(path, p, &ds, &map, &restamp)) {
        /* a hit hands out splits that lie inside the mapping, labels in range */
        const uint8_t *lo = map.addr, *hi = lo + map.len;
        if (ds.train.count == 0 || ds.test.count == 0 || ds.num_classes < 1 || ds.num_classes > 256) abort();
        const dmz_split *sp[2] = {&ds.train, &ds.test};
        for (int i = 0; i < 2; i++) {
            if (sp[i]->images < lo || sp[i]->images + sp[i]->count * DMZ_IMG_PIXELS > hi) abort();
            if (sp[i]->labels < lo || sp[i]->labels + sp[i]->count > hi) abort();
            for (size_t k = 0; k < sp[i]->count; k++)
                if (sp[i]->labels[k] >= ds.num_classes) abort();
        }
        if (strlen(ds.sha256) != 64) abort();
        ds_cache_unmap(&map);
    }
    close(fd);
    return 0;
}
