/* bench/progress.h — one self-overwriting status line on a terminal:
 * repetition, step, loss, steps/s, ETA. Silent when not enabled. Internal. */
#ifndef DMZ_PROGRESS_H
#define DMZ_PROGRESS_H

#include <stdbool.h>

typedef struct dmz_progress {
    bool enabled;
    int rep, reps, total_steps;
    double last_draw_s;
    double last_accuracy;
} dmz_progress;

void dmz_progress_init(dmz_progress *p, bool quiet, int reps, int total_steps);
void dmz_progress_step(dmz_progress *p, int rep, int step, double loss, double elapsed_s);
void dmz_progress_eval(dmz_progress *p, double accuracy);
void dmz_progress_done(dmz_progress *p); /* ends the line */

#endif
