#include "backend.h"

#include <string.h>

#include "common/dmz.h"

const char *const dmz_backend_names[] = {"cpu", "cuda", "cublas", "cudnn", NULL};

const dmz_backend *dmz_backend_get(const char *name, char *err) {
    if (strcmp(name, "cpu") == 0) return &dmz_backend_cpu;
    for (int i = 0; dmz_backend_names[i]; i++)
        if (strcmp(name, dmz_backend_names[i]) == 0) {
            dmz_errorf(err, DMZ_EXIT_USAGE,
                       "backend '%s' is not built yet: this build has the cpu backend only "
                       "(the hand-written CUDA kernels land with the CUDA issue)", name);
            return NULL;
        }
    dmz_errorf(err, DMZ_EXIT_USAGE, "--backend: unknown backend '%s' (known: cpu, cuda, cublas, cudnn)", name);
    return NULL;
}
