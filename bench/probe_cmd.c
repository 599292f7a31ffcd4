/* `dmzbench probe`: under mpirun, latency and bandwidth between every pair of
 * ranks by message size, and the all-reduce at the mlp's gradient size. */
#include <errno.h>
#include <getopt.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "common/dmz.h"
#include "counters/counters.h"
#include "net/comm.h"
#include "net/probe.h"

/* 784x100 + 100 + 100x47 + 47: the paper mlp's parameters on EMNIST Balanced */
enum { MLP_EMNIST_PARAMS = 83247 };

static volatile sig_atomic_t probe_stop;
static void on_probe_signal(int sig) { probe_stop = sig; }

static void probe_usage(void) {
    fputs("usage: mpirun -np N dmzbench probe [options]\n"
          "  --max-bytes N        largest ping-pong message (default 67108864 = 64 MiB)\n"
          "  --every-other-size   sizes 1, 4, 16, ... instead of every power of two\n"
          "  --allreduce-floats N all-reduce size in floats (default 83247: the mlp's gradients; 0: none)\n"
          "  --csv FILE           also write the table as CSV (written whole, then renamed)\n"
          "  --timeout S          a wait longer than S seconds ends the probe (default 300)\n"
          "  --bind none|auto|LIST  where each rank runs (auto: spread the ranks of a host over its packages/cores)\n",
          stderr);
}

static int parse_size(const char *opt, const char *s, size_t lo, size_t hi, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "dmzbench probe: --%s: '%s' is not an integer in %zu..%zu\n", opt, s, lo, hi);
        return DMZ_EXIT_USAGE;
    }
    *out = (size_t)v;
    return DMZ_OK;
}

static int write_csv(const char *path, const dmz_comm *c, const dmz_probe_result *r, char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    dmz_probe_write_csv(m, c, r);
    fclose(m);
    int rc = dmz_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int dmz_probe_main(int argc, char **argv) {
    dmz_probe_options o;
    dmz_probe_options_default(&o);
    o.allreduce_floats = MLP_EMNIST_PARAMS;
    const char *csv = NULL, *bind = "none";
    double timeout = 300;
    static const struct option options[] = {
        {"max-bytes", required_argument, 0, 'm'}, {"every-other-size", no_argument, 0, 'e'},
        {"allreduce-floats", required_argument, 0, 'a'}, {"csv", required_argument, 0, 'c'},
        {"timeout", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        {"bind", required_argument, 0, 'b'}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int opt, rc = DMZ_OK;
    size_t v = 0;
    while (rc == DMZ_OK && (opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'm': rc = parse_size("max-bytes", optarg, 1, (size_t)1 << 30, &o.max_bytes); break;
        case 'e': o.size_factor = 4; break;
        case 'a': rc = parse_size("allreduce-floats", optarg, 0, (size_t)1 << 28, &o.allreduce_floats); break;
        case 'c': csv = optarg; break;
        case 't': rc = parse_size("timeout", optarg, 1, 10000000, &v), timeout = (double)v; break;
        case 'b': bind = optarg; break;
        case 'h': probe_usage(); return DMZ_OK;
        default:
            fprintf(stderr, "dmzbench probe: bad option '%s'\n", argv[optind - 1]);
            probe_usage();
            return DMZ_EXIT_USAGE;
        }
    }
    if (rc) return rc;
    char err[DMZ_ERR_LEN];
    if ((rc = dmz_bind_check_cpus(bind, err))) {
        fprintf(stderr, "dmzbench probe: %s\n", err);
        return rc;
    }
    if (!dmz_comm_under_launcher()) {
        fprintf(stderr, "dmzbench probe: measures between MPI ranks: run it as mpirun -np 2 dmzbench probe "
                        "(a hostfile or srun puts the ranks on different sites)\n");
        return DMZ_EXIT_USAGE;
    }
    dmz_comm *c = NULL;
    if ((rc = dmz_comm_mpi(NULL, NULL, &c, err))) {
        fprintf(stderr, "dmzbench probe: %s\n", err);
        return rc;
    }
    dmz_binding b;
    if ((rc = dmz_bind_apply(bind, NULL, 0, omp_get_max_threads(), &b, err))) {
        fprintf(stderr, "dmzbench probe: rank %d: %s\n", c->rank, err);
        c->abort_job(c, rc);
    }
    if (strcmp(bind, "none") != 0) printf("# rank %d (site %s) bound: cpuset %s (%s)\n", c->rank,
                                         dmz_comm_site(c, c->rank), b.cpuset, b.how);
    c->timeout_s = timeout;
    c->stop = &probe_stop;
    signal(SIGINT, on_probe_signal);
    signal(SIGTERM, on_probe_signal);
    dmz_probe_result r;
    rc = dmz_probe_run(c, &o, &r, err);
    if (!rc && c->rank == 0) {
        dmz_probe_print(stdout, c, &r);
        printf("# probe took %.2f s\n", r.wall_s);
        if (csv) rc = write_csv(csv, c, &r, err);
    }
    if (rc) {
        fprintf(stderr, "dmzbench probe: %s\n", err);
        if (rc == DMZ_EXIT_FAIL) c->abort_job(c, rc);
    }
    dmz_probe_free(&r);
    c->finalize(c);
    return rc;
}
