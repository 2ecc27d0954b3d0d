/*
 * test_winograd.c — the Winograd F(4,3) kernel (backend/cpu/cpu_winograd.h)
 * against a direct 3x3 convolution summed in double, on odd shapes: tiles
 * crossing the border (h, w not multiples of 4, down to 1x1), channel
 * counts not multiples of 8 (padded channels of nChw8c) or 16, images with
 * more tiles than one block, the residual (sum) and ReLU post-ops. Also
 * checks that an image's result does not depend on the tile blocking.
 *
 * The training variant (cpu_wino_create_batched + cpu_wino_weights): several
 * images' tiles in one list give each image the bits it gets alone; weights
 * transformed in float stay within the bound of the double reference; the
 * backward-data form (weights transposed and turned, flip) against a
 * transposed convolution summed in double.
 *
 * Bound, per output: |ours - ref| <= 1e-5 * (sum |w x| + |b| + |residual|)
 * + 1e-7 (F(4,3)'s transforms in float32; the error printed per case is
 * max |ours - ref| / max |ref|). On a CPU without AVX2+FMA the kernel is
 * never used; the test then checks that cpu_wino_supported() says so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_winograd.h"
#include "util/rng.h"
#include "util/util.h"

#include "check.h"

static void fill(float *x, size_t n, uint32_t stream, double lo, double hi) {
    RngStream rs;
    rng_stream_init(&rs, 99, 7, stream, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rng_uniform(&rs));
}

// Plain (c, h, w) -> nChw8c with zero padded channels.
static void to_blocked(float *out, const float *in, size_t c, size_t h, size_t w) {
    size_t cp = (c + 7) / 8 * 8;
    memset(out, 0, cp * h * w * sizeof(float));
    for (size_t ci = 0; ci < c; ci++)
        for (size_t i = 0; i < h * w; i++) out[((ci / 8) * h * w + i) * 8 + ci % 8] = in[ci * h * w + i];
}

static double run_case(size_t c, size_t k, size_t h, size_t w, int sum, int relu, uint32_t seed) {
    size_t cp = (c + 7) / 8 * 8, kp8 = (k + 7) / 8 * 8;
    float *x = ct_malloc_array(c * h * w, sizeof(float));
    float *wt = ct_malloc_array(k * c * 9, sizeof(float));
    float *b = ct_malloc_array(k, sizeof(float));
    float *res = ct_malloc_array(k * h * w, sizeof(float));
    float *xb = ct_try_aligned_alloc(cp * h * w, sizeof(float));
    float *yb = ct_try_aligned_alloc(kp8 * h * w, sizeof(float));
    float *yb2 = ct_try_aligned_alloc(kp8 * h * w, sizeof(float));
    fill(x, c * h * w, seed, -1, 1);
    fill(wt, k * c * 9, seed + 1, -0.5, 0.5);
    fill(b, k, seed + 2, -0.3, 0.3);
    fill(res, k * h * w, seed + 3, -1, 1);
    to_blocked(xb, x, c, h, w);
    if (sum) {
        to_blocked(yb, res, k, h, w);
        to_blocked(yb2, res, k, h, w);
    }
    CpuWino *p = cpu_wino_create(wt, b, c, k, h, w, sum, relu);
    CHECK(p != NULL, "create %zu->%zu %zux%zu", c, k, h, w);
    void *scratch = ct_try_aligned_alloc(cpu_wino_scratch_bytes(p), 1);
    cpu_wino_run(p, yb, xb, scratch);
    // The same image with one 6-tile block at a time: the same bits.
    CpuWino small = *p;
    small.tb = 6;
    cpu_wino_run(&small, yb2, xb, scratch);
    CHECK(memcmp(yb, yb2, kp8 * h * w * sizeof(float)) == 0, "%zu->%zu %zux%zu: blocks of %zu tiles vs 6 differ",
          c, k, h, w, p->tb);
    double worst = 0, maxref = 0, worst_ratio = 0;
    int bad = 0;
    for (size_t ko = 0; ko < k; ko++)
        for (size_t y = 0; y < h; y++)
            for (size_t xx = 0; xx < w; xx++) {
                double acc = b[ko], mag = fabs(b[ko]);
                for (size_t ci = 0; ci < c; ci++)
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++) {
                            long yy = (long)y + i - 1, xj = (long)xx + j - 1;
                            if (yy < 0 || xj < 0 || yy >= (long)h || xj >= (long)w) continue;
                            double v = (double)wt[(ko * c + ci) * 9 + (size_t)(i * 3 + j)] *
                                       x[(ci * h + (size_t)yy) * w + (size_t)xj];
                            acc += v;
                            mag += fabs(v);
                        }
                if (sum) {
                    acc += res[(ko * h + y) * w + xx];
                    mag += fabs(res[(ko * h + y) * w + xx]);
                }
                if (relu && acc < 0) acc = 0;
                double ours = yb[((ko / 8) * h * w + y * w + xx) * 8 + ko % 8];
                double d = fabs(ours - acc), bound = 1e-5 * mag + 1e-7;
                if (d > worst) worst = d;
                if (fabs(acc) > maxref) maxref = fabs(acc);
                if (d / bound > worst_ratio) worst_ratio = d / bound;
                if (d > bound && bad++ < 3)
                    printf("  %zu->%zu %zux%zu at (%zu,%zu,%zu): ours %.8g ref %.8g bound %.3g\n", c, k, h, w, ko, y,
                           xx, ours, acc, bound);
            }
    // Padded output channels stay zero (oneDNN's nChw8c invariant).
    int pad_ok = 1;
    for (size_t ko = k; ko < kp8; ko++)
        for (size_t i = 0; i < h * w; i++) pad_ok &= yb[((ko / 8) * h * w + i) * 8 + ko % 8] == 0.0f;
    CHECK(pad_ok, "%zu->%zu %zux%zu: padded output channels not zero", c, k, h, w);
    CHECK(bad == 0, "%zu->%zu %zux%zu sum %d relu %d: %d outputs past the bound", c, k, h, w, sum, relu, bad);
    double rel = worst / (maxref > 0 ? maxref : 1);
    printf("%4zu -> %-4zu %3zux%-3zu sum %d relu %d  tiles %3zu block %3zu  max|diff| %.3g  rel %.2e  "
           "worst/bound %.2f\n",
           c, k, h, w, sum, relu, p->th * p->tw, p->tb, worst, rel, worst_ratio);
    cpu_wino_free(p);
    ct_aligned_free(scratch);
    ct_aligned_free(xb);
    ct_aligned_free(yb);
    ct_aligned_free(yb2);
    free(x);
    free(wt);
    free(b);
    free(res);
    return rel;
}

// The training plans on n images: forward against per-image runs (bits)
// and the double reference (bound as above); backward data likewise.
static double run_batched(size_t c, size_t k, size_t h, size_t w, size_t n, int sum, int relu, uint32_t seed) {
    size_t xi = c * h * w, yi = k * h * w;
    float *x = ct_malloc_array(n * xi, sizeof(float)), *wt = ct_malloc_array(k * c * 9, sizeof(float));
    float *b = ct_malloc_array(k, sizeof(float)), *res = ct_malloc_array(n * yi, sizeof(float));
    float *xb = ct_try_aligned_alloc(n * xi, sizeof(float)), *yb = ct_try_aligned_alloc(n * yi, sizeof(float));
    float *y1 = ct_try_aligned_alloc(yi, sizeof(float)), *dyb = ct_try_aligned_alloc(n * yi, sizeof(float));
    float *dxb = ct_try_aligned_alloc(n * xi, sizeof(float)), *dx1 = ct_try_aligned_alloc(xi, sizeof(float));
    fill(x, n * xi, seed, -1, 1);
    fill(wt, k * c * 9, seed + 1, -0.5, 0.5);
    fill(b, k, seed + 2, -0.3, 0.3);
    fill(res, n * yi, seed + 3, -1, 1);
    for (size_t i = 0; i < n; i++) {
        to_blocked(xb + i * xi, x + i * xi, c, h, w);
        to_blocked(yb + i * yi, res + i * yi, k, h, w);
        to_blocked(dyb + i * yi, res + i * yi, k, h, w);  // the output gradient of backward data
    }
    CpuWino *f = cpu_wino_create_batched(c, k, h, w, sum, relu, n), *f1 = cpu_wino_create_batched(c, k, h, w, sum, relu, 1);
    CpuWino *bd = cpu_wino_create_batched(k, c, h, w, 0, 0, n), *bd1 = cpu_wino_create_batched(k, c, h, w, 0, 0, 1);
    CHECK(f && f1 && bd && bd1, "batched plans %zu->%zu %zux%zu", c, k, h, w);
    size_t scr = cpu_wino_scratch_bytes(f);
    if (cpu_wino_scratch_bytes(bd) > scr) scr = cpu_wino_scratch_bytes(bd);
    if (cpu_wino_scratch_bytes(f1) > scr) scr = cpu_wino_scratch_bytes(f1);
    if (cpu_wino_scratch_bytes(bd1) > scr) scr = cpu_wino_scratch_bytes(bd1);
    void *scratch = ct_try_aligned_alloc(scr, 1);
    cpu_wino_weights(f, wt, c * 9, 9, 0);
    cpu_wino_weights(f1, wt, c * 9, 9, 0);
    memcpy(f->bias, b, k * sizeof(float));
    memcpy(f1->bias, b, k * sizeof(float));
    cpu_wino_weights(bd, wt, 9, c * 9, 1);
    cpu_wino_weights(bd1, wt, 9, c * 9, 1);
    cpu_wino_run_images(f, yb, xb, n, scratch);
    cpu_wino_run_images(bd, dxb, dyb, n, scratch);
    int same = 1;
    for (size_t i = 0; i < n; i++) {
        to_blocked(y1, res + i * yi, k, h, w);
        cpu_wino_run_images(f1, y1, xb + i * xi, 1, scratch);
        same &= memcmp(y1, yb + i * yi, yi * sizeof(float)) == 0;
        cpu_wino_run_images(bd1, dx1, dyb + i * yi, 1, scratch);
        same &= memcmp(dx1, dxb + i * xi, xi * sizeof(float)) == 0;
    }
    CHECK(same, "%zu->%zu %zux%zu: %zu images in one tile list (blocks of %zu) vs alone differ", c, k, h, w, n, f->tb);
    // Blocks of 6 tiles, straddling images: the same bits again.
    CpuWino small = *f;
    small.tb = 6;
    float *y6 = ct_try_aligned_alloc(n * yi, sizeof(float));
    for (size_t i = 0; i < n; i++) to_blocked(y6 + i * yi, res + i * yi, k, h, w);
    cpu_wino_run_images(&small, y6, xb, n, scratch);
    CHECK(memcmp(y6, yb, n * yi * sizeof(float)) == 0, "%zu->%zu %zux%zu x%zu: blocks of 6 tiles vs %zu differ", c, k,
          h, w, n, f->tb);
    ct_aligned_free(y6);
    double worst = 0, maxref = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t yy = 0; yy < h; yy++)
            for (size_t xx = 0; xx < w; xx++) {
                // forward
                for (size_t ko = 0; ko < k; ko++) {
                    double acc = b[ko], mag = fabs(b[ko]);
                    for (size_t ci = 0; ci < c; ci++)
                        for (int a = 0; a < 3; a++)
                            for (int e = 0; e < 3; e++) {
                                long sy = (long)yy + a - 1, sx = (long)xx + e - 1;
                                if (sy < 0 || sx < 0 || sy >= (long)h || sx >= (long)w) continue;
                                double v = (double)wt[(ko * c + ci) * 9 + (size_t)(a * 3 + e)] *
                                           x[i * xi + (ci * h + (size_t)sy) * w + (size_t)sx];
                                acc += v, mag += fabs(v);
                            }
                    if (sum) acc += res[i * yi + (ko * h + yy) * w + xx], mag += fabs(res[i * yi + (ko * h + yy) * w + xx]);
                    if (relu && acc < 0) acc = 0;
                    double ours = yb[i * yi + ((ko / 8) * h * w + yy * w + xx) * 8 + ko % 8], d = fabs(ours - acc);
                    if (d > 1e-5 * mag + 1e-7 && bad++ < 3) printf("  fwd image %zu (%zu,%zu,%zu): %.8g vs %.8g\n", i, ko, yy, xx, ours, acc);
                    if (d > worst) worst = d;
                    if (fabs(acc) > maxref) maxref = fabs(acc);
                }
                // backward data: dx[ci](y, x) = sum over ko, taps of w[ko][ci][a][e] dy[ko](y - a + 1, x - e + 1)
                for (size_t ci = 0; ci < c; ci++) {
                    double acc = 0, mag = 0;
                    for (size_t ko = 0; ko < k; ko++)
                        for (int a = 0; a < 3; a++)
                            for (int e = 0; e < 3; e++) {
                                long sy = (long)yy - a + 1, sx = (long)xx - e + 1;
                                if (sy < 0 || sx < 0 || sy >= (long)h || sx >= (long)w) continue;
                                double v = (double)wt[(ko * c + ci) * 9 + (size_t)(a * 3 + e)] *
                                           res[i * yi + (ko * h + (size_t)sy) * w + (size_t)sx];
                                acc += v, mag += fabs(v);
                            }
                    double ours = dxb[i * xi + ((ci / 8) * h * w + yy * w + xx) * 8 + ci % 8], d = fabs(ours - acc);
                    if (d > 1e-5 * mag + 1e-7 && bad++ < 3) printf("  bwd image %zu (%zu,%zu,%zu): %.8g vs %.8g\n", i, ci, yy, xx, ours, acc);
                    if (d > worst) worst = d;
                    if (fabs(acc) > maxref) maxref = fabs(acc);
                }
            }
    CHECK(bad == 0, "%zu->%zu %zux%zu x%zu: %d outputs past the bound (forward and backward data)", c, k, h, w, n, bad);
    double rel = worst / (maxref > 0 ? maxref : 1);
    printf("%4zu -> %-4zu %3zux%-3zu x%zu images, float weights, forward + backward data  block %3zu  rel %.2e\n", c, k,
           h, w, n, f->tb, rel);
    cpu_wino_free(f);
    cpu_wino_free(f1);
    cpu_wino_free(bd);
    cpu_wino_free(bd1);
    ct_aligned_free(scratch);
    ct_aligned_free(xb);
    ct_aligned_free(yb);
    ct_aligned_free(y1);
    ct_aligned_free(dyb);
    ct_aligned_free(dxb);
    ct_aligned_free(dx1);
    free(x);
    free(wt);
    free(b);
    free(res);
    return rel;
}

int main(void) {
    if (!cpu_wino_supported()) {
        CHECK(!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || getenv("ONEDNN_MAX_CPU_ISA"),
              "cpu_wino_supported() is false on a CPU with AVX2+FMA and no ISA limit");
        printf("no AVX2+FMA here (or limited below it): the Winograd kernel is never used\n");
        return check_summary();
    }
    static const struct {
        size_t c, k, h, w;
        int sum, relu;
    } cases[] = {
        {5, 7, 9, 11, 0, 0},    {5, 7, 9, 11, 1, 1},  {16, 24, 13, 6, 0, 1}, {8, 16, 1, 1, 0, 0},
        {3, 9, 2, 5, 1, 0},     {64, 32, 7, 7, 1, 1}, {24, 40, 14, 14, 0, 1}, {17, 33, 4, 8, 1, 1},
        {200, 300, 31, 29, 1, 1},  // more tiles (64) than one block (54)
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double r = run_case(cases[i].c, cases[i].k, cases[i].h, cases[i].w, cases[i].sum, cases[i].relu,
                            (uint32_t)(10 * i));
        if (r > worst) worst = r;
    }
    static const struct {
        size_t c, k, h, w, n;
        int sum, relu;
    } batched[] = {
        {16, 24, 7, 7, 5, 1, 1}, {8, 16, 3, 5, 3, 0, 0}, {32, 16, 14, 14, 3, 0, 1}, {24, 8, 1, 1, 8, 1, 0},
    };
    for (size_t i = 0; i < sizeof batched / sizeof *batched; i++) {
        double r = run_batched(batched[i].c, batched[i].k, batched[i].h, batched[i].w, batched[i].n, batched[i].sum,
                               batched[i].relu, (uint32_t)(200 + 10 * i));
        if (r > worst) worst = r;
    }
    CHECK(cpu_wino_create_batched(16, 12, 7, 7, 0, 0, 2) == NULL, "a batched plan with k not a multiple of 8");
    printf("worst relative error %.2e\n", worst);
    return check_summary();
}
