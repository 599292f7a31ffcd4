/* bench/devices.h — the device table (bench/devices.csv, read at run time) and
 * matching a GPU's name, as CUDA reports it, to one of its rows.
 *
 * The table is $DMZBENCH_DEVICES when set, else DMZ_SOURCE_DIR/bench/devices.csv.
 * Columns: name, match (normalised names that mean this row, '|'-separated),
 * compute_capability, sms, boost_mhz, fp32_tflops, memory_gbps, memory_gb,
 * tdp_w, source (the vendor document each figure comes from).
 *
 * Names are normalised before they are compared: lower case, anything but
 * letters and digits a space, the words "nvidia", "geforce", "tesla" and
 * "quadro" dropped, so "NVIDIA GeForce GTX 1080 Ti" is "gtx 1080 ti" and
 * "NVIDIA H100 80GB HBM3" is "h100 80gb hbm3" (a match of "H100 SXM"). A name
 * matches a row only when its whole normalised form equals the row's name or
 * one of its match entries: "RTX 3090 Ti" is not an "RTX 3090". */
#ifndef DMZ_BENCH_DEVICES_H
#define DMZ_BENCH_DEVICES_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct dmz_device {
    char name[64];
    char match[256];
    char cc[16];
    int sms;
    double boost_mhz, fp32_tflops, memory_gbps, memory_gb, tdp_w;
    char source[512];
} dmz_device;

typedef struct dmz_device_table {
    char path[4096];
    int n;
    dmz_device *rows;
} dmz_device_table;

/* The table's path: $DMZBENCH_DEVICES or the default. */
void dmz_devices_path(char *out, size_t len);
/* Reads and checks the table (path NULL: dmz_devices_path). DMZ_EXIT_USAGE
 * names file, line and column of a bad field. */
int dmz_devices_load(dmz_device_table *t, const char *path, char *err);
void dmz_devices_free(dmz_device_table *t);

void dmz_devices_normalise(const char *name, char *out, size_t len);
/* The row a GPU name (cudaDeviceProp.name, nvidia-smi's) means; NULL if none. */
const dmz_device *dmz_devices_match(const dmz_device_table *t, const char *gpu_name);
/* A row named on the command line: its name (any case) or a match entry. */
const dmz_device *dmz_devices_find(const dmz_device_table *t, const char *name);
/* "TITAN Xp, GTX 1080 Ti, ..." */
void dmz_devices_list(const dmz_device_table *t, char *out, size_t len);

/* meta.json's "device_match" for its "gpus" value: the row name of the first
 * GPU, "unmatched: <name>" when no row fits, "unmatched: no GPU (<why>)" when
 * there is none or the table cannot be read. A new cJSON string. */
cJSON *dmz_devices_meta_match(const cJSON *gpus);

#endif
