/* tests/fuzz/fuzz_sources.c — the download manifest (datasets/sources.ini,
 * inih + datasets/fetch_sources.c): anything parses or names file and line. */
#include "tests/fuzz/fuzz.h"

#include "common/dmz.h"
#include "datasets/fetch_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static dmz_manifest m; /* 400 KB: not on the stack */
    char path[64], err[DMZ_ERR_LEN];
    int fd = fuzz_file(data, size, path);
    if (fd < 0) return 0;
    int rc = dmz_manifest_load(path, &m, err);
    if (rc == DMZ_OK) {
        for (int i = 0; i < m.nsources; i++) {
            const dmz_source *s = &m.sources[i];
            if (s->nfiles < 1 || s->nfiles > DMZ_SOURCE_MAX_FILES || s->nmembers > DMZ_SOURCE_MAX_MEMBERS) abort();
            for (int f = 0; f < s->nfiles; f++)
                if (strchr(s->files[f].name, '/') || !strcmp(s->files[f].name, "..")) abort(); /* no way out of the dir */
            const char *names[64];
            dmz_source_final_names(s, names, 64);
        }
    } else if (!strstr(err, path)) {
        abort();
    }
    close(fd);
    return 0;
}
