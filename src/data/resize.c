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
 */
#include "data/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESIZE_PRECISION_BITS (32 - 8 - 2)
// Sizes above 2^24 are not exactly representable in the float box Pillow
// passes to its coefficient code; far beyond any CT image anyway.
#define RESIZE_MAX_DIM ((size_t)1 << 24)

// ---- coefficients ----

typedef struct {
    size_t ksize;    // weights per output coordinate
    int *bounds;     // (out, 2): first source index, number of taps
    int32_t *kk;     // (out, ksize): fixed-point weights
} ResizeCoeffs;

static void coeffs_free(ResizeCoeffs *c) {
    free(c->bounds);
    free(c->kk);
    c->bounds = NULL;
    c->kk = NULL;
}

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

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box
// (0, in_size) and the triangle filter (support 1). Returns 0 or -1 when
// out of memory.
static int coeffs_compute(ResizeCoeffs *c, size_t in_size, size_t out_size) {
    c->bounds = NULL;
    c->kk = NULL;
    // Pillow: scale = (double)(in1 - in0) / outSize with float in0 = 0, in1 = in_size.
    double scale = (double)(float)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    c->ksize = (size_t)ceil(support) * 2 + 1;
    size_t nk;
    if (ct_mul_size(&nk, out_size, c->ksize)) return -1;
    double *pre = malloc(c->ksize * sizeof(double));
    c->bounds = malloc(out_size * 2 * sizeof(int));
    c->kk = malloc(nk * sizeof(int32_t));
    if (!pre || !c->bounds || !c->kk) {
        free(pre);
        coeffs_free(c);
        return -1;
    }
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
        for (size_t x = 0; x < c->ksize; x++) {
            double v = (int)x < xmax ? pre[x] : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RESIZE_PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << RESIZE_PRECISION_BITS));
        }
        c->bounds[2 * xx + 0] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(pre);
    return 0;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

// Pillow's clip8: the sum carries 22 fractional bits.
static inline uint8_t clip8(int64_t ss) {
    int64_t v = ss >> RESIZE_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// ---- passes ----

// dst (rows, out_w, 3) from src rows [row0, row0 + rows) of (in_h, in_w, 3).
static void pass_horizontal(uint8_t *dst, size_t out_w, size_t rows, const uint8_t *src,
                            size_t in_w, size_t row0, const ResizeCoeffs *c) {
    const int64_t half = (int64_t)1 << (RESIZE_PRECISION_BITS - 1);
    for (size_t y = 0; y < rows; y++) {
        const uint8_t *srow = src + (row0 + y) * in_w * 3;
        uint8_t *drow = dst + y * out_w * 3;
        for (size_t xx = 0; xx < out_w; xx++) {
            const int32_t *k = c->kk + xx * c->ksize;
            const uint8_t *p = srow + (size_t)c->bounds[2 * xx] * 3;
            int n = c->bounds[2 * xx + 1];
            int64_t s0 = half, s1 = half, s2 = half;
            for (int x = 0; x < n; x++, p += 3) {
                s0 += (int64_t)p[0] * k[x];
                s1 += (int64_t)p[1] * k[x];
                s2 += (int64_t)p[2] * k[x];
            }
            drow[3 * xx + 0] = clip8(s0);
            drow[3 * xx + 1] = clip8(s1);
            drow[3 * xx + 2] = clip8(s2);
        }
    }
}

// dst (out_h, w, 3) from src (*, w, 3); bounds are relative to src's first
// row. acc holds one output row of sums (w * 3).
static void pass_vertical(uint8_t *dst, size_t out_h, const uint8_t *src, size_t w,
                          const ResizeCoeffs *c, int64_t *acc) {
    const int64_t half = (int64_t)1 << (RESIZE_PRECISION_BITS - 1);
    size_t row = w * 3;
    for (size_t yy = 0; yy < out_h; yy++) {
        const int32_t *k = c->kk + yy * c->ksize;
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        for (size_t i = 0; i < row; i++) acc[i] = half;
        for (int y = 0; y < n; y++) {
            const uint8_t *s = src + (size_t)(ymin + y) * row;
            int64_t ky = k[y];
            for (size_t i = 0; i < row; i++) acc[i] += (int64_t)s[i] * ky;
        }
        uint8_t *d = dst + yy * row;
        for (size_t i = 0; i < row; i++) d[i] = clip8(acc[i]);
    }
}

int resize_bilinear_rgb8(uint8_t *dst, size_t out_w, size_t out_h, const uint8_t *src, size_t in_w,
                         size_t in_h, CtError *err) {
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

    ResizeCoeffs cv = {0}, ch = {0};
    uint8_t *tmp = NULL;
    int64_t *acc = NULL;
    int rc = -1;
    // Pillow computes the vertical coefficients first, whether or not the
    // vertical pass runs, to know which source rows the horizontal pass needs.
    if (coeffs_compute(&cv, in_h, out_h)) goto oom;
    size_t row_first = (size_t)cv.bounds[0];
    size_t row_last = (size_t)cv.bounds[2 * out_h - 2] + (size_t)cv.bounds[2 * out_h - 1];
    const uint8_t *vsrc = src;
    if (need_h) {
        if (coeffs_compute(&ch, in_w, out_w)) goto oom;
        size_t rows = row_last - row_first;
        if (!need_v) {
            // rows == in_h == out_h: the identity vertical bounds span every
            // row, so the horizontal pass is the whole resize.
            pass_horizontal(dst, out_w, rows, src, in_w, row_first, &ch);
            rc = 0;
            goto done;
        }
        size_t tmp_dims[3] = {rows, out_w, 3}, tmp_bytes;
        if (ct_mul_sizes(&tmp_bytes, tmp_dims, 3)) goto oom;
        tmp = malloc(tmp_bytes);
        if (!tmp) goto oom;
        pass_horizontal(tmp, out_w, rows, src, in_w, row_first, &ch);
        for (size_t i = 0; i < out_h; i++) cv.bounds[2 * i] -= (int)row_first;
        vsrc = tmp;
    }
    acc = malloc(out_w * 3 * sizeof(int64_t));
    if (!acc) goto oom;
    pass_vertical(dst, out_h, vsrc, out_w, &cv, acc);
    rc = 0;
    goto done;
oom:
    ct_errorf(err, "resize: out of memory resizing %zux%zu to %zux%zu", in_w, in_h, out_w, out_h);
done:
    free(acc);
    free(tmp);
    coeffs_free(&cv);
    coeffs_free(&ch);
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
