/*
 * resize.c — bilinear resampling of 8-bit RGB equal, bit for bit, to Pillow
 * 9.4's Image.resize((w, h), Image.BILINEAR), and conversion of the result
 * to a normalised float tensor equal to torchvision's ToTensor + Normalize.
 *
 * Why an exact copy of Pillow's arithmetic: the reference workflow (and the
 * torchvision models' published accuracies) preprocess with PIL, and the
 * feature-level tests compare against torchvision, so every rounding step
 * has to be Pillow's. Pillow's ImagingResample (libImaging/Resample.c) is a
 * separable convolution:
 *   - per output coordinate, a triangle filter whose support is stretched by
 *     the downscale factor (antialiasing), centred at (i + 0.5) * scale;
 *     weights computed in double, normalised to sum 1, then rounded to fixed
 *     point with 22 fractional bits (PRECISION_BITS = 32 - 8 - 2);
 *   - horizontal pass first, into an 8-bit intermediate that holds only the
 *     source rows the vertical pass will read; then the vertical pass;
 *   - each sum starts at 1/2 (rounding) and is shifted and clipped to 0..255;
 *   - a pass whose dimension does not change is skipped.
 * The weights must be computed with the same double operations in the same
 * order, and without fused multiply-adds, which Pillow's baseline x86-64
 * build never uses; hence the floating-point contraction guard below.
 *
 * Why the passes are shaped as they are: the sums are exact 32-bit integers
 * (8-bit samples times weights below 2^23, as in Pillow; coeffs_compute
 * refuses the absurd scale factors where they could pass 2^31), so any
 * order of summation gives Pillow's bytes, and the loops are free to be
 * written for vectors. The vertical pass is a weighted sum of whole rows,
 * which vectorises across x as it stands. The horizontal pass would gather
 * a few pixels at a different offset per output pixel; instead the source
 * is transposed in strips of RESIZE_STRIP rows, so that each source column
 * of a strip is RESIZE_STRIP * 3 contiguous bytes and the horizontal pass
 * too becomes a weighted sum of whole vectors; its output is transposed
 * back. Each pass has a portable kernel (plain loops the compiler
 * vectorises) and, on x86-64 CPUs that have it, an AVX2 kernel that
 * multiplies 16-bit pairs (pmaddwd), chosen at run time; tests/unit/
 * test_resize.c checks both against a plain transcription of Pillow.
 * The whole resize works in one reusable block of memory (ResizeWork).
 */
#include "data/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESIZE_PRECISION_BITS (32 - 8 - 2)
// Sizes above 2^24 are not exactly representable in the float box Pillow
// passes to its coefficient code; far beyond any CT image anyway.
#define RESIZE_MAX_DIM ((size_t)1 << 24)
// Source rows per transposed strip of the horizontal pass, and the bytes of
// one column of a strip: RESIZE_STRIP pixels (96 bytes, three 32-byte
// vectors), then padding to a cache-line multiple.
#define RESIZE_STRIP 32
#define RESIZE_LANES (RESIZE_STRIP * 3)
#define RESIZE_COL 128

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RESIZE_AVX2 1
#include <immintrin.h>
#endif

// ---- coefficients ----

typedef struct {
    size_t ksize;    // weights per output coordinate
    int *bounds;     // (out, 2): first source index, number of taps
    int32_t *kk;     // (out, ksize): fixed-point weights, zero past the taps
    size_t npairs;   // (ksize + 1) / 2
    uint32_t *pk;    // (out, npairs, 2): the weights of taps 2p, 2p + 1 as two
                     // int16 pairs, low 15 bits and the rest (see coeffs_pairs)
} ResizeCoeffs;

// Pillow's bilinear_filter.
static inline double triangle(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

// Pillow's scale and support for resizing in_size to out_size; returns the
// number of weights per output coordinate (ksize).
static size_t coeffs_ksize(size_t in_size, size_t out_size, double *scale, double *support) {
    // Pillow: scale = (double)(in1 - in0) / outSize with float in0 = 0, in1 = in_size.
    *scale = (double)(float)in_size / (double)out_size;
    double filterscale = *scale < 1.0 ? 1.0 : *scale;
    *support = 1.0 * filterscale;
    return (size_t)ceil(*support) * 2 + 1;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box
// (0, in_size) and the triangle filter (support 1), into c's tables (sized
// by the caller from coeffs_ksize); pre holds ksize doubles. Returns -1 when
// a sum of 8-bit samples times these weights could pass 2^31 (Pillow's
// 32-bit sums would overflow; only for scale factors in the millions).
static int coeffs_compute(ResizeCoeffs *c, size_t in_size, size_t out_size, double *pre) {
    double scale, support;
    c->ksize = coeffs_ksize(in_size, out_size, &scale, &support);
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double ss = 1.0 / filterscale;
    for (size_t xx = 0; xx < out_size; xx++) {
        double center = ((double)xx + 0.5) * scale;  // in0 (0.0) + ...
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > (int)in_size) xmax = (int)in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = triangle(((double)(x + xmin) - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) pre[x] /= ww;
        int32_t *k = c->kk + xx * c->ksize;
        int64_t sum = 0;
        for (size_t x = 0; x < c->ksize; x++) {
            double v = (int)x < xmax ? pre[x] : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RESIZE_PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << RESIZE_PRECISION_BITS));
            sum += k[x];
        }
        if (255 * sum + ((int64_t)1 << (RESIZE_PRECISION_BITS - 1)) > INT32_MAX) return -1;
        c->bounds[2 * xx + 0] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    return 0;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

// Two int16 in one uint32, first in the low half (pmaddwd's operand order).
static inline uint32_t pair16(int32_t a, int32_t b) {
    return (uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16;
}

// The weights again, as the AVX2 kernels use them: pmaddwd multiplies int16
// by int16, so each weight k (>= 0, < 2^23) is split into k & 0x7FFF and
// k >> 15, and each sum is rebuilt as lo + (hi << 15). Taps are taken in
// pairs; an odd last tap is paired with a zero weight.
static void coeffs_pairs(ResizeCoeffs *c, size_t out_size) {
    c->npairs = (c->ksize + 1) / 2;
    for (size_t xx = 0; xx < out_size; xx++) {
        const int32_t *k = c->kk + xx * c->ksize;
        uint32_t *p = c->pk + xx * c->npairs * 2;
        for (size_t i = 0; i < c->npairs; i++) {
            int32_t k0 = k[2 * i], k1 = 2 * i + 1 < c->ksize ? k[2 * i + 1] : 0;
            p[2 * i + 0] = pair16(k0 & 0x7FFF, k1 & 0x7FFF);
            p[2 * i + 1] = pair16(k0 >> 15, k1 >> 15);
        }
    }
}

// Pillow's clip8: the sum carries 22 fractional bits. Branch-free, so that
// it vectorises.
static inline uint8_t clip8(int32_t ss) {
    int32_t v = ss >> RESIZE_PRECISION_BITS;
    v = v < 0 ? 0 : v;
    v = v > 255 ? 255 : v;
    return (uint8_t)v;
}

static int g_portable;  // resize_set_portable

void resize_set_portable(int on) { g_portable = on != 0; }

static int resize_have_avx2(void) {
#if defined(RESIZE_AVX2)
    return !g_portable && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

// ---- strips ----

// t (in_w, RESIZE_COL) from rows [0, rows) of src (*, in_w, 3): column x
// holds pixel x of each row of the strip, (RESIZE_STRIP, 3), then padding.
// Rows of the strip past `rows` are zero; their sums are computed and never
// stored. Four rows at a time, their pixels x are gathered into 12 bytes
// with two word stores (little-endian hosts).
static void strip_transpose(uint8_t *restrict t, const uint8_t *restrict src, size_t in_w,
                            size_t rows) {
    if (rows < RESIZE_STRIP) memset(t, 0, in_w * RESIZE_COL);
    size_t stride = in_w * 3, r = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *s0 = src + r * stride, *s1 = s0 + stride, *s2 = s1 + stride,
                      *s3 = s2 + stride;
        uint8_t *d = t + r * 3;
        // 4-byte loads: the last pixel of a row is left to the loop below.
        for (size_t x = 0; x + 1 < in_w; x++, d += RESIZE_COL) {
            uint32_t a, b, c, e;
            memcpy(&a, s0 + 3 * x, 4);
            memcpy(&b, s1 + 3 * x, 4);
            memcpy(&c, s2 + 3 * x, 4);
            memcpy(&e, s3 + 3 * x, 4);
            uint64_t lo = (a & 0xFFFFFFu) | (uint64_t)(b & 0xFFFFFFu) << 24 | (uint64_t)c << 48;
            uint32_t hi = ((c >> 16) & 0xFFu) | e << 8;
            memcpy(d, &lo, 8);
            memcpy(d + 8, &hi, 4);
        }
        for (size_t k = 0; k < 4; k++)
            memcpy(d + 3 * k, src + (r + k) * stride + 3 * (in_w - 1), 3);
    }
#endif
    for (; r < rows; r++) {
        const uint8_t *s = src + r * stride;
        uint8_t *d = t + r * 3;
        for (size_t x = 0; x < in_w; x++, d += RESIZE_COL) memcpy(d, s + 3 * x, 3);
    }
}

// The reverse for the horizontal pass's output: rows [0, rows) of dst
// (rows, out_w, 3), row stride dst_stride, from tile (out_w, RESIZE_COL).
static void strip_untranspose(uint8_t *restrict dst, size_t dst_stride, size_t rows,
                              const uint8_t *restrict tile, size_t out_w) {
    for (size_t r = 0; r < rows; r++) {
        uint8_t *d = dst + r * dst_stride;
        const uint8_t *s = tile + r * 3;
        size_t x = 0;
        // 4-byte copies; the fourth byte is overwritten by the next pixel.
        for (; x + 1 < out_w; x++, s += RESIZE_COL) memcpy(d + 3 * x, s, 4);
        memcpy(d + 3 * x, s, 3);
    }
}

// ---- portable kernels ----

// The horizontal pass of one transposed strip: tile (out_w, RESIZE_COL)
// from t (in_w, RESIZE_COL). Each output pixel is a weighted sum of whole
// columns, which the compiler vectorises across the strip's rows.
static void hstrip_c(uint8_t *restrict tile, const uint8_t *restrict t, size_t out_w,
                     const ResizeCoeffs *c) {
    const int32_t half = (int32_t)1 << (RESIZE_PRECISION_BITS - 1);
    for (size_t xx = 0; xx < out_w; xx++) {
        const int32_t *k = c->kk + xx * c->ksize;
        const uint8_t *col = t + (size_t)c->bounds[2 * xx] * RESIZE_COL;
        int n = c->bounds[2 * xx + 1];
        int32_t acc[RESIZE_LANES];
        for (int i = 0; i < RESIZE_LANES; i++) acc[i] = half;
        for (int x = 0; x < n; x++, col += RESIZE_COL) {
            int32_t kx = k[x];
            for (int i = 0; i < RESIZE_LANES; i++) acc[i] += (int32_t)col[i] * kx;
        }
        uint8_t *o = tile + xx * RESIZE_COL;
        for (int i = 0; i < RESIZE_LANES; i++) o[i] = clip8(acc[i]);
    }
}

// dst (out_h, row / 3, 3) from src (*, row / 3, 3), bytes [i0, row) of each
// row; bounds are relative to src's first row. acc holds row int32s.
static void vpass_c(uint8_t *restrict dst, size_t out_h, const uint8_t *restrict src, size_t row,
                    size_t i0, const ResizeCoeffs *c, int32_t *restrict acc) {
    const int32_t half = (int32_t)1 << (RESIZE_PRECISION_BITS - 1);
    for (size_t yy = 0; yy < out_h; yy++) {
        const int32_t *k = c->kk + yy * c->ksize;
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        for (size_t i = i0; i < row; i++) acc[i] = half;
        for (int y = 0; y < n; y++) {
            const uint8_t *s = src + (size_t)(ymin + y) * row;
            int32_t ky = k[y];
            for (size_t i = i0; i < row; i++) acc[i] += (int32_t)s[i] * ky;
        }
        uint8_t *d = dst + yy * row;
        for (size_t i = i0; i < row; i++) d[i] = clip8(acc[i]);
    }
}

// ---- AVX2 kernels ----
//
// The same sums with pmaddwd: two taps' bytes interleaved and widened to
// int16 pairs, times (weight, weight) pairs, 16 products per instruction,
// once for the low 15 bits of the weights and once for the rest. The
// unpacks scramble the order of the 32 lanes of a vector the same way for
// every tap, and the final packs restore it. Integer sums: the same bytes as
// the portable kernels, which the tests check on every size they try.
#if defined(RESIZE_AVX2)

// Adds taps a, b (32 bytes each) times the weight pairs klo, khi to the
// eight sums of 32 lanes.
__attribute__((target("avx2"))) static inline void madd_pair(__m256i *lo, __m256i *hi, __m256i a,
                                                             __m256i b, __m256i klo, __m256i khi) {
    const __m256i z = _mm256_setzero_si256();
    __m256i ab_l = _mm256_unpacklo_epi8(a, b), ab_h = _mm256_unpackhi_epi8(a, b);
    __m256i w[4] = {_mm256_unpacklo_epi8(ab_l, z), _mm256_unpackhi_epi8(ab_l, z),
                    _mm256_unpacklo_epi8(ab_h, z), _mm256_unpackhi_epi8(ab_h, z)};
    for (int i = 0; i < 4; i++) {
        lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(w[i], klo));
        hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(w[i], khi));
    }
}

// lo + (hi << 15) + 1/2, shifted, clipped (by the saturating packs) and
// put back in lane order: 32 bytes.
__attribute__((target("avx2"))) static inline __m256i finish32(const __m256i *lo,
                                                               const __m256i *hi) {
    const __m256i half = _mm256_set1_epi32(1 << (RESIZE_PRECISION_BITS - 1));
    __m256i s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = _mm256_add_epi32(_mm256_add_epi32(lo[i], half), _mm256_slli_epi32(hi[i], 15));
        s[i] = _mm256_srai_epi32(s[i], RESIZE_PRECISION_BITS);
    }
    return _mm256_packus_epi16(_mm256_packs_epi32(s[0], s[1]), _mm256_packs_epi32(s[2], s[3]));
}

// hstrip_c with pmaddwd. t has a zero column at in_w, so that an odd last
// tap can be paired with the column after it (weight 0).
__attribute__((target("avx2"))) static void hstrip_avx2(uint8_t *restrict tile,
                                                        const uint8_t *restrict t, size_t out_w,
                                                        const ResizeCoeffs *c) {
    for (size_t xx = 0; xx < out_w; xx++) {
        const uint8_t *col0 = t + (size_t)c->bounds[2 * xx] * RESIZE_COL;
        int npairs = (c->bounds[2 * xx + 1] + 1) / 2;
        const uint32_t *pk = c->pk + xx * c->npairs * 2;
        uint8_t *o = tile + xx * RESIZE_COL;
        for (int j = 0; j < RESIZE_LANES; j += 32) {
            __m256i lo[4], hi[4];
            for (int i = 0; i < 4; i++) lo[i] = hi[i] = _mm256_setzero_si256();
            const uint8_t *col = col0 + j;
            for (int p = 0; p < npairs; p++, col += 2 * RESIZE_COL) {
                __m256i a = _mm256_loadu_si256((const __m256i *)col);
                __m256i b = _mm256_loadu_si256((const __m256i *)(col + RESIZE_COL));
                madd_pair(lo, hi, a, b, _mm256_set1_epi32((int)pk[2 * p]),
                          _mm256_set1_epi32((int)pk[2 * p + 1]));
            }
            _mm256_storeu_si256((__m256i *)(o + j), finish32(lo, hi));
        }
    }
}

// vpass_c with pmaddwd, for bytes [0, row - row % 32); returns where the
// portable kernel has to take over.
__attribute__((target("avx2"))) static size_t vpass_avx2(uint8_t *restrict dst, size_t out_h,
                                                         const uint8_t *restrict src, size_t row,
                                                         const ResizeCoeffs *c) {
    size_t end = row - row % 32;
    for (size_t yy = 0; yy < out_h; yy++) {
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        const uint32_t *pk = c->pk + yy * c->npairs * 2;
        uint8_t *d = dst + yy * row;
        for (size_t i = 0; i < end; i += 32) {
            __m256i lo[4], hi[4];
            for (int k = 0; k < 4; k++) lo[k] = hi[k] = _mm256_setzero_si256();
            for (int y = 0; y < n; y += 2) {
                const uint8_t *ra = src + (size_t)(ymin + y) * row + i;
                const uint8_t *rb = y + 1 < n ? ra + row : ra;  // weight 0 past the taps
                madd_pair(lo, hi, _mm256_loadu_si256((const __m256i *)ra),
                          _mm256_loadu_si256((const __m256i *)rb),
                          _mm256_set1_epi32((int)pk[y]), _mm256_set1_epi32((int)pk[y + 1]));
            }
            _mm256_storeu_si256((__m256i *)(d + i), finish32(lo, hi));
        }
    }
    return end;
}

#endif

// ---- passes ----

// dst (rows, out_w, 3) from src rows [row0, row0 + rows) of (*, in_w, 3).
// strip (in_w + 1, RESIZE_COL), tile (out_w, RESIZE_COL).
static void pass_horizontal(uint8_t *dst, size_t out_w, size_t rows, const uint8_t *src,
                            size_t in_w, size_t row0, const ResizeCoeffs *c, uint8_t *strip,
                            uint8_t *tile, int avx2) {
    memset(strip + in_w * RESIZE_COL, 0, RESIZE_COL);
    for (size_t y = 0; y < rows; y += RESIZE_STRIP) {
        size_t n = rows - y < RESIZE_STRIP ? rows - y : RESIZE_STRIP;
        strip_transpose(strip, src + (row0 + y) * in_w * 3, in_w, n);
#if defined(RESIZE_AVX2)
        if (avx2) hstrip_avx2(tile, strip, out_w, c);
        else hstrip_c(tile, strip, out_w, c);
#else
        hstrip_c(tile, strip, out_w, c);
#endif
        strip_untranspose(dst + y * out_w * 3, out_w * 3, n, tile, out_w);
    }
}

// dst (out_h, w, 3) from src (*, w, 3), row = w * 3.
static void pass_vertical(uint8_t *dst, size_t out_h, const uint8_t *src, size_t row,
                          const ResizeCoeffs *c, int32_t *acc, int avx2) {
    size_t i0 = 0;
#if defined(RESIZE_AVX2)
    if (avx2) i0 = vpass_avx2(dst, out_h, src, row, c);
#endif
    if (i0 < row) vpass_c(dst, out_h, src, row, i0, c, acc);
}

// ---- workspace ----

void resize_work_init(ResizeWork *w) {
    w->buf = NULL;
    w->cap = 0;
}

void resize_work_free(ResizeWork *w) {
    if (!w) return;
    free(w->buf);
    w->buf = NULL;
    w->cap = 0;
}

// Reserves n * size bytes (64-byte aligned) at *off of the block; returns
// -1 on overflow.
static int carve(size_t *off, size_t *at, size_t n, size_t size) {
    size_t bytes;
    if (ct_mul_size(&bytes, n, size) || bytes > SIZE_MAX - 64 - *off) return -1;
    *at = *off;
    *off += (bytes + 63) & ~(size_t)63;
    return 0;
}

int resize_work_bilinear_rgb8(ResizeWork *w, uint8_t *dst, size_t out_w, size_t out_h,
                              const uint8_t *src, size_t in_w, size_t in_h, CtError *err) {
    if (out_w == 0 || out_h == 0 || in_w == 0 || in_h == 0)
        return ct_errorf(err, "resize: zero size (%zux%zu to %zux%zu)", in_w, in_h, out_w, out_h);
    if (out_w > RESIZE_MAX_DIM || out_h > RESIZE_MAX_DIM || in_w > RESIZE_MAX_DIM ||
        in_h > RESIZE_MAX_DIM)
        return ct_errorf(err, "resize: size %zux%zu to %zux%zu is beyond the limit of %zu", in_w,
                         in_h, out_w, out_h, RESIZE_MAX_DIM);
    size_t dims[3] = {out_w, out_h, 3};
    size_t out_bytes;
    if (ct_mul_sizes(&out_bytes, dims, 3))
        return ct_errorf(err, "resize: output %zux%zu overflows", out_w, out_h);
    int need_h = out_w != in_w, need_v = out_h != in_h;
    if (!need_h && !need_v) {
        memcpy(dst, src, out_bytes);
        return 0;
    }

    // Sizes first, then one block. Pillow computes the vertical
    // coefficients whether or not the vertical pass runs, to know which
    // source rows the horizontal pass needs; the intermediate is sized for
    // the most it can need (every source row).
    double scale, support;
    size_t kv = coeffs_ksize(in_h, out_h, &scale, &support);
    size_t kh = coeffs_ksize(in_w, out_w, &scale, &support);
    size_t row_out = out_w * 3;
    size_t off = 0, at_bv, at_kv, at_pv, at_pre, at_bh = 0, at_kh = 0, at_ph = 0, at_strip = 0,
           at_tile = 0, at_tmp = 0, at_acc = 0;
    if (carve(&off, &at_bv, out_h, 2 * sizeof(int)) ||
        carve(&off, &at_kv, out_h, kv * sizeof(int32_t)) ||
        carve(&off, &at_pv, out_h, (kv + 1) * sizeof(uint32_t)) ||
        carve(&off, &at_pre, kv > kh ? kv : kh, sizeof(double)) ||
        (need_h && (carve(&off, &at_bh, out_w, 2 * sizeof(int)) ||
                    carve(&off, &at_kh, out_w, kh * sizeof(int32_t)) ||
                    carve(&off, &at_ph, out_w, (kh + 1) * sizeof(uint32_t)) ||
                    carve(&off, &at_strip, in_w + 1, RESIZE_COL) ||
                    carve(&off, &at_tile, out_w, RESIZE_COL))) ||
        (need_h && need_v && carve(&off, &at_tmp, in_h, row_out)) ||
        (need_v && carve(&off, &at_acc, row_out, sizeof(int32_t))))
        return ct_errorf(err, "resize: %zux%zu to %zux%zu needs more memory than can be "
                         "addressed", in_w, in_h, out_w, out_h);
    if (off > w->cap) {
        free(w->buf);
        w->buf = aligned_alloc(64, off);
        w->cap = w->buf ? off : 0;
        if (!w->buf)
            return ct_errorf(err, "resize: out of memory resizing %zux%zu to %zux%zu", in_w,
                             in_h, out_w, out_h);
    }
    uint8_t *b = w->buf;
    ResizeCoeffs cv = {0, (int *)(b + at_bv), (int32_t *)(b + at_kv), 0, (uint32_t *)(b + at_pv)};
    ResizeCoeffs ch = {0, (int *)(b + at_bh), (int32_t *)(b + at_kh), 0, (uint32_t *)(b + at_ph)};
    double *pre = (double *)(b + at_pre);
    int avx2 = resize_have_avx2();

    if (coeffs_compute(&cv, in_h, out_h, pre) || (need_h && coeffs_compute(&ch, in_w, out_w, pre)))
        return ct_errorf(err, "resize: %zux%zu to %zux%zu scales too far for exact fixed-point "
                         "sums", in_w, in_h, out_w, out_h);
    coeffs_pairs(&cv, out_h);
    size_t row_first = (size_t)cv.bounds[0];
    size_t row_last = (size_t)cv.bounds[2 * out_h - 2] + (size_t)cv.bounds[2 * out_h - 1];
    const uint8_t *vsrc = src;
    if (need_h) {
        coeffs_pairs(&ch, out_w);
        size_t rows = row_last - row_first;
        uint8_t *strip = b + at_strip, *tile = b + at_tile;
        if (!need_v) {
            // rows == in_h == out_h: the identity vertical bounds span every
            // row, so the horizontal pass is the whole resize.
            pass_horizontal(dst, out_w, rows, src, in_w, row_first, &ch, strip, tile, avx2);
            return 0;
        }
        uint8_t *tmp = b + at_tmp;
        pass_horizontal(tmp, out_w, rows, src, in_w, row_first, &ch, strip, tile, avx2);
        for (size_t i = 0; i < out_h; i++) cv.bounds[2 * i] -= (int)row_first;
        vsrc = tmp;
    }
    pass_vertical(dst, out_h, vsrc, row_out, &cv, (int32_t *)(b + at_acc), avx2);
    return 0;
}

int resize_bilinear_rgb8(uint8_t *dst, size_t out_w, size_t out_h, const uint8_t *src, size_t in_w,
                         size_t in_h, CtError *err) {
    ResizeWork w;
    resize_work_init(&w);
    int rc = resize_work_bilinear_rgb8(&w, dst, out_w, out_h, src, in_w, in_h, err);
    resize_work_free(&w);
    return rc;
}

// ---- tensor ----

void resize_to_tensor(float *dst, const uint8_t *src, size_t w, size_t h, NormMode norm) {
    // torchvision: ToTensor gives x.float().div(255); Normalize then does
    // sub_(mean).div_(std) with float32 mean and std. Same float32 steps
    // here, tabulated per channel and byte value.
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float stdv[3] = {0.229f, 0.224f, 0.225f};
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            lut[c][v] = norm == NORM_IMAGENET ? (x - mean[c]) / stdv[c] : x;
        }
    }
    size_t plane = w * h;
    for (size_t i = 0; i < plane; i++) {
        dst[i] = lut[0][src[3 * i + 0]];              // (3, H, W)
        dst[plane + i] = lut[1][src[3 * i + 1]];
        dst[2 * plane + i] = lut[2][src[3 * i + 2]];
    }
}

int norm_mode_parse(const char *s, NormMode *out) {
    if (!s) return -1;
    if (strcmp(s, "imagenet") == 0) {
        *out = NORM_IMAGENET;
        return 0;
    }
    if (strcmp(s, "unit") == 0) {
        *out = NORM_UNIT;
        return 0;
    }
    return -1;
}

const char *norm_mode_name(NormMode m) {
    switch (m) {
        case NORM_IMAGENET: return "imagenet";
        case NORM_UNIT: return "unit";
    }
    return "unknown";
}
