/* net/wanem/wanem.h — emulated WAN links between sites on one machine
 * (`dmzbench wan`). Each site is a network namespace "<prefix>-<site>" with two
 * interfaces:
 *   control  <prefix>-c<i>, NET.0.<i+1>/24, on the bridge <prefix>-br in the
 *            root namespace (NET.0.254): mpirun's PMIx and OOB traffic, unshaped;
 *   data     <prefix>-w<i>, NET.1.<i+1>/24, MTU 9000 (as Science DMZ DTNs run),
 *            the emulated WAN: the MPI data path (btl_tcp_if_include NET.1.0/24).
 * Rate is shaped by the kernel: an htb class per peer on each site's data
 * egress (u32 filter on the peer's address). One-way delay (RTT/2), jitter and
 * loss come from netem where the kernel has it (detected at `up`); otherwise
 * (this project's build machine) from a user-space relay in the namespace
 * "<prefix>-hub": an AF_PACKET L2 switch between the sites' data veths that
 * holds each frame in a per-direction FIFO until its due time (timerfd +
 * epoll, no busy loop), drops by a seeded RNG, and keeps frame order (jitter
 * never reorders). The relay's own maximum throughput is measured at `up`
 * (TCP through zero-delay links) and recorded, so its limit is not mistaken
 * for the link's.
 *
 * State lives in DMZBENCH_WAN_RUN_DIR (default /run/dmzbench-wan)/<prefix>/:
 * desc.txt, wan.json (what the runner copies into meta.json "wan" when
 * DMZBENCH_WAN_FILE names it), relay.pid, relay.stats, relay.log. */
#ifndef DMZ_WANEM_H
#define DMZ_WANEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum { DMZ_WAN_MAX_SITES = 8, DMZ_WAN_MAX_LINKS = DMZ_WAN_MAX_SITES * (DMZ_WAN_MAX_SITES - 1) / 2,
       DMZ_WAN_NAME_LEN = 24, DMZ_WAN_PREFIX_LEN = 9 };

typedef struct dmz_wan_link {
    int a, b;          /* site indices */
    double rtt_s;      /* round trip added by the link: each direction delays rtt/2 */
    double jitter_s;   /* each direction: uniform in [-jitter, +jitter] around rtt/2, order kept */
    double rate_bps;   /* each direction, bits/s (L2 bytes, as tc counts them) */
    double loss;       /* each direction, a fraction in [0, 1] */
} dmz_wan_link;

typedef struct dmz_wan_desc {
    char prefix[DMZ_WAN_PREFIX_LEN];  /* names: <prefix>-<site>, <prefix>-hub, <prefix>-br ... */
    char net[16];                     /* first two octets of the addresses, e.g. "10.213" */
    int n_sites;
    bool sites_declared;              /* a "sites" line or --sites: links may name only these */
    char sites[DMZ_WAN_MAX_SITES][DMZ_WAN_NAME_LEN];
    int n_links;
    dmz_wan_link links[DMZ_WAN_MAX_LINKS];
    uint64_t seed;                    /* the relay's loss and jitter draws */
    int mtu;                          /* data interfaces (default 9000) */
    size_t queue_bytes;               /* relay: bytes held per direction before tail drop */
} dmz_wan_desc;

void dmz_wan_desc_init(dmz_wan_desc *d);
/* "sites A B C", "seed N", "mtu N", "queue 64MiB" or a link
 * "A-B rtt=20ms rate=10gbit loss=0.01% jitter=1ms" (also delay=, one way).
 * Times: us, ms, s; rates: bit, kbit, mbit, gbit (tc's units, 1000-based);
 * loss in percent (the % is optional). '#' starts a comment. A bad token
 * returns DMZ_EXIT_USAGE with err naming it (and `where`, e.g. "file:3"). */
int dmz_wan_parse_line(dmz_wan_desc *d, const char *line, const char *where, char *err);
int dmz_wan_parse_file(dmz_wan_desc *d, const char *path, char *err);
/* After the last line: at least 2 sites and a link; every site has a link. */
int dmz_wan_desc_check(const dmz_wan_desc *d, char *err);
/* The description back as text (desc.txt: `up` compares it to be idempotent). */
void dmz_wan_desc_format(const dmz_wan_desc *d, char *out, size_t len);
const dmz_wan_link *dmz_wan_find_link(const dmz_wan_desc *d, int a, int b);
int dmz_wan_parse_time(const char *s, double *out_s);
int dmz_wan_parse_rate(const char *s, double *out_bps);

/* Names and paths. */
void dmz_wan_netns(const dmz_wan_desc *d, int site, char *out, size_t len);  /* "<prefix>-<site>" */
void dmz_wan_state_dir(const char *prefix, char *out, size_t len);
void dmz_wan_data_ip(const dmz_wan_desc *d, int site, char *out, size_t len);
/* "10.N" with N in 200..249 from a hash of the prefix ("dmz": 10.213 is not
 * promised); `up` refuses a net whose addresses another interface holds. */
void dmz_wan_default_net(const char *prefix, char *out, size_t len);

typedef struct dmz_wan_up_options {
    bool measure_relay;    /* measure the relay's own throughput (about 1.5 s) */
    bool force_relay;      /* the relay even where netem exists */
    bool quiet;
} dmz_wan_up_options;

/* Builds the sites (replacing anything under the same prefix unless it is
 * already up with the same description: then nothing changes). */
int dmz_wan_up(const dmz_wan_desc *d, const dmz_wan_up_options *o, char *err);
/* Removes everything named <prefix>-*: namespaces, interfaces, the bridge,
 * the relay (by its pidfile, checked against /proc/PID/comm), the state
 * directory. Also what a killed run left; returns DMZ_OK when nothing is left. */
int dmz_wan_down(const char *prefix, bool quiet, char *err);
/* Prints what is up (links, qdiscs, relay counters); DMZ_EXIT_FAIL when nothing is. */
int dmz_wan_status(const char *prefix, char *err);
/* Names every leftover under prefix (namespaces, interfaces, relay) into out;
 * returns their count (tests: 0 after `down`). */
int dmz_wan_leftovers(const char *prefix, char *out, size_t len);

/* The relay's main loop, in the hub namespace, until SIGTERM/SIGINT. ports[i]:
 * the hub-side data interface of site i. ready_fd >= 0 gets one byte once the
 * sockets are open. Writes counters to stats_path every second. */
int dmz_wan_relay_run(const dmz_wan_desc *d, const char *const *ports, int ready_fd, const char *stats_path,
                      char *err);

/* Runs fn(arg) in a child process inside netns `name`; returns its exit code. */
int dmz_wan_in_netns(const char *name, int (*fn)(void *), void *arg);
/* TCP from site a to site b for `seconds`: goodput in bit/s. */
int dmz_wan_tcp_blast(const dmz_wan_desc *d, int a, int b, double seconds, double *bps, char *err);

typedef struct dmz_wan_ping_result {
    int sent, received;
    double rtt_min_s, rtt_avg_s, rtt_max_s;
    double loss_rt;        /* round-trip loss fraction */
    double loss_one_way;   /* 1 - sqrt(1 - loss_rt): each direction, as configured */
} dmz_wan_ping_result;
/* UDP echo from site a to site b: count datagrams spaced by interval_s. */
int dmz_wan_ping(const dmz_wan_desc *d, int a, int b, int count, double interval_s, dmz_wan_ping_result *r,
                 char *err);

/* wan.json of a prefix (or NULL with why): the configuration, relay limit, TCP buffers. */
cJSON *dmz_wan_load_state(const char *prefix, char *err);
/* The runner's hook: DMZBENCH_WAN_FILE set -> that wan.json parsed (NULL when unset;
 * on a read error an object {"unavailable": reason}). */
cJSON *dmz_wan_meta_from_env(void);

/* ---------------------------------------------------------------- the α–β model
 * Hockney's model: a message of n bytes between two ranks takes α + n·β one
 * way (α: latency, β: seconds per byte). From the probe: α = the smallest
 * one-way time of the messages up to 1 KiB, β from its two largest sizes. */
typedef struct dmz_wan_ab { double alpha_s, beta_s_per_byte; } dmz_wan_ab;

/* Ring all-reduce of n bytes over p ranks (reduce-scatter + all-gather, as
 * net/comm_mpi.c runs it): 2(p−1)α + 2(p−1)/p · n · β (Thakur, Rabenseifner
 * and Gropp 2005; the bandwidth term is nccl-tests' busbw factor). */
double dmz_wan_model_allreduce_s(dmz_wan_ab ab, int p, double n_bytes);
/* What net/comm_mpi.c and Open MPI 4.1 put on the wire: one message of m bytes
 * is α + mβ, plus a rendezvous round trip (2α) above btl_tcp_eager_limit; the
 * non-blocking reduce-scatter (libnbc) is a binomial reduce to rank 0 then a
 * linear scatter, the all-gather linear: for p ranks ceil(log2 p) messages of
 * n, then p−1 of n/p, then p−1 of n/p (for p = 2: n, n/2, n/2 in sequence). */
double dmz_wan_model_message_s(dmz_wan_ab ab, double m_bytes, double eager_bytes);
double dmz_wan_model_allreduce_asrun_s(dmz_wan_ab ab, int p, double n_bytes, double eager_bytes);
/* From a probe's rows of one pair: α = the smallest one-way time of the rows
 * up to DMZ_WAN_ALPHA_MAX_BYTES (each row a mean of round trips: one row alone
 * carries whatever a busy core added to it; the bandwidth term there is under
 * 0.1% of any WAN delay), β from the two largest sizes (both past the eager
 * limit, so the rendezvous cancels). */
#define DMZ_WAN_ALPHA_MAX_BYTES 1024
dmz_wan_ab dmz_wan_model_fit(const double *bytes, const double *one_way_s, int n);
/* The barrier before each sync exchange (net/comm_mpi.c: fan-in to rank 0,
 * fan-out from it; its wait is the step's wait_s): 2α for p >= 2. */
double dmz_wan_model_barrier_s(dmz_wan_ab ab, int p);
/* A sync step as bench/train.c runs it: compute, the barrier, the all-reduce
 * as run. */
double dmz_wan_model_sync_asrun_step_s(double compute_s, dmz_wan_ab ab, int p, double n_bytes, double eager_bytes);
/* Sync step: the single rank's step time (data + forward + backward + update)
 * plus the all-reduce. */
double dmz_wan_model_sync_step_s(double compute_s, dmz_wan_ab ab, int p, double n_bytes);
/* async-ps: worker w's round trip is compute_w + push (α + nβ) + server
 * update + pull (α + nβ); the global step rate is Σ_w 1/T_w, at most the
 * server's 1/update_s. Returns the time per global step. */
double dmz_wan_model_ps_step_s(const double *compute_s, const dmz_wan_ab *ab, int workers, double update_s,
                               double n_bytes);
/* The model's stated tolerance: a prediction within 25% of the measurement,
 * or within 2 ms for steps that short, is "as predicted". */
#define DMZ_WAN_MODEL_TOL_REL 0.25
#define DMZ_WAN_MODEL_TOL_ABS_S 0.002
bool dmz_wan_model_within(double measured_s, double predicted_s);

/* TCP on a long fat link: the window a connection can reach with these
 * buffers (min(wmem max, rmem max / 2): the kernel keeps about half of the
 * receive buffer for overhead) and whether rate × RTT exceeds it. */
double dmz_wan_tcp_window_bytes(double rmem_max, double wmem_max);
bool dmz_wan_window_limited(double rate_bps, double rtt_s, double window_bytes, double *bdp_bytes,
                            double *cap_bps);

#endif
