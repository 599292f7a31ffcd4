/* `dmzbench train` options. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "common/dmz.h"
#include "counters/counters.h"
#include "kernels/model.h"

void dmz_train_config_default(dmz_train_config *cfg) {
    *cfg = (dmz_train_config){
        .model = "mlp", .data = "emnist-balanced", .backend = "cpu", .mode = "single",
        .steps = 2000, .batch = 100, .repeat = 2, .warmup = 10,
        .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
        .seed = 1, .eval_every = 100, .log_every = 1, .out_dir = "results", .timeout_s = 300,
        .bind = "none", .sample_ms = 100,
    };
}

void dmz_train_usage(void) {
    fputs("usage: dmzbench train [options]\n"
          "  --model mlp|cnn          model (default mlp: the paper's 784-100-C network; cnn: TF's Deep MNIST)\n"
          "  --data NAME|PATH         emnist-balanced (default), fashion-mnist, synthetic, or a CSV/IDX file or directory\n"
          "  --data-dir DIR           where fetched and cached data live (default $DMZBENCH_DATA_DIR or datasets/cache)\n"
          "  --no-fallback            fail when EMNIST is missing instead of using Fashion-MNIST\n"
          "  --no-cache               parse the data files, neither reading nor writing the binary cache\n"
          "  --backend cpu|cuda|cublas|cudnn   (default cpu)\n"
          "  --mode single|sync|async-ps       (default single)\n"
          "  --steps N                measured training steps per repetition (default 2000)\n"
          "  --batch N                batch size (default 100)\n"
          "  --lr X                   Adam learning rate (default 0.01 for the mlp, 1e-3 for the cnn)\n"
          "  --seed N                 initialisation and data-order seed (default 1)\n"
          "  --repeat N               repetitions (default 2)\n"
          "  --warmup N               warm-up steps, timed apart and discarded (default 10)\n"
          "  --target-accuracy X      report time to reach this test accuracy (0..1)\n"
          "  --eval-every N           test-set evaluation interval in steps (default 100)\n"
          "  --log-every N            steps.csv row interval (default 1); on a GPU backend also how often\n"
          "                           the step losses are read back (the steps in between never wait)\n"
          "  --graph                  GPU backends, single mode: capture one whole training step in a CUDA\n"
          "                           Graph and replay it (phase times then unavailable)\n"
          "  --threads N              cpu backend threads (default: OpenMP's)\n"
          "  --name NAME              experiment name in the run directory\n"
          "  --out DIR                results directory (default results/)\n"
          "  --no-plots               skip the figures\n"
          "  --quiet                  no progress line\n"
          "cross-site (under mpirun; async-ps: rank 0 serves, ranks 1..N-1 work):\n"
          "  --global-batch N         sync: N samples per step split over the ranks (default: --batch per rank)\n"
          "  --rank-speed F,F,...     relative compute speed per rank (async-ps: per worker), 0 < F <= 1\n"
          "  --timeout S              a step or exchange longer than S seconds ends the job (default 300)\n"
          "  --no-probe               skip the link probe before training\n"
          "  --check-consistency K    sync: compare parameter checksums across ranks every K steps\n"
          "counters (meta.json, summary.csv, gpu.csv, kernels.csv, papi.csv):\n"
          "  --bind none|auto|LIST    none (default): as launched; auto: each rank and its OpenMP threads on the\n"
          "                           cores nearest its GPU, or spread over packages/cores; LIST: CPUs as 0-3,8\n"
          "  --sample-ms N            NVML sampling period per rank (default 100)\n"
          "  --papi-events LIST       PAPI events per phase (default " DMZ_PAPI_DEFAULT_EVENTS ", those that exist)\n",
          stderr);
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out, char *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--%s: '%s' is not an integer in %d..%d", opt, s, lo, hi);
    *out = (int)v;
    return DMZ_OK;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out, char *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--%s: '%s' is not a number in %g..%g", opt, s, lo, hi);
    *out = v;
    return DMZ_OK;
}

static int check_choice(const char *opt, const char *v, const char *const *choices, char *err) {
    for (int i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0) return DMZ_OK;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "--%s: unknown value '%s'", opt, v);
}

enum { OPT_DATA_DIR = 256, OPT_NO_FALLBACK, OPT_TARGET, OPT_EVAL_EVERY, OPT_LOG_EVERY, OPT_THREADS,
       OPT_NAME, OPT_NO_PLOTS, OPT_GLOBAL_BATCH, OPT_RANK_SPEED, OPT_TIMEOUT, OPT_NO_PROBE, OPT_CONSISTENCY,
       OPT_NO_CACHE, OPT_GRAPH, OPT_BIND, OPT_SAMPLE_MS, OPT_PAPI_EVENTS };

static const struct option train_options[] = {
    {"model", required_argument, 0, 'm'},       {"data", required_argument, 0, 'd'},
    {"data-dir", required_argument, 0, OPT_DATA_DIR}, {"no-fallback", no_argument, 0, OPT_NO_FALLBACK},
    {"no-cache", no_argument, 0, OPT_NO_CACHE},
    {"backend", required_argument, 0, 'b'},     {"mode", required_argument, 0, 'M'},
    {"steps", required_argument, 0, 's'},       {"batch", required_argument, 0, 'B'},
    {"lr", required_argument, 0, 'l'},          {"seed", required_argument, 0, 'S'},
    {"repeat", required_argument, 0, 'r'},      {"warmup", required_argument, 0, 'w'},
    {"target-accuracy", required_argument, 0, OPT_TARGET},
    {"eval-every", required_argument, 0, OPT_EVAL_EVERY}, {"log-every", required_argument, 0, OPT_LOG_EVERY},
    {"threads", required_argument, 0, OPT_THREADS}, {"name", required_argument, 0, OPT_NAME},
    {"out", required_argument, 0, 'o'},         {"no-plots", no_argument, 0, OPT_NO_PLOTS},
    {"quiet", no_argument, 0, 'q'},             {"help", no_argument, 0, 'h'},
    {"global-batch", required_argument, 0, OPT_GLOBAL_BATCH}, {"rank-speed", required_argument, 0, OPT_RANK_SPEED},
    {"timeout", required_argument, 0, OPT_TIMEOUT}, {"no-probe", no_argument, 0, OPT_NO_PROBE},
    {"check-consistency", required_argument, 0, OPT_CONSISTENCY},
    {"graph", no_argument, 0, OPT_GRAPH},
    {"bind", required_argument, 0, OPT_BIND}, {"sample-ms", required_argument, 0, OPT_SAMPLE_MS},
    {"papi-events", required_argument, 0, OPT_PAPI_EVENTS},
    {0, 0, 0, 0},
};

static int apply_option(int c, const char *arg, dmz_train_config *cfg, char *err) {
    static const char *const models[] = {"mlp", "cnn", NULL};
    static const char *const backends[] = {"cpu", "cuda", "cublas", "cudnn", NULL};
    static const char *const modes[] = {"single", "sync", "async-ps", NULL};
    double x = 0;
    int rc;
    switch (c) {
    case 'm': cfg->model = arg; return check_choice("model", arg, models, err);
    case 'd': cfg->data = arg; return DMZ_OK;
    case OPT_DATA_DIR: cfg->data_dir = arg; return DMZ_OK;
    case OPT_NO_FALLBACK: cfg->no_fallback = true; return DMZ_OK;
    case OPT_NO_CACHE: cfg->no_cache = true; return DMZ_OK;
    case OPT_GRAPH: cfg->graph = true; return DMZ_OK;
    case 'b': cfg->backend = arg; return check_choice("backend", arg, backends, err);
    case 'M': cfg->mode = arg; return check_choice("mode", arg, modes, err);
    case 's': return parse_int("steps", arg, 1, 100000000, &cfg->steps, err);
    case 'B': return parse_int("batch", arg, 1, 65536, &cfg->batch, err);
    case 'r': return parse_int("repeat", arg, 1, 1000, &cfg->repeat, err);
    case 'w': return parse_int("warmup", arg, 0, 1000000, &cfg->warmup, err);
    case OPT_EVAL_EVERY: return parse_int("eval-every", arg, 1, 100000000, &cfg->eval_every, err);
    case OPT_LOG_EVERY: return parse_int("log-every", arg, 1, 100000000, &cfg->log_every, err);
    case OPT_THREADS: return parse_int("threads", arg, 1, 4096, &cfg->threads, err);
    case OPT_NAME: cfg->name = arg; return DMZ_OK;
    case 'o': cfg->out_dir = arg; return DMZ_OK;
    case OPT_NO_PLOTS: cfg->no_plots = true; return DMZ_OK;
    case 'q': cfg->quiet = true; return DMZ_OK;
    case OPT_GLOBAL_BATCH: return parse_int("global-batch", arg, 1, 1 << 24, &cfg->global_batch, err);
    case OPT_RANK_SPEED: cfg->rank_speed = arg; return dmz_parse_rank_speed(arg, NULL, 0, NULL, err);
    case OPT_TIMEOUT: return parse_double("timeout", arg, 0.1, 1e7, &cfg->timeout_s, err);
    case OPT_NO_PROBE: cfg->no_probe = true; return DMZ_OK;
    case OPT_CONSISTENCY: return parse_int("check-consistency", arg, 1, 100000000, &cfg->check_consistency, err);
    case OPT_BIND: cfg->bind = arg; return dmz_bind_parse(arg, err);
    case OPT_SAMPLE_MS: return parse_int("sample-ms", arg, 1, 3600000, &cfg->sample_ms, err);
    case OPT_PAPI_EVENTS: cfg->papi_events = arg; return dmz_papi_parse(arg, err);
    case 'l':
        if ((rc = parse_double("lr", arg, 1e-12, 1e3, &x, err))) return rc;
        cfg->lr = (float)x;
        return DMZ_OK;
    case OPT_TARGET:
        if ((rc = parse_double("target-accuracy", arg, 0.0, 1.0, &x, err))) return rc;
        cfg->target_accuracy = x;
        return DMZ_OK;
    case 'S': {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || *end || end == arg || arg[0] == '-')
            return dmz_errorf(err, DMZ_EXIT_USAGE, "--seed: '%s' is not a non-negative integer", arg);
        cfg->seed = v;
        return DMZ_OK;
    }
    default: return dmz_errorf(err, DMZ_EXIT_USAGE, "unknown option (see dmzbench train --help)");
    }
}

int dmz_parse_rank_speed(const char *list, double *out, int max, int *count, char *err) {
    int k = 0;
    const char *p = list;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v > 0 && v <= 1) || (*end && *end != ','))
            return dmz_errorf(err, DMZ_EXIT_USAGE,
                              "--rank-speed: '%s': factor %d is not a number in (0, 1] (1 = full speed)", list, k + 1);
        if (out && k < max) out[k] = v;
        k++;
        if (!*end) break;
        p = end + 1;
    }
    if (count) *count = k;
    return DMZ_OK;
}

int dmz_train_parse_args(int argc, char **argv, dmz_train_config *cfg, char *err) {
    optind = 1;
    opterr = 0;
    int c, lr_given = 0;
    while ((c = getopt_long(argc, argv, "", train_options, NULL)) != -1) {
        lr_given |= c == 'l';
        if (c == 'h') {
            dmz_train_usage();
            return dmz_errorf(err, -1, "help");
        }
        if (c == '?' || c == ':')
            return dmz_errorf(err, DMZ_EXIT_USAGE, "train: bad or incomplete option '%s'", argv[optind - 1]);
        int rc = apply_option(c, optarg, cfg, err);
        if (rc) return rc;
    }
    if (optind < argc)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "train: unexpected argument '%s'", argv[optind]);
    if (!lr_given) cfg->lr = dmz_model_default_lr(cfg->model);
    return DMZ_OK;
}
