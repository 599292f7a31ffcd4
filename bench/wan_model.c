/* `dmzbench wan model SWEEPDIR`: the α–β model beside a sweep's measurements.
 *
 * SWEEPDIR/points.csv (bench/wan_sweep.sh writes it), one row per training run:
 *   model,mode,rtt_ms,rate_gbps,loss_pct,run_dir,probe_csv,single_dir,wan_json
 * probe_csv: a 3-rank `dmzbench probe` at that point (rank 0 and 1 at site A,
 * rank 2 at site B: the async-ps layout); single_dir: a --mode single run of
 * the same model (the compute time per step).
 *
 * Two predictions per point, both from the probe's α and β:
 *   ring   the textbook: sync = compute + 2(p−1)α + 2(p−1)/p·n·β; async-ps
 *          worker round trip = compute + 2(α + nβ) + update;
 *   as-run what net/comm_mpi.c and Open MPI 4.1 do on the wire: the
 *          non-blocking reduce-scatter of libnbc is a binomial reduce to rank 0
 *          then a linear scatter, the all-gather is linear, so for p = 2 an
 *          all-reduce is three messages in sequence (n, n/2, n/2); a message
 *          above btl_tcp_eager_limit waits for a rendezvous (RTS/CTS), one
 *          round trip more: msg(m) = α + mβ (+ 2α above the limit).
 * Writes sweep.csv, model_error.csv, table.txt, the figure wan-sweep.{png,svg}. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/csvio.h"
#include "common/dmz.h"
#include "net/wanem/wanem.h"

enum { MAX_ROWS = 4096, MAX_COLS = 64 };

typedef struct table { int rows, cols; char *cell[MAX_ROWS][MAX_COLS]; } table;

static int add_row(void *u, char **f, int n, long line, char *err) {
    table *t = u;
    (void)line, (void)err;
    if (t->rows == MAX_ROWS) return DMZ_OK;
    if (t->rows == 0) t->cols = n < MAX_COLS ? n : MAX_COLS;
    for (int i = 0; i < t->cols; i++) t->cell[t->rows][i] = strdup(i < n ? f[i] : "");
    t->rows++;
    return DMZ_OK;
}

static table *load(const char *path, char *err) {
    table *t = calloc(1, sizeof *t);
    if (t && dmz_csv_each_row(path, add_row, t, err) == DMZ_OK && t->rows > 0) return t;
    free(t);
    return NULL;
}

static void unload(table *t) {
    for (int r = 0; t && r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) free(t->cell[r][c]);
    free(t);
}

static const char *get(const table *t, int row, const char *col) {
    for (int c = 0; c < t->cols; c++)
        if (strcmp(t->cell[0][c], col) == 0) return t->cell[row][c];
    return "";
}

static double num(const table *t, int row, const char *col) {
    const char *v = get(t, row, col);
    char *end;
    double x = strtod(v, &end);
    return end == v ? NAN : x;
}

/* α and β of a pair from a probe.csv (dmz_wan_model_fit). */
static dmz_wan_ab probe_ab(const table *p, int a, int b, double *peak_gbps) {
    double bytes[64], t[64];
    int k = 0;
    *peak_gbps = NAN;
    for (int r = 1; r < p->rows && k < 64; r++) {
        if (strcmp(get(p, r, "kind"), "pingpong") != 0) continue;
        if ((int)num(p, r, "rank_a") != a || (int)num(p, r, "rank_b") != b) continue;
        bytes[k] = num(p, r, "bytes"), t[k++] = num(p, r, "latency_us") * 1e-6;
        double bw = num(p, r, "bandwidth_gbps");
        if (!(*peak_gbps >= bw)) *peak_gbps = bw;
    }
    return dmz_wan_model_fit(bytes, t, k);
}

static double msg_s(dmz_wan_ab ab, double m, double eager) { return dmz_wan_model_message_s(ab, m, eager); }

typedef struct point {
    char model[16], mode[16];
    double rtt_ms, rate_gbps, loss_pct;
    double measured, ring, asrun, single, sp_meas, sp_pred;
    double comm_meas, comm_model; /* the link alone: per step of rank 0 (sync) or per push of the WAN worker */
    double alpha_us, beta_ns, probe_gbps, bdp, window, n_bytes;
    bool window_limited, relay_limited, ok;
    char note[256], run[600];
} point;

static void read_wan(const char *path, double *window, double *eager, bool *wl, bool *rl, double *bdp) {
    char err[DMZ_ERR_LEN], *text = NULL;
    *window = NAN, *eager = 65536, *wl = *rl = false, *bdp = NAN;
    if (!path[0] || dmz_read_file(path, 1 << 20, &text, NULL, err)) return;
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *tcp = cJSON_GetObjectItem(o, "tcp");
    const cJSON *w = cJSON_GetObjectItem(tcp, "window_bytes"), *e = cJSON_GetObjectItem(tcp, "btl_tcp_eager_limit");
    if (cJSON_IsNumber(w)) *window = w->valuedouble;
    if (cJSON_IsString(e) && atof(e->valuestring) > 0) *eager = atof(e->valuestring);
    const cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "links"), 0);
    *wl = cJSON_IsTrue(cJSON_GetObjectItem(l, "window_limited"));
    *rl = cJSON_IsTrue(cJSON_GetObjectItem(l, "relay_limited"));
    const cJSON *b = cJSON_GetObjectItem(l, "bdp_bytes");
    if (cJSON_IsNumber(b)) *bdp = b->valuedouble;
    cJSON_Delete(o);
}

static int model_point(const table *pts, int r, point *pt, char *err) {
    memset(pt, 0, sizeof *pt);
    snprintf(pt->model, sizeof pt->model, "%s", get(pts, r, "model"));
    snprintf(pt->mode, sizeof pt->mode, "%s", get(pts, r, "mode"));
    snprintf(pt->run, sizeof pt->run, "%s", get(pts, r, "run_dir"));
    pt->rtt_ms = num(pts, r, "rtt_ms"), pt->rate_gbps = num(pts, r, "rate_gbps"), pt->loss_pct = num(pts, r, "loss_pct");
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.csv", pt->run);
    table *run = load(path, err);
    snprintf(path, sizeof path, "%s/summary.csv", get(pts, r, "single_dir"));
    table *single = load(path, err);
    table *probe = load(get(pts, r, "probe_csv"), err);
    snprintf(path, sizeof path, "%s/net.csv", pt->run);
    table *net = load(path, err);
    int rc = DMZ_OK;
    if (!run || !single || !probe || !net) {
        rc = dmz_errorf(err, DMZ_EXIT_FAIL, "points.csv row %d: missing %s", r,
                        !run ? "the run's summary.csv" : !single ? "the single run's summary.csv" : !probe ? "the probe CSV" : "net.csv");
        goto out;
    }
    bool ps = strcmp(pt->mode, "async-ps") == 0;
    pt->n_bytes = num(net, 1, "size_bytes") / (ps ? 2 : 1);
    double steps1 = num(single, 1, "steps");
    pt->single = num(single, 1, "wall_s") / steps1;
    double t_fb = (num(single, 1, "data_s") + num(single, 1, "fwd_s") + num(single, 1, "bwd_s")) / steps1;
    double t_u = num(single, 1, "update_s") / steps1;
    pt->measured = num(run, 1, "wall_s") / num(run, 1, "steps"); /* rank 0: the server's global steps in async-ps */
    int crow = ps && run->rows > 3 ? 3 : 1; /* async-ps: rank 2, the worker across the WAN */
    pt->comm_meas = num(run, crow, "comm_s") / num(run, crow, "steps");
    double eager, peak_local, peak_wan;
    read_wan(get(pts, r, "wan_json"), &pt->window, &eager, &pt->window_limited, &pt->relay_limited, &pt->bdp);
    dmz_wan_ab wan = probe_ab(probe, 0, 2, &peak_wan), local = probe_ab(probe, 0, 1, &peak_local);
    pt->alpha_us = wan.alpha_s * 1e6, pt->beta_ns = wan.beta_s_per_byte * 1e9, pt->probe_gbps = peak_wan * 8;
    double n = pt->n_bytes;
    if (!ps) {
        pt->ring = dmz_wan_model_sync_step_s(pt->single, wan, 2, n);
        pt->comm_model = dmz_wan_model_allreduce_asrun_s(wan, 2, n, eager);
        pt->asrun = dmz_wan_model_sync_asrun_step_s(pt->single, wan, 2, n, eager);
        pt->sp_meas = 2 * pt->single / pt->measured, pt->sp_pred = 2 * pt->single / pt->asrun;
    } else {
        double comp[2] = {t_fb, t_fb};
        dmz_wan_ab ab[2] = {local, wan};
        pt->ring = dmz_wan_model_ps_step_s(comp, ab, 2, t_u, n);
        /* as run: each push and each pull a message of n bytes (rendezvous above the eager limit) */
        double rate = 0;
        for (int w = 0; w < 2; w++) rate += 1 / (t_fb + t_u + 2 * msg_s(ab[w], n, eager));
        if (t_u > 0 && rate > 1 / t_u) rate = 1 / t_u;
        pt->asrun = 1 / rate;
        pt->comm_model = 2 * msg_s(wan, n, eager) + t_u; /* the WAN worker's push and pull, the server's update between */
        pt->sp_meas = pt->single / pt->measured, pt->sp_pred = pt->single / pt->asrun;
    }
    pt->ok = dmz_wan_model_within(pt->measured, pt->asrun);
    double cap = pt->rtt_ms > 0 ? pt->window * 8 / (pt->rtt_ms * 1e-3) / 1e9 : INFINITY;
    if (pt->window_limited)
        snprintf(pt->note, sizeof pt->note, "window-limited: BDP %.3g MB > TCP window %.3g MB (cap %.3g Gbit/s; probe %.3g)",
                 pt->bdp / 1e6, pt->window / 1e6, cap, pt->probe_gbps);
    else if (pt->relay_limited)
        snprintf(pt->note, sizeof pt->note, "rate above the relay's measured limit: the relay limits");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (ps && cpus < 4) { /* server, two workers and the relay */
        size_t k = strlen(pt->note);
        snprintf(pt->note + k, sizeof pt->note - k, "%s3 ranks + relay on %ld cores: CPU-bound, beyond a link model",
                 k ? "; " : "", cpus);
    }
out:
    unload(run), unload(single), unload(probe), unload(net);
    return rc;
}

static double pct(double m, double p) { return (p - m) / m * 100; }

static void write_figure(const char *dir, const point *pts, int n, char *err) {
    /* one data file per (model, mode, rate): rtt measured ring asrun sp_meas sp_pred */
    char gp[1200];
    snprintf(gp, sizeof gp, "%s/wan-sweep.gp", dir);
    FILE *g = fopen(gp, "w");
    if (!g) return;
    fprintf(g, "set datafile separator whitespace\nset logscale x\nset grid\nset key top left box opaque font ',8'\n"
               "set xlabel 'RTT (ms)'\n");
    char series[64][96];
    int ns = 0;
    for (int i = 0; i < n && ns < 64; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s-%s-%gg", pts[i].model, pts[i].mode, pts[i].rate_gbps);
        bool seen = false;
        for (int s = 0; s < ns; s++) seen |= strcmp(series[s], name) == 0;
        if (seen) continue;
        snprintf(series[ns++], sizeof series[0], "%s", name);
        char path[1400];
        snprintf(path, sizeof path, "%s/wan-%s.dat", dir, name);
        FILE *f = fopen(path, "w");
        if (!f) continue;
        fprintf(f, "# rtt_ms measured_step_s ring_step_s asrun_step_s speedup_measured speedup_model\n");
        for (int j = 0; j < n; j++) {
            char nj[96];
            snprintf(nj, sizeof nj, "%s-%s-%gg", pts[j].model, pts[j].mode, pts[j].rate_gbps);
            if (strcmp(nj, name) == 0)
                fprintf(f, "%g %g %g %g %g %g\n", pts[j].rtt_ms, pts[j].measured, pts[j].ring, pts[j].asrun,
                        pts[j].sp_meas, pts[j].sp_pred);
        }
        fclose(f);
    }
    for (int pass = 0; pass < 2; pass++) {
        fprintf(g, "%s", pass == 0 ? "set terminal pngcairo size 1400,560 font ',10'\nset output 'wan-sweep.png'\n"
                                   : "set terminal svg size 1400,560 dynamic\nset output 'wan-sweep.svg'\n");
        fprintf(g, "set multiplot layout 1,2 title 'dmzbench wan sweep: 2 emulated sites (htb rate + user-space delay relay); "
                   "points measured, lines the alpha-beta model as run (dashed: textbook ring/PS)'\n");
        fprintf(g, "set logscale y\nset ylabel 'time per step (s)'\nset title 'time per (global) step'\nplot ");
        for (int s = 0; s < ns; s++)
            fprintf(g, "%s'wan-%s.dat' u 1:2 w p pt 7 lc %d t '%s measured', '' u 1:4 w l lw 2 lc %d t 'model', '' u 1:3 w l dt 2 lc %d notitle",
                    s ? ", " : "", series[s], s + 1, series[s], s + 1, s + 1);
        fprintf(g, "\nunset logscale y\nset ylabel 'speedup over 1 rank (samples/s)'\nset title 'speedup'\nplot ");
        for (int s = 0; s < ns; s++)
            fprintf(g, "%s'wan-%s.dat' u 1:5 w p pt 7 lc %d t '%s measured', '' u 1:6 w l lw 2 lc %d notitle",
                    s ? ", " : "", series[s], s + 1, series[s], s + 1);
        fprintf(g, "\nunset multiplot\n");
    }
    fclose(g);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        execlp("gnuplot", "gnuplot", "wan-sweep.gp", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        dmz_errorf(err, DMZ_EXIT_FAIL, "gnuplot %s/wan-sweep.gp failed (exit %d): figure not drawn", dir, WEXITSTATUS(st));
}

int dmz_wan_model_main(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: dmzbench wan model SWEEPDIR  (reads SWEEPDIR/points.csv, see bench/wan_sweep.sh)\n");
        return DMZ_EXIT_USAGE;
    }
    const char *dir = argv[1];
    char err[DMZ_ERR_LEN], path[1200];
    snprintf(path, sizeof path, "%s/points.csv", dir);
    table *pts = load(path, err);
    if (!pts) {
        fprintf(stderr, "dmzbench wan model: %s\n", err);
        return DMZ_EXIT_USAGE;
    }
    int n = pts->rows - 1, rc = DMZ_OK;
    point *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    for (int r = 1; r <= n && !rc; r++) rc = model_point(pts, r, &p[r - 1], err);
    unload(pts);
    if (rc) {
        fprintf(stderr, "dmzbench wan model: %s\n", err);
        free(p);
        return rc;
    }
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    FILE *c = fopen(path, "w");
    snprintf(path, sizeof path, "%s/table.txt", dir);
    FILE *t = fopen(path, "w");
    if (!c || !t) {
        fprintf(stderr, "dmzbench wan model: cannot write into %s: %s\n", dir, strerror(errno));
        free(p);
        return DMZ_EXIT_FAIL;
    }
    fprintf(c, "model,mode,rtt_ms,rate_gbps,loss_pct,measured_step_s,model_asrun_step_s,model_ring_step_s,error_asrun_pct,"
               "error_ring_pct,within_tolerance,single_step_s,speedup_measured,speedup_model,alpha_us,beta_ns_per_byte,"
               "probe_gbit_per_s,message_bytes,bdp_bytes,tcp_window_bytes,window_limited,comm_measured_s,comm_model_s,"
               "error_comm_pct,note,run_dir\n");
    FILE *outs[2] = {stdout, t};
    for (int k = 0; k < 2; k++) {
        fprintf(outs[k], "# dmzbench wan model: measured time per step beside the alpha-beta model (as run: the step's barrier, "
                         "libnbc reduce+scatter + all-gather, rendezvous above the eager limit; ring: the textbook)\n"
                         "# tolerance: |model - measured| <= %.0f%% of measured or %.0f ms\n",
                DMZ_WAN_MODEL_TOL_REL * 100, DMZ_WAN_MODEL_TOL_ABS_S * 1e3);
        fprintf(outs[k], "# %-5s %-8s %5s %5s %9s %9s %9s %7s %7s %3s %9s %9s %7s %6s %6s %7s %s\n", "model", "mode", "rtt", "rate",
                "measured", "as-run", "ring", "err", "errring", "tol", "comm", "comm_mdl", "errcomm", "speedup", "sp_mdl", "alpha", "note");
        fprintf(outs[k], "# %-5s %-8s %5s %5s %9s %9s %9s %7s %7s %3s %9s %9s %7s %6s %6s %7s\n", "", "", "(ms)", "(Gb/s)", "(ms)", "(ms)",
                "(ms)", "(%)", "(%)", "", "(ms)", "(ms)", "(%)", "(x)", "(x)", "(us)");
    }
    for (int i = 0; i < n; i++) {
        const point *q = &p[i];
        fprintf(c, "%s,%s,%g,%g,%g,%.6g,%.6g,%.6g,%.3f,%.3f,%s,%.6g,%.4f,%.4f,%.2f,%.5g,%.4g,%.0f,%.0f,%.0f,%s,%.6g,%.6g,%.3f,%s,%s\n", q->model,
                q->mode, q->rtt_ms, q->rate_gbps, q->loss_pct, q->measured, q->asrun, q->ring, pct(q->measured, q->asrun),
                pct(q->measured, q->ring), q->ok ? "yes" : "no", q->single, q->sp_meas, q->sp_pred, q->alpha_us, q->beta_ns,
                q->probe_gbps, q->n_bytes, q->bdp, q->window, q->window_limited ? "yes" : "no", q->comm_meas, q->comm_model,
                pct(q->comm_meas, q->comm_model), q->note[0] ? q->note : "NA", q->run);
        for (int k = 0; k < 2; k++)
            fprintf(outs[k], "  %-5s %-8s %5g %5g %9.2f %9.2f %9.2f %+7.1f %+7.1f %3s %9.2f %9.2f %+7.1f %6.2f %6.2f %7.0f %s\n", q->model,
                    q->mode, q->rtt_ms, q->rate_gbps, q->measured * 1e3, q->asrun * 1e3, q->ring * 1e3, pct(q->measured, q->asrun),
                    pct(q->measured, q->ring), q->ok ? "yes" : "no", q->comm_meas * 1e3, q->comm_model * 1e3,
                    pct(q->comm_meas, q->comm_model), q->sp_meas, q->sp_pred, q->alpha_us, q->note);
    }
    fclose(c);
    /* the model's error per configuration (model, mode, rate) */
    snprintf(path, sizeof path, "%s/model_error.csv", dir);
    FILE *e = fopen(path, "w");
    if (e) fprintf(e, "model,mode,rate_gbps,points,mean_abs_error_asrun_pct,max_abs_error_asrun_pct,mean_abs_error_ring_pct,"
                      "max_abs_error_ring_pct,within_tolerance\n");
    for (int k = 0; k < 2; k++)
        fprintf(outs[k], "# model error per configuration: %-22s %6s %14s %14s %14s %14s %6s\n", "", "points", "mean|as-run|%",
                "max|as-run|%", "mean|ring|%", "max|ring|%", "tol");
    for (int i = 0; i < n; i++) {
        bool first = true;
        for (int j = 0; j < i; j++)
            first &= !(strcmp(p[j].model, p[i].model) == 0 && strcmp(p[j].mode, p[i].mode) == 0 && p[j].rate_gbps == p[i].rate_gbps);
        if (!first) continue;
        int cnt = 0, ok = 0;
        double sa = 0, ma = 0, sr = 0, mr = 0;
        for (int j = i; j < n; j++) {
            if (strcmp(p[j].model, p[i].model) || strcmp(p[j].mode, p[i].mode) || p[j].rate_gbps != p[i].rate_gbps) continue;
            double ea = fabs(pct(p[j].measured, p[j].asrun)), er = fabs(pct(p[j].measured, p[j].ring));
            cnt++, ok += p[j].ok, sa += ea, sr += er;
            ma = fmax(ma, ea), mr = fmax(mr, er);
        }
        if (e) fprintf(e, "%s,%s,%g,%d,%.2f,%.2f,%.2f,%.2f,%d/%d\n", p[i].model, p[i].mode, p[i].rate_gbps, cnt, sa / cnt, ma, sr / cnt, mr, ok, cnt);
        char cfg[64];
        snprintf(cfg, sizeof cfg, "%s %s %g Gbit/s", p[i].model, p[i].mode, p[i].rate_gbps);
        for (int k = 0; k < 2; k++)
            fprintf(outs[k], "  %-52s %6d %14.1f %14.1f %14.1f %14.1f %3d/%d\n", cfg, cnt, sa / cnt, ma, sr / cnt, mr, ok, cnt);
    }
    if (e) fclose(e);
    fclose(t);
    err[0] = '\0';
    write_figure(dir, p, n, err);
    if (err[0]) fprintf(stderr, "dmzbench wan model: %s\n", err);
    else printf("# figure: %s/wan-sweep.png (and .svg)\n", dir);
    free(p);
    return DMZ_OK;
}
