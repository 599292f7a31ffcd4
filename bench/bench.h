/* bench/bench.h — the runner's front door: `dmzbench train` and `dmzbench info`.
 * A run: load data, build the model on a backend, repeat the training loop,
 * write the result directory (results/<stamp>-<experiment>-<host>/), draw its
 * figures. */
#ifndef DMZ_BENCH_H
#define DMZ_BENCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dmz_train_config {
    const char *model;        /* mlp */
    const char *data;         /* emnist-balanced | fashion-mnist | synthetic | PATH */
    const char *data_dir;     /* NULL: $DMZBENCH_DATA_DIR or datasets/cache */
    bool no_fallback;         /* fail instead of falling back to Fashion-MNIST */
    bool no_cache;            /* neither read nor write the binary data cache */
    const char *backend;      /* cpu */
    const char *mode;         /* single */
    const char *name;         /* experiment name in the run directory; NULL: model-backend-mode */
    int steps, batch, repeat, warmup;
    float lr, beta1, beta2, eps;
    uint64_t seed;
    double target_accuracy;   /* <= 0: none */
    int eval_every;           /* evaluate on the test split every N steps (and at the end) */
    int log_every;            /* steps.csv row every N steps; device backends read losses back only then */
    bool graph;               /* --graph: capture one training step in a CUDA Graph, replay it */
    int threads;              /* cpu threads, 0 = OpenMP default */
    const char *out_dir;      /* results/ */
    bool quiet, no_plots;
    /* cross-site (sync, async-ps) */
    int global_batch;         /* sync: split this many samples per step over the ranks; 0: --batch each */
    const char *rank_speed;   /* "1.0,0.93": relative compute speed per rank (async-ps: per worker) */
    double timeout_s;         /* a step or exchange longer than this ends the job */
    bool no_probe;            /* skip the link probe before cross-site runs */
    int check_consistency;    /* sync: compare parameter checksums every K steps; 0: never */
    /* counters (counters/counters.h) */
    const char *bind;         /* none | auto | CPU list */
    const char *papi_events;  /* NULL: the default list, those that exist */
    int sample_ms;            /* NVML sampling period */
} dmz_train_config;

void dmz_train_config_default(dmz_train_config *cfg);
/* Parses `train` options (argv[0] is "train"). DMZ_OK, or DMZ_EXIT_USAGE with err. */
int dmz_train_parse_args(int argc, char **argv, dmz_train_config *cfg, char *err);
void dmz_train_usage(void);
/* Parses "1.0,0.93" into out[0..max) (NULL: only checks); *count gets the number of factors. */
int dmz_parse_rank_speed(const char *list, double *out, int max, int *count, char *err);

/* The whole run; argv is recorded in meta.json. Returns the process exit code. */
int dmz_train_main(const dmz_train_config *cfg, int argc, char **argv);

/* `dmzbench probe` (under mpirun). Returns the process exit code. */
int dmz_probe_main(int argc, char **argv);

/* `dmzbench k8s`: a Kubeflow MPIJob manifest pinning one worker pod to each node. */
int dmz_k8s_main(int argc, char **argv);
/* `dmzbench wan ...` (bench/wan_cmd.c) and `dmzbench wan model SWEEPDIR` (bench/wan_model.c). */
int dmz_wan_main(int argc, char **argv);
int dmz_wan_model_main(int argc, char **argv);

/* `dmzbench info [--json]`: devices, counters, topology, data sets, as text or JSON. */
int dmz_info_main(int argc, char **argv);

#endif
