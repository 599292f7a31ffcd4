/* net/wanem/wanem_impl.h — shared between the files of net/wanem only. */
#ifndef DMZ_WANEM_IMPL_H
#define DMZ_WANEM_IMPL_H

#include <stdbool.h>
#include <sys/types.h>

#include "wanem.h"

/* <state dir of prefix>/<file> */
void dmz_wan_state_path(const char *prefix, const char *file, char *out, size_t len);
/* The relay's pid when the pidfile names a live process called dmzrelay; else 0. */
pid_t dmz_wan_relay_pid(const char *prefix);

typedef struct relay_measure { double gbps, cpu_pct, seconds; char note[256]; } relay_measure;
/* wan.json's content for a description that is up. */
cJSON *dmz_wan_state_json(const dmz_wan_desc *d, bool netem, const char *netem_why, const relay_measure *m,
                          pid_t relay, const char *desc_text);

#endif
