/* counters/topology.c — the machine as hwloc sees it: packages, NUMA nodes,
 * cores, PUs, caches, and the GPUs and NICs on PCI with the cores nearest
 * them. `dmzbench info` prints it; meta.json records it. */
#include "counters/counters.h"
#include "counters/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DMZ_HAVE_HWLOC
static hwloc_topology_t topo;
static char topo_error[DMZ_CTR_REASON_LEN];

hwloc_topology_t dmz_hwloc_topology(char *why, size_t len) {
    if (!topo && !topo_error[0]) {
        hwloc_topology_t t;
        if (hwloc_topology_init(&t) != 0) {
            snprintf(topo_error, sizeof topo_error, "hwloc_topology_init failed");
        } else {
            hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
            if (hwloc_topology_load(t) != 0) {
                snprintf(topo_error, sizeof topo_error, "hwloc_topology_load failed");
                hwloc_topology_destroy(t);
            } else {
                topo = t;
            }
        }
    }
    if (!topo && why) snprintf(why, len, "%s", topo_error);
    return topo;
}

static void add_cpuset(cJSON *o, const char *key, hwloc_const_bitmap_t set) {
    char *text = NULL;
    if (set && hwloc_bitmap_list_asprintf(&text, set) >= 0) cJSON_AddStringToObject(o, key, text);
    free(text);
}

static int count_type(hwloc_topology_t t, hwloc_obj_type_t type) {
    int n = hwloc_get_nbobjs_by_type(t, type);
    return n < 0 ? 0 : n;
}

static cJSON *caches_json(hwloc_topology_t t) {
    cJSON *list = cJSON_CreateArray();
    static const hwloc_obj_type_t types[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L1ICACHE, HWLOC_OBJ_L2CACHE,
                                             HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int n = count_type(t, types[i]);
        if (n == 0) continue;
        hwloc_obj_t c = hwloc_get_obj_by_type(t, types[i], 0);
        cJSON *o = cJSON_CreateObject();
        char name[32];
        hwloc_obj_type_snprintf(name, sizeof name, c, 0);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "level", c->attr->cache.depth);
        cJSON_AddStringToObject(o, "type", c->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION ? "instruction"
                                           : c->attr->cache.type == HWLOC_OBJ_CACHE_DATA      ? "data"
                                                                                              : "unified");
        cJSON_AddNumberToObject(o, "size_bytes", (double)c->attr->cache.size);
        cJSON_AddNumberToObject(o, "line_bytes", c->attr->cache.linesize);
        cJSON_AddNumberToObject(o, "count", n);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

static cJSON *numa_json(hwloc_topology_t t) {
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < count_type(t, HWLOC_OBJ_NUMANODE); i++) {
        hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "os_index", n->os_index);
        add_cpuset(o, "cpuset", n->cpuset);
        cJSON_AddNumberToObject(o, "memory_bytes", (double)n->attr->numanode.local_memory);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

static cJSON *packages_json(hwloc_topology_t t) {
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < count_type(t, HWLOC_OBJ_PACKAGE); i++) {
        hwloc_obj_t p = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, (unsigned)i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "os_index", p->os_index);
        add_cpuset(o, "cpuset", p->cpuset);
        cJSON_AddNumberToObject(o, "cores", hwloc_get_nbobjs_inside_cpuset_by_type(t, p->cpuset, HWLOC_OBJ_CORE));
        const char *model = hwloc_obj_get_info_by_name(p, "CPUModel");
        if (model) cJSON_AddStringToObject(o, "model", model);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

/* A PCI device and where it sits: its non-I/O ancestor's cpuset and NUMA node. */
static cJSON *pci_json(hwloc_topology_t t, hwloc_obj_t pci) {
    cJSON *o = cJSON_CreateObject();
    char bus[32];
    snprintf(bus, sizeof bus, "%04x:%02x:%02x.%01x", pci->attr->pcidev.domain, pci->attr->pcidev.bus,
             pci->attr->pcidev.dev, pci->attr->pcidev.func);
    cJSON_AddStringToObject(o, "pci_bus_id", bus);
    char ids[32];
    snprintf(ids, sizeof ids, "%04x:%04x", pci->attr->pcidev.vendor_id, pci->attr->pcidev.device_id);
    cJSON_AddStringToObject(o, "vendor_device", ids);
    const char *v = hwloc_obj_get_info_by_name(pci, "PCIVendor"), *d = hwloc_obj_get_info_by_name(pci, "PCIDevice");
    if (v || d) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", v ? v : "", v && d ? " " : "", d ? d : "");
        cJSON_AddStringToObject(o, "name", name);
    }
    if (pci->attr->pcidev.linkspeed > 0) cJSON_AddNumberToObject(o, "link_gbytes_per_s", pci->attr->pcidev.linkspeed);
    cJSON *os = cJSON_AddArrayToObject(o, "os_devices");
    for (hwloc_obj_t c = pci->io_first_child; c; c = c->next_sibling)
        if (c->type == HWLOC_OBJ_OS_DEVICE && c->name) cJSON_AddItemToArray(os, cJSON_CreateString(c->name));
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, pci);
    if (anc) {
        add_cpuset(o, "local_cpuset", anc->cpuset);
        if (anc->nodeset && !hwloc_bitmap_iszero(anc->nodeset)) add_cpuset(o, "numa_nodes", anc->nodeset);
    }
    return o;
}

static void pci_lists(hwloc_topology_t t, cJSON *top) {
    cJSON *gpus = cJSON_CreateArray(), *nics = cJSON_CreateArray();
    for (hwloc_obj_t p = NULL; (p = hwloc_get_next_pcidev(t, p));) {
        unsigned cls = p->attr->pcidev.class_id >> 8; /* base class */
        if (cls == 0x03 || p->attr->pcidev.class_id == 0x1200) cJSON_AddItemToArray(gpus, pci_json(t, p));
        else if (cls == 0x02 || p->attr->pcidev.class_id == 0x0c06) cJSON_AddItemToArray(nics, pci_json(t, p));
    }
    int any_pci = hwloc_get_next_pcidev(t, NULL) != NULL;
    const char *none = any_pci ? "none found on the PCI buses hwloc sees"
                               : "none found: hwloc sees no PCI devices here (a VM or container without them)";
    if (cJSON_GetArraySize(gpus) == 0) {
        cJSON_Delete(gpus);
        gpus = cJSON_CreateString(none);
    }
    if (cJSON_GetArraySize(nics) == 0) {
        cJSON_Delete(nics);
        nics = cJSON_CreateString(none);
    }
    cJSON_AddItemToObject(top, "gpus", gpus);
    cJSON_AddItemToObject(top, "nics", nics);
}
#endif

cJSON *dmz_topology_json(void) {
    char why[DMZ_CTR_REASON_LEN];
    if (!dmz_counters_enabled("hwloc", why, sizeof why)) return dmz_ctr_unavailable(why);
#ifdef DMZ_HAVE_HWLOC
    hwloc_topology_t t = dmz_hwloc_topology(why, sizeof why);
    if (!t) return dmz_ctr_unavailable(why);
    cJSON *o = cJSON_CreateObject();
    char ver[32];
    unsigned v = hwloc_get_api_version();
    snprintf(ver, sizeof ver, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
    cJSON_AddStringToObject(o, "source", "hwloc");
    cJSON_AddStringToObject(o, "hwloc_api", ver);
    cJSON_AddNumberToObject(o, "packages", count_type(t, HWLOC_OBJ_PACKAGE));
    cJSON_AddNumberToObject(o, "numa_nodes", count_type(t, HWLOC_OBJ_NUMANODE));
    cJSON_AddNumberToObject(o, "cores", count_type(t, HWLOC_OBJ_CORE));
    cJSON_AddNumberToObject(o, "pus", count_type(t, HWLOC_OBJ_PU));
    add_cpuset(o, "allowed_cpuset", hwloc_topology_get_allowed_cpuset(t));
    cJSON_AddItemToObject(o, "package_list", packages_json(t));
    cJSON_AddItemToObject(o, "numa_list", numa_json(t));
    cJSON_AddItemToObject(o, "caches", caches_json(t));
    pci_lists(t, o);
    return o;
#else
    return dmz_ctr_unavailable(why);
#endif
}

static double num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(it) ? it->valuestring : "?";
}

static void print_size(FILE *f, double bytes) {
    if (bytes >= 1 << 30) fprintf(f, "%.1f GiB", bytes / (1 << 30));
    else if (bytes >= 1 << 20) fprintf(f, "%.1f MiB", bytes / (1 << 20));
    else fprintf(f, "%.0f KiB", bytes / 1024);
}

static void print_pci(FILE *f, const char *what, const cJSON *list) {
    if (cJSON_IsString(list)) {
        fprintf(f, "  %-10s %s\n", what, list->valuestring);
        return;
    }
    const cJSON *d;
    cJSON_ArrayForEach(d, list) {
        fprintf(f, "  %-10s %s %s", what, str(d, "pci_bus_id"), cJSON_GetObjectItem(d, "name") ? str(d, "name") : str(d, "vendor_device"));
        const cJSON *os = cJSON_GetObjectItem(d, "os_devices"), *x;
        cJSON_ArrayForEach(x, os) fprintf(f, " [%s]", x->valuestring);
        if (cJSON_GetObjectItem(d, "numa_nodes")) fprintf(f, ", NUMA %s", str(d, "numa_nodes"));
        if (cJSON_GetObjectItem(d, "local_cpuset")) fprintf(f, ", near CPUs %s", str(d, "local_cpuset"));
        fputc('\n', f);
    }
}

void dmz_topology_print(const cJSON *t, void *file) {
    FILE *f = file;
    if (cJSON_IsString(t)) {
        fprintf(f, "  %s\n", t->valuestring);
        return;
    }
    fprintf(f, "  %-10s hwloc API %s: %.0f package%s, %.0f NUMA node%s, %.0f cores, %.0f PUs (allowed: %s)\n", "machine",
            str(t, "hwloc_api"), num(t, "packages"), num(t, "packages") == 1 ? "" : "s", num(t, "numa_nodes"),
            num(t, "numa_nodes") == 1 ? "" : "s", num(t, "cores"), num(t, "pus"), str(t, "allowed_cpuset"));
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "package_list"))
        fprintf(f, "  %-10s P#%.0f: CPUs %s, %.0f cores%s%s\n", "package", num(x, "os_index"), str(x, "cpuset"),
                num(x, "cores"), cJSON_GetObjectItem(x, "model") ? ", " : "",
                cJSON_GetObjectItem(x, "model") ? str(x, "model") : "");
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "numa_list")) {
        fprintf(f, "  %-10s N#%.0f: CPUs %s, ", "numa", num(x, "os_index"), str(x, "cpuset"));
        print_size(f, num(x, "memory_bytes"));
        fputc('\n', f);
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "caches")) {
        fprintf(f, "  %-10s %s %s: ", "cache", str(x, "name"), str(x, "type"));
        print_size(f, num(x, "size_bytes"));
        fprintf(f, " x %.0f, %.0f B lines\n", num(x, "count"), num(x, "line_bytes"));
    }
    print_pci(f, "gpu", cJSON_GetObjectItem(t, "gpus"));
    print_pci(f, "nic", cJSON_GetObjectItem(t, "nics"));
}
