/* wan.json (what a run copies into meta.json "wan"), its loading, and `wan status`. */
#include "wanem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dmz.h"
#include "wanem_impl.h"

/* One line of /proc/sys inside site 0 (these TCP settings are per namespace). */
typedef struct read_arg { const char *path; char *out; size_t len; } read_arg;
static int read_sys(void *p) {
    read_arg *a = p;
    FILE *f = fopen(a->path, "r");
    if (!f) return 1;
    char buf[256] = "";
    if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
    fclose(f);
    for (char *c = buf; *c; c++) if (*c == '\t' || *c == '\n') *c = *c == '\t' ? ' ' : '\0';
    printf("%s\n", buf);
    fflush(stdout); /* the child leaves by _exit */
    return 0;
}

static void sys_in(const char *ns, const char *path, char *out, size_t len) {
    /* the child prints; capture through a pipe */
    int p[2];
    out[0] = '\0';
    if (pipe(p)) return;
    fflush(NULL);
    int saved = dup(1);
    dup2(p[1], 1);
    read_arg a = {path, out, len};
    dmz_wan_in_netns(ns, read_sys, &a);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, len - 1);
    out[n > 0 ? n : 0] = '\0';
    close(p[0]);
    char *nl = strchr(out, '\n');
    if (nl) *nl = '\0';
}

static void ompi_param(const char *name, char *out, size_t len) {
    snprintf(out, len, "unavailable (ompi_info not found)");
    FILE *f = popen("ompi_info --param btl tcp --level 9 --parsable 2>/dev/null", "r");
    if (!f) return;
    char line[512], key[128];
    snprintf(key, sizeof key, ":param:%s:value:", name);
    while (fgets(line, sizeof line, f)) {
        char *k = strstr(line, key);
        if (k) {
            snprintf(out, len, "%s", k + strlen(key));
            out[strcspn(out, "\n")] = '\0';
        }
    }
    pclose(f);
}

static cJSON *tcp_json(const dmz_wan_desc *d, double *window) {
    char ns[64], rmem[128], wmem[128], scale[32], snd[64], rcv[64], eager[64];
    dmz_wan_netns(d, 0, ns, sizeof ns);
    sys_in(ns, "/proc/sys/net/ipv4/tcp_rmem", rmem, sizeof rmem);
    sys_in(ns, "/proc/sys/net/ipv4/tcp_wmem", wmem, sizeof wmem);
    sys_in(ns, "/proc/sys/net/ipv4/tcp_adv_win_scale", scale, sizeof scale);
    ompi_param("btl_tcp_sndbuf", snd, sizeof snd);
    ompi_param("btl_tcp_rcvbuf", rcv, sizeof rcv);
    ompi_param("btl_tcp_eager_limit", eager, sizeof eager);
    double r0, r1, r2 = NAN, w0, w1, w2 = NAN;
    if (sscanf(rmem, "%lf %lf %lf", &r0, &r1, &r2) != 3) r2 = NAN;
    if (sscanf(wmem, "%lf %lf %lf", &w0, &w1, &w2) != 3) w2 = NAN;
    /* btl_tcp_sndbuf/rcvbuf 0: Open MPI leaves the kernel's autotuning (up to the max) */
    double sb = atof(snd), rb = atof(rcv);
    *window = dmz_wan_tcp_window_bytes(rb > 0 ? rb : r2, sb > 0 ? sb : w2);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "netns", ns);
    cJSON_AddStringToObject(o, "tcp_rmem", rmem);
    cJSON_AddStringToObject(o, "tcp_wmem", wmem);
    cJSON_AddStringToObject(o, "tcp_adv_win_scale", scale);
    cJSON_AddStringToObject(o, "btl_tcp_sndbuf", snd);
    cJSON_AddStringToObject(o, "btl_tcp_rcvbuf", rcv);
    cJSON_AddStringToObject(o, "btl_tcp_eager_limit", eager); /* above it: a rendezvous, one round trip more */
    cJSON_AddNumberToObject(o, "window_bytes", *window);
    cJSON_AddStringToObject(o, "window_formula",
                            "min(send buffer max, receive buffer max / 2); btl_tcp_*buf 0 = kernel autotuning up to "
                            "tcp_wmem/tcp_rmem max");
    return o;
}

cJSON *dmz_wan_state_json(const dmz_wan_desc *d, bool netem, const char *netem_why, const relay_measure *m,
                         pid_t relay, const char *desc_text) {
    cJSON *o = cJSON_CreateObject();
    char dir[512];
    dmz_wan_state_dir(d->prefix, dir, sizeof dir);
    cJSON_AddStringToObject(o, "prefix", d->prefix);
    cJSON_AddStringToObject(o, "state_dir", dir);
    cJSON_AddStringToObject(o, "emulator", netem ? "netem" : "relay");
    cJSON_AddStringToObject(o, "netem", netem_why);
    cJSON_AddStringToObject(o, "rate_shaper", "htb (kernel) on each site's data egress, one class per peer (L2 bytes)");
    cJSON_AddStringToObject(o, "delay_loss",
                            netem ? "netem child of each htb class"
                                  : "user-space relay (AF_PACKET + virtio-net headers, per-direction FIFO, timerfd); "
                                    "loss per direction by a seeded RNG; jitter never reorders");
    cJSON_AddNumberToObject(o, "seed", (double)d->seed);
    cJSON_AddNumberToObject(o, "mtu", d->mtu);
    cJSON_AddStringToObject(o, "description", desc_text);
    char bridge[32], net_data[32], net_ctl[32];
    snprintf(bridge, sizeof bridge, "%s-br", d->prefix);
    snprintf(net_data, sizeof net_data, "%s.1.0/24", d->net);
    snprintf(net_ctl, sizeof net_ctl, "%s.0.0/24", d->net);
    cJSON_AddStringToObject(o, "bridge", bridge);
    cJSON_AddStringToObject(o, "data_subnet", net_data);
    cJSON_AddStringToObject(o, "control_subnet", net_ctl);
    cJSON *sites = cJSON_AddArrayToObject(o, "sites");
    for (int i = 0; i < d->n_sites; i++) {
        cJSON *s = cJSON_CreateObject();
        char ns[64], ip[32], cip[32], dif[32];
        dmz_wan_netns(d, i, ns, sizeof ns);
        dmz_wan_data_ip(d, i, ip, sizeof ip);
        snprintf(cip, sizeof cip, "%s.0.%d", d->net, i + 1);
        snprintf(dif, sizeof dif, "%s-w%d", d->prefix, i);
        cJSON_AddStringToObject(s, "name", d->sites[i]);
        cJSON_AddStringToObject(s, "netns", ns);
        cJSON_AddStringToObject(s, "data_ip", ip);
        cJSON_AddStringToObject(s, "control_ip", cip);
        cJSON_AddStringToObject(s, "data_if", dif);
        cJSON_AddItemToArray(sites, s);
    }
    double window = NAN;
    cJSON *tcp = tcp_json(d, &window);
    cJSON *links = cJSON_AddArrayToObject(o, "links");
    for (int i = 0; i < d->n_links; i++) {
        const dmz_wan_link *l = &d->links[i];
        cJSON *j = cJSON_CreateObject();
        double bdp = 0, cap = 0;
        bool lim = dmz_wan_window_limited(l->rate_bps, l->rtt_s, window, &bdp, &cap);
        cJSON_AddStringToObject(j, "a", d->sites[l->a]);
        cJSON_AddStringToObject(j, "b", d->sites[l->b]);
        cJSON_AddNumberToObject(j, "rtt_ms", l->rtt_s * 1e3);
        cJSON_AddNumberToObject(j, "one_way_delay_ms", l->rtt_s / 2 * 1e3);
        cJSON_AddNumberToObject(j, "jitter_ms", l->jitter_s * 1e3);
        cJSON_AddNumberToObject(j, "rate_gbps", l->rate_bps / 1e9);
        cJSON_AddNumberToObject(j, "loss_pct_each_way", l->loss * 100);
        cJSON_AddNumberToObject(j, "bdp_bytes", bdp);
        cJSON_AddBoolToObject(j, "window_limited", lim);
        cJSON_AddNumberToObject(j, "window_cap_gbps", cap / 1e9);
        if (!netem && m && isfinite(m->gbps)) cJSON_AddBoolToObject(j, "relay_limited", m->gbps * 1e9 < l->rate_bps);
        cJSON_AddItemToArray(links, j);
    }
    cJSON_AddItemToObject(o, "tcp", tcp);
    if (!netem) {
        cJSON *r = cJSON_AddObjectToObject(o, "relay");
        cJSON_AddNumberToObject(r, "pid", relay);
        cJSON_AddNumberToObject(r, "queue_bytes_per_direction", (double)d->queue_bytes);
        if (m && isfinite(m->gbps)) {
            cJSON_AddNumberToObject(r, "max_gbps", m->gbps);
            cJSON_AddNumberToObject(r, "cpu_pct", m->cpu_pct);
            cJSON_AddStringToObject(r, "measured", m->note);
        } else {
            cJSON_AddStringToObject(r, "max_gbps", "unavailable: not measured (--no-measure)");
        }
    }
    cJSON *mpi = cJSON_AddObjectToObject(o, "mpi");
    cJSON_AddStringToObject(mpi, "PMIX_MCA_ptl_tcp_remote_connections", "1");
    cJSON_AddStringToObject(mpi, "PMIX_MCA_ptl_tcp_if_include", bridge);
    cJSON_AddStringToObject(mpi, "OMPI_MCA_oob_tcp_if_include", net_ctl);
    cJSON_AddStringToObject(mpi, "OMPI_MCA_btl_tcp_if_include", net_data);
    cJSON_AddStringToObject(mpi, "OMPI_MCA_btl", "tcp,self");
    /* ranks that spin without yielding hold the cores the relay and the
     * receiving stack need: measured here, 1-byte one-way latency over
     * loopback TCP 320 us spinning vs 52 us yielding, on 2 busy cores */
    cJSON_AddStringToObject(mpi, "OMPI_MCA_mpi_yield_when_idle", "1");
    return o;
}

cJSON *dmz_wan_load_state(const char *prefix, char *err) {
    char path[600], *text = NULL;
    dmz_wan_state_path(prefix, "wan.json", path, sizeof path);
    if (dmz_read_file(path, 1 << 20, &text, NULL, err)) return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o) dmz_errorf(err, DMZ_EXIT_FAIL, "%s: not JSON", path);
    return o;
}

cJSON *dmz_wan_meta_from_env(void) {
    const char *path = getenv("DMZBENCH_WAN_FILE");
    if (!path || !*path) return NULL;
    char err[DMZ_ERR_LEN], *text = NULL;
    cJSON *o = NULL;
    if (dmz_read_file(path, 1 << 20, &text, NULL, err) == DMZ_OK) o = cJSON_Parse(text);
    else snprintf(err + strlen(err), sizeof err - strlen(err), "%s", "");
    free(text);
    if (!o) {
        o = cJSON_CreateObject();
        char why[DMZ_ERR_LEN + 64];
        snprintf(why, sizeof why, "DMZBENCH_WAN_FILE=%s could not be read as JSON", path);
        cJSON_AddStringToObject(o, "unavailable", why);
    }
    return o;
}

int dmz_wan_status(const char *prefix, char *err) {
    cJSON *st = dmz_wan_load_state(prefix, err);
    char left[2048];
    int n = dmz_wan_leftovers(prefix, left, sizeof left);
    if (!st) {
        if (n) printf("wan status: prefix '%s' is not up, but these are left (dmzbench wan down cleans them): %s\n", prefix, left);
        else printf("wan status: nothing up under prefix '%s'\n", prefix);
        return DMZ_EXIT_FAIL;
    }
    const cJSON *em = cJSON_GetObjectItem(st, "emulator");
    printf("wan status: prefix '%s', emulator %s\n", prefix, cJSON_IsString(em) ? em->valuestring : "?");
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(st, "links")) {
        printf("  %s-%s: rtt %g ms, jitter %g ms, rate %g Gbit/s, loss %g%% each way, BDP %.0f B%s\n",
               cJSON_GetObjectItem(l, "a")->valuestring, cJSON_GetObjectItem(l, "b")->valuestring,
               cJSON_GetObjectItem(l, "rtt_ms")->valuedouble, cJSON_GetObjectItem(l, "jitter_ms")->valuedouble,
               cJSON_GetObjectItem(l, "rate_gbps")->valuedouble, cJSON_GetObjectItem(l, "loss_pct_each_way")->valuedouble,
               cJSON_GetObjectItem(l, "bdp_bytes")->valuedouble,
               cJSON_IsTrue(cJSON_GetObjectItem(l, "window_limited")) ? " (TCP window-limited with these buffers)" : "");
    }
    const cJSON *tcp = cJSON_GetObjectItem(st, "tcp");
    if (tcp)
        printf("  tcp: rmem %s, wmem %s, btl_tcp_sndbuf %s, rcvbuf %s -> window about %.0f B\n",
               cJSON_GetObjectItem(tcp, "tcp_rmem")->valuestring, cJSON_GetObjectItem(tcp, "tcp_wmem")->valuestring,
               cJSON_GetObjectItem(tcp, "btl_tcp_sndbuf")->valuestring, cJSON_GetObjectItem(tcp, "btl_tcp_rcvbuf")->valuestring,
               cJSON_GetObjectItem(tcp, "window_bytes")->valuedouble);
    const cJSON *r = cJSON_GetObjectItem(st, "relay");
    if (r) {
        const cJSON *mx = cJSON_GetObjectItem(r, "max_gbps");
        pid_t pid = dmz_wan_relay_pid(prefix);
        if (cJSON_IsNumber(mx)) printf("  relay: pid %d (%s), measured max %.2f Gbit/s (%s)\n", (int)pid, pid ? "running" : "NOT RUNNING",
                                       mx->valuedouble, cJSON_GetObjectItem(r, "measured")->valuestring);
        else printf("  relay: pid %d (%s), max %s\n", (int)pid, pid ? "running" : "NOT RUNNING", mx->valuestring);
        char path[600], *text = NULL, e2[DMZ_ERR_LEN];
        dmz_wan_state_path(prefix, "relay.stats", path, sizeof path);
        if (dmz_read_file(path, 1 << 16, &text, NULL, e2) == DMZ_OK) {
            for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) printf("    %s\n", line);
            free(text);
        }
    }
    printf("  state: %s/\n", cJSON_GetObjectItem(st, "state_dir")->valuestring);
    cJSON_Delete(st);
    return DMZ_OK;
}
