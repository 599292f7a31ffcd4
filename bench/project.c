/* bench/project.c — `dmzbench project RUNDIR --device NAME [--from NAME]`: a
 * roofline projection of a measured run onto another device of the table.
 *
 * With kernels.csv (per kernel: calls, time, FLOPs, bytes), each kernel's
 * time on the source device is split into a fixed part (launch_us per call,
 * never more than the kernel took) and the rest, which scales with whichever
 * roofline bound is larger on each device:
 *     bound(dev) = max(flops / fp32_peak(dev), bytes / bandwidth(dev))
 *     projected  = fixed + (measured - fixed) * bound(to) / bound(from)
 * so the efficiency measured on the source (bound(from) / (measured - fixed))
 * carries over. Copies (kind memcpy) and host time (the step time the
 * kernels do not cover) are carried over unchanged.
 *
 * Without kernels.csv, or from a device the table lacks (a CPU run), the
 * projection is coarser: the model's own FLOP and byte counts per step
 * (project_model.c) replace the kernels, the compute phases (forward,
 * backward, update) are the part that moves, and the efficiency is the one
 * measured on the source device's row when there is one, else assumed
 * (--efficiency, default 0.5). Everything printed or written says PROJECTION. */
#include "bench/compare.h"
#include "bench/compare_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PRJ_DEFAULT_LAUNCH_US 3.0
#define PRJ_DEFAULT_EFFICIENCY 0.5

void prj_options_default(prj_options *o) {
    *o = (prj_options){.launch_us = PRJ_DEFAULT_LAUNCH_US, .efficiency = PRJ_DEFAULT_EFFICIENCY};
}

static double roofline_ms(const dmz_device *d, double flops, double bytes, const char **bound) {
    double c = (isnan(flops) ? 0 : flops) / (d->fp32_tflops * 1e12) * 1e3;
    double m = (isnan(bytes) ? 0 : bytes) / (d->memory_gbps * 1e9) * 1e3;
    if (bound) *bound = c >= m ? "compute" : "memory";
    return c > m ? c : m;
}

static void assume(prj_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void assume(prj_result *res, const char *fmt, ...) {
    if (res->nassume >= (int)(sizeof res->assume / sizeof res->assume[0])) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->assume[res->nassume++], sizeof res->assume[0], fmt, ap);
    va_end(ap);
}

static double nz(double v) { return isnan(v) ? 0 : v; }

/* ------------------------------------------------------------ from kernels.csv */
static int from_kernels(const cmp_run *run, const dmz_device *from, const dmz_device *to,
                        const prj_options *opt, prj_result *res, char *err) {
    double steps_all = (double)run->r.steps * run->kernel_reps;
    res->k = calloc((size_t)run->nkernels + 1, sizeof *res->k);
    if (!res->k) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    double device = 0, projected = 0;
    for (int i = 0; i < run->nkernels; i++) {
        const cmp_kernel *src = &run->kernels[i];
        prj_kernel *k = &res->k[res->n++];
        rpt_copy(k->name, sizeof k->name, src->name);
        rpt_copy(k->kind, sizeof k->kind, src->kind);
        k->calls = src->calls / steps_all;
        k->measured_ms = nz(cmp_kernel_step_ms(run, src));
        k->flops = src->flops / steps_all;
        k->bytes = src->bytes / steps_all;
        device += k->measured_ms;
        if (strcmp(src->kind, "memcpy") == 0 || (nz(k->flops) == 0 && nz(k->bytes) == 0)) {
            rpt_copy(k->bound_from, sizeof k->bound_from, strcmp(src->kind, "memcpy") == 0 ? "copy" : "none");
            rpt_copy(k->bound_to, sizeof k->bound_to, k->bound_from);
            k->efficiency = NAN;
            k->projected_ms = k->measured_ms;
        } else {
            const char *bf, *bt;
            double fixed = fmin(nz(k->calls) * opt->launch_us * 1e-3, k->measured_ms);
            double var = k->measured_ms - fixed;
            double b_to = roofline_ms(to, k->flops, k->bytes, &bt);
            if (from) {
                double b_from = roofline_ms(from, k->flops, k->bytes, &bf);
                k->efficiency = var > 0 ? b_from / var : NAN;
                k->projected_ms = fixed + (b_from > 0 ? var * b_to / b_from : var);
            } else {
                bf = "?";
                k->efficiency = opt->efficiency;
                k->projected_ms = fixed + b_to / opt->efficiency;
            }
            rpt_copy(k->bound_from, sizeof k->bound_from, bf);
            rpt_copy(k->bound_to, sizeof k->bound_to, bt);
        }
        projected += k->projected_ms;
    }
    res->device_ms = device;
    res->host_ms = res->measured_step_ms - device;
    if (res->host_ms < 0) {
        assume(res, "kernels.csv sums to %.4g ms a step, more than the %.4g ms measured (kernels "
               "overlap, or the file covers more than the measured steps): host time taken as 0",
               device, res->measured_step_ms);
        res->host_ms = 0;
    }
    res->projected_step_ms = res->host_ms + projected;
    snprintf(res->method, sizeof res->method,
             "per kernel from kernels.csv (%d entries, rank 0): each scaled by its own roofline "
             "bound, %s", run->nkernels,
             from ? "at the efficiency measured on the source" : "at an ASSUMED efficiency (source not in the table)");
    assume(res, "kernels.csv covers the measured steps of all %g repetitions (per step = total / "
           "(steps x repetitions))", run->kernel_reps);
    return DMZ_OK;
}

/* ------------------------------------------------------------ coarse */
static int classes_of(const cmp_run *run) {
    char text[32];
    cmp_meta_text(run, "dataset.classes", text, sizeof text);
    if (text[0]) return atoi(text);
    if (strstr(run->r.dataset, "fashion") || strstr(run->r.dataset, "mnist")) return strstr(run->r.dataset, "emnist") ? 47 : 10;
    return 47;
}

static int coarse(const cmp_run *run, const dmz_device *from, const dmz_device *to,
                  const prj_options *opt, prj_result *res, char *err) {
    res->coarse = true;
    int rc = prj_model_ops(run->r.model, run->r.batch, classes_of(run), &res->k, &res->n, err);
    if (rc) return rc;
    double compute = nz(run->phase_ms[RPT_PHASE_FWD].median) + nz(run->phase_ms[RPT_PHASE_BWD].median) +
                     nz(run->phase_ms[RPT_PHASE_UPDATE].median);
    if (!(compute > 0)) compute = res->measured_step_ms; /* no phases: all of it */
    res->device_ms = compute;
    res->host_ms = fmax(0, res->measured_step_ms - compute);
    double launches = 0, b_from = 0;
    for (int i = 0; i < res->n; i++) {
        launches += res->k[i].calls;
        if (from) b_from += roofline_ms(from, res->k[i].flops, res->k[i].bytes, NULL);
    }
    double fixed = launches * opt->launch_us * 1e-3, eff = opt->efficiency;
    bool measured = from && run->on_gpu && !opt->efficiency_set;
    if (measured && compute > fixed && b_from > 0) eff = b_from / (compute - fixed);
    else measured = false;
    double projected = 0, lower = 0;
    for (int i = 0; i < res->n; i++) {
        prj_kernel *k = &res->k[i];
        const char *bt, *bf = "?";
        double b_to = roofline_ms(to, k->flops, k->bytes, &bt);
        if (from) roofline_ms(from, k->flops, k->bytes, &bf);
        k->measured_ms = NAN;
        k->efficiency = eff;
        k->projected_ms = k->calls * opt->launch_us * 1e-3 + b_to / eff;
        rpt_copy(k->bound_from, sizeof k->bound_from, bf);
        rpt_copy(k->bound_to, sizeof k->bound_to, bt);
        projected += k->projected_ms;
        lower += k->calls * opt->launch_us * 1e-3 + b_to;
    }
    res->projected_step_ms = res->host_ms + projected;
    snprintf(res->method, sizeof res->method,
             "COARSE: %s; the %s model's own FLOP/byte counts per step (bench/project_model.c) "
             "replace the kernels", run->has_kernels ? "the source device is not in the table" :
             "no kernels.csv in this run", run->r.model);
    if (measured)
        assume(res, "efficiency %.3g of the roofline, measured on %s over the forward, backward "
               "and update phases, applied to every op", eff, from->name);
    else
        assume(res, "efficiency %.3g of the roofline ASSUMED for every op (%s; --efficiency to "
               "change): at 100%% the step would take %.4g ms (a lower bound)", eff,
               opt->efficiency_set ? "--efficiency" : run->on_gpu ? "the source device is not in the table" :
               "a cpu run: nothing on a GPU was measured", res->host_ms + lower);
    assume(res, "the forward, backward and update phases (%.4g ms a step) are what moves to "
           "the device; data loading, communication and the rest of the step (%.4g ms) are host "
           "time, carried over as measured", compute, res->host_ms);
    return DMZ_OK;
}

int prj_project(const cmp_run *run, const dmz_device *from, const dmz_device *to,
                const prj_options *opt, prj_result *out, char *err) {
    memset(out, 0, sizeof *out);
    if (!from) from = run->row;
    out->from = from, out->to = to;
    rpt_copy(out->to_name, sizeof out->to_name, to->name);
    if (from) snprintf(out->from_name, sizeof out->from_name, "%s (table row)", from->name);
    else snprintf(out->from_name, sizeof out->from_name, "%s (not in the table)", run->device);
    out->measured_step_ms = run->step_ms.median;
    if (!(run->r.steps > 0) || isnan(out->measured_step_ms))
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s/summary.csv: no steps or wall time to project "
                          "from", run->r.dir);
    bool per_kernel = run->has_kernels && run->nkernels > 0;
    int rc = per_kernel ? from_kernels(run, from, to, opt, out, err) : coarse(run, from, to, opt, out, err);
    if (rc) return rc;
    out->projected_2000_s = out->projected_step_ms * 2000 / 1e3;
    assume(out, "%.3g us a kernel call does not scale with the device (launch and ramp-up; "
           "--launch-us)", opt->launch_us);
    assume(out, "target %s: FP32 %.4g TFLOP/s, %.4g GB/s (%s), at its boost clock, no throttling",
           to->name, to->fp32_tflops, to->memory_gbps, to->source);
    if (from)
        assume(out, "source %s: FP32 %.4g TFLOP/s, %.4g GB/s (%s)", from->name, from->fp32_tflops,
               from->memory_gbps, from->source);
    assume(out, "2000-step time = 2000 x the projected step (warm-up and evaluation excluded)");
    return DMZ_OK;
}

void prj_free(prj_result *res) {
    free(res->k);
    res->k = NULL;
    res->n = 0;
}

/* ------------------------------------------------------------ output */
static void num_or_na(FILE *f, const char *fmt, double v) {
    if (isnan(v)) fprintf(f, "%12s", "NA");
    else fprintf(f, fmt, v);
}

void prj_print(FILE *f, const cmp_run *run, const prj_result *res) {
    fprintf(f, "# PROJECTION (not a measurement): %s\n", run->r.name);
    fprintf(f, "# PROJECTION from: %s, %s %s, batch %ld\n", res->from_name, run->r.model,
            run->r.backend, run->r.batch);
    fprintf(f, "# PROJECTION onto: %s\n", res->to_name);
    fprintf(f, "# PROJECTION method: %s\n", res->method);
    for (int i = 0; i < res->nassume; i++) fprintf(f, "# PROJECTION assumes: %s\n", res->assume[i]);
    fprintf(f, "#\n# %-44s %6s %9s %12s %12s %8s %8s %6s %12s\n", "kernel", "kind", "calls/st",
            "GFLOP/step", "MB/step", "bound@A", "bound@B", "eff", "proj ms/st");
    fprintf(f, "# %-44s %6s %9s %12s %12s %8s %8s %6s %12s\n", "", "", "", "", "", "(from)", "(to)", "",
            "PROJECTION");
    for (int i = 0; i < res->n; i++) {
        const prj_kernel *k = &res->k[i];
        fprintf(f, "  %-44.44s %6s %9.3g ", k->name, k->kind, k->calls);
        num_or_na(f, "%12.4g", k->flops / 1e9);
        fputc(' ', f);
        num_or_na(f, "%12.4g", k->bytes / 1e6);
        fprintf(f, " %8s %8s ", k->bound_from, k->bound_to);
        if (isnan(k->efficiency)) fprintf(f, "%6s", "NA");
        else fprintf(f, "%6.3f", k->efficiency);
        fprintf(f, " %12.4g\n", k->projected_ms);
    }
    fprintf(f, "#\n# %-36s %14s %14s\n", "", "measured", "PROJECTION");
    fprintf(f, "  %-36s %14.4g %14s\n", "step on the source (ms)", res->measured_step_ms, "-");
    fprintf(f, "  %-36s %14.4g %14.4g\n", "host time, carried over (ms)", res->host_ms, res->host_ms);
    fprintf(f, "  %-36s %14.4g %14.4g\n", "device part (ms)", res->device_ms,
            res->projected_step_ms - res->host_ms);
    fprintf(f, "  %-36s %14s %14.4g\n", "PROJECTED step (ms)", "-", res->projected_step_ms);
    fprintf(f, "  %-36s %14.4g %14.4g\n", "2000 steps (s)", res->measured_step_ms * 2,
            res->projected_2000_s);
    fprintf(f, "# PROJECTION: %s onto %s: %.4g ms a step, %.4g s for 2000 steps (measured on the "
            "source: %.4g ms, %.4g s)%s\n", run->r.name, res->to_name, res->projected_step_ms,
            res->projected_2000_s, res->measured_step_ms, res->measured_step_ms * 2,
            res->coarse ? "; COARSE" : "");
}

int prj_write_csv(const cmp_run *run, const prj_result *res, const char *path, char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    char name[300], from[360], to[80], method[420];
    rpt_csv_field(name, sizeof name, run->r.name);
    rpt_csv_field(from, sizeof from, res->from_name);
    rpt_csv_field(to, sizeof to, res->to_name);
    rpt_csv_field(method, sizeof method, res->method);
    fputs("label,run,from,to,item,kind,calls_per_step,flops_per_step,bytes_per_step,bound_from,"
          "bound_to,efficiency,measured_ms,projected_ms,note\n", f);
    for (int i = 0; i < res->n; i++) {
        const prj_kernel *k = &res->k[i];
        char kn[170];
        rpt_csv_field(kn, sizeof kn, k->name);
        fprintf(f, "PROJECTION,%s,%s,%s,%s,%s,%.6g,%.6g,%.6g,%s,%s,", name, from, to, kn, k->kind,
                k->calls, k->flops, k->bytes, k->bound_from, k->bound_to);
        if (isnan(k->efficiency)) fputs("NA,", f);
        else fprintf(f, "%.6g,", k->efficiency);
        if (isnan(k->measured_ms)) fputs("NA,", f);
        else fprintf(f, "%.6g,", k->measured_ms);
        fprintf(f, "%.6g,%s\n", k->projected_ms, res->coarse ? "COARSE" : "per kernel");
    }
    fprintf(f, "PROJECTION,%s,%s,%s,host,host,NA,NA,NA,NA,NA,NA,%.6g,%.6g,carried over\n", name,
            from, to, res->host_ms, res->host_ms);
    fprintf(f, "PROJECTION,%s,%s,%s,step,step,NA,NA,NA,NA,NA,NA,%.6g,%.6g,%s\n", name, from, to,
            res->measured_step_ms, res->projected_step_ms, method);
    fprintf(f, "PROJECTION,%s,%s,%s,2000 steps (s),total,NA,NA,NA,NA,NA,NA,%.6g,%.6g,%s\n", name,
            from, to, res->measured_step_ms * 2, res->projected_2000_s,
            res->coarse ? "COARSE" : "per kernel");
    for (int i = 0; i < res->nassume; i++) {
        char a[420];
        rpt_csv_field(a, sizeof a, res->assume[i]);
        fprintf(f, "PROJECTION,%s,%s,%s,assumption,note,NA,NA,NA,NA,NA,NA,NA,NA,%s\n", name, from,
                to, a);
    }
    if (fclose(f) != 0) {
        free(buf);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    return rpt_write_stream(path, buf, len, err);
}

/* ------------------------------------------------------------ command */
static void safe(const char *in, char *out, size_t len) {
    size_t n = 0;
    for (; *in && n + 1 < len; in++)
        out[n++] = ((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') || (*in >= '0' && *in <= '9') ||
                    *in == '-' || *in == '.') ? *in : '_';
    out[n] = '\0';
}

static int unknown_device(const dmz_device_table *t, const char *name, char *err) {
    char list[2048];
    dmz_devices_list(t, list, sizeof list);
    return dmz_errorf(err, DMZ_EXIT_USAGE, "unknown device '%s' (%s); known: %s", name, t->path, list);
}

int dmz_project(const char *run_dir, const char *device, const char *from_name, const char *out_dir,
                const prj_options *opt, bool quiet, char *err) {
    prj_options defaults;
    prj_options_default(&defaults);
    if (!opt) opt = &defaults;
    dmz_device_table table;
    int rc = dmz_devices_load(&table, NULL, err);
    if (rc) return rc;
    const dmz_device *to = dmz_devices_find(&table, device), *from = NULL;
    if (!to) rc = unknown_device(&table, device, err);
    if (!rc && from_name && !(from = dmz_devices_find(&table, from_name))) rc = unknown_device(&table, from_name, err);
    cmp_run run;
    bool loaded = false;
    if (!rc) loaded = (rc = cmp_run_load(run_dir, &table, &run, err)) == DMZ_OK;
    prj_result res = {0};
    if (!rc) rc = prj_project(&run, from, to, opt, &res, err);
    char dir[RPT_PATH_LEN + 16], path[RPT_PATH_LEN + 160], sname[80];
    if (!rc) {
        snprintf(dir, sizeof dir, "%s/plots", run.r.dir);
        if (out_dir) rpt_copy(dir, sizeof dir, out_dir);
        safe(to->name, sname, sizeof sname);
        snprintf(path, sizeof path, "%s/project-%s.csv", dir, sname);
        rc = dmz_mkdirs(dir, err);
        if (!rc) rc = prj_write_csv(&run, &res, path, err);
        if (!quiet) {
            prj_print(stdout, &run, &res);
            if (!rc) printf("# PROJECTION written to %s\n", path);
        }
    }
    prj_free(&res);
    if (loaded) cmp_run_free(&run);
    dmz_devices_free(&table);
    return rc;
}

static int parse_positive(const char *opt, const char *arg, double max, double *out, char *err) {
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v > 0) || v > max)
        return dmz_errorf(err, DMZ_EXIT_USAGE, "%s '%s': a number in (0, %g]", opt, arg, max);
    *out = v;
    return DMZ_OK;
}

int dmz_project_main(int argc, char **argv) {
    const char *run = NULL, *device = NULL, *from = NULL, *out = NULL;
    prj_options opt;
    prj_options_default(&opt);
    char err[DMZ_ERR_LEN];
    int rc = DMZ_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--device") == 0 && v) device = v, i++;
        else if (strcmp(a, "--from") == 0 && v) from = v, i++;
        else if (strcmp(a, "--out") == 0 && v) out = v, i++;
        else if (strcmp(a, "--launch-us") == 0 && v) rc = parse_positive(a, v, 1e6, &opt.launch_us, err), i++;
        else if (strcmp(a, "--efficiency") == 0 && v)
            rc = parse_positive(a, v, 1, &opt.efficiency, err), opt.efficiency_set = true, i++;
        else if (a[0] == '-') rc = dmz_errorf(err, DMZ_EXIT_USAGE, "bad option '%s'", a);
        else if (run) rc = dmz_errorf(err, DMZ_EXIT_USAGE, "one run directory only ('%s', '%s')", run, a);
        else run = a;
    }
    if (!rc && (!run || !device))
        rc = dmz_errorf(err, DMZ_EXIT_USAGE, "usage: dmzbench project RUNDIR --device NAME [--from NAME] "
                        "[--out DIR] [--launch-us U] [--efficiency E]");
    if (!rc) rc = dmz_project(run, device, from, out, &opt, false, err);
    if (rc) fprintf(stderr, "dmzbench project: %s\n", err);
    return rc;
}
