/* The α–β model of a step (see wanem.h), and TCP windows on long fat links. */
#include "wanem.h"

#include <math.h>

double dmz_wan_model_allreduce_s(dmz_wan_ab ab, int p, double n_bytes) {
    if (p < 2) return 0;
    return 2.0 * (p - 1) * ab.alpha_s + 2.0 * (p - 1) / p * n_bytes * ab.beta_s_per_byte;
}

double dmz_wan_model_sync_step_s(double compute_s, dmz_wan_ab ab, int p, double n_bytes) {
    return compute_s + dmz_wan_model_allreduce_s(ab, p, n_bytes);
}

double dmz_wan_model_ps_step_s(const double *compute_s, const dmz_wan_ab *ab, int workers, double update_s,
                               double n_bytes) {
    double rate = 0;
    for (int w = 0; w < workers; w++) {
        double t = compute_s[w] + 2 * (ab[w].alpha_s + n_bytes * ab[w].beta_s_per_byte) + update_s;
        if (t > 0) rate += 1 / t;
    }
    if (update_s > 0 && rate > 1 / update_s) rate = 1 / update_s; /* the server applies one push at a time */
    return rate > 0 ? 1 / rate : NAN;
}

bool dmz_wan_model_within(double measured_s, double predicted_s) {
    double d = fabs(measured_s - predicted_s);
    return d <= DMZ_WAN_MODEL_TOL_ABS_S || d <= DMZ_WAN_MODEL_TOL_REL * fabs(measured_s);
}

double dmz_wan_tcp_window_bytes(double rmem_max, double wmem_max) {
    if (!isfinite(rmem_max) || !isfinite(wmem_max)) return NAN;
    double w = rmem_max / 2;
    return wmem_max < w ? wmem_max : w;
}

bool dmz_wan_window_limited(double rate_bps, double rtt_s, double window_bytes, double *bdp_bytes, double *cap_bps) {
    double bdp = rate_bps / 8 * rtt_s;
    double cap = rtt_s > 0 && isfinite(window_bytes) ? window_bytes * 8 / rtt_s : INFINITY;
    if (bdp_bytes) *bdp_bytes = bdp;
    if (cap_bps) *cap_bps = cap < rate_bps ? cap : rate_bps;
    return isfinite(window_bytes) && bdp > window_bytes;
}

double dmz_wan_model_message_s(dmz_wan_ab ab, double m, double eager) {
    return ab.alpha_s + m * ab.beta_s_per_byte + (m > eager ? 2 * ab.alpha_s : 0);
}

double dmz_wan_model_allreduce_asrun_s(dmz_wan_ab ab, int p, double n, double eager) {
    if (p < 2) return 0;
    int rounds = 0;
    while ((1 << rounds) < p) rounds++;
    return rounds * dmz_wan_model_message_s(ab, n, eager) + 2.0 * (p - 1) * dmz_wan_model_message_s(ab, n / p, eager);
}

double dmz_wan_model_barrier_s(dmz_wan_ab ab, int p) { return p < 2 ? 0 : 2 * ab.alpha_s; }

double dmz_wan_model_sync_asrun_step_s(double compute_s, dmz_wan_ab ab, int p, double n_bytes, double eager_bytes) {
    return compute_s + dmz_wan_model_barrier_s(ab, p) + dmz_wan_model_allreduce_asrun_s(ab, p, n_bytes, eager_bytes);
}

dmz_wan_ab dmz_wan_model_fit(const double *bytes, const double *t, int n) {
    dmz_wan_ab ab = {NAN, NAN};
    double n1 = 0, t1 = NAN, n2 = 0, t2 = NAN;
    for (int i = 0; i < n; i++) {
        if (bytes[i] <= DMZ_WAN_ALPHA_MAX_BYTES && !(ab.alpha_s <= t[i])) ab.alpha_s = t[i];
        if (bytes[i] > n2) n1 = n2, t1 = t2, n2 = bytes[i], t2 = t[i];
        else if (bytes[i] > n1) n1 = bytes[i], t1 = t[i];
    }
    if (n2 > n1 && n1 > 0) ab.beta_s_per_byte = (t2 - t1) / (n2 - n1);
    if (!(ab.beta_s_per_byte > 0) && n2 > 0) ab.beta_s_per_byte = (t2 - ab.alpha_s) / n2;
    return ab;
}
