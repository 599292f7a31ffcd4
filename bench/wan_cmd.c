/* `dmzbench wan up|down|status|run|ping|env|model`: emulated sites on one
 * machine (net/wanem/wanem.h). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/dmz.h"
#include "net/wanem/wanem.h"

static void wan_usage(FILE *f) {
    fputs("usage: dmzbench wan up     [DESCRIPTION] [--no-measure] [--relay] [--quiet]\n"
          "       dmzbench wan down   [--prefix P]\n"
          "       dmzbench wan status [--prefix P]\n"
          "       dmzbench wan run    [DESCRIPTION] -- COMMAND...   (up, run, down: always, also on a signal)\n"
          "       dmzbench wan ping   SITE_A SITE_B [--count N] [--interval S] [--prefix P]  (UDP echo: RTT, loss)\n"
          "       dmzbench wan env    [--prefix P]   (shell lines: DMZBENCH_WAN_FILE, the MPI settings, namespaces)\n"
          "       dmzbench wan model  SWEEPDIR       (the alpha-beta model beside a sweep's measurements)\n"
          "DESCRIPTION: --file F (lines such as 'siteA-siteB rtt=20ms rate=10gbit loss=0.01% jitter=1ms',\n"
          "  'sites A B C', 'seed N', 'mtu N', 'queue 64MiB'), --link 'A-B rtt=...' (repeatable),\n"
          "  --sites A,B,...; or for two sites siteA and siteB: --rtt 1ms --rate 10gbit --loss 0% --jitter 0ms\n"
          "  (defaults 1 ms, 10 gbit, 0%, 0). --prefix P (names P-*, default dmz), --net 10.213, --seed N.\n"
          "Loss and jitter apply to each direction; rate is per direction (tc's L2 bytes).\n",
          f);
}

typedef struct wan_args {
    dmz_wan_desc d;
    dmz_wan_up_options up;
    char shorthand[256];
    bool any_link, any_short;
    int count;
    double interval;
    int rest;  /* argv index after "--" (run), or of the first positional */
} wan_args;

static int parse(int argc, char **argv, wan_args *a, char *err) {
    dmz_wan_desc_init(&a->d);
    a->up = (dmz_wan_up_options){.measure_relay = true};
    a->count = 1000;
    a->interval = 0.001;
    double rtt = 1e-3, jitter = 0, rate = 10e9;
    char loss[64] = "0";
    static const struct option options[] = {
        {"file", required_argument, 0, 'f'},  {"link", required_argument, 0, 'l'},   {"sites", required_argument, 0, 'S'},
        {"rtt", required_argument, 0, 'r'},   {"rate", required_argument, 0, 'R'},   {"loss", required_argument, 0, 'L'},
        {"jitter", required_argument, 0, 'j'}, {"prefix", required_argument, 0, 'p'}, {"net", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},  {"no-measure", no_argument, 0, 'M'},   {"relay", no_argument, 0, 'Y'},
        {"quiet", no_argument, 0, 'q'},       {"count", required_argument, 0, 'c'},  {"interval", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int o, rc = DMZ_OK;
    char line[512];
    /* --sites first, wherever it stands: links are checked against it */
    const char *files[16], *links[64];
    int n_files = 0, n_links = 0;
    bool net_given = false;
    while (!rc && (o = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (o) {
        case 'f':
            if (n_files == 16) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "at most 16 --file");
            else files[n_files++] = optarg, a->any_link = true;
            break;
        case 'l':
            if (n_links == 64) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "at most 64 --link");
            else links[n_links++] = optarg, a->any_link = true;
            break;
        case 'S':
            snprintf(line, sizeof line, "sites %s", optarg);
            rc = dmz_wan_parse_line(&a->d, line, "--sites", err);
            break;
        case 'r': case 'j':
            if (dmz_wan_parse_time(optarg, o == 'r' ? &rtt : &jitter) || (o == 'r' ? rtt : jitter) < 0)
                rc = dmz_errorf(err, DMZ_EXIT_USAGE, "bad link description token '--%s %s': a non-negative time with us, ms or s",
                                o == 'r' ? "rtt" : "jitter", optarg);
            a->any_short = true;
            break;
        case 'R':
            if (dmz_wan_parse_rate(optarg, &rate) || rate <= 0)
                rc = dmz_errorf(err, DMZ_EXIT_USAGE, "bad link description token '--rate %s': a rate above 0 with bit, kbit, mbit or gbit", optarg);
            a->any_short = true;
            break;
        case 'L': snprintf(loss, sizeof loss, "%s", optarg), a->any_short = true; break;
        case 'p':
            if (strlen(optarg) >= sizeof a->d.prefix || !optarg[0] || strchr(optarg, '-') || strchr(optarg, '/'))
                rc = dmz_errorf(err, DMZ_EXIT_USAGE, "bad --prefix '%s': 1 to 8 characters, no '-' or '/'", optarg);
            else snprintf(a->d.prefix, sizeof a->d.prefix, "%s", optarg);
            break;
        case 'n': snprintf(a->d.net, sizeof a->d.net, "%s", optarg), net_given = true; break;
        case 's': a->d.seed = strtoull(optarg, NULL, 10); break;
        case 'M': a->up.measure_relay = false; break;
        case 'Y': a->up.force_relay = true; break;
        case 'q': a->up.quiet = true; break;
        case 'c': a->count = atoi(optarg); break;
        case 'i': a->interval = atof(optarg); break;
        case 'h': wan_usage(stdout); return -1;
        default: return dmz_errorf(err, DMZ_EXIT_USAGE, "bad option '%s' (dmzbench wan --help)", argv[optind - 1]);
        }
    }
    /* each prefix its own addresses by default: two WANs up at once must not share a subnet */
    if (!net_given) dmz_wan_default_net(a->d.prefix, a->d.net, sizeof a->d.net);
    for (int i = 0; i < n_files && !rc; i++) rc = dmz_wan_parse_file(&a->d, files[i], err);
    for (int i = 0; i < n_links && !rc; i++) rc = dmz_wan_parse_line(&a->d, links[i], "--link", err);
    if (rc) return rc;
    a->rest = optind;
    if (a->any_short && a->any_link)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "--rtt/--rate/--loss/--jitter describe the one link siteA-siteB: not with --file or --link");
    if (!a->any_link) {
        snprintf(a->shorthand, sizeof a->shorthand, "siteA-siteB rtt=%.9gus rate=%.9gbit loss=%s jitter=%.9gus", rtt * 1e6,
                 rate, loss, jitter * 1e6);
        rc = dmz_wan_parse_line(&a->d, a->shorthand, NULL, err);
    }
    return rc;
}

static int load_desc(const char *prefix, dmz_wan_desc *d, char *err) {
    char dir[512], path[600];
    dmz_wan_state_dir(prefix, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/desc.txt", dir);
    dmz_wan_desc_init(d);
    snprintf(d->prefix, sizeof d->prefix, "%s", prefix);
    int rc = dmz_wan_parse_file(d, path, err);
    if (rc) dmz_errorf(err, DMZ_EXIT_FAIL, "nothing up under prefix '%s' (%s missing or bad): run dmzbench wan up", prefix, path);
    return rc;
}

static void print_env(const char *prefix) {
    char err[DMZ_ERR_LEN];
    cJSON *st = dmz_wan_load_state(prefix, err);
    if (!st) return;
    printf("export DMZBENCH_WAN_FILE=%s/wan.json\n", cJSON_GetObjectItem(st, "state_dir")->valuestring);
    const cJSON *kv;
    char x[1024] = "";
    size_t k = 0;
    cJSON_ArrayForEach(kv, cJSON_GetObjectItem(st, "mpi")) {
        printf("export %s=%s\n", kv->string, kv->valuestring);
        k += (size_t)snprintf(x + k, sizeof x - k, "-x %s ", kv->string);
    }
    printf("export WAN_MPI_X='%s-x DMZBENCH_WAN_FILE'\n", x);
    cJSON_ArrayForEach(kv, cJSON_GetObjectItem(st, "sites"))
        printf("export WAN_NS_%s=%s\n", cJSON_GetObjectItem(kv, "name")->valuestring,
               cJSON_GetObjectItem(kv, "netns")->valuestring);
    cJSON_Delete(st);
}

static void export_env(const char *prefix) {
    char err[DMZ_ERR_LEN];
    cJSON *st = dmz_wan_load_state(prefix, err);
    if (!st) return;
    char path[600];
    snprintf(path, sizeof path, "%s/wan.json", cJSON_GetObjectItem(st, "state_dir")->valuestring);
    setenv("DMZBENCH_WAN_FILE", path, 1);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, cJSON_GetObjectItem(st, "mpi")) setenv(kv->string, kv->valuestring, 1);
    cJSON_ArrayForEach(kv, cJSON_GetObjectItem(st, "sites")) {
        char name[64];
        snprintf(name, sizeof name, "WAN_NS_%s", cJSON_GetObjectItem(kv, "name")->valuestring);
        setenv(name, cJSON_GetObjectItem(kv, "netns")->valuestring, 1);
    }
    cJSON_Delete(st);
}

static volatile sig_atomic_t run_signal;
static void on_run_signal(int s) { run_signal = s; }

/* up, the command (its own process group, the WAN's variables set), down. */
static int wan_run(wan_args *a, int argc, char **argv, char *err) {
    if (a->rest >= argc) return dmz_errorf(err, DMZ_EXIT_USAGE, "wan run: no command after '--'");
    int rc = dmz_wan_up(&a->d, &a->up, err);
    if (!rc && run_signal) rc = dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by signal %d while the sites came up", (int)run_signal);
    if (rc) {
        char e2[DMZ_ERR_LEN];
        dmz_wan_down(a->d.prefix, true, e2);
        return rc;
    }
    export_env(a->d.prefix);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL), signal(SIGTERM, SIG_DFL), signal(SIGHUP, SIG_DFL);
        execvp(argv[a->rest], argv + a->rest);
        fprintf(stderr, "dmzbench wan run: %s: %s\n", argv[a->rest], strerror(errno));
        _exit(127);
    }
    int st = 0, forwarded = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (run_signal && !forwarded) kill(-pid, (int)run_signal), forwarded = 1;
    }
    int down = dmz_wan_down(a->d.prefix, a->up.quiet, err);
    if (run_signal) return DMZ_EXIT_FAIL;
    if (down) return down;
    return WIFEXITED(st) ? WEXITSTATUS(st) : DMZ_EXIT_FAIL;
}

static int site_of(const dmz_wan_desc *d, const char *name, char *err) {
    for (int i = 0; i < d->n_sites; i++)
        if (strcmp(d->sites[i], name) == 0) return i;
    return dmz_errorf(err, DMZ_EXIT_USAGE, "unknown site '%s'", name), -1;
}

int dmz_wan_main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        wan_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? DMZ_EXIT_USAGE : DMZ_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "model") == 0) return dmz_wan_model_main(argc - 1, argv + 1);
    static wan_args a;
    memset(&a, 0, sizeof a);
    char err[DMZ_ERR_LEN];
    int rc = parse(argc - 1, argv + 1, &a, err);
    if (rc == -1) return DMZ_OK;
    int rest = a.rest + 1; /* index into argv */
    a.rest = rest;
    bool needs_desc = strcmp(sub, "up") == 0 || strcmp(sub, "run") == 0;
    if (!rc && needs_desc) rc = dmz_wan_desc_check(&a.d, err);
    if (rc) {
        fprintf(stderr, "dmzbench wan %s: %s\n", sub, err);
        return rc;
    }
    /* a signal during up or run: the sites still come down (SIGKILL excepted: then `wan down`) */
    struct sigaction on_sig = {.sa_handler = on_run_signal};
    sigaction(SIGINT, &on_sig, NULL);
    sigaction(SIGTERM, &on_sig, NULL);
    sigaction(SIGHUP, &on_sig, NULL);
    if (strcmp(sub, "up") == 0) rc = rest < argc ? dmz_errorf(err, DMZ_EXIT_USAGE, "unexpected argument '%s'", argv[rest])
                                                 : dmz_wan_up(&a.d, &a.up, err);
    if (strcmp(sub, "up") == 0) {
        if (run_signal) {
            dmz_wan_down(a.d.prefix, true, err);
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "interrupted by signal %d: the sites were taken down again", (int)run_signal);
        }
    } else if (strcmp(sub, "down") == 0) rc = dmz_wan_down(a.d.prefix, a.up.quiet, err);
    else if (strcmp(sub, "status") == 0) rc = dmz_wan_status(a.d.prefix, err);
    else if (strcmp(sub, "env") == 0) {
        dmz_wan_desc d;
        rc = load_desc(a.d.prefix, &d, err);
        if (!rc) print_env(a.d.prefix);
    } else if (strcmp(sub, "run") == 0) rc = wan_run(&a, argc, argv, err);
    else if (strcmp(sub, "ping") == 0) {
        dmz_wan_desc d;
        if (rest + 2 != argc) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "wan ping SITE_A SITE_B");
        if (!rc) rc = load_desc(a.d.prefix, &d, err);
        int sa = rc ? -1 : site_of(&d, argv[rest], err), sb = sa < 0 ? -1 : site_of(&d, argv[rest + 1], err);
        if (!rc && (sa < 0 || sb < 0)) rc = DMZ_EXIT_USAGE;
        dmz_wan_ping_result r;
        if (!rc && (a.count < 1 || a.count > 1000000 || !(a.interval >= 0 && a.interval <= 10)))
            rc = dmz_errorf(err, DMZ_EXIT_USAGE, "--count 1..1000000, --interval 0..10 s");
        if (!rc) rc = dmz_wan_ping(&d, sa, sb, a.count, a.interval, &r, err);
        if (!rc) {
            printf("# wan ping %s -> %s: UDP echo, %d datagrams of 64 B every %g ms\n", argv[rest], argv[rest + 1], r.sent,
                   a.interval * 1e3);
            printf("# %8s %8s %12s %12s %12s %12s %14s\n", "sent", "received", "rtt_min", "rtt_avg", "rtt_max", "loss_rt",
                   "loss_one_way");
            printf("# %8s %8s %12s %12s %12s %12s %14s\n", "", "", "(ms)", "(ms)", "(ms)", "(%)", "(%)");
            printf("  %8d %8d %12.4f %12.4f %12.4f %12.4f %14.4f\n", r.sent, r.received, r.rtt_min_s * 1e3,
                   r.rtt_avg_s * 1e3, r.rtt_max_s * 1e3, r.loss_rt * 100, r.loss_one_way * 100);
        }
    } else {
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "unknown wan command '%s' (up, down, status, run, ping, env, model)", sub);
    }
    if (rc) fprintf(stderr, "dmzbench wan %s: %s\n", sub, err);
    return rc;
}
