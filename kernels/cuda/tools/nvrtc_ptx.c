/* kernels/cuda/tools/nvrtc_ptx.c — compiles the device code of one .cu file to
 * PTX with NVRTC, loaded at run time (the PyPI wheel nvidia-cuda-nvrtc-cu12
 * has the library and no compiler driver):
 *
 *   nvrtc_ptx LIBNVRTC.so FILE.cu OUT.ptx [NVRTC OPTION...]
 *
 * e.g. --gpu-architecture=compute_61 -I. -Ikernels/cuda/rtc. Prints NVRTC's
 * log; exits 0 when the PTX was written, 1 otherwise. Used by
 * kernels/cuda/tools/kernel_resources.sh (make check-pascal, make kernel-resources). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvrtc_result; /* nvrtcResult: 0 is NVRTC_SUCCESS */
typedef struct nvrtc_program *nvrtc_program;

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "nvrtc_ptx: %s not in the NVRTC library: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) exit(1);
    buf[len] = 0;
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: nvrtc_ptx LIBNVRTC.so FILE.cu OUT.ptx [NVRTC OPTION...]\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "nvrtc_ptx: %s\n", dlerror());
        return 1;
    }
    nvrtc_result (*create)(nvrtc_program *, const char *, const char *, int, const char *const *,
                           const char *const *) = sym(lib, "nvrtcCreateProgram");
    nvrtc_result (*compile)(nvrtc_program, int, const char *const *) = sym(lib, "nvrtcCompileProgram");
    nvrtc_result (*log_size)(nvrtc_program, size_t *) = sym(lib, "nvrtcGetProgramLogSize");
    nvrtc_result (*get_log)(nvrtc_program, char *) = sym(lib, "nvrtcGetProgramLog");
    nvrtc_result (*ptx_size)(nvrtc_program, size_t *) = sym(lib, "nvrtcGetPTXSize");
    nvrtc_result (*get_ptx)(nvrtc_program, char *) = sym(lib, "nvrtcGetPTX");
    const char *(*error_string)(nvrtc_result) = sym(lib, "nvrtcGetErrorString");

    char *src = slurp(argv[2]);
    nvrtc_program prog;
    nvrtc_result r = create(&prog, src, argv[2], 0, NULL, NULL);
    if (r != 0) {
        fprintf(stderr, "nvrtc_ptx: nvrtcCreateProgram: %s\n", error_string(r));
        return 1;
    }
    r = compile(prog, argc - 4, (const char *const *)argv + 4);
    size_t n = 0;
    if (log_size(prog, &n) == 0 && n > 1) {
        char *log = malloc(n);
        if (log && get_log(prog, log) == 0) fprintf(stderr, "%s", log);
        free(log);
    }
    if (r != 0) {
        fprintf(stderr, "nvrtc_ptx: %s: %s\n", argv[2], error_string(r));
        return 1;
    }
    if (ptx_size(prog, &n) != 0) return 1;
    char *ptx = malloc(n);
    if (!ptx || get_ptx(prog, ptx) != 0) return 1;
    FILE *out = fopen(argv[3], "w");
    if (!out || fwrite(ptx, 1, strlen(ptx), out) != strlen(ptx) || fclose(out) != 0) {
        perror(argv[3]);
        return 1;
    }
    return 0;
}
