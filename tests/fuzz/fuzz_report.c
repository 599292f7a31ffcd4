/* tests/fuzz/fuzz_report.c — the readers `dmzbench report` uses on a run
 * directory (bench/report_run.c, bench/report_csv.c): the input is cut at
 * "\n#FILE\n" into summary.csv, meta.json, steps.csv and stats.csv (absent
 * when not reached), written into a scratch run directory and loaded. */
#include "tests/fuzz/fuzz.h"

#include <ftw.h>
#include <sys/stat.h>

#include "bench/report_impl.h"

static char dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(void) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void put(const char *name, const uint8_t *data, size_t len) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {"summary.csv", "meta.json", "steps.csv", "stats.csv"};
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%.30s/dmz-fuzz-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) abort();
        atexit(remove_dir);
    }
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
        if (at > size || (i > 0 && at == size)) continue;
        size_t cut = fuzz_split(data + at, size - at, "\n#FILE\n");
        put(names[i], data + at, cut);
        at += cut + 7;
    }
    rpt_run *run = calloc(1, sizeof *run);
    if (!run) return 0;
    char err[DMZ_ERR_LEN];
    if (rpt_run_load(dir, run, err) == DMZ_OK) {
        char label[256];
        rpt_run_config_label(run, label, sizeof label);
        rpt_run_free(run);
    } else if (!strstr(err, dir) && !strstr(err, "out of memory")) {
        abort(); /* every error names its file */
    }
    free(run);
    return 0;
}
