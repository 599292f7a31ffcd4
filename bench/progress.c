#include "progress.h"

#include <math.h>
#include <stdio.h>

#include "common/dmz.h"

void dmz_progress_init(dmz_progress *p, bool quiet, int reps, int total_steps) {
    *p = (dmz_progress){.enabled = dmz_progress_enabled(quiet), .reps = reps, .total_steps = total_steps,
                        .last_accuracy = NAN};
}

void dmz_progress_step(dmz_progress *p, int rep, int step, double loss, double elapsed_s) {
    if (!p->enabled) return;
    double now = dmz_now_s();
    if (step != p->total_steps && now - p->last_draw_s < 0.1) return; /* at most 10 redraws/s */
    p->last_draw_s = now;
    double rate = elapsed_s > 0 ? step / elapsed_s : 0;
    char eta[32], acc[32] = "";
    dmz_format_eta(rate > 0 ? (p->total_steps - step) / rate : -1, eta, sizeof eta);
    if (isfinite(p->last_accuracy)) snprintf(acc, sizeof acc, "  test acc %.4f", p->last_accuracy);
    fprintf(stderr, "\r  rep %d/%d  step %6d/%d  loss %9.4f%s  %8.1f steps/s  ETA %s \033[K", rep + 1,
            p->reps, step, p->total_steps, loss, acc, rate, eta);
    fflush(stderr);
}

void dmz_progress_eval(dmz_progress *p, double accuracy) { p->last_accuracy = accuracy; }

void dmz_progress_done(dmz_progress *p) {
    if (!p->enabled) return;
    fputc('\n', stderr);
    p->last_accuracy = NAN;
}
