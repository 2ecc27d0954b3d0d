/*
 * cpu_winograd.c — the plan of the Winograd F(4,3) convolution: which CPUs
 * run it, the weight transform, the tile blocking, the rule `--conv-algo
 * auto` uses. The kernels are in cpu_winograd_avx2.c (see cpu_winograd.h).
 */
#include "backend/cpu/cpu_winograd.h"

#include <dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

// ---- support ----

int cpu_wino_supported(void) {
    // oneDNN's effective ISA honours ONEDNN_MAX_CPU_ISA: a limit below AVX2
    // turns this kernel off too, so one variable limits both.
    int isa = (int)dnnl_get_effective_cpu_isa();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           (isa & (int)dnnl_cpu_isa_avx2) == (int)dnnl_cpu_isa_avx2;
}

// ---- weights ----

// G of F(4,3) (Lavin and Gray): the kernel's 3 taps -> 6 points.
static const double G[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

static CpuWino *plan(size_t c, size_t k, size_t h, size_t w, int sum, int relu, size_t images);

CpuWino *cpu_wino_create(const float *weight, const float *bias, size_t c, size_t k, size_t h, size_t w,
                         int sum, int relu) {
    CpuWino *p = plan(c, k, h, w, sum, relu, 1);
    if (!p) return NULL;
    if (bias) memcpy(p->bias, bias, k * sizeof(float));
    // u[xi][kb][ci][16]: G g G^T per (output, input) channel pair, in
    // double, rounded once; padded channels are zero.
    for (size_t ko = 0; ko < k; ko++)
        for (size_t ci = 0; ci < c; ci++) {
            const float *g = weight + (ko * c + ci) * 9;
            double t[6][3];
            for (int r = 0; r < 6; r++)
                for (int b = 0; b < 3; b++)
                    t[r][b] = G[r][0] * g[0 * 3 + b] + G[r][1] * g[1 * 3 + b] + G[r][2] * g[2 * 3 + b];
            for (int r = 0; r < 6; r++)
                for (int s = 0; s < 6; s++) {
                    double v = t[r][0] * G[s][0] + t[r][1] * G[s][1] + t[r][2] * G[s][2];
                    size_t xi = (size_t)(r * 6 + s);
                    p->u[((xi * (p->kp / 16) + ko / 16) * p->cp + ci) * 16 + ko % 16] = (float)v;
                }
        }
    return p;
}

CpuWino *cpu_wino_create_batched(size_t c, size_t k, size_t h, size_t w, int sum, int relu, size_t max_images) {
    if (k % 8) return NULL;
    return plan(c, k, h, w, sum, relu, max_images ? max_images : 1);
}

void cpu_wino_weights(CpuWino *p, const float *wt, size_t lane_stride, size_t chan_stride, int flip) {
    cpu_wino_weights_avx2(p, wt, lane_stride, chan_stride, flip);
}

int cpu_wino_share_weights(CpuWino *p, CpuWino *q) {
    if (p->kp != q->kp || p->cp != q->cp || p->borrowed_u) return 0;
    ct_aligned_free(p->u);
    p->u = q->u;
    p->borrowed_u = 1;
    return 1;
}

void cpu_wino_run_images(const CpuWino *p, float *dst, const float *src, size_t n, void *scratch) {
    cpu_wino_run_avx2(p, dst, src, n, scratch);
}

// The shape, the blocking and zeroed weights and bias.
static CpuWino *plan(size_t c, size_t k, size_t h, size_t w, int sum, int relu, size_t images) {
    CpuWino *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->c = c;
    p->k = k;
    p->h = h;
    p->w = w;
    p->cp = round_up(c, 8);
    p->kp = round_up(k, 16);
    p->th = (h + 3) / 4;
    p->tw = (w + 3) / 4;
    p->sum = sum;
    p->relu = relu;
    // Tiles per block: as many as keep the block's transformed tiles and
    // products (36 x tb x (cp + kp) floats) within 8 MiB (the L3 holds
    // both workers' blocks), at least 48, so that each 16-column panel of
    // the transformed weights (streamed from memory once per block: 37 MiB
    // for 512 x 512 channels) serves many tiles; then the image's tiles
    // split evenly over the blocks. The blocking changes no result.
    size_t tbmax = ((size_t)2 << 20) / (36 * (p->cp + p->kp)) / 6 * 6;
    if (tbmax < 48) tbmax = 48;
    size_t tiles = images * p->th * p->tw, nblocks = (tiles + tbmax - 1) / tbmax;
    p->tb = round_up((tiles + nblocks - 1) / nblocks, 6);
    p->u = ct_try_aligned_alloc(36 * p->kp, p->cp * sizeof(float));
    p->bias = ct_try_aligned_alloc(p->kp, sizeof(float));
    if (!p->u || !p->bias) {
        cpu_wino_free(p);
        return NULL;
    }
    memset(p->bias, 0, p->kp * sizeof(float));
    memset(p->u, 0, 36 * p->kp * p->cp * sizeof(float));
    return p;
}

size_t cpu_wino_weight_bytes(const CpuWino *p) { return (36 * p->kp * p->cp + p->kp) * sizeof(float); }

size_t cpu_wino_scratch_bytes(const CpuWino *p) {
    // transformed tiles (36, tb / 6, cp, 6) and products (36, tb, kp)
    return 36 * p->tb * (p->cp + p->kp) * sizeof(float);
}

// ---- the rule for auto ----

int cpu_wino_auto(size_t c, size_t k, size_t h, size_t w) {
    (void)c;
    (void)k;
    // On AVX-512 oneDNN has its own Winograd kernel, 16 lanes wide: auto
    // keeps oneDNN's choice there, whether or not it took Winograd.
    int avx512 = (int)dnnl_cpu_isa_avx512_core;
    if (((int)dnnl_get_effective_cpu_isa() & avx512) == avx512) return 0;
    // Tiles of 4x4 waste the part of the last tile row and column past the
    // image: 12.5% of the work at 14x14, 23% at 7x7. Measured on a 2-core
    // AVX2 EPYC (CPU time, bench_backbone resnet34 at 224 px, auto against
    // winograd): ResNet-34 runs its 7x7 512-channel layers at about the same
    // speed either way, but their transformed weights take 4x the memory
    // (+140 MiB for layer4) and time to plan. So Winograd from 8x8 up.
    return h >= 8 && w >= 8;
}

// ---- running ----

void cpu_wino_run(const CpuWino *p, float *dst, const float *src, void *scratch) {
    cpu_wino_run_avx2(p, dst, src, 1, scratch);
}

void cpu_wino_free(CpuWino *p) {
    if (!p) return;
    if (!p->borrowed_u) ct_aligned_free(p->u);
    ct_aligned_free(p->bias);
    free(p);
}
