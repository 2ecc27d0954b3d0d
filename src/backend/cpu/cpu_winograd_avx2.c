/*
 * cpu_winograd_avx2.c — the AVX2+FMA kernels of the Winograd F(4,3)
 * convolution (cpu_winograd.h): input transform, the 36 GEMMs by a 6x16
 * micro-kernel, output transform with bias, residual and ReLU. Compiled
 * with -mavx2 -mfma (CMakeLists.txt); only called where cpuid says so.
 *
 * Layouts:
 *   src, dst  nChw8c images one after another: (n, c / 8, h, w, 8); the
 *             tiles of all n images form one list, cut into blocks
 *   V         (36, tb / 6, cp / 8, 6, 8): a group of 6 tiles' transformed
 *             input, channel blocks outermost, as the transform writes it
 *             (8 channels a vector, no transposition); the micro-kernel
 *             broadcasts one tile's channel at a time from it.
 *   U         (36, kp / 16, cp, 16): the transformed weights.
 *   M         (36, tb, kp): the products, read back by the output transform.
 * The micro-kernel sums over the channels 0..cp-1 in that order for every
 * output, whatever the block: no result depends on the blocking.
 */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/cpu_winograd.h"

// ---- transforms ----

// B^T x for 6 points (stride s between them, in and out).
static inline void bt6(__m256 *y, const __m256 *x, int s) {
    __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
    __m256 x0 = x[0], x1 = x[s], x2 = x[2 * s], x3 = x[3 * s], x4 = x[4 * s], x5 = x[5 * s];
    __m256 a = _mm256_fnmadd_ps(four, x2, x4);  // x4 - 4 x2
    __m256 b = _mm256_fnmadd_ps(four, x1, x3);  // x3 - 4 x1
    __m256 c = _mm256_sub_ps(x4, x2);
    __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(x3, x1));
    y[0] = _mm256_fmadd_ps(four, x0, _mm256_fnmadd_ps(five, x2, x4));
    y[s] = _mm256_add_ps(a, b);
    y[2 * s] = _mm256_sub_ps(a, b);
    y[3 * s] = _mm256_add_ps(c, e);
    y[4 * s] = _mm256_sub_ps(c, e);
    y[5 * s] = _mm256_fmadd_ps(four, x1, _mm256_fnmadd_ps(five, x3, x5));
}

// A^T x: 6 points -> 4 outputs (stride s in, so out).
static inline void at6(__m256 *y, int so, const __m256 *x, int s) {
    __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    __m256 s12 = _mm256_add_ps(x[s], x[2 * s]), d12 = _mm256_sub_ps(x[s], x[2 * s]);
    __m256 s34 = _mm256_add_ps(x[3 * s], x[4 * s]), d34 = _mm256_sub_ps(x[3 * s], x[4 * s]);
    y[0] = _mm256_add_ps(_mm256_add_ps(x[0], s12), s34);
    y[so] = _mm256_fmadd_ps(two, d34, d12);
    y[2 * so] = _mm256_fmadd_ps(four, s34, s12);
    y[3 * so] = _mm256_add_ps(_mm256_fmadd_ps(eight, d34, d12), x[5 * s]);
}

// One tile of one channel block: d (6x6 vectors) -> v (36 vectors).
static inline void input_tile(__m256 *v, const __m256 *d) {
    __m256 t[36];
    for (int j = 0; j < 6; j++) bt6(t + j, d + j, 6);  // columns: t = B^T d
    for (int r = 0; r < 6; r++) bt6(v + r * 6, t + r * 6, 1);  // rows: v = t B
}

// Transforms the tiles [t0, t0 + 6 * ng) into V (tiles past the image are zero).
static void input_block(const CpuWino *p, float *V, const float *src, size_t t0, size_t ng, size_t T) {
    const size_t h = p->h, w = p->w, ncb = p->cp / 8, TI = p->th * p->tw;
    const size_t xs = (p->tb / 6) * p->cp * 6;  // floats between two positions xi
    const size_t img = ((p->c + 7) / 8) * h * w * 8;  // floats per source image
    __m256 d[36], v[36];
    for (size_t g = 0; g < ng; g++)
        for (size_t j = 0; j < 6; j++) {
            size_t t = t0 + g * 6 + j;
            for (size_t cb = 0; cb < ncb; cb++) {
                float *out = V + (g * ncb + cb) * 48 + j * 8;
                if (t >= T) {
                    for (size_t xi = 0; xi < 36; xi++) _mm256_store_ps(out + xi * xs, _mm256_setzero_ps());
                    continue;
                }
                size_t tl = t % TI;  // the tile within its image
                long y0 = (long)(tl / p->tw) * 4 - 1, x0 = (long)(tl % p->tw) * 4 - 1;
                const float *plane = src + (t / TI) * img + cb * h * w * 8;
                if (y0 >= 0 && x0 >= 0 && y0 + 6 <= (long)h && x0 + 6 <= (long)w) {
                    for (int i = 0; i < 6; i++)
                        for (int k = 0; k < 6; k++)
                            d[i * 6 + k] = _mm256_loadu_ps(plane + (((size_t)(y0 + i)) * w + (size_t)(x0 + k)) * 8);
                } else {
                    for (int i = 0; i < 6; i++)
                        for (int k = 0; k < 6; k++) {
                            long y = y0 + i, x = x0 + k;
                            d[i * 6 + k] = y >= 0 && x >= 0 && y < (long)h && x < (long)w
                                               ? _mm256_loadu_ps(plane + ((size_t)y * w + (size_t)x) * 8)
                                               : _mm256_setzero_ps();
                        }
                }
                input_tile(v, d);
                for (size_t xi = 0; xi < 36; xi++) _mm256_store_ps(out + xi * xs, v[xi]);
            }
        }
}

// Products of the tiles [t0, t0 + n) -> dst, with bias, residual, ReLU.
static void output_block(const CpuWino *p, float *dst, const float *M, size_t t0, size_t n) {
    const size_t h = p->h, w = p->w, kp = p->kp, nkb = (p->k + 7) / 8;
    const size_t xs = p->tb * kp;
    __m256 m[36], t[24], y[16];
    const __m256 zero = _mm256_setzero_ps();
    const size_t TI = p->th * p->tw, img = nkb * h * w * 8;  // tiles, floats per image
    for (size_t j = 0; j < n; j++) {
        size_t tile = (t0 + j) % TI, oy = tile / p->tw * 4, ox = tile % p->tw * 4;
        float *dimg = dst + (t0 + j) / TI * img;
        size_t ny = h - oy < 4 ? h - oy : 4, nx = w - ox < 4 ? w - ox : 4;
        for (size_t kb = 0; kb < nkb; kb++) {
            const float *in = M + j * kp + kb * 8;
            for (size_t xi = 0; xi < 36; xi++) m[xi] = _mm256_load_ps(in + xi * xs);
            for (int s = 0; s < 6; s++) at6(t + s, 6, m + s, 6);  // columns: t (4x6) = A^T m
            for (int r = 0; r < 4; r++) at6(y + r * 4, 1, t + r * 6, 1);  // rows: y (4x4) = t A
            __m256 b = _mm256_load_ps(p->bias + kb * 8);
            float *plane = dimg + kb * h * w * 8;
            for (size_t r = 0; r < ny; r++)
                for (size_t c = 0; c < nx; c++) {
                    float *o = plane + ((oy + r) * w + ox + c) * 8;
                    __m256 v = _mm256_add_ps(y[r * 4 + c], b);
                    if (p->sum) v = _mm256_add_ps(v, _mm256_loadu_ps(o));
                    if (p->relu) v = _mm256_max_ps(v, zero);
                    _mm256_storeu_ps(o, v);
                }
        }
    }
}

// ---- GEMM ----

// m[6][16] (row stride ldm) = v (6 tiles, cp channels as (cp / 8, 6, 8)) . u (cp, 16)
static void gemm_6x16(float *m, size_t ldm, const float *v, const float *u, size_t cp) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t cb = 0; cb < cp / 8; cb++, v += 48) {
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++, u += 16) {
            __m256 u0 = _mm256_load_ps(u), u1 = _mm256_load_ps(u + 8), a;
            a = _mm256_broadcast_ss(v + 0 * 8 + c);
            c00 = _mm256_fmadd_ps(a, u0, c00);
            c01 = _mm256_fmadd_ps(a, u1, c01);
            a = _mm256_broadcast_ss(v + 1 * 8 + c);
            c10 = _mm256_fmadd_ps(a, u0, c10);
            c11 = _mm256_fmadd_ps(a, u1, c11);
            a = _mm256_broadcast_ss(v + 2 * 8 + c);
            c20 = _mm256_fmadd_ps(a, u0, c20);
            c21 = _mm256_fmadd_ps(a, u1, c21);
            a = _mm256_broadcast_ss(v + 3 * 8 + c);
            c30 = _mm256_fmadd_ps(a, u0, c30);
            c31 = _mm256_fmadd_ps(a, u1, c31);
            a = _mm256_broadcast_ss(v + 4 * 8 + c);
            c40 = _mm256_fmadd_ps(a, u0, c40);
            c41 = _mm256_fmadd_ps(a, u1, c41);
            a = _mm256_broadcast_ss(v + 5 * 8 + c);
            c50 = _mm256_fmadd_ps(a, u0, c50);
            c51 = _mm256_fmadd_ps(a, u1, c51);
        }
    }
    _mm256_store_ps(m + 0 * ldm, c00);
    _mm256_store_ps(m + 0 * ldm + 8, c01);
    _mm256_store_ps(m + 1 * ldm, c10);
    _mm256_store_ps(m + 1 * ldm + 8, c11);
    _mm256_store_ps(m + 2 * ldm, c20);
    _mm256_store_ps(m + 2 * ldm + 8, c21);
    _mm256_store_ps(m + 3 * ldm, c30);
    _mm256_store_ps(m + 3 * ldm + 8, c31);
    _mm256_store_ps(m + 4 * ldm, c40);
    _mm256_store_ps(m + 4 * ldm + 8, c41);
    _mm256_store_ps(m + 5 * ldm, c50);
    _mm256_store_ps(m + 5 * ldm + 8, c51);
}

// ---- the layer ----

void cpu_wino_run_avx2(const CpuWino *p, float *dst, const float *src, size_t n_images, float *scratch) {
    const size_t T = n_images * p->th * p->tw, tb = p->tb, cp = p->cp, kp = p->kp, nkb = kp / 16;
    float *V = scratch;                 // (36, tb / 6, cp / 8, 6, 8)
    float *M = scratch + 36 * tb * cp;  // (36, tb, kp)
    for (size_t t0 = 0; t0 < T; t0 += tb) {
        size_t n = T - t0 < tb ? T - t0 : tb, ng = (n + 5) / 6;
        input_block(p, V, src, t0, ng, T);
        // Per position xi, per 16-column weight panel (cp x 16, in L1/L2),
        // every group of 6 tiles of the block.
        for (size_t xi = 0; xi < 36; xi++)
            for (size_t kb = 0; kb < nkb; kb++) {
                const float *u = p->u + (xi * nkb + kb) * cp * 16;
                for (size_t g = 0; g < ng; g++)
                    gemm_6x16(M + (xi * tb + g * 6) * kp + kb * 16, kp, V + (xi * (tb / 6) + g) * cp * 6, u, cp);
            }
        output_block(p, dst, M, t0, n);
    }
}

// ---- weights for training ----

// G x for 3 taps (stride s in) -> 6 points (stride so out), in float.
static inline void g3(__m256 *y, int so, const __m256 *x, int s) {
    const __m256 q = _mm256_set1_ps(0.25f), s6n = _mm256_set1_ps(-1.0f / 6), s6 = _mm256_set1_ps(1.0f / 6),
                 s12 = _mm256_set1_ps(1.0f / 12), s24 = _mm256_set1_ps(1.0f / 24);
    __m256 x0 = x[0], x1 = x[s], x2 = x[2 * s], e = _mm256_add_ps(x0, x2);
    __m256 m = _mm256_fmadd_ps(s6, x2, _mm256_mul_ps(s24, x0));
    y[0] = _mm256_mul_ps(q, x0);
    y[so] = _mm256_mul_ps(s6n, _mm256_add_ps(e, x1));
    y[2 * so] = _mm256_mul_ps(s6n, _mm256_sub_ps(e, x1));
    y[3 * so] = _mm256_fmadd_ps(s12, x1, m);
    y[4 * so] = _mm256_fnmadd_ps(s12, x1, m);
    y[5 * so] = x2;
}

// G g G^T of F(4,3) in float for 8 output channels at once (lanes): g[j]
// holds tap j of each lane. The same operations in the same order for every
// call, so a given weight tensor always transforms to the same bits.
static inline void weight_tile(__m256 *v, const __m256 *g) {
    __m256 t[18];                                                  // (6, 3)
    for (int b = 0; b < 3; b++) g3(t + b, 3, g + b, 3);            // columns: t = G g
    for (int r = 0; r < 6; r++) g3(v + r * 6, 1, t + r * 3, 1);    // rows: v = t G^T
}

void cpu_wino_weights_avx2(CpuWino *p, const float *wt, size_t lane_stride, size_t chan_stride, int flip) {
    const size_t k = p->k, c = p->c, nkb = p->kp / 16, cp = p->cp;
    // Output channels 8 at a time (a lane each), input channels one by one;
    // each (output block, input channel) is written once, so any split over
    // threads gives the same bits. Padded channels stay zero (set at creation).
#pragma omp parallel for schedule(static)
    for (size_t k8 = 0; k8 < k / 8; k8++) {
        __m256 g[9], v[36];
        float lanes[9][8];
        for (size_t ci = 0; ci < c; ci++) {
            for (int l = 0; l < 8; l++) {
                const float *src = wt + (k8 * 8 + (size_t)l) * lane_stride + ci * chan_stride;
                for (int j = 0; j < 9; j++) lanes[j][l] = src[flip ? 8 - j : j];
            }
            for (int j = 0; j < 9; j++) g[j] = _mm256_loadu_ps(lanes[j]);
            weight_tile(v, g);
            size_t ko = k8 * 8;
            for (int xi = 0; xi < 36; xi++)
                _mm256_store_ps(p->u + (((size_t)xi * nkb + ko / 16) * cp + ci) * 16 + ko % 16, v[xi]);
        }
    }
}
