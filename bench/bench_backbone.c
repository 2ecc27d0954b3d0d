/*
 * bench_backbone.c — images/s and effective GFLOP/s of one backbone on the
 * chosen backend, the number bench/backbone sets beside PyTorch's.
 *
 * usage: bench_backbone MODEL [--backend cpu|cuda] [--batch B] [--size S] [--threads T]
 *            [--precision fp32|bf16|tf32|fp16] [--conv-algo auto|direct|winograd]
 *            [--deterministic] [--iters N] [--warmup N] [--compare-fp32]
 * Prints one line: key=value pairs (images_per_s, gflops, peak_rss_mib, the
 * GPU's name for cuda, and with --compare-fp32 the max relative error
 * against an fp32 direct run on the same backend). Times include the copies
 * of the input to the GPU and of the features back, as every caller pays them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "nn/models.h"
#include "util/rng.h"
#ifdef CTSWEEP_HAVE_CUDA
#include "backend/cuda/cuda_device.h"
#endif

static double max_rel_err(const float *a, const float *ref, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (d > md) md = d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return mr > 0 ? md / mr : md;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_backbone MODEL [--backend cpu|cuda] [--batch B] [--size S] [--threads T] "
                        "[--precision P] [--conv-algo A] [--deterministic] [--iters N] [--warmup N] [--compare-fp32]\n");
        return 2;
    }
    const char *model = argv[1];
    size_t batch = 16, size = 224;
    int iters = 5, warmup = 1, compare = 0;
    BackendOptions opt;
    backend_options_default(&opt);
    opt.threads = 2;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--compare-fp32")) { compare = 1; continue; }
        if (!strcmp(a, "--deterministic")) { opt.deterministic = 1; continue; }
        if (!v) { fprintf(stderr, "bench_backbone: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--batch")) batch = (size_t)atoi(v);
        else if (!strcmp(a, "--size")) size = (size_t)atoi(v);
        else if (!strcmp(a, "--threads")) opt.threads = atoi(v);
        else if (!strcmp(a, "--iters")) iters = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--precision")) { if (precision_parse(v, &opt.precision)) { fprintf(stderr, "bad precision\n"); return 2; } }
        else if (!strcmp(a, "--conv-algo")) { if (conv_algo_parse(v, &opt.conv_algo)) { fprintf(stderr, "bad algo\n"); return 2; } }
        else if (!strcmp(a, "--backend")) { if (backend_kind_parse(v, &opt.kind)) { fprintf(stderr, "bad backend\n"); return 2; } }
        else { fprintf(stderr, "bench_backbone: unknown option %s\n", a); return 2; }
    }
    CtError err = {{0}};
    NNGraph g;
    if (model_build(&g, model, &err)) { fprintf(stderr, "bench_backbone: %s\n", err.msg); return 1; }
    model_init_random(&g, 7);
    BackendNet *net;
    double t_plan = ct_now();
    if (backend_net_create(&net, &g, batch, size, size, &opt, &err)) {
        fprintf(stderr, "bench_backbone: %s\n", err.msg);
        return 1;
    }
    t_plan = ct_now() - t_plan;
    size_t in_n = batch * 3 * size * size, out_n = batch * backend_net_output_numel(net);
    float *x = ct_malloc_array(in_n, sizeof(float)), *y = ct_malloc_array(out_n, sizeof(float));
    RngStream rs;
    rng_stream_init(&rs, 1, 99, 0, 0, 0);
    for (size_t i = 0; i < in_n; i++) x[i] = (float)rng_normal(&rs);
    for (int i = 0; i < warmup; i++)
        if (backend_net_forward(net, x, batch, y, &err)) { fprintf(stderr, "bench_backbone: %s\n", err.msg); return 1; }
    double best = 1e30, total = 0;
    for (int i = 0; i < iters; i++) {
        double t = ct_now();
        if (backend_net_forward(net, x, batch, y, &err)) { fprintf(stderr, "bench_backbone: %s\n", err.msg); return 1; }
        t = ct_now() - t;
        total += t;
        if (t < best) best = t;
    }
    double macs = graph_macs(&g, size, size);
    double ips = batch / (total / iters);
    printf("model=%s backend=%s precision=%s batch=%zu size=%zu threads=%d images_per_s=%.3f best_images_per_s=%.3f "
           "gflops=%.1f plan_s=%.2f plan_mib=%.1f peak_rss_mib=%.1f",
           model, opt.kind == BACKEND_CUDA ? "cuda" : "cpu", precision_name(opt.precision), batch, size, opt.threads,
           ips, batch / best, 2.0 * macs * ips / 1e9, t_plan, backend_net_bytes(net) / 1048576.0,
           ct_peak_rss_bytes() / 1048576.0);
#ifdef CTSWEEP_HAVE_CUDA
    if (opt.kind == BACKEND_CUDA) {
        char name[256] = "?";
        if (cuda_device_describe(-1, name, sizeof name, NULL, 0, &err) == 0)
            for (char *p = name; *p; p++)
                if (*p == ' ') *p = '_';  // one key=value token
        printf(" device=%s", name);
    }
#endif
    if (compare) {
        BackendOptions ref = opt;
        ref.precision = PRECISION_FP32;
        ref.conv_algo = CONV_ALGO_DIRECT;
        BackendNet *rnet;
        if (backend_net_create(&rnet, &g, batch, size, size, &ref, &err)) { fprintf(stderr, "bench_backbone: %s\n", err.msg); return 1; }
        float *yr = ct_malloc_array(out_n, sizeof(float));
        if (backend_net_forward(rnet, x, batch, yr, &err)) { fprintf(stderr, "bench_backbone: %s\n", err.msg); return 1; }
        printf(" rel_err_vs_fp32_direct=%.3g", max_rel_err(y, yr, out_n));
        free(yr);
        backend_net_free(rnet);
    }
    printf("\n");
    backend_net_free(net);
    graph_free(&g);
    free(x);
    free(y);
    return 0;
}
