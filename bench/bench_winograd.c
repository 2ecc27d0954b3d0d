/*
 * bench_winograd.c — the Winograd F(4,3) kernel (backend/cpu/cpu_winograd.h)
 * layer by layer against this core's FMA peak, single-threaded (as the
 * backbone runs it: one image per thread).
 *
 * The peak: 10 independent chains of 8-wide FMAs per core (enough to cover
 * the FMA latency on both FMA pipes), GF/s = 2 x 8 x FMAs / s. A layer's
 * rate counts a direct convolution's FLOPs (2 x MACs = 2 x 9 x C x K x H x W)
 * over the kernel's time, so it can exceed the peak: F(4,3) does 4x fewer
 * multiplications in its GEMMs. Also printed: the GEMMs' own rate (2 x 36 x
 * cp x kp x tiles FLOPs over the whole layer's time), i.e. the FMA units'
 * use, transforms included in the time.
 *
 * Times are the thread's CPU time (best of --reps), so that other work on a
 * shared machine does not count.
 *
 * usage: bench_winograd [--model vgg16|resnet34] [--size 224] [--reps N]
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_winograd.h"
#include "util/util.h"

// The thread's CPU time: on a shared machine, time sliced away to other
// processes does not count (their cache pressure still does).
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---- FMA peak ----

__attribute__((target("avx2,fma"))) static double fma_peak(void) {
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
           a9 = a0;
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    const long n = 20000000;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t = now();
        for (long i = 0; i < n; i++) {
            a0 = _mm256_fmadd_ps(a0, m, c);
            a1 = _mm256_fmadd_ps(a1, m, c);
            a2 = _mm256_fmadd_ps(a2, m, c);
            a3 = _mm256_fmadd_ps(a3, m, c);
            a4 = _mm256_fmadd_ps(a4, m, c);
            a5 = _mm256_fmadd_ps(a5, m, c);
            a6 = _mm256_fmadd_ps(a6, m, c);
            a7 = _mm256_fmadd_ps(a7, m, c);
            a8 = _mm256_fmadd_ps(a8, m, c);
            a9 = _mm256_fmadd_ps(a9, m, c);
            __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7),
                             "+x"(a8), "+x"(a9));
        }
        t = now() - t;
        double gf = 2.0 * 8 * 10 * (double)n / t / 1e9;
        if (gf > best) best = gf;
    }
    float sink[8];
    _mm256_storeu_ps(sink, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a8, a9)));
    __asm__ volatile("" : : "r"(sink) : "memory");
    return best;
}

// ---- layers ----

typedef struct {
    const char *name;
    size_t c, k, s;  // channels in, out; spatial size at 224 px
    int n;           // how many such layers in the model
} Layer;

static const Layer VGG16[] = {
    {"conv1_2", 64, 64, 224, 1},   {"conv2_1", 64, 128, 112, 1},  {"conv2_2", 128, 128, 112, 1},
    {"conv3_1", 128, 256, 56, 1},  {"conv3_x", 256, 256, 56, 2},  {"conv4_1", 256, 512, 28, 1},
    {"conv4_x", 512, 512, 28, 2},  {"conv5_x", 512, 512, 14, 3},
};
static const Layer RESNET34[] = {
    {"layer1", 64, 64, 56, 6},    {"layer2", 128, 128, 28, 7}, {"layer3", 256, 256, 14, 11},
    {"layer4", 512, 512, 7, 5},
};

int main(int argc, char **argv) {
    const char *model = "vgg16";
    size_t size = 224;
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    if (!cpu_wino_supported()) {
        fprintf(stderr, "bench_winograd: this CPU (or ONEDNN_MAX_CPU_ISA) allows no AVX2+FMA\n");
        return 1;
    }
    int vgg = strcmp(model, "resnet34") != 0;
    const Layer *ls = vgg ? VGG16 : RESNET34;
    size_t nl = vgg ? sizeof VGG16 / sizeof *VGG16 : sizeof RESNET34 / sizeof *RESNET34;
    double peak = fma_peak();
    printf("# FMA peak, one core: %.1f GF/s (10 chains of 8-wide fp32 FMAs)\n", peak);
    printf("# %s at %zu px, one image, one thread, best of %d\n", vgg ? "vgg16" : "resnet34", size, reps);
    printf("%-8s %5s %5s %7s %9s %10s %8s %10s %8s\n", "layer", "C", "K", "HxW", "ms", "eff GF/s", "eff/peak",
           "gemm GF/s", "gemm/pk");
    double tot_t = 0, tot_f = 0;
    for (size_t i = 0; i < nl; i++) {
        size_t c = ls[i].c, k = ls[i].k, s = ls[i].s * size / 224;
        if (s == 0) s = 1;
        float *wt = ct_malloc_array(k * c * 9, sizeof(float));
        float *b = ct_malloc_array(k, sizeof(float));
        for (size_t j = 0; j < k * c * 9; j++) wt[j] = (float)((j * 2654435761u) % 1000) * 1e-3f - 0.5f;
        for (size_t j = 0; j < k; j++) b[j] = 0.01f * (float)j;
        CpuWino *p = cpu_wino_create(wt, b, c, k, s, s, 0, 1);
        float *src = ct_try_aligned_alloc(p->cp * s * s, sizeof(float));
        float *dst = ct_try_aligned_alloc((k + 7) / 8 * 8 * s * s, sizeof(float));
        void *scratch = ct_try_aligned_alloc(cpu_wino_scratch_bytes(p), 1);
        if (!p || !src || !dst || !scratch) {
            fprintf(stderr, "bench_winograd: out of memory\n");
            return 1;
        }
        for (size_t j = 0; j < p->cp * s * s; j++) src[j] = (float)(j % 97) * 0.01f;
        cpu_wino_run(p, dst, src, scratch);
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = now();
            cpu_wino_run(p, dst, src, scratch);
            t = now() - t;
            if (t < best) best = t;
        }
        double flops = 2.0 * 9 * (double)(c * k * s * s);
        double gemm = 2.0 * 36 * (double)(p->cp * p->kp * p->th * p->tw);
        printf("%-8s %5zu %5zu %3zux%-3zu %9.2f %10.1f %7.0f%% %10.1f %7.0f%%\n", ls[i].name, c, k, s, s, best * 1e3,
               flops / best / 1e9, 100 * flops / best / 1e9 / peak, gemm / best / 1e9,
               100 * gemm / best / 1e9 / peak);
        tot_t += best * ls[i].n;
        tot_f += flops * ls[i].n;
        cpu_wino_free(p);
        ct_aligned_free(src);
        ct_aligned_free(dst);
        ct_aligned_free(scratch);
        free(wt);
        free(b);
    }
    printf("all 3x3 stride-1 layers: %.1f ms an image, effective %.1f GF/s (%.0f%% of the peak)\n", tot_t * 1e3,
           tot_f / tot_t / 1e9, 100 * tot_f / tot_t / 1e9 / peak);
    return 0;
}
