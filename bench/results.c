#include "results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/dmz.h"
#include "common/csvio.h"
#include "common/interrupt.h"

int dmz_rundir_create(dmz_rundir *rd, const char *out_dir, const char *experiment, char *err) {
    memset(rd, 0, sizeof *rd);
    int rc = dmz_mkdirs(out_dir, err);
    if (rc) return rc;
    char host[256] = "host", stamp[32];
    gethostname(host, sizeof host - 1);
    host[strcspn(host, ".")] = '\0';
    dmz_utc_stamp(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ");
    dmz_utc_stamp(rd->started_utc, sizeof rd->started_utc, "%Y-%m-%dT%H:%M:%SZ");
    snprintf(rd->root, sizeof rd->root, "%s", out_dir);
    /* never overwrite: a second run in the same second gets .1, .2, ... */
    for (int n = 0; n < 1000; n++) {
        if (n == 0)
            snprintf(rd->name, sizeof rd->name, "%s-%s-%s", stamp, experiment, host);
        else
            snprintf(rd->name, sizeof rd->name, "%s-%s-%s.%d", stamp, experiment, host, n);
        snprintf(rd->path, sizeof rd->path, "%s/%s", out_dir, rd->name);
        snprintf(rd->work, sizeof rd->work, "%s/.%s.partial", out_dir, rd->name);
        struct stat st;
        if (stat(rd->path, &st) == 0) continue;
        if (mkdir(rd->work, 0755) == 0) return DMZ_OK;
        if (errno != EEXIST)
            return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create run directory: %s", rd->work, strerror(errno));
    }
    return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: too many runs named %s", out_dir, experiment);
}

FILE *dmz_rundir_fopen(const dmz_rundir *rd, const char *file, char *err) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", rd->work, file);
    FILE *f = fopen(path, "w");
    if (!f) dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create: %s", path, strerror(errno));
    return f;
}

static int close_checked(FILE *f, const dmz_rundir *rd, const char *file, char *err) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s/%s: write failed: %s", rd->work, file, strerror(errno));
    return DMZ_OK;
}

int dmz_rundir_finish(dmz_rundir *rd, bool ok, const char *error, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "status", err);
    if (!f) return DMZ_EXIT_FAIL;
    char ended[32];
    dmz_utc_stamp(ended, sizeof ended, "%Y-%m-%dT%H:%M:%SZ");
    fprintf(f, "status: %s\nstarted: %s\nended: %s\n", ok ? "ok" : "failed", rd->started_utc, ended);
    if (!ok) fprintf(f, "error: %s\n", error ? error : "unknown");
    int rc = close_checked(f, rd, "status", err);
    if (rc) return rc;
    if (rename(rd->work, rd->path) != 0)
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot rename to %s: %s", rd->work, rd->path, strerror(errno));
    return DMZ_OK;
}

void dmz_csv_number(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("NA", f);
}

static void csv_numbers(FILE *f, const double *v, int n) {
    for (int i = 0; i < n; i++) {
        fputc(',', f);
        dmz_csv_number(f, v[i]);
    }
}

static void csv_texts(FILE *f, const char *const *v, int n) {
    for (int i = 0; i < n; i++) {
        fputc(',', f);
        dmz_csv_write_field(f, v[i]);
    }
}

/* The sum of one PAPI event over the measured phases (the load is not a
 * step's); NAN when the event was not counted. */
static double papi_sum(const dmz_papi_counts *p, const char *event) {
    for (int e = 0; e < p->n_events && e < DMZ_PAPI_MAX_EVENTS; e++) {
        if (strcmp(p->events[e], event) != 0) continue;
        double sum = 0;
        for (int ph = DMZ_PHASE_DATA; ph < DMZ_NPHASES; ph++) sum += p->v[ph][e]; /* NAN stays NAN */
        return sum;
    }
    return NAN;
}

/* cpuset, derived PAPI numbers, energy: NA whatever was not measured (never 0). */
static void counter_cells(FILE *f, const dmz_rep_result *r, int batch) {
    const dmz_rep_counters *c = &r->ctr;
    fputc(',', f);
    dmz_csv_write_field(f, c->bind.cpuset[0] ? c->bind.cpuset : "NA");
    double ins = papi_sum(&c->papi, "PAPI_TOT_INS"), cyc = papi_sum(&c->papi, "PAPI_TOT_CYC");
    double samples = (double)r->steps_done * batch;
    double per = samples > 0 ? 1.0 / samples : NAN;
    double v[] = {cyc > 0 ? ins / cyc : NAN, ins, cyc, papi_sum(&c->papi, "PAPI_L1_DCM") * per,
                  papi_sum(&c->papi, "PAPI_L2_DCM") * per, c->energy_j, c->power_w,
                  r->steps_done > 0 ? c->energy_j / r->steps_done : NAN, c->gpu_t0_s, c->gpu_t1_s};
    csv_numbers(f, v, (int)(sizeof v / sizeof v[0]));
}

int dmz_write_summary_csv(const dmz_rundir *rd, const dmz_run_info *in, const dmz_rank_rows *ranks, int n_ranks,
                          const char *const *statuses, double busbw_factor, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "summary.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    fputs("run,rep,rank,site,host,role,model,backend,mode,ranks,steps,batch,warmup_s,wall_s,samples_per_s,"
          "data_s,fwd_s,bwd_s,comm_s,update_s,eval_s,wait_s,throttle_s,final_loss,test_loss,test_accuracy,"
          "time_to_target_s,bytes_sent,algbw_gbps,busbw_gbps,staleness_median,staleness_max,rank_speed,"
          "dataset,threads,status,cpuset,ipc,instructions,cycles,l1_dcm_per_sample,l2_dcm_per_sample,energy_j,"
          "power_w,energy_per_step_j,gpu_t0_s,gpu_t1_s\n", f);
    for (int k = 0; k < n_ranks; k++) {
        const dmz_rank_rows *rk = &ranks[k];
        for (int i = 0; i < rk->n_reps; i++) {
            const dmz_rep_result *r = &rk->reps[i];
            /* one rank: nothing crosses a link, so bandwidth does not apply (NA, not 0) */
            double algbw = r->comm_s > 0 && r->bytes_sent > 0 ? r->bytes_sent / r->comm_s / 1e9 : NAN;
            if (busbw_factor > 0 && !isnan(algbw)) algbw /= busbw_factor; /* bytes sent = busbw factor x size */
            double busbw = busbw_factor > 0 ? algbw * busbw_factor : in->ranks > 1 ? algbw : NAN;
            dmz_csv_write_field(f, in->run);
            fprintf(f, ",%d,%d", r->rep, rk->rank);
            const char *texts[] = {rk->site, rk->host, rk->role, in->model, in->backend, in->mode};
            csv_texts(f, texts, 6);
            fprintf(f, ",%d,%d,%d", in->ranks, r->steps_done, rk->batch);
            double v[] = {r->warmup_s, r->wall_s, r->samples_per_s, r->data_s, r->fwd_s, r->bwd_s, r->comm_s,
                          r->update_s, r->eval_s, r->wait_s, r->throttle_s, r->final_loss, r->test_loss,
                          r->test_accuracy, r->time_to_target_s, r->bytes_sent, algbw, busbw,
                          r->staleness_median, r->staleness_max, rk->speed};
            csv_numbers(f, v, (int)(sizeof v / sizeof v[0]));
            fputc(',', f);
            dmz_csv_write_field(f, in->dataset);
            fprintf(f, ",%d,%s", in->threads, statuses[i]);
            counter_cells(f, r, rk->batch);
            fputc('\n', f);
        }
    }
    return close_checked(f, rd, "summary.csv", err);
}

int dmz_write_steps_csv(const dmz_rundir *rd, const dmz_rank_rows *ranks, int n_ranks, int log_every, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "steps.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fputs("rep,rank,step,elapsed_s,step_s,loss,data_s,fwd_s,bwd_s,comm_s,update_s,wait_s,throttle_s,"
          "samples_per_s,global_step,staleness,test_loss,test_accuracy\n", f);
    for (int k = 0; k < n_ranks; k++)
        for (int i = 0; i < ranks[k].n_reps; i++) {
            const dmz_rep_result *r = &ranks[k].reps[i];
            for (int j = 0; j < r->n_steps; j++) {
                const dmz_step_record *s = &r->steps[j];
                bool evaluated = !isnan(s->test_accuracy);
                if (s->step % log_every != 0 && !evaluated && j != r->n_steps - 1) continue;
                fprintf(f, "%d,%d,%d", r->rep, ranks[k].rank, s->step);
                double rate = s->step_s > 0 ? ranks[k].batch / s->step_s : NAN;
                double v[] = {s->elapsed_s, s->step_s, s->loss, s->data_s, s->fwd_s, s->bwd_s, s->comm_s,
                              s->update_s, s->wait_s, s->throttle_s, rate, s->global_step, s->staleness,
                              s->test_loss, s->test_accuracy};
                csv_numbers(f, v, (int)(sizeof v / sizeof v[0]));
                fputc('\n', f);
            }
        }
    return close_checked(f, rd, "steps.csv", err);
}

int dmz_write_net_csv(const dmz_rundir *rd, const dmz_rank_rows *ranks, int n_ranks, const char *op,
                      double size_bytes, double busbw_factor, int log_every, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "net.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    /* nccl-tests: algbw = size / time; busbw = algbw x the collective's factor */
    fputs("rep,rank,site,step,op,size_bytes,bytes_sent,seconds,wait_s,algbw_gbps,busbw_gbps\n", f);
    for (int k = 0; k < n_ranks; k++)
        for (int i = 0; i < ranks[k].n_reps; i++) {
            const dmz_rep_result *r = &ranks[k].reps[i];
            for (int j = 0; j < r->n_steps; j++) {
                const dmz_step_record *s = &r->steps[j];
                if (s->step % log_every != 0 && j != r->n_steps - 1) continue;
                fprintf(f, "%d,%d,", r->rep, ranks[k].rank);
                dmz_csv_write_field(f, ranks[k].site);
                fprintf(f, ",%d,%s", s->step, op);
                double algbw = s->comm_s > 0 ? size_bytes / s->comm_s / 1e9 : NAN;
                double v[] = {size_bytes, s->comm_bytes, s->comm_s, s->wait_s, algbw, algbw * busbw_factor};
                csv_numbers(f, v, 6);
                fputc('\n', f);
            }
        }
    return close_checked(f, rd, "net.csv", err);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void dmz_stat_compute(dmz_stat *st, const char *metric, const double *values, int n) {
    double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(values[i])) v[k++] = values[i];
    *st = (dmz_stat){.metric = metric, .n = k, .median = NAN, .min = NAN, .max = NAN, .mean = NAN, .stddev = NAN};
    if (k > 0) {
        qsort(v, (size_t)k, sizeof(double), cmp_double);
        st->min = v[0], st->max = v[k - 1];
        st->median = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
        double sum = 0;
        for (int i = 0; i < k; i++) sum += v[i];
        st->mean = sum / k;
        double ss = 0;
        for (int i = 0; i < k; i++) ss += (v[i] - st->mean) * (v[i] - st->mean);
        st->stddev = k > 1 ? sqrt(ss / (k - 1)) : NAN;
    }
    free(v);
}

int dmz_write_stats_csv(const dmz_rundir *rd, const dmz_stat *stats, int n_stats, char *err) {
    FILE *f = dmz_rundir_fopen(rd, "stats.csv", err);
    if (!f) return DMZ_EXIT_FAIL;
    fputs("metric,n,median,min,max,mean,stddev\n", f);
    for (int i = 0; i < n_stats; i++) {
        const dmz_stat *s = &stats[i];
        fprintf(f, "%s,%d", s->metric, s->n);
        double v[] = {s->median, s->min, s->max, s->mean, s->stddev};
        csv_numbers(f, v, 5);
        fputc('\n', f);
    }
    return close_checked(f, rd, "stats.csv", err);
}

/* Another run may hold the index lock while it appends; a holder that never
 * lets go (a stopped process) must not stall this run for good. */
enum { INDEX_LOCK_WAIT_S = 60 };

static const char INDEX_HEADER[] =
    "run,started_utc,status,model,backend,mode,ranks,steps,batch,reps,dataset,"
    "wall_s_median,samples_per_s_median,test_accuracy_median,dir\n";

int dmz_index_append(const dmz_rundir *rd, const dmz_run_info *in, const char *status, int reps,
                     const dmz_stat *wall, const dmz_stat *rate, const dmz_stat *acc, char *err) {
    char path[4200], lock[4300];
    snprintf(path, sizeof path, "%s/index.csv", rd->root);
    snprintf(lock, sizeof lock, "%s/.index.lock", rd->root);
    FILE *lf = fopen(lock, "w");
    if (!lf) return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot create: %s", lock, strerror(errno));
    if (dmz_lock_wait(fileno(lf), INDEX_LOCK_WAIT_S, lock, err)) {
        fclose(lf);
        return DMZ_EXIT_FAIL;
    }
    dmz_clean_stale_tmp(rd->root, "index.csv.tmp.", 0); /* a writer killed mid-append; we hold the lock */
    size_t old_len = 0;
    char *old = NULL;
    if (access(path, F_OK) == 0) { /* an index that exists but cannot be read is not silently replaced */
        int rc = dmz_read_file(path, (size_t)1 << 30, &old, &old_len, err);
        if (rc) {
            flock(fileno(lf), LOCK_UN);
            fclose(lf);
            return rc;
        }
    }
    char *row = NULL;
    size_t row_len = 0;
    FILE *m = open_memstream(&row, &row_len);
    if (!old || old_len == 0) fputs(INDEX_HEADER, m);
    else fwrite(old, 1, old_len, m);
    if (old_len > 0 && old[old_len - 1] != '\n') fputc('\n', m);
    dmz_csv_write_field(m, rd->name);
    fprintf(m, ",%s,%s", rd->started_utc, status);
    const char *texts[] = {in->model, in->backend, in->mode};
    csv_texts(m, texts, 3);
    fprintf(m, ",%d,%d,%d,%d,", in->ranks, in->steps, in->batch, reps);
    dmz_csv_write_field(m, in->dataset);
    double v[] = {wall->median, rate->median, acc->median};
    csv_numbers(m, v, 3);
    fputc(',', m);
    dmz_csv_write_field(m, rd->name);
    fputc('\n', m);
    fclose(m);
    int rc = dmz_write_file_atomic(path, row, row_len, err);
    free(row);
    free(old);
    flock(fileno(lf), LOCK_UN);
    fclose(lf);
    return rc;
}
