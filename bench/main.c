/* dmzbench: train the paper's network on EMNIST on one node or across sites,
 * and record time, bandwidth and counters. See README.md. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "common/dmz.h"
#include "datasets/fetch.h"
#include "compare.h"
#include "report.h"

static void usage(FILE *f) {
    fputs("usage: dmzbench COMMAND [options]\n"
          "  fetch   [--dataset emnist-balanced|fashion-mnist] [--url URL] [--sha256 HEX] [--data-dir DIR]\n"
          "          [--no-cache]\n"
          "  train   [--model mlp] [--data NAME|PATH] [--backend cpu] [--mode single|sync|async-ps] [--steps 2000]\n"
          "          [--batch 100] [--lr 0.01] [--seed N] [--repeat 2] [--warmup N] [--out results/] ...\n"
          "          [--bind none|auto|CPULIST] [--sample-ms 100] [--papi-events LIST]\n"
          "          (dmzbench train --help for all options)\n"
          "  report  RUNDIR... [--out DIR]\n"
          "  compare RUNDIR_A RUNDIR_B [--out DIR]   two runs side by side (devices, kernels, energy)\n"
          "  project RUNDIR --device NAME [--from NAME] [--out DIR] [--launch-us U] [--efficiency E]\n"
          "          roofline PROJECTION onto a device of bench/devices.csv\n"
          "  info    [--json] devices, counters, topology, data sets\n"
          "  probe   under mpirun: latency and bandwidth between every pair of ranks, by message size\n"
          "  k8s     --nodes A,B [--mode async-ps|sync] [--image IMG]: a Kubeflow MPIJob manifest\n"
          "  wan     up|down|status|run|ping|env|model: emulated WAN links between sites on this machine\n"
          "Exit codes: 0 success, 1 run failed, 2 usage or input error.\n",
          f);
}

static int fetch_main(int argc, char **argv) {
    dmz_fetch_options opt = {.dataset = "emnist-balanced"};
    static const struct option options[] = {
        {"dataset", required_argument, 0, 'd'}, {"url", required_argument, 0, 'u'},
        {"sha256", required_argument, 0, 's'},  {"data-dir", required_argument, 0, 'D'},
        {"quiet", no_argument, 0, 'q'},         {"no-cache", no_argument, 0, 'n'},
        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'd': opt.dataset = optarg; break;
        case 'u': opt.url = optarg; break;
        case 's': opt.sha256 = optarg; break;
        case 'D': opt.data_dir = optarg; break;
        case 'q': opt.quiet = true; break;
        case 'n': opt.no_cache = true; break;
        default:
            fprintf(stderr, "dmzbench fetch: bad option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return DMZ_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dmzbench fetch: unexpected argument '%s'\n", argv[optind]);
        return DMZ_EXIT_USAGE;
    }
    char err[DMZ_ERR_LEN];
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: it is not thread-safe */
    int rc = dmz_fetch_dataset(&opt, err);
    curl_global_cleanup();
    if (rc) fprintf(stderr, "dmzbench fetch: %s\n", err);
    return rc;
}

static int train_cmd(int argc, char **argv, int full_argc, char **full_argv) {
    dmz_train_config cfg;
    dmz_train_config_default(&cfg);
    char err[DMZ_ERR_LEN];
    int rc = dmz_train_parse_args(argc, argv, &cfg, err);
    if (rc == -1) return DMZ_OK; /* --help */
    if (rc) {
        fprintf(stderr, "dmzbench train: %s\n", err);
        return rc;
    }
    return dmz_train_main(&cfg, full_argc, full_argv);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? DMZ_EXIT_USAGE : DMZ_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0) return train_cmd(argc - 1, argv + 1, argc, argv);
    if (strcmp(cmd, "fetch") == 0) return fetch_main(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return dmz_report_main(argc - 1, argv + 1);
    if (strcmp(cmd, "compare") == 0) return dmz_compare_main(argc - 1, argv + 1);
    if (strcmp(cmd, "project") == 0) return dmz_project_main(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0) return dmz_info_main(argc - 1, argv + 1);
    if (strcmp(cmd, "probe") == 0) return dmz_probe_main(argc - 1, argv + 1);
    if (strcmp(cmd, "k8s") == 0) return dmz_k8s_main(argc - 1, argv + 1);
    if (strcmp(cmd, "wan") == 0) return dmz_wan_main(argc - 1, argv + 1);
    fprintf(stderr, "dmzbench: unknown command '%s'\n", cmd);
    usage(stderr);
    return DMZ_EXIT_USAGE;
}
