#include "backend.h"

#include <string.h>

#include "common/dmz.h"
#ifdef DMZ_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

#if defined(DMZ_HAVE_CUDNN)
#define BUILT_BACKENDS "cpu, cuda, cublas and cudnn backends"
#elif defined(DMZ_HAVE_CUBLAS)
#define BUILT_BACKENDS "cpu, cuda and cublas backends"
#elif defined(DMZ_HAVE_CUDA)
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

/* "cublas", "cudnn": built when the Makefile found nvcc and the library's
 * header (DMZ_HAVE_CUBLAS, DMZ_HAVE_CUDNN); the library itself is loaded when
 * the backend is asked for. */
static const dmz_backend *get_vendor(const char *name, char *err) {
    char reason[1024] = "";
    const dmz_backend *be = NULL;
#ifdef DMZ_HAVE_CUBLAS
    if (strcmp(name, "cublas") == 0) be = dmz_cublas_backend(reason, sizeof reason);
#endif
#ifdef DMZ_HAVE_CUDNN
    if (strcmp(name, "cudnn") == 0) be = dmz_cudnn_backend(reason, sizeof reason);
#endif
    if (be) return be;
    if (reason[0]) {
        dmz_errorf(err, DMZ_EXIT_USAGE, "backend '%s' cannot run here: %s", name, reason);
        return NULL;
    }
    dmz_errorf(err, DMZ_EXIT_USAGE,
               "backend '%s' is not in this build: it needs nvcc and %s's header (`make config` says what was found); "
               "this build has the %s", name, strcmp(name, "cublas") == 0 ? "cuBLAS" : "cuDNN", BUILT_BACKENDS);
    return NULL;
}

const dmz_backend *dmz_backend_get(const char *name, char *err) {
    if (strcmp(name, "cpu") == 0) return &dmz_backend_cpu;
    if (strcmp(name, "cuda") == 0) return get_cuda(err);
    if (strcmp(name, "cublas") == 0 || strcmp(name, "cudnn") == 0) return get_vendor(name, err);
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
