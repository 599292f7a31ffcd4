/* `dmzbench wan up|down`: namespaces, veths, the control bridge, the shaper,
 * the relay (see wanem.h for the layout). Commands run through ip(8) and
 * tc(8), argv split on spaces (no shell). */
#include "wanem.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/dmz.h"
#include "wanem_impl.h"

/* Runs a command (argv from fmt split on spaces); its stderr goes into err on failure. */
static int cmd(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cmd(char *err, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char copy[1024], *argv[64];
    snprintf(copy, sizeof copy, "%s", line);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t && n < 63; t = strtok_r(NULL, " ", &save)) argv[n++] = t;
    argv[n] = NULL;
    int p[2];
    if (pipe(p)) return dmz_errorf(err, DMZ_EXIT_FAIL, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) dup2(devnull, 1), dup2(devnull, 0);
        close(p[0]);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char out[512] = "";
    size_t k = 0;
    for (ssize_t r; k < sizeof out - 1 && (r = read(p[0], out + k, sizeof out - 1 - k)) > 0;) k += (size_t)r;
    out[k] = '\0';
    char drain[256];
    while (read(p[0], drain, sizeof drain) > 0) {}
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return DMZ_OK;
    for (char *nl; (nl = strchr(out, '\n'));) *nl = ' ';
    return dmz_errorf(err, DMZ_EXIT_FAIL, "`%s` failed: %s", line, out[0] ? out : "(no message)");
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------- state */

void dmz_wan_state_path(const char *prefix, const char *file, char *out, size_t len) {
    char dir[512];
    dmz_wan_state_dir(prefix, dir, sizeof dir);
    snprintf(out, len, "%s/%s", dir, file);
}

/* The relay's pid when the pidfile names a live process called dmzrelay; else 0. */
pid_t dmz_wan_relay_pid(const char *prefix) {
    char path[600], *text = NULL, err[DMZ_ERR_LEN];
    dmz_wan_state_path(prefix, "relay.pid", path, sizeof path);
    if (dmz_read_file(path, 64, &text, NULL, err)) return 0;
    pid_t pid = (pid_t)atol(text);
    free(text);
    if (pid <= 1) return 0;
    char comm_path[64], comm[32] = "";
    snprintf(comm_path, sizeof comm_path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(comm_path, "r");
    if (!f) return 0;
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "dmzrelay", 8) == 0 ? pid : 0;
}

static bool starts_with_prefix(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    return strncmp(name, prefix, n) == 0 && name[n] == '-';
}

int dmz_wan_leftovers(const char *prefix, char *out, size_t len) {
    int count = 0;
    size_t k = 0;
    out[0] = '\0';
    const char *dirs[2] = {"/run/netns", "/sys/class/net"};
    const char *what[2] = {"namespace", "interface"};
    for (int i = 0; i < 2; i++) {
        DIR *d = opendir(dirs[i]);
        for (struct dirent *e; d && (e = readdir(d));)
            if (starts_with_prefix(e->d_name, prefix)) {
                count++;
                if (k < len) k += (size_t)snprintf(out + k, len - k, "%s %s; ", what[i], e->d_name);
            }
        if (d) closedir(d);
    }
    pid_t pid = dmz_wan_relay_pid(prefix);
    if (pid) {
        count++;
        if (k < len) k += (size_t)snprintf(out + k, len - k, "relay process %d; ", (int)pid);
    }
    char dir[512];
    dmz_wan_state_dir(prefix, dir, sizeof dir);
    if (exists(dir)) {
        count++;
        if (k < len) snprintf(out + k, len - k, "state directory %s; ", dir);
    }
    return count;
}

static void stop_relay(const char *prefix) {
    pid_t pid = dmz_wan_relay_pid(prefix);
    if (!pid) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200 && kill(pid, 0) == 0; i++) {
        waitpid(pid, NULL, WNOHANG); /* our own child when `wan run` started it */
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (kill(pid, 0) == 0) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

int dmz_wan_down(const char *prefix, bool quiet, char *err) {
    char scratch[DMZ_ERR_LEN];
    stop_relay(prefix);
    /* namespaces first: their interfaces (and qdiscs) go with them */
    DIR *d = opendir("/run/netns");
    for (struct dirent *e; d && (e = readdir(d));)
        if (starts_with_prefix(e->d_name, prefix)) cmd(scratch, "ip netns delete %s", e->d_name);
    if (d) closedir(d);
    d = opendir("/sys/class/net");
    for (struct dirent *e; d && (e = readdir(d));)
        if (starts_with_prefix(e->d_name, prefix)) cmd(scratch, "ip link delete %s", e->d_name);
    if (d) closedir(d);
    char dir[512];
    dmz_wan_state_dir(prefix, dir, sizeof dir);
    remove_tree(dir);
    char left[2048];
    int n = 0;
    for (int tries = 0; tries < 50 && (n = dmz_wan_leftovers(prefix, left, sizeof left)); tries++) {
        struct timespec ts = {0, 20000000}; /* veth deletion can lag a namespace's */
        nanosleep(&ts, NULL);
    }
    if (n) return dmz_errorf(err, DMZ_EXIT_FAIL, "wan down: left behind: %s", left);
    if (!quiet) printf("wan down: nothing left under prefix '%s'\n", prefix);
    return DMZ_OK;
}

/* ---------------------------------------------------------------- up */

static int sysctl_in(const char *ns, const char *path, const char *value, char *err) {
    return cmd(err, "ip netns exec %s sysctl -qw %s=%s", ns, path, value);
}

static int build_site(const dmz_wan_desc *d, int i, char *err) {
    const char *p = d->prefix;
    char ns[64];
    dmz_wan_netns(d, i, ns, sizeof ns);
    int rc = cmd(err, "ip netns add %s", ns);
    if (!rc) rc = cmd(err, "ip -n %s link set lo up", ns);
    if (!rc) rc = sysctl_in(ns, "net.ipv6.conf.all.disable_ipv6", "1", err);
    /* control: to the bridge in the root namespace */
    if (!rc) rc = cmd(err, "ip link add %s-c%d type veth peer name %s-c%dh", p, i, p, i);
    if (!rc) rc = cmd(err, "ip link set %s-c%d netns %s", p, i, ns);
    if (!rc) rc = cmd(err, "ip link set %s-c%dh master %s-br up", p, i, p);
    if (!rc) rc = cmd(err, "ip -n %s addr add %s.0.%d/24 dev %s-c%d", ns, d->net, i + 1, p, i);
    if (!rc) rc = cmd(err, "ip -n %s link set %s-c%d up", ns, p, i);
    /* data: to the hub */
    if (!rc) rc = cmd(err, "ip link add %s-w%d mtu %d type veth peer name %s-w%dh mtu %d", p, i, d->mtu, p, i, d->mtu);
    if (!rc) rc = cmd(err, "ip link set %s-w%d netns %s", p, i, ns);
    if (!rc) rc = cmd(err, "ip link set %s-w%dh netns %s-hub", p, i, p);
    if (!rc) rc = cmd(err, "ip -n %s addr add %s.1.%d/24 dev %s-w%d", ns, d->net, i + 1, p, i);
    if (!rc) rc = cmd(err, "ip -n %s link set %s-w%d up", ns, p, i);
    if (!rc) rc = cmd(err, "ip -n %s-hub link set %s-w%dh up", p, p, i);
    return rc;
}

/* netem where the kernel has it: tried on site 0's data interface. */
static bool have_netem(const dmz_wan_desc *d, char *why, size_t len) {
    char ns[64], err[DMZ_ERR_LEN];
    dmz_wan_netns(d, 0, ns, sizeof ns);
    if (cmd(err, "tc -n %s qdisc add dev %s-w0 root handle 9: netem delay 1ms", ns, d->prefix) == 0) {
        cmd(err, "tc -n %s qdisc del dev %s-w0 root", ns, d->prefix);
        snprintf(why, len, "netem available (tc qdisc netem accepted)");
        return true;
    }
    snprintf(why, len, "netem unavailable: %s", err);
    return false;
}

/* htb on each site's data egress: one class per peer at the link's rate,
 * chosen by the peer's address; other frames (ARP) in a fast default class.
 * With netem, each class gets a netem child for delay, jitter and loss. */
static int shape_site(const dmz_wan_desc *d, int i, bool netem, char *err) {
    char ns[64];
    dmz_wan_netns(d, i, ns, sizeof ns);
    const char *p = d->prefix;
    int rc = cmd(err, "tc -n %s qdisc replace dev %s-w%d root handle 1: htb default 99", ns, p, i);
    if (!rc) rc = cmd(err, "tc -n %s class add dev %s-w%d parent 1: classid 1:99 htb rate 100gbit", ns, p, i);
    for (int j = 0; j < d->n_sites && !rc; j++) {
        const dmz_wan_link *l = j == i ? NULL : dmz_wan_find_link(d, i, j);
        if (!l) continue;
        /* burst: 1 ms at the rate, at least two 64 KiB GSO frames */
        double burst = fmax(l->rate_bps / 8 * 1e-3, 131072);
        rc = cmd(err, "tc -n %s class add dev %s-w%d parent 1: classid 1:%d htb rate %.0fbit ceil %.0fbit burst %.0f cburst %.0f",
                 ns, p, i, 10 + j, l->rate_bps, l->rate_bps, burst, burst);
        if (!rc)
            rc = cmd(err, "tc -n %s filter add dev %s-w%d parent 1: protocol ip prio 1 u32 match ip dst %s.1.%d/32 flowid 1:%d",
                     ns, p, i, d->net, j + 1, 10 + j);
        if (!rc && netem) {
            char jit[64] = "";
            if (l->jitter_s > 0) snprintf(jit, sizeof jit, " %.3fus", l->jitter_s * 1e6);
            rc = cmd(err, "tc -n %s qdisc add dev %s-w%d parent 1:%d handle %d: netem delay %.3fus%s loss %.6f%% limit 100000",
                     ns, p, i, 10 + j, 10 + j, l->rtt_s / 2 * 1e6, jit, l->loss * 100);
        }
    }
    return rc;
}

static pid_t start_relay(const dmz_wan_desc *d, char *err) {
    char hub[64], pidfile[600], stats[600], log[600];
    snprintf(hub, sizeof hub, "%s-hub", d->prefix);
    dmz_wan_state_path(d->prefix, "relay.pid", pidfile, sizeof pidfile);
    dmz_wan_state_path(d->prefix, "relay.stats", stats, sizeof stats);
    dmz_wan_state_path(d->prefix, "relay.log", log, sizeof log);
    int rdy[2];
    if (pipe(rdy)) return dmz_errorf(err, DMZ_EXIT_FAIL, "pipe: %s", strerror(errno)), -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(rdy[0]);
        setsid();
        int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        if (lfd >= 0) dup2(lfd, 1), dup2(lfd, 2);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != rdy[1]) close(fd);
        prctl(PR_SET_NAME, "dmzrelay");
        char ports[DMZ_WAN_MAX_SITES][32];
        const char *pp[DMZ_WAN_MAX_SITES];
        for (int i = 0; i < d->n_sites; i++) snprintf(ports[i], sizeof ports[i], "%s-w%dh", d->prefix, i), pp[i] = ports[i];
        char e[DMZ_ERR_LEN], path[128];
        snprintf(path, sizeof path, "/run/netns/%s", hub);
        int nfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, CLONE_NEWNET) != 0) {
            fprintf(stderr, "relay: cannot enter %s: %s\n", hub, strerror(errno));
            _exit(1);
        }
        char me[32];
        int n = snprintf(me, sizeof me, "%d\n", (int)getpid());
        if (dmz_write_file_atomic(pidfile, me, (size_t)n, e)) _exit(1);
        fprintf(stderr, "relay %d: %d ports, seed %llu\n", (int)getpid(), d->n_sites, (unsigned long long)d->seed);
        int rc = dmz_wan_relay_run(d, pp, rdy[1], stats, e);
        if (rc) fprintf(stderr, "relay: %s\n", e);
        unlink(pidfile);
        _exit(rc);
    }
    close(rdy[1]);
    struct pollfd pf = {.fd = rdy[0], .events = POLLIN};
    char c = 0;
    if (pid < 0 || poll(&pf, 1, 5000) != 1 || read(rdy[0], &c, 1) != 1 || c != 'R') {
        close(rdy[0]);
        if (pid > 0) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "the relay did not start (see %s)", log), -1;
    }
    close(rdy[0]);
    return pid;
}

static double proc_cpu_s(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}


/* The relay alone: zero delay, no loss, no shaper; TCP site 0 -> site 1. */
static int measure_relay(const dmz_wan_desc *d, relay_measure *m, char *err) {
    dmz_wan_desc z = *d;
    for (int i = 0; i < z.n_links; i++) z.links[i].rtt_s = z.links[i].jitter_s = z.links[i].loss = 0;
    pid_t pid = start_relay(&z, err);
    if (pid < 0) return DMZ_EXIT_FAIL;
    double bps = NAN, c0 = proc_cpu_s(pid), t0 = dmz_now_s();
    m->seconds = 1.0;
    int rc = dmz_wan_tcp_blast(&z, z.links[0].a, z.links[0].b, m->seconds, &bps, err);
    double c1 = proc_cpu_s(pid), t1 = dmz_now_s();
    char pidfile[600];
    dmz_wan_state_path(d->prefix, "relay.pid", pidfile, sizeof pidfile);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(pidfile);
    char stats[600];
    dmz_wan_state_path(d->prefix, "relay.stats", stats, sizeof stats);
    unlink(stats); /* the measurement's counters are not the link's */
    m->gbps = bps / 1e9;
    m->cpu_pct = (c1 - c0) / (t1 - t0) * 100;
    double la[3] = {NAN, NAN, NAN};
    getloadavg(la, 3);
    snprintf(m->note, sizeof m->note,
             "one TCP stream %s->%s for %.0f s through zero-delay links, before shaping; relay CPU %.0f%% of a core; "
             "%ld CPUs, load average %.2f (shared machine: noisy)",
             d->sites[d->links[0].a], d->sites[d->links[0].b], m->seconds, m->cpu_pct, sysconf(_SC_NPROCESSORS_ONLN), la[0]);
    return rc;
}

static bool already_up(const dmz_wan_desc *d, const char *text) {
    char path[600], *old = NULL, err[DMZ_ERR_LEN];
    dmz_wan_state_path(d->prefix, "desc.txt", path, sizeof path);
    if (dmz_read_file(path, 1 << 20, &old, NULL, err)) return false;
    bool same = strcmp(old, text) == 0;
    free(old);
    if (!same) return false;
    for (int i = 0; i < d->n_sites; i++) {
        char ns[64], p[128];
        dmz_wan_netns(d, i, ns, sizeof ns);
        snprintf(p, sizeof p, "/run/netns/%s", ns);
        if (!exists(p)) return false;
    }
    cJSON *st = dmz_wan_load_state(d->prefix, err);
    bool netem = st && cJSON_IsString(cJSON_GetObjectItem(st, "emulator")) &&
                 strcmp(cJSON_GetObjectItem(st, "emulator")->valuestring, "netem") == 0;
    cJSON_Delete(st);
    return st && (netem || dmz_wan_relay_pid(d->prefix) > 0);
}

/* Another interface of the root namespace holding an address in NET.0/16
 * (another WAN, a real network): refuse rather than route into it. */
static int net_in_use(const dmz_wan_desc *d, char *err) {
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0) return DMZ_OK;
    int rc = DMZ_OK;
    char want[24];
    snprintf(want, sizeof want, "%s.", d->net);
    for (struct ifaddrs *i = ifa; i && !rc; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, sizeof ip);
        if (strncmp(ip, want, strlen(want)) == 0)
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "the addresses %s.0.0/16 are in use here (%s on %s): pick another --net",
                            d->net, ip, i->ifa_name);
    }
    freeifaddrs(ifa);
    return rc;
}

int dmz_wan_up(const dmz_wan_desc *d, const dmz_wan_up_options *o, char *err) {
    char text[8192];
    dmz_wan_desc_format(d, text, sizeof text);
    if (already_up(d, text)) {
        if (!o->quiet) printf("wan up: already up with this description (prefix '%s'): nothing changed\n", d->prefix);
        return DMZ_OK;
    }
    if (geteuid() != 0) return dmz_errorf(err, DMZ_EXIT_FAIL, "wan up needs root (network namespaces, veth, tc)");
    int rc = dmz_wan_down(d->prefix, true, err);
    if (!rc) rc = net_in_use(d, err);
    char dir[512], path[600];
    dmz_wan_state_dir(d->prefix, dir, sizeof dir);
    if (!rc) rc = dmz_mkdirs(dir, err);
    const char *p = d->prefix;
    if (!rc) rc = cmd(err, "ip netns add %s-hub", p);
    if (!rc) {
        char hub[32];
        snprintf(hub, sizeof hub, "%s-hub", p);
        rc = sysctl_in(hub, "net.ipv6.conf.all.disable_ipv6", "1", err);
    }
    if (!rc) rc = cmd(err, "ip link add %s-br type bridge", p);
    if (!rc) rc = cmd(err, "ip addr add %s.0.254/24 dev %s-br", d->net, p);
    if (!rc) rc = cmd(err, "ip link set %s-br up", p);
    for (int i = 0; i < d->n_sites && !rc; i++) rc = build_site(d, i, err);
    char netem_why[DMZ_ERR_LEN + 32] = "";
    bool netem = !rc && have_netem(d, netem_why, sizeof netem_why) && !o->force_relay;
    relay_measure m = {.gbps = NAN};
    pid_t relay = 0;
    if (!rc && !netem) {
        /* the hub-side interfaces carry no addresses; the relay switches between them */
        if (o->measure_relay) {
            rc = measure_relay(d, &m, err);
            if (!rc && !o->quiet) printf("wan up: relay alone (zero delay, no shaper): %.2f Gbit/s, %.0f%% of a core\n", m.gbps, m.cpu_pct);
        }
        if (!rc) relay = start_relay(d, err);
        if (relay < 0) rc = DMZ_EXIT_FAIL;
    }
    for (int i = 0; i < d->n_sites && !rc; i++) rc = shape_site(d, i, netem, err);
    if (!rc) {
        dmz_wan_state_path(p, "desc.txt", path, sizeof path);
        rc = dmz_write_file_atomic(path, text, strlen(text), err);
    }
    if (!rc) {
        cJSON *st = dmz_wan_state_json(d, netem, netem_why, o->measure_relay ? &m : NULL, relay, text);
        char *js = cJSON_Print(st);
        dmz_wan_state_path(p, "wan.json", path, sizeof path);
        rc = dmz_write_file_atomic(path, js, strlen(js), err);
        free(js);
        cJSON_Delete(st);
    }
    if (rc) {
        char e2[DMZ_ERR_LEN];
        dmz_wan_down(p, true, e2); /* nothing half-built stays */
        return rc;
    }
    if (!o->quiet) {
        printf("wan up: %d sites under prefix '%s' (%s; rate by htb)\n", d->n_sites, p,
               netem ? "delay/loss by netem" : "delay/loss by the user-space relay");
        for (int i = 0; i < d->n_links; i++) {
            const dmz_wan_link *l = &d->links[i];
            printf("  %s-%s: rtt %.3g ms, jitter %.3g ms, rate %.4g Gbit/s, loss %.4g%% each way\n", d->sites[l->a],
                   d->sites[l->b], l->rtt_s * 1e3, l->jitter_s * 1e3, l->rate_bps / 1e9, l->loss * 100);
        }
        if (!netem && isfinite(m.gbps))
            for (int i = 0; i < d->n_links; i++)
                if (d->links[i].rate_bps > m.gbps * 1e9)
                    printf("  note: %s-%s is configured at %.4g Gbit/s, above the relay's measured %.2f Gbit/s: "
                           "there the relay, not the link, limits throughput\n",
                           d->sites[d->links[i].a], d->sites[d->links[i].b], d->links[i].rate_bps / 1e9, m.gbps);
        dmz_wan_state_path(p, "wan.json", path, sizeof path);
        printf("  state: %s (export DMZBENCH_WAN_FILE=%s to record it in meta.json)\n", path, path);
    }
    return DMZ_OK;
}

