/* bench/compare_html.c — compare.html: one self-contained page (inline CSS,
 * figures beside it) with the same numbers as the stdout table. */
#include "bench/compare_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char css[] =
    "body{font:15px/1.45 system-ui,'DejaVu Sans',sans-serif;max-width:1150px;margin:2em auto;"
    "padding:0 1em;color:#222}h2{margin-top:1.6em;border-bottom:1px solid #ccc}\n"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .55em;"
    "text-align:left}th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".bad{background:#fde2e1;border:1px solid #c0392b;padding:.6em 1em;margin:1em 0}\n"
    ".proj{background:#eef4fb;border:1px solid #0072B2;padding:.6em 1em;margin:1em 0}\n"
    "figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#444;font-size:.93em}\n";

void cmp_html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void td(FILE *f, double v) {
    if (isnan(v)) fputs("<td class=num>NA</td>", f);
    else fprintf(f, "<td class=num>%.4g</td>", v);
}

static void run_rows(FILE *f, const cmp_result *res) {
    fputs("<table><tr><th></th><th>run</th><th>device</th><th>table row</th><th>configuration</th>"
          "<th>data</th></tr>\n", f);
    for (int i = 0; i < 2; i++) {
        const cmp_run *x = i ? res->b : res->a;
        fprintf(f, "<tr><th>%s</th><td>", x->label);
        cmp_html_escape(f, x->r.name);
        fputs("</td><td>", f);
        cmp_html_escape(f, x->device);
        fputs("</td><td>", f);
        cmp_html_escape(f, x->match);
        char text[400];
        snprintf(text, sizeof text, "%.60s %.60s %.60s, %ld steps x batch %ld, %d repetition%s", x->r.model,
                 x->r.backend, x->r.mode, x->r.steps, x->r.batch, x->r.nreps, x->r.nreps == 1 ? "" : "s");
        fputs("</td><td>", f);
        cmp_html_escape(f, text);
        fputs("</td><td>", f);
        cmp_html_escape(f, x->r.dataset);
        snprintf(text, sizeof text, "%.12s", x->r.dataset_sha256);
        fputs(" <code>", f);
        cmp_html_escape(f, text);
        fputs("</code></td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void metric_table(FILE *f, const cmp_result *res, bool kernels) {
    fputs("<table><tr><th>metric</th><th>unit</th><th>A median</th><th>A min</th><th>A max</th>"
          "<th>B median</th><th>B min</th><th>B max</th><th>B vs A</th><th>min</th><th>max</th></tr>\n", f);
    for (int i = 0; i < res->nmetrics; i++) {
        const cmp_metric *m = &res->metrics[i];
        if ((strcmp(m->section, "kernel") == 0) != kernels) continue;
        fputs("<tr><td>", f);
        cmp_html_escape(f, m->item);
        fprintf(f, "</td><td>%s</td>", m->unit);
        td(f, m->a.median), td(f, m->a.min), td(f, m->a.max);
        td(f, m->b.median), td(f, m->b.min), td(f, m->b.max);
        td(f, m->ratio), td(f, m->ratio_lo), td(f, m->ratio_hi);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<p>B vs A: the speedup A/B for times (&gt; 1: B is faster), B/A for rates and "
          "other values; min and max: over repetitions.</p>\n", f);
}

static void projection(FILE *f, const cmp_result *res) {
    fputs("<h2>PROJECTION beside the measurement</h2>\n", f);
    if (!res->have_projection[0] && !res->have_projection[1]) {
        fputs("<p>", f);
        cmp_html_escape(f, res->no_projection);
        fputs("</p>\n", f);
        return;
    }
    fputs("<div class=proj><p>PROJECTION (bench/project.c): each run's kernels scaled by their "
          "roofline bound onto the other run's device, at the efficiency measured on their own; "
          "host time carried over. Not a measurement.</p>\n<table><tr><th>projection</th>"
          "<th>PROJECTED step (ms)</th><th>measured step (ms)</th><th>error</th></tr>\n", f);
    for (int i = 0; i < 2; i++) {
        if (!res->have_projection[i]) continue;
        const prj_result *p = &res->proj[i];
        double meas = (i ? res->a : res->b)->step_ms.median;
        fprintf(f, "<tr><td>PROJECTION %s onto ", i ? "B" : "A");
        cmp_html_escape(f, p->to_name);
        fprintf(f, "%s</td>", p->coarse ? " (COARSE)" : "");
        td(f, p->projected_step_ms), td(f, meas);
        fprintf(f, "<td class=num>%+.1f%%</td></tr>\n", 100.0 * (p->projected_step_ms - meas) / meas);
    }
    fputs("</table>\n<ul>\n", f);
    const prj_result *p = res->have_projection[0] ? &res->proj[0] : &res->proj[1];
    for (int i = 0; i < p->nassume; i++) {
        fputs("<li>", f);
        cmp_html_escape(f, p->assume[i]);
        fputs("</li>\n", f);
    }
    fputs("</ul></div>\n", f);
}

int cmp_html(const cmp_result *res, const rpt_figure *figs, int nfigs, const char *out_dir, char *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dmz_errorf(err, DMZ_EXIT_FAIL, "out of memory");
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<title>dmzbench compare</title>\n<style>\n%s</style>\n</head>\n<body>\n"
               "<h1>dmzbench compare: A vs B</h1>\n", css);
    run_rows(f, res);
    if (res->nwarn) {
        fputs("<div class=bad><strong>NOT COMPARABLE:</strong><ul>\n", f);
        for (int i = 0; i < res->nwarn; i++) {
            fputs("<li>", f);
            cmp_html_escape(f, res->warn[i]);
            fputs("</li>\n", f);
        }
        fputs("</ul>The times below answer different questions: read the speedups with care.</div>\n", f);
    }
    fputs("<h2>Time, phases, energy, accuracy</h2>\n", f);
    metric_table(f, res, false);
    fputs("<p>Energy: A ", f);
    cmp_html_escape(f, res->a->energy_source);
    fputs("; B ", f);
    cmp_html_escape(f, res->b->energy_source);
    fputs(".</p>\n<h2>Kernels</h2>\n", f);
    if (res->a->has_kernels || res->b->has_kernels) metric_table(f, res, true);
    else fputs("<p>No kernels.csv in either run.</p>\n", f);
    projection(f, res);
    fputs("<h2>Figures</h2>\n", f);
    for (int i = 0; i < nfigs; i++) {
        if (figs[i].state == RPT_FIG_OK) {
            fprintf(f, "<figure><img src=\"%s.png\" alt=\"%s\"><figcaption>", figs[i].name, figs[i].name);
            cmp_html_escape(f, figs[i].caption);
            fputs("</figcaption></figure>\n", f);
        } else {
            fprintf(f, "<p>Figure %s %s: ", figs[i].name, figs[i].state == RPT_FIG_SKIPPED ? "skipped" : "failed");
            cmp_html_escape(f, figs[i].note);
            fputs("</p>\n", f);
        }
    }
    fprintf(f, "<h2>What differs</h2>\n<p>%d recorded field%s the same.</p>\n<table><tr><th>field</th>"
               "<th>A</th><th>B</th></tr>\n", res->nsame, res->nsame == 1 ? "" : "s");
    for (int i = 0; i < res->ndiffs; i++) {
        fputs("<tr><td>", f);
        cmp_html_escape(f, res->diffs[i].what);
        fputs("</td><td>", f);
        cmp_html_escape(f, res->diffs[i].a);
        fputs("</td><td>", f);
        cmp_html_escape(f, res->diffs[i].b);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    for (int i = 0; i < 2; i++) {
        const cmp_run *x = i ? res->b : res->a;
        if (x->r.ranks < 2) continue;
        fprintf(f, "<h2>%s's ranks</h2>\n", x->label);
        rpt_ranks_html(f, &x->r);
    }
    fputs("<p>Data: compare.csv, fig-compare-*.csv.</p>\n</body>\n</html>\n", f);
    char path[RPT_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/compare.html", out_dir);
    if (fclose(f) != 0) {
        free(buf);
        return dmz_errorf(err, DMZ_EXIT_FAIL, "%s: out of memory", path);
    }
    return rpt_write_stream(path, buf, len, err);
}
