#include "backend.h"

#include <string.h>

#include "common/dmz.h"
#ifdef DMZ_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

#ifdef DMZ_HAVE_CUDA
#define BUILT_BACKENDS "cpu and cuda backends"
#else
#define BUILT_BACKENDS "cpu backend only"
#endif

const char *const dmz_backend_names[] = {"cpu", "cuda", "cublas", "cudnn", NULL};

/* "cuda": built when the Makefile found nvcc (DMZ_HAVE_CUDA), handed out when a
 * device answers. */
static const dmz_backend *get_cuda(char *err) {
#ifdef DMZ_HAVE_CUDA
    char reason[512];
    if (dmz_cuda_available(reason, sizeof reason)) return &dmz_backend_cuda;
    dmz_errorf(err, DMZ_EXIT_USAGE, "no CUDA device: %s", reason);
#else
    dmz_errorf(err, DMZ_EXIT_USAGE,
               "backend 'cuda' is not in this build: it was built without nvcc (nvcc not found, or NO_CUDA=1; "
               "`make config` says which)");
#endif
    return NULL;
}

const dmz_backend *dmz_backend_get(const char *name, char *err) {
    if (strcmp(name, "cpu") == 0) return &dmz_backend_cpu;
    if (strcmp(name, "cuda") == 0) return get_cuda(err);
    for (int i = 0; dmz_backend_names[i]; i++)
        if (strcmp(name, dmz_backend_names[i]) == 0) {
            dmz_errorf(err, DMZ_EXIT_USAGE,
                       "backend '%s' is not built yet: this build has the %s "
                       "(the cuBLAS/cuDNN comparison backends land later)", name, BUILT_BACKENDS);
            return NULL;
        }
    dmz_errorf(err, DMZ_EXIT_USAGE, "--backend: unknown backend '%s' (known: cpu, cuda, cublas, cudnn)", name);
    return NULL;
}
