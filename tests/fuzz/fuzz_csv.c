/* tests/fuzz/fuzz_csv.c — the Kaggle CSV reader (datasets/csv.c). The first
 * byte picks the classes (47, or inferred) and the orientation. */
#include "tests/fuzz/fuzz.h"

#include "common/dmz.h"
#include "datasets/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char path[64], err[DMZ_ERR_LEN];
    int fd = fuzz_file(data + 1, size - 1, path);
    if (fd < 0) return 0;
    dmz_owned_split s;
    int classes = data[0] & 1 ? DMZ_EMNIST_BALANCED_CLASSES : DMZ_CLASSES_INFER;
    int rc = ds_csv_read_fd(fd, path, classes, data[0] & 2, &s, err);
    if (rc == DMZ_OK) {
        if (s.count == 0 || !s.images || !s.labels) abort(); /* success means rows */
        for (size_t i = 0; i < s.count; i++)
            if (classes && s.labels[i] >= classes) abort();
    } else if (!memchr(err, '\0', sizeof err) || !strstr(err, path)) {
        abort(); /* every error names the file */
    }
    dmz_split_free(&s);
    close(fd);
    return 0;
}
