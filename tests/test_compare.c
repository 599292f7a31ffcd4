/* tests/test_compare.c — the device table and name matching, `dmzbench
 * compare` on the fixture runs of tests/fixtures/compare (a fake TITAN Xp site
 * and a fake GTX 1080 Ti site, one on other data, a cpu run, a two-site sync
 * run), and `dmzbench project`: which bound scales a kernel, unknown devices,
 * the coarse projection without kernels.csv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/compare.h"
#include "bench/compare_impl.h"
#include "bench/report.h"
#include "common/dmz.h"
#include "tests/support.h"

#ifndef DMZ_SOURCE_DIR
#define DMZ_SOURCE_DIR "."
#endif
#define FIX DMZ_SOURCE_DIR "/tests/fixtures/compare"

static bool have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

static char *slurp(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = (char *)fs_slurp(path, NULL);
    if (!text) fail_msg("%s missing", path);
    return text;
}

static void assert_contains(const char *text, const char *needle, const char *what) {
    if (!strstr(text, needle)) fail_msg("%s does not mention '%s'", what, needle);
}

static void assert_lacks(const char *text, const char *needle, const char *what) {
    if (strstr(text, needle)) fail_msg("%s mentions '%s' but should not", what, needle);
}

static void out_dir(char *out, size_t len, const char *name) {
    snprintf(out, len, "%s/%s", fs_tmpdir, name);
}

/* ------------------------------------------------------------ device table */
static void test_match_names(void **state) {
    (void)state;
    dmz_device_table t;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_devices_load(&t, NULL, err), DMZ_OK);
    static const struct { const char *gpu, *row; } cases[] = {
        {"NVIDIA TITAN Xp", "TITAN Xp"},           {"TITAN Xp", "TITAN Xp"},
        {"NVIDIA GeForce GTX 1080 Ti", "GTX 1080 Ti"}, {"GeForce GTX 1080 Ti", "GTX 1080 Ti"},
        {"Tesla P100-PCIE-16GB", "P100 PCIe"},     {"Tesla P100-SXM2-16GB", "P100 SXM2"},
        {"Tesla V100-SXM2-32GB", "V100 SXM2"},     {"Tesla T4", "T4"},
        {"NVIDIA A100-SXM4-40GB", "A100 40GB SXM"}, {"NVIDIA A100-SXM4-80GB", "A100 80GB SXM"},
        {"NVIDIA L4", "L4"},                       {"NVIDIA GeForce RTX 3090", "RTX 3090"},
        {"NVIDIA GeForce RTX 4090", "RTX 4090"},   {"NVIDIA H100 PCIe", "H100 PCIe"},
        {"NVIDIA H100 80GB HBM3", "H100 SXM"},     {"NVIDIA H200", "H200"},
        {"H100 SXM", "H100 SXM"},                  {"gtx 1080 TI", "GTX 1080 Ti"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const dmz_device *d = dmz_devices_match(&t, cases[i].gpu);
        if (!d || strcmp(d->name, cases[i].row) != 0)
            fail_msg("'%s' matched %s, expected %s", cases[i].gpu, d ? d->name : "nothing", cases[i].row);
    }
    /* near names that are other devices */
    static const char *const unmatched[] = {"NVIDIA GeForce RTX 3090 Ti", "NVIDIA H100 NVL", "NVIDIA H200 NVL",
                                            "NVIDIA A100-PCIE-40GB", "Tesla P100-PCIE-12GB", "NVIDIA TITAN X (Pascal)",
                                            "NVIDIA GeForce GTX 1080", "", "Tesla V100-PCIE-16GB"};
    for (size_t i = 0; i < sizeof unmatched / sizeof unmatched[0]; i++)
        if (dmz_devices_match(&t, unmatched[i]))
            fail_msg("'%s' matched %s", unmatched[i], dmz_devices_match(&t, unmatched[i])->name);
    char norm[128];
    dmz_devices_normalise("NVIDIA GeForce GTX 1080 Ti", norm, sizeof norm);
    assert_string_equal(norm, "gtx 1080 ti");
    assert_non_null(dmz_devices_find(&t, "h200"));
    assert_null(dmz_devices_find(&t, "Voodoo 3"));
    for (int i = 0; i < t.n; i++) { /* every row says where its figures come from */
        if (strlen(t.rows[i].source) < 10) fail_msg("row %s: no source", t.rows[i].name);
        assert_true(t.rows[i].fp32_tflops > 1 && t.rows[i].memory_gbps > 100);
    }
    dmz_devices_free(&t);
}

static void test_meta_match(void **state) {
    (void)state;
    cJSON *gpus = cJSON_Parse("[{\"name\":\"NVIDIA H100 80GB HBM3\"}]");
    cJSON *m = dmz_devices_meta_match(gpus);
    assert_string_equal(m->valuestring, "H100 SXM");
    cJSON_Delete(m), cJSON_Delete(gpus);
    gpus = cJSON_Parse("[{\"name\":\"NVIDIA GeForce RTX 3090 Ti\"}]");
    m = dmz_devices_meta_match(gpus);
    assert_string_equal(m->valuestring, "unmatched: NVIDIA GeForce RTX 3090 Ti");
    cJSON_Delete(m), cJSON_Delete(gpus);
    gpus = cJSON_CreateString("unavailable: no driver");
    m = dmz_devices_meta_match(gpus);
    assert_string_equal(m->valuestring, "unmatched: no GPU (unavailable: no driver)");
    cJSON_Delete(m), cJSON_Delete(gpus);
}

static void test_bad_table(void **state) {
    (void)state;
    char path[256], err[DMZ_ERR_LEN];
    snprintf(path, sizeof path, "%s/devices-bad.csv", fs_tmpdir);
    const char *text = "name,match,compute_capability,sms,boost_mhz,fp32_tflops,memory_gbps,memory_gb,tdp_w,source\n"
                       "X,x,6.1,30,1582,12.15,547.7,12,250,sheet\n"
                       "Y,y,6.1,28,1582,fast,484,11,250,sheet\n";
    assert_true(fs_write(path, text, strlen(text)));
    dmz_device_table t;
    assert_int_equal(dmz_devices_load(&t, path, err), DMZ_EXIT_USAGE);
    assert_contains(err, "devices-bad.csv: line 3, column 6 (fp32_tflops)", "the error");
    const char *zero = "name,match,compute_capability,sms,boost_mhz,fp32_tflops,memory_gbps,memory_gb,tdp_w,source\n"
                       "X,x,6.1,30,1582,12.15,0,12,250,sheet\n";
    assert_true(fs_write(path, zero, strlen(zero)));
    assert_int_equal(dmz_devices_load(&t, path, err), DMZ_EXIT_USAGE);
    assert_contains(err, "line 2, column 7 (memory_gbps): '0' must be a positive number", "the error");
}

/* ------------------------------------------------------------ compare */
static void load_pair(const char *a, const char *b, dmz_device_table *t, cmp_run *ra, cmp_run *rb, cmp_result *res) {
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_devices_load(t, NULL, err), DMZ_OK);
    if (cmp_run_load(a, t, ra, err)) fail_msg("%s", err);
    if (cmp_run_load(b, t, rb, err)) fail_msg("%s", err);
    rpt_copy(ra->label, sizeof ra->label, "A");
    rpt_copy(rb->label, sizeof rb->label, "B");
    assert_int_equal(cmp_compute(ra, rb, res, err), DMZ_OK);
}

static char *table_text(const cmp_result *res) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cmp_print_table(f, res);
    fclose(f);
    return buf;
}

static void test_table_comparable(void **state) {
    (void)state;
    dmz_device_table t;
    cmp_run a, b;
    cmp_result res;
    load_pair(FIX "/titanxp", FIX "/gtx1080ti", &t, &a, &b, &res);
    assert_string_equal(a.match, "TITAN Xp");
    assert_string_equal(b.match, "GTX 1080 Ti");
    assert_int_equal(res.nwarn, 0);
    char *text = table_text(&res);
    for (char *line = text; *line; line = strchr(line, '\n') + 1) { /* nccl-tests style */
        if (line[0] != '#' && strncmp(line, "  ", 2) != 0) fail_msg("line neither '#' nor data: %.60s", line);
        if (!strchr(line, '\n')) break;
    }
    assert_lacks(text, "NOT COMPARABLE", "the table");
    assert_contains(text, "  wall time ", "the table");
    assert_contains(text, "  sgemm_tiled ", "the table");
    assert_contains(text, "  energy per step ", "the table");
    assert_contains(text, "A onto GTX 1080 Ti", "the table");
    assert_contains(text, "CUDA driver", "the differences");
    /* the step-time speedup and its spread: A 1.00-1.04 ms, B 1.05-1.07 ms */
    const cmp_metric *step = &res.metrics[1];
    assert_string_equal(step->item, "step time");
    assert_true(fabs(step->ratio - 1.02 / 1.06) < 1e-9);
    assert_true(fabs(step->ratio_lo - 1.00 / 1.07) < 1e-9);
    assert_true(fabs(step->ratio_hi - 1.04 / 1.05) < 1e-9);
    /* energy: A from summary.csv (18 J / 100 steps), B from gpu.csv (40 J over 200 steps) */
    assert_true(fabs(a.energy_step_j.median - 0.1845) < 1e-9);
    assert_true(fabs(b.energy_step_j.median - 0.2) < 1e-9);
    free(text);
    cmp_result_free(&res);
    cmp_run_free(&a), cmp_run_free(&b);
    dmz_devices_free(&t);
}

static void test_table_not_comparable(void **state) {
    (void)state;
    dmz_device_table t;
    cmp_run a, b;
    cmp_result res;
    load_pair(FIX "/titanxp", FIX "/gtx1080ti-other-data", &t, &a, &b, &res);
    assert_int_equal(res.nwarn, 2); /* data and batch; same model and steps */
    char *text = table_text(&res);
    assert_contains(text, "# WARNING: NOT COMPARABLE: different batch: A 100 vs B 50", "the table");
    assert_contains(text, "# WARNING: NOT COMPARABLE: different data: A 'fashion-mnist' vs B 'emnist-balanced'", "the table");
    assert_contains(text, "no kernels.csv in B", "the table");
    free(text);
    cmp_result_free(&res);
    cmp_run_free(&a), cmp_run_free(&b);
    dmz_devices_free(&t);
}

static void copy_fixture(const char *name) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp -r '%s/%s' '%s/'", FIX, name, fs_tmpdir);
    assert_int_equal(system(cmd), 0);
}

/* Runs copied from the two sites, named relative to the current directory. */
static void test_compare_outputs(void **state) {
    (void)state;
    copy_fixture("titanxp");
    copy_fixture("gtx1080ti");
    char cwd[512], err[DMZ_ERR_LEN];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(fs_tmpdir), 0);
    int rc = dmz_compare("titanxp", "gtx1080ti/", "cmp-out", true, err);
    assert_int_equal(chdir(cwd), 0);
    if (rc) fail_msg("%s", err);
    char out[256];
    out_dir(out, sizeof out, "cmp-out");
    char *csv = slurp(out, "compare.csv");
    assert_contains(csv, "section,item,unit,a_median,a_min,a_max,b_median,b_min,b_max,b_vs_a", "compare.csv");
    assert_contains(csv, "\ntime,wall time,s,0.102,0.1,0.104,0.106,0.105,0.107,", "compare.csv");
    assert_contains(csv, "\nkernel,sgemm_tiled,ms/step,0.5,", "compare.csv");
    assert_contains(csv, "\nprojection,PROJECTION A onto GTX 1080 Ti,ms,", "compare.csv");
    assert_contains(csv, "\ndiffers,device,", "compare.csv");
    assert_contains(csv, "\ndiffers,CUDA driver,", "compare.csv");
    assert_lacks(csv, "\nwarning,", "compare.csv");
    free(csv);
    char *html = slurp(out, "compare.html");
    assert_contains(html, "PROJECTION", "compare.html");
    assert_lacks(html, "NOT COMPARABLE", "compare.html");
    static const char *const figs[] = {"compare-time", "compare-breakdown", "compare-kernels", "compare-energy"};
    for (int i = 0; i < 4; i++) {
        char name[64], path[512];
        snprintf(name, sizeof name, "fig-%s.csv", figs[i]);
        free(slurp(out, name));
        if (!have_gnuplot()) continue;
        snprintf(path, sizeof path, "%s/%s.png", out, figs[i]);
        if (!fs_exists(path)) fail_msg("%s not drawn", path);
        snprintf(path, sizeof path, "%s/%s.svg", out, figs[i]);
        if (!fs_exists(path)) fail_msg("%s not drawn", path);
        snprintf(name, sizeof name, "src=\"%s.png\"", figs[i]);
        assert_contains(html, name, "compare.html");
    }
    free(html);
}

static void test_compare_skips(void **state) {
    (void)state;
    char out[256], err[DMZ_ERR_LEN];
    out_dir(out, sizeof out, "cmp-skips");
    if (dmz_compare(FIX "/titanxp", FIX "/gtx1080ti-other-data", out, true, err)) fail_msg("%s", err);
    char *csv = slurp(out, "compare.csv");
    assert_contains(csv, "\nwarning,not comparable,,NA,NA,NA,NA,NA,NA,NA,NA,NA,different batch: A 100 vs B 50", "compare.csv");
    free(csv);
    char *html = slurp(out, "compare.html");
    assert_contains(html, "NOT COMPARABLE", "compare.html");
    assert_contains(html, "Figure compare-kernels skipped: kernels.csv missing in B", "compare.html");
    assert_contains(html, "Figure compare-energy skipped: no power recorded in B", "compare.html");
    free(html);
    char path[512];
    snprintf(path, sizeof path, "%s/compare-kernels.png", out);
    assert_false(fs_exists(path));
}

static void test_compare_errors(void **state) {
    (void)state;
    char out[256], err[DMZ_ERR_LEN];
    out_dir(out, sizeof out, "cmp-err");
    assert_int_equal(dmz_compare(FIX "/titanxp", FIX "/no-such-run", out, true, err), DMZ_EXIT_USAGE);
    assert_contains(err, "no-such-run: no such run directory", "the error");
    /* a kernels.csv with a bad field: file, line and column */
    copy_fixture("titanxp");
    char path[512];
    snprintf(path, sizeof path, "%s/titanxp/kernels.csv", fs_tmpdir);
    const char *bad = "rank,kind,name,calls,total_ms,mean_us,flops,bytes,gflops,gbps,peak_fraction,source\n"
                      "0,kernel,sgemm,4,ten,1,1,1,1,1,1,cupti\n";
    assert_true(fs_write(path, bad, strlen(bad)));
    snprintf(path, sizeof path, "%s/titanxp", fs_tmpdir);
    assert_int_equal(dmz_compare(path, FIX "/gtx1080ti", out, true, err), DMZ_EXIT_USAGE);
    assert_contains(err, "kernels.csv: line 2, column 5 (total_ms): 'ten' is not a number", "the error");
}

/* `report` with runs from different devices links a comparison. */
static void test_report_links_compare(void **state) {
    (void)state;
    char out[256], err[DMZ_ERR_LEN];
    out_dir(out, sizeof out, "report-two");
    const char *runs[] = {FIX "/titanxp", FIX "/gtx1080ti"};
    if (dmz_report(runs, 2, out, true, err)) fail_msg("%s", err);
    char *html = slurp(out, "report.html");
    assert_contains(html, "compare-2/compare.html", "report.html");
    free(html);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/compare-2", out);
    free(slurp(sub, "compare.csv"));
    /* without a device table the report is still written, without the link */
    out_dir(out, sizeof out, "report-no-table");
    setenv("DMZBENCH_DEVICES", "/nonexistent/devices.csv", 1);
    int rc = dmz_report(runs, 2, out, true, err);
    unsetenv("DMZBENCH_DEVICES");
    if (rc) fail_msg("%s", err);
    html = slurp(out, "report.html");
    assert_lacks(html, "compare-2/compare.html", "report.html");
    free(html);
}

static void test_report_sync_ranks(void **state) {
    (void)state;
    char out[256], err[DMZ_ERR_LEN];
    out_dir(out, sizeof out, "report-sync");
    const char *runs[] = {FIX "/sync-two-sites"};
    if (dmz_report(runs, 1, out, true, err)) fail_msg("%s", err);
    char *html = slurp(out, "report.html");
    assert_contains(html, "<td>NVIDIA GeForce GTX 1080 Ti</td>", "report.html");
    assert_contains(html, "<td>NVIDIA TITAN Xp</td>", "report.html");
    /* rank 0 computes 0.75 ms a step, rank 1 0.82 ms: rank 0 is the faster one and waited */
    assert_contains(html, "Sync: the faster rank 0 (NVIDIA TITAN Xp) waited 0.085 s", "report.html");
    free(html);
    /* compare sees both devices and no single row of the table */
    dmz_device_table t;
    assert_int_equal(dmz_devices_load(&t, NULL, err), DMZ_OK);
    cmp_run run;
    if (cmp_run_load(FIX "/sync-two-sites", &t, &run, err)) fail_msg("%s", err);
    assert_string_equal(run.device, "NVIDIA TITAN Xp + NVIDIA GeForce GTX 1080 Ti");
    assert_null(run.row);
    cmp_run_free(&run);
    dmz_devices_free(&t);
}


/* gpu.csv with two GPUs' samples interleaved and power only: integrated per GPU */
static void test_energy_from_power(void **state) {
    (void)state;
    copy_fixture("gtx1080ti");
    char path[512], err[DMZ_ERR_LEN];
    snprintf(path, sizeof path, "%s/gtx1080ti/gpu.csv", fs_tmpdir);
    const char *text =
        "rank,device,t_s,sm_clock_mhz,mem_clock_mhz,power_w,energy_j,temp_c,gpu_util_pct,mem_util_pct,"
        "mem_used_bytes,pcie_tx_bytes_per_s,pcie_rx_bytes_per_s,throttle_reasons\n"
        "0,0,0,NA,NA,100,NA,NA,NA,NA,NA,NA,NA,NA\n"
        "1,0,0,NA,NA,200,NA,NA,NA,NA,NA,NA,NA,NA\n"
        "0,0,1,NA,NA,100,NA,NA,NA,NA,NA,NA,NA,NA\n"
        "1,0,1,NA,NA,200,NA,NA,NA,NA,NA,NA,NA,NA\n";
    assert_true(fs_write(path, text, strlen(text)));
    dmz_device_table t;
    assert_int_equal(dmz_devices_load(&t, NULL, err), DMZ_OK);
    cmp_run run;
    snprintf(path, sizeof path, "%s/gtx1080ti", fs_tmpdir);
    if (cmp_run_load(path, &t, &run, err)) fail_msg("%s", err);
    /* 100 J + 200 J over 100 steps x 2 repetitions */
    assert_true(fabs(run.energy_step_j.median - 1.5) < 1e-9);
    assert_true(fabs(run.power_w.median - 300) < 1e-9);
    assert_contains(run.energy_source, "gpu.csv", "energy_source");
    cmp_run_free(&run);
    dmz_devices_free(&t);
}

/* ------------------------------------------------------------ project */
static void test_project_bounds(void **state) {
    (void)state;
    dmz_device_table t;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_devices_load(&t, NULL, err), DMZ_OK);
    cmp_run run;
    if (cmp_run_load(FIX "/titanxp", &t, &run, err)) fail_msg("%s", err);
    const dmz_device *from = dmz_devices_find(&t, "TITAN Xp"), *to = dmz_devices_find(&t, "GTX 1080 Ti");
    prj_options opt;
    prj_options_default(&opt);
    prj_result res;
    assert_int_equal(prj_project(&run, NULL, to, &opt, &res, err), DMZ_OK);
    assert_false(res.coarse);
    const prj_kernel *gemm = NULL, *adam = NULL, *copy = NULL;
    for (int i = 0; i < res.n; i++) {
        if (strcmp(res.k[i].name, "sgemm_tiled") == 0) gemm = &res.k[i];
        if (strcmp(res.k[i].name, "adam_update") == 0) adam = &res.k[i];
        if (strcmp(res.k[i].name, "HtoD") == 0) copy = &res.k[i];
    }
    assert_non_null(gemm), assert_non_null(adam), assert_non_null(copy);
    /* sgemm: 2.4 GFLOP and 1 MB a step: compute-bound; scales with FP32 peak */
    assert_string_equal(gemm->bound_from, "compute");
    assert_string_equal(gemm->bound_to, "compute");
    double fixed = 2 * opt.launch_us * 1e-3;
    double want = fixed + (0.5 - fixed) * from->fp32_tflops / to->fp32_tflops;
    if (fabs(gemm->projected_ms - want) > 1e-9) fail_msg("sgemm %.9g ms, expected %.9g", gemm->projected_ms, want);
    /* adam: 1 MFLOP and 50 MB a step: memory-bound; scales with bandwidth */
    assert_string_equal(adam->bound_to, "memory");
    fixed = 1 * opt.launch_us * 1e-3;
    want = fixed + (0.2 - fixed) * from->memory_gbps / to->memory_gbps;
    if (fabs(adam->projected_ms - want) > 1e-9) fail_msg("adam %.9g ms, expected %.9g", adam->projected_ms, want);
    assert_true(fabs(copy->projected_ms - copy->measured_ms) < 1e-12); /* copies carried over */
    assert_true(fabs(res.host_ms - (1.02 - 0.76)) < 1e-9);
    assert_true(fabs(res.projected_2000_s - res.projected_step_ms * 2) < 1e-12);
    /* onto an H200: the compute-bound kernel gains 66.9/12.15, the memory-bound 4800/547.7 */
    prj_result h200;
    assert_int_equal(prj_project(&run, NULL, dmz_devices_find(&t, "H200"), &opt, &h200, err), DMZ_OK);
    for (int i = 0; i < h200.n; i++)
        if (strcmp(h200.k[i].name, "adam_update") == 0)
            assert_true(fabs(h200.k[i].projected_ms - (0.003 + 0.197 * 547.7 / 4800)) < 1e-9);
    prj_free(&h200);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    prj_print(f, &run, &res);
    fclose(f);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (line[0] == '#' && line[1] == ' ' && strncmp(line, "# PROJECTION", 12) != 0 && line[2] != ' ' && line[2] != 'k')
            fail_msg("a header line without PROJECTION: %.70s", line);
    free(buf);
    prj_free(&res);
    cmp_run_free(&run);
    dmz_devices_free(&t);
}

static void test_project_unknown_device(void **state) {
    (void)state;
    char err[DMZ_ERR_LEN];
    assert_int_equal(dmz_project(FIX "/titanxp", "Voodoo 3", NULL, fs_tmpdir, NULL, true, err), DMZ_EXIT_USAGE);
    assert_contains(err, "unknown device 'Voodoo 3'", "the error");
    assert_contains(err, "known: TITAN Xp, GTX 1080 Ti,", "the error");
    assert_contains(err, "H200", "the error");
    assert_int_equal(dmz_project(FIX "/titanxp", "T4", "Voodoo 3", fs_tmpdir, NULL, true, err), DMZ_EXIT_USAGE);
    char *argv[] = {"project", FIX "/titanxp", "--device", "Voodoo 3", NULL};
    assert_int_equal(dmz_project_main(4, argv), DMZ_EXIT_USAGE);
}

static void test_project_coarse(void **state) {
    (void)state;
    char out[256], err[DMZ_ERR_LEN];
    out_dir(out, sizeof out, "prj-cpu");
    if (dmz_project(FIX "/cpu", "TITAN Xp", NULL, out, NULL, true, err)) fail_msg("%s", err);
    char *csv = slurp(out, "project-TITAN_Xp.csv");
    assert_contains(csv, "label,run,from,to,item,", "project.csv");
    assert_contains(csv, "COARSE: no kernels.csv in this run", "project.csv");
    assert_contains(csv, "ASSUMED", "project.csv");
    for (char *line = strchr(csv, '\n') + 1; *line; line = strchr(line, '\n') + 1)
        if (strncmp(line, "PROJECTION,", 11) != 0) fail_msg("a row not labelled PROJECTION: %.60s", line);
    free(csv);
    /* a GPU run without kernels.csv: coarse, at the efficiency measured on its device */
    out_dir(out, sizeof out, "prj-gtx");
    if (dmz_project(FIX "/gtx1080ti-other-data", "TITAN Xp", NULL, out, NULL, true, err)) fail_msg("%s", err);
    csv = slurp(out, "project-TITAN_Xp.csv");
    assert_contains(csv, "COARSE", "project.csv");
    assert_contains(csv, "measured on GTX 1080 Ti", "project.csv");
    free(csv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_names),
        cmocka_unit_test(test_meta_match),
        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_table_comparable),
        cmocka_unit_test(test_table_not_comparable),
        cmocka_unit_test(test_compare_outputs),
        cmocka_unit_test(test_compare_skips),
        cmocka_unit_test(test_compare_errors),
        cmocka_unit_test(test_energy_from_power),
        cmocka_unit_test(test_report_links_compare),
        cmocka_unit_test(test_report_sync_ranks),
        cmocka_unit_test(test_project_bounds),
        cmocka_unit_test(test_project_unknown_device),
        cmocka_unit_test(test_project_coarse),
    };
    return cmocka_run_group_tests(tests, fs_group_make_tmpdir, fs_group_remove_tmpdir);
}
