/* bench/report_plot.c — the data files behind the figures (fig-*.csv, for
 * gnuplot and for anyone who wants the numbers), and running gnuplot.
 *
 * Contract with plots/NAME.gp: it is called as
 *   gnuplot -e "rundir='RUN'; outdir='OUT'; suffix='.tmp'" NAME.gp
 * and writes OUT/NAME.tmp.png and OUT/NAME.tmp.svg, which are renamed to
 * NAME.png and NAME.svg once gnuplot has exited with status 0. */
#include "bench/report_impl.h"
#include "common/interrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------ data files */
static void put_num(FILE *f, double v) {
    if (isnan(v)) fputs("NA", f);
    else fprintf(f, "%.6g", v);
}

static void put_spread(FILE *f, const rpt_spread *s) {
    put_num(f, s->median);
    fputc(',', f);
    put_num(f, s->min);
    fputc(',', f);
    put_num(f, s->max);
}

static int finish(FILE *f, char **buf, size_t *len, const char *out_dir, const char *file,
                  char *err) {
    char path[RPT_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/%s", out_dir, file);
    if (fclose(f) != 0) {
        free(*buf);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    return rpt_write_stream(path, *buf, *len, err);
}

/* A phase that was not measured stays NA (never 0); "other" (wall time outside
 * the phases) is then unknown too. top_s: the bar's height or the wall time. */
static void breakdown_row(FILE *f, const rpt_rep *rep) {
    double sum = 0;
    bool all_known = true;
    fprintf(f, "%g", rep->rep);
    for (int p = 0; p < RPT_NPHASES; p++) {
        double v = rep->phase_s[p];
        if (isnan(v)) all_known = false;
        else sum += v;
        fputc(',', f);
        put_num(f, v);
    }
    double other = NAN;
    if (all_known && !isnan(rep->wall_s)) other = rep->wall_s > sum ? rep->wall_s - sum : 0;
    fputc(',', f);
    put_num(f, other);
    fputc(',', f);
    put_num(f, rep->wall_s);
    double bar = sum + (isnan(other) ? 0 : other);
    fprintf(f, ",%.6g\n", isnan(rep->wall_s) || bar > rep->wall_s ? bar : rep->wall_s);
}

int rpt_write_breakdown_data(const rpt_run *run, const char *out_dir, char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("rep,data_s,fwd_s,bwd_s,comm_s,update_s,other_s,wall_s,top_s\n", f);
    for (int i = 0; i < run->nreps; i++) breakdown_row(f, &run->reps[i]);
    return finish(f, &buf, &len, out_dir, "fig-breakdown.csv", err);
}

static void steps_text(const rpt_run *run, char *out, size_t len) {
    if (run->steps >= 0 && run->batch >= 0)
        snprintf(out, len, "%ld steps x batch %ld", run->steps, run->batch);
    else if (run->steps >= 0)
        snprintf(out, len, "%ld steps", run->steps);
    else
        snprintf(out, len, "? steps");
}

static void data_text(const rpt_run *run, char *out, size_t len) {
    char sha[16] = "?";
    if (run->dataset_sha256[0]) snprintf(sha, sizeof sha, "%.12s", run->dataset_sha256);
    snprintf(out, len, "%s%s (sha256 %s...)", run->dataset[0] ? run->dataset : "unknown data set",
             run->dataset_fallback ? " FALLBACK: not the data set asked for" : "", sha);
}

/* fig-info.csv: run,config,data: the titles of one run's figures. */
int rpt_write_info_data(const rpt_run *run, const char *out_dir, char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    char label[128], steps[64], text[600], field[600];
    rpt_run_config_label(run, label, sizeof label);
    steps_text(run, steps, sizeof steps);
    fputs("run,config,data\n", f);
    rpt_csv_field(field, sizeof field, run->name);
    fprintf(f, "%s,", field);
    snprintf(text, sizeof text, "%s %s; %s; %d rep%s", run->model[0] ? run->model : "?", label,
             steps, run->nreps, run->nreps == 1 ? "" : "s");
    rpt_csv_field(field, sizeof field, text);
    fprintf(f, "%s,", field);
    data_text(run, text, sizeof text);
    rpt_csv_field(field, sizeof field, text);
    fprintf(f, "%s\n", field);
    return finish(f, &buf, &len, out_dir, "fig-info.csv", err);
}

static void paper_note(const rpt_run *run, const rpt_paper *paper, char *out, size_t len) {
    char data[400], steps[64], text[600];
    data_text(run, data, sizeof data);
    steps_text(run, steps, sizeof steps);
    snprintf(text, sizeof text, "dmzbench: %s; %s   |   paper: EMNIST Balanced; %ld steps", data,
             steps, paper->n > 0 ? paper->rows[0].steps : -1L);
    rpt_csv_field(out, len, text);
}

int rpt_write_paper_data(const rpt_run *run, const rpt_paper *paper, const char *out_dir,
                         char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    char label[160], detail[160], note[512];
    fputs("label,detail,source,median_s,min_s,max_s,note\n", f);
    for (int i = 0; i < paper->n; i++) {
        const rpt_paper_row *row = &paper->rows[i];
        rpt_csv_field(label, sizeof label, row->label);
        rpt_csv_field(detail, sizeof detail, row->gpus);
        rpt_csv_field(note, sizeof note, row->source);
        fprintf(f, "%s,%s,paper,", label, detail);
        put_num(f, row->wall_s);
        fprintf(f, ",NA,NA,%s\n", note);
    }
    char config[128], text[200];
    rpt_run_config_label(run, config, sizeof config);
    snprintf(text, sizeof text, "dmzbench: %s", config);
    rpt_csv_field(label, sizeof label, text);
    char steps[64];
    steps_text(run, steps, sizeof steps);
    if (run->wall.n > 0)
        snprintf(detail, sizeof detail, "%s; median of %d rep%s", steps, run->wall.n,
                 run->wall.n == 1 ? "" : "s");
    else
        snprintf(detail, sizeof detail, "%s; no wall time recorded", steps);
    paper_note(run, paper, note, sizeof note);
    fprintf(f, "%s,%s,dmzbench,", label, detail);
    put_spread(f, &run->wall);
    fprintf(f, ",%s\n", note);
    return finish(f, &buf, &len, out_dir, "fig-paper.csv", err);
}

int rpt_write_compare_data(const rpt_run *runs, int n_runs, const rpt_paper *paper,
                           const char *out_dir, char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fputs("name,config,source,wall_median_s,wall_min_s,wall_max_s,"
          "sps_median,sps_min,sps_max\n", f);
    char name[300], config[160];
    for (int i = 0; i < n_runs; i++) {
        char text[160];
        rpt_csv_field(name, sizeof name, runs[i].name);
        rpt_run_config_label(&runs[i], text, sizeof text);
        rpt_csv_field(config, sizeof config, text);
        fprintf(f, "%s,%s,dmzbench,", name, config);
        put_spread(f, &runs[i].wall);
        fputc(',', f);
        put_spread(f, &runs[i].samples_per_s);
        fputc('\n', f);
    }
    for (int i = 0; i < paper->n; i++) {
        rpt_csv_field(name, sizeof name, paper->rows[i].label);
        rpt_csv_field(config, sizeof config, paper->rows[i].gpus);
        fprintf(f, "%s,%s,paper,", name, config);
        put_num(f, paper->rows[i].wall_s);
        fputs(",NA,NA,NA,NA,NA\n", f);
    }
    return finish(f, &buf, &len, out_dir, "fig-compare.csv", err);
}

/* ------------------------------------------------------------ gnuplot */
typedef struct gp_result {
    int spawn_errno;  /* posix_spawnp's answer; ENOENT: no gnuplot on PATH */
    int wstatus;
    char output[700]; /* the start of its stderr */
} gp_result;

/* Reads gnuplot's stderr until it closes. A signal to dmzbench alone (kill, not
 * a terminal's Ctrl-C, which reaches gnuplot too) must not leave us waiting on
 * a gnuplot that goes on: on an interrupt it is ended with SIGTERM. */
static void read_all(int fd, pid_t child, char *out, size_t len) {
    size_t used = 0;
    char chunk[4096];
    bool ended = false;
    for (;;) {
        if (dmz_interrupted() && !ended) kill(child, SIGTERM), ended = true;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int ready = poll(&pf, 1, 100);
        if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
        if (ready < 0) break;
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t take = (size_t)n < len - 1 - used ? (size_t)n : len - 1 - used;
        memcpy(out + used, chunk, take);
        used += take;
    }
    out[used] = '\0';
}

static void spawn_gnuplot(const char *script, const char *params, gp_result *res) {
    memset(res, 0, sizeof *res);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { res->spawn_errno = errno; return; }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    char prog[] = "gnuplot", opt[] = "-e";
    char *argv[] = {prog, opt, (char *)params, (char *)script, NULL};
    pid_t pid;
    res->spawn_errno = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (res->spawn_errno == 0) {
        read_all(fds[0], pid, res->output, sizeof res->output);
        pid_t done;
        while ((done = waitpid(pid, &res->wstatus, 0)) < 0 && errno == EINTR) {}
        if (done < 0) res->spawn_errno = errno; /* cannot tell how it ended: a failure */
    }
    close(fds[0]);
}

static void one_line(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n') *p = ' ';
}

static void output_paths(const char *out_dir, const char *name, const char *ext, char *tmp,
                         char *final, size_t len) {
    snprintf(tmp, len, "%s/%s.tmp.%s", out_dir, name, ext);
    snprintf(final, len, "%s/%s.%s", out_dir, name, ext);
}

/* Renames NAME.tmp.{png,svg} into place, or removes them when !keep. */
static int settle_outputs(const char *out_dir, const char *name, bool keep, char *err) {
    static const char *const exts[] = {"png", "svg"};
    int rc = DMZ_OK;
    for (int i = 0; i < 2; i++) {
        char tmp[RPT_PATH_LEN + 64], final[RPT_PATH_LEN + 64];
        output_paths(out_dir, name, exts[i], tmp, final, sizeof tmp);
        struct stat sb;
        bool made = stat(tmp, &sb) == 0 && sb.st_size > 0;
        if (!keep || rc != DMZ_OK) {
            unlink(tmp);
        } else if (!made) {
            unlink(tmp);
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "gnuplot %s.gp exited 0 but wrote no %s", name,
                            tmp);
        } else if (rename(tmp, final) != 0) {
            rc = dmz_errorf(err, DMZ_EXIT_FAIL, "%s: cannot rename into place: %s", final,
                            strerror(errno));
            unlink(tmp);
        }
    }
    return rc;
}

static void set_note(rpt_figure *fig, int state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_note(rpt_figure *fig, int state, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fig->note, sizeof fig->note, fmt, ap);
    va_end(ap);
    fig->state = state;
}

static int gnuplot_failed(rpt_figure *fig, const char *script, const gp_result *res,
                          char *err) {
    char text[sizeof res->output];
    memcpy(text, res->output, sizeof text);
    one_line(text);
    int code = WIFEXITED(res->wstatus) ? WEXITSTATUS(res->wstatus) : -1;
    if (res->spawn_errno != 0)
        set_note(fig, RPT_FIG_FAILED, "cannot run or wait for gnuplot: %s",
                 strerror(res->spawn_errno));
    else if (WIFSIGNALED(res->wstatus))
        set_note(fig, RPT_FIG_FAILED, "gnuplot %s killed by signal %d: %s", script,
                 WTERMSIG(res->wstatus), text);
    else
        set_note(fig, RPT_FIG_FAILED, "gnuplot %s failed (exit %d): %s", script, code, text);
    return dmz_errorf(err, DMZ_EXIT_FAIL, "%s", fig->note);
}

static int skip_no_gnuplot(rpt_ctx *ctx, rpt_figure *fig) {
    if (!ctx->no_gnuplot) fprintf(stderr, "dmzbench report: %s\n", RPT_NO_GNUPLOT_NOTE);
    ctx->no_gnuplot = true;
    fig->state = RPT_FIG_SKIPPED;
    rpt_copy(fig->note, sizeof fig->note, RPT_NO_GNUPLOT_NOTE);
    return DMZ_OK;
}

int rpt_draw(rpt_ctx *ctx, rpt_figure *fig, const char *run_dir, const char *out_dir,
             char *err) {
    if (ctx->no_gnuplot) return skip_no_gnuplot(ctx, fig);
    if (dmz_interrupted()) {
        set_note(fig, RPT_FIG_FAILED, "not drawn: interrupted by a signal");
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s", fig->note);
    }
    char script[RPT_PATH_LEN + 64];
    snprintf(script, sizeof script, "%s/%s.gp", ctx->plots_dir, fig->name);
    if (access(script, R_OK) != 0) {
        set_note(fig, RPT_FIG_FAILED, "%s: cannot read: %s (set DMZBENCH_PLOTS_DIR)", script,
                 strerror(errno));
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s", fig->note);
    }
    char params[3 * RPT_PATH_LEN];
    snprintf(params, sizeof params, "rundir='%s'; outdir='%s'; suffix='.tmp'", run_dir, out_dir);
    gp_result res;
    spawn_gnuplot(script, params, &res);
    if (res.spawn_errno == ENOENT) return skip_no_gnuplot(ctx, fig);
    bool ok = res.spawn_errno == 0 && WIFEXITED(res.wstatus) && WEXITSTATUS(res.wstatus) == 0;
    int rc = settle_outputs(out_dir, fig->name, ok, err);
    if (!ok) return gnuplot_failed(fig, script, &res, err);
    if (rc != DMZ_OK) {
        fig->state = RPT_FIG_FAILED;
        rpt_copy(fig->note, sizeof fig->note, err);
        return rc;
    }
    fig->state = RPT_FIG_OK;
    return DMZ_OK;
}
