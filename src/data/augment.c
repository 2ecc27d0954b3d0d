/*
 * augment.c — the random rotation, flip, zoom and Gaussian noise of the
 * training set (see augment.h for the conventions): the draws from the
 * counter RNG, one inverse affine map sampled once with bilinear
 * interpolation, per-element noise from the element's own counter, then the
 * same float32 normalisation as resize_to_tensor.
 *
 * Why one map: rotating, then flipping, then zooming as separate resampling
 * steps would interpolate two or three times and blur each view more than
 * the augmentation asks for; composing the inverse maps first samples the
 * source once.
 */
#include "data/augment.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/rng.h"

// Operations, each with its own parameter block (image, view, PART_PARAMS, op).
enum { OP_ROTATE = 0, OP_FLIP = 1, OP_ZOOM = 2, OP_NOISE = 3 };

static const float k_mean[3] = {0.485f, 0.456f, 0.406f};  // as resize_to_tensor
static const float k_std[3] = {0.229f, 0.224f, 0.225f};

// Byte value -> float by table: in the warp's inner loop a load is cheaper
// than the twelve int-to-float conversions per pixel (about 20% of the warp).
#define BF4(i) (float)(i), (float)((i) + 1), (float)((i) + 2), (float)((i) + 3)
#define BF16(i) BF4(i), BF4((i) + 4), BF4((i) + 8), BF4((i) + 12)
#define BF64(i) BF16(i), BF16((i) + 16), BF16((i) + 32), BF16((i) + 48)
static const float k_byte_float[256] = {BF64(0), BF64(64), BF64(128), BF64(192)};

// ---- spec ----

AugmentSpec augment_spec_default(void) {
    AugmentSpec s;
    memset(&s, 0, sizeof s);
    s.flip_axis = AUGMENT_FLIP_LR;
    s.zoom_min = 1.0;
    s.zoom_max = 1.0;
    s.aug_views = 1;
    return s;
}

int augment_spec_is_identity(const AugmentSpec *s) {
    int rotate = s->rotate_prob > 0 && s->rotate_deg != 0;
    int flip = s->flip_prob > 0;
    int zoom = s->zoom_prob > 0 && !(s->zoom_min == 1.0 && s->zoom_max == 1.0);
    int noise = s->noise_prob > 0 && s->noise_std != 0;
    return !(rotate || flip || zoom || noise);
}

void augment_spec_hash(Sha256 *h, const AugmentSpec *s, int with_views) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%.17g,%.17g,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g", s->rotate_deg,
                     s->rotate_prob, s->flip_axis, s->flip_prob, s->zoom_min, s->zoom_max, s->zoom_prob, s->noise_std,
                     s->noise_prob);
    if (with_views) n += snprintf(buf + n, sizeof buf - (size_t)n, ",%u", s->aug_views);
    sha256_update(h, buf, (size_t)n);
}

// Written as !(lo <= v && v <= hi) so NaN fails too.
static int check_range(CtError *err, const char *field, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) return ct_errorf(err, "augment.%s = %g is outside [%g, %g]", field, v, lo, hi);
    return 0;
}

int augment_spec_validate(const AugmentSpec *s, CtError *err) {
    if (check_range(err, "rotate_deg", s->rotate_deg, 0.0, AUGMENT_MAX_ROTATE_DEG)) return -1;
    if (check_range(err, "rotate_prob", s->rotate_prob, 0.0, 1.0)) return -1;
    if (s->flip_axis != AUGMENT_FLIP_LR && s->flip_axis != AUGMENT_FLIP_UD)
        return ct_errorf(err, "augment.flip_axis = %d is not 0 (left-right) or 1 (up-down)", s->flip_axis);
    if (check_range(err, "flip_prob", s->flip_prob, 0.0, 1.0)) return -1;
    if (!(s->zoom_min > 0.0 && s->zoom_min <= AUGMENT_MAX_ZOOM))
        return ct_errorf(err, "augment.zoom_min = %g is outside (0, %g]", s->zoom_min, AUGMENT_MAX_ZOOM);
    if (!(s->zoom_max > 0.0 && s->zoom_max <= AUGMENT_MAX_ZOOM))
        return ct_errorf(err, "augment.zoom_max = %g is outside (0, %g]", s->zoom_max, AUGMENT_MAX_ZOOM);
    if (s->zoom_min > s->zoom_max)
        return ct_errorf(err, "augment.zoom_min = %g is greater than augment.zoom_max = %g", s->zoom_min,
                         s->zoom_max);
    if (check_range(err, "zoom_prob", s->zoom_prob, 0.0, 1.0)) return -1;
    if (check_range(err, "noise_std", s->noise_std, 0.0, AUGMENT_MAX_NOISE_STD)) return -1;
    if (check_range(err, "noise_prob", s->noise_prob, 0.0, 1.0)) return -1;
    if (s->aug_views < 1 || s->aug_views > AUGMENT_MAX_VIEWS)
        return ct_errorf(err, "augment.aug_views = %u is outside [1, %u]", s->aug_views, AUGMENT_MAX_VIEWS);
    return 0;
}

uint32_t augment_view_count(const AugmentSpec *s) {
    if (augment_spec_is_identity(s) || s->aug_views < 1) return 1;
    return s->aug_views;
}

uint32_t augment_view_of_epoch(const AugmentSpec *s, uint32_t epoch) { return epoch % augment_view_count(s); }

// ---- draws ----

void augment_draw_none(AugmentDraw *out) {
    memset(out, 0, sizeof *out);
    out->zoom_factor = 1.0;
}

// Uniform in [0, 1) from 32 bits (gates) or 53 bits (values).
static double u32_unit(uint32_t r) { return (double)r * (1.0 / 4294967296.0); }
static double u53_unit(uint32_t hi, uint32_t lo) {
    return ((double)(hi >> 5) * 67108864.0 + (double)(lo >> 6)) * (1.0 / 9007199254740992.0);
}

void augment_draw(AugmentDraw *out, const AugmentSpec *s, uint64_t seed, uint32_t image, uint32_t view) {
    augment_draw_none(out);
    RngStream rs;
    rng_stream_init(&rs, seed, RNG_AUGMENT, image, view, AUGMENT_PART_PARAMS);
    uint32_t r[4][4];
    for (uint32_t op = 0; op < 4; op++) {
        uint32_t ctr[4] = {image, view, AUGMENT_PART_PARAMS, op};
        rng_philox4x32(r[op], ctr, rs.key);
    }
    // Word 0 of an operation's block is its gate, words 1-2 its value; a
    // gate with probability 1 always passes, with 0 never.
    if (u32_unit(r[OP_ROTATE][0]) < s->rotate_prob) {
        out->rotate = 1;
        out->angle_deg = s->rotate_deg * (2.0 * u53_unit(r[OP_ROTATE][1], r[OP_ROTATE][2]) - 1.0);
    }
    if (u32_unit(r[OP_FLIP][0]) < s->flip_prob) {
        out->flip = 1;
        out->flip_axis = s->flip_axis;
    }
    if (u32_unit(r[OP_ZOOM][0]) < s->zoom_prob) {
        out->zoom = 1;
        out->zoom_factor = s->zoom_min + (s->zoom_max - s->zoom_min) * u53_unit(r[OP_ZOOM][1], r[OP_ZOOM][2]);
    }
    if (u32_unit(r[OP_NOISE][0]) < s->noise_prob) {
        out->noise = 1;
        out->noise_std = (float)s->noise_std;
    }
    out->noise_key[0] = rs.key[0];
    out->noise_key[1] = rs.key[1];
    out->noise_ctr[0] = image;
    out->noise_ctr[1] = view;
    out->noise_ctr[2] = AUGMENT_PART_NOISE;
}

// ---- geometry ----

// sin and cos of an angle in degrees, exact at multiples of 90 so that
// quarter turns move pixels without interpolating.
static void sincos_deg(double deg, double *s, double *c) {
    double r = fmod(deg, 360.0);
    if (r < 0) r += 360.0;
    static const double quarter_sin[4] = {0.0, 1.0, 0.0, -1.0};
    static const double quarter_cos[4] = {1.0, 0.0, -1.0, 0.0};
    for (int k = 0; k < 4; k++) {
        if (r == 90.0 * k) {
            *s = quarter_sin[k];
            *c = quarter_cos[k];
            return;
        }
    }
    double rad = deg * (3.14159265358979323846 / 180.0);
    *s = sin(rad);
    *c = cos(rad);
}

// The inverse map source - c = m * (output - c), m = F R^-1 / zoom, where
// R (forward, y down, counter-clockwise as displayed) = [[cos, sin],
// [-sin, cos]] and F negates x (left-right) or y (up-down).
static void inverse_matrix(double m[2][2], const AugmentDraw *d) {
    double sn = 0.0, cs = 1.0, z = 1.0;
    if (d->rotate) sincos_deg(d->angle_deg, &sn, &cs);
    if (d->zoom) z = d->zoom_factor;
    m[0][0] = cs / z;
    m[0][1] = -sn / z;
    m[1][0] = sn / z;
    m[1][1] = cs / z;
    if (d->flip) {
        int row = d->flip_axis == AUGMENT_FLIP_UD ? 1 : 0;
        m[row][0] = -m[row][0];
        m[row][1] = -m[row][1];
    }
}

// Bilinear sample of the three channels at (sx, sy) into out[0..2] (0..255
// scale) near or beyond the border; neighbours outside the image are the
// fill value 0. The lerp form a + t*(b - a) returns a exactly when t = 0,
// so integer positions copy.
static void sample_border(float out[3], const uint8_t *src, int S, float sx, float sy) {
    if (!(sx > -1.0f && sx < (float)S && sy > -1.0f && sy < (float)S)) {
        out[0] = out[1] = out[2] = 0.0f;
        return;
    }
    int x0 = (int)sx, y0 = (int)sy;  // truncation; floor below for (-1, 0)
    if ((float)x0 > sx) x0--;
    if ((float)y0 > sy) y0--;
    float fx = sx - (float)x0, fy = sy - (float)y0;
    int inx0 = x0 >= 0, inx1 = x0 + 1 < S, iny0 = y0 >= 0, iny1 = y0 + 1 < S;
    for (int ch = 0; ch < 3; ch++) {
        float v00 = inx0 && iny0 ? src[((size_t)y0 * S + x0) * 3 + ch] : 0.0f;
        float v01 = inx1 && iny0 ? src[((size_t)y0 * S + x0 + 1) * 3 + ch] : 0.0f;
        float v10 = inx0 && iny1 ? src[((size_t)(y0 + 1) * S + x0) * 3 + ch] : 0.0f;
        float v11 = inx1 && iny1 ? src[((size_t)(y0 + 1) * S + x0 + 1) * 3 + ch] : 0.0f;
        float t = v00 + fx * (v01 - v00);
        float b = v10 + fx * (v11 - v10);
        out[ch] = t + fy * (b - t);
    }
}

// dst (3, S, S) on the 0..255 scale from src (S, S, 3) through the inverse
// map m. Coordinates are computed per pixel from exact offsets (not
// accumulated), so quarter turns and flips land on integers exactly.
static void warp(float *dst, const uint8_t *src, size_t S, const double m[2][2]) {
    size_t plane = S * S;
    const float c = (float)((double)(S - 1) * 0.5);
    const float m00 = (float)m[0][0], m01 = (float)m[0][1], m10 = (float)m[1][0], m11 = (float)m[1][1];
    const float hi = (float)S - 1.0f;  // interior: both neighbours inside
    float *d0 = dst, *d1 = dst + plane, *d2 = dst + 2 * plane;  // (S, S) each
    for (size_t y = 0; y < S; y++) {
        float dy = (float)y - c;
        float bx = c + m01 * dy, by = c + m11 * dy;
        for (size_t x = 0; x < S; x++) {
            float dx = (float)x - c;
            float sx = bx + m00 * dx, sy = by + m10 * dx;
            size_t i = y * S + x;
            if (sx >= 0.0f && sx < hi && sy >= 0.0f && sy < hi) {
                // Truncation is the floor here (both >= 0); through int,
                // which converts in one instruction, unlike size_t.
                int x0 = (int)sx, y0 = (int)sy;
                float fx = sx - (float)x0, fy = sy - (float)y0;
                const uint8_t *p = src + ((size_t)y0 * S + (size_t)x0) * 3;  // (2, 2, 3) window
                const uint8_t *q = p + S * 3;
                const float *L = k_byte_float;
                float t, b;
                t = L[p[0]] + fx * (L[p[3]] - L[p[0]]);
                b = L[q[0]] + fx * (L[q[3]] - L[q[0]]);
                d0[i] = t + fy * (b - t);
                t = L[p[1]] + fx * (L[p[4]] - L[p[1]]);
                b = L[q[1]] + fx * (L[q[4]] - L[q[1]]);
                d1[i] = t + fy * (b - t);
                t = L[p[2]] + fx * (L[p[5]] - L[p[2]]);
                b = L[q[2]] + fx * (L[q[5]] - L[q[2]]);
                d2[i] = t + fy * (b - t);
            } else {
                float v[3];
                sample_border(v, src, (int)S, sx, sy);
                d0[i] = v[0];
                d1[i] = v[1];
                d2[i] = v[2];
            }
        }
    }
}

// ---- noise ----

static inline float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// z[2l], z[2l+1] = Box-Muller of the 21-bit uniforms (a[l] + 0.5) / 2^21
// (radius) and b[l] / 2^21 (angle), for l < np.
//
// Written with + - * / and bit operations only: no libm call and no branch,
// so the compiler vectorises the loop (with logf, sqrtf, sinf and cosf the
// noise took three times as long), and the values do not depend on which
// variant of logf or sinf the C library picks for the CPU. The logarithm is
// 2 atanh(f / (2 + f)) on a mantissa in [sqrt(1/2), sqrt(2)); the square
// root is three Newton steps of 1/sqrt; sine and cosine are Taylor
// polynomials on [-pi/4, pi/4] after taking out whole quarter turns. Each
// normal is within 2e-6 of the double-precision Box-Muller of the same
// uniforms (test_augment checks).
static void box_muller(float *z, const uint32_t *a, const uint32_t *b, size_t np) {
    for (size_t l = 0; l < np; l++) {
        // -2 ln u1, u1 in (0, 1).
        float u1 = ((float)a[l] + 0.5f) * (1.0f / 2097152.0f);
        uint32_t bits = float_to_bits(u1);
        int e = (int)(bits >> 23) - 127;
        float mant = bits_to_float((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
        int big = mant > 1.41421356f;
        mant = mant * (1.0f - 0.5f * (float)big);
        e += big;
        float f = mant - 1.0f, s = f / (2.0f + f), s2 = s * s;
        float ln_mant =
            2.0f * s * (1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9)))));
        float r2 = -2.0f * ((float)e * 0.693147181f + ln_mant);  // > 0: u1 < 1
        // sqrt(r2) = r2 / sqrt(r2).
        float hr = 0.5f * r2;
        float y = bits_to_float(0x5F375A86u - (float_to_bits(r2) >> 1));
        y = y * (1.5f - hr * y * y);
        y = y * (1.5f - hr * y * y);
        y = y * (1.5f - hr * y * y);
        float rad = r2 * y;
        // Angle 2 pi u2 = (q + t - q) pi/2, q the nearest whole quarter turn.
        float t = (float)b[l] * (4.0f / 2097152.0f);  // [0, 4)
        int q = (int)(t + 0.5f);
        float w = (t - (float)q) * 1.57079633f, w2 = w * w;  // [-pi/4, pi/4]
        float sn = w * (1.0f + w2 * (-1.0f / 6 + w2 * (1.0f / 120 + w2 * (-1.0f / 5040 + w2 * (1.0f / 362880)))));
        float cs = 1.0f + w2 * (-0.5f + w2 * (1.0f / 24 + w2 * (-1.0f / 720 +
                                                                w2 * (1.0f / 40320 + w2 * (-1.0f / 3628800)))));
        // Rotate (cos, sin) by q quarter turns with a mask, not a branch.
        float sg = rad * (1.0f - (float)(q & 2));
        uint32_t odd = 0u - (uint32_t)(q & 1);
        uint32_t csb = float_to_bits(cs), snb = float_to_bits(sn), nsnb = float_to_bits(-sn);
        z[2 * l] = sg * bits_to_float((csb & ~odd) | (nsnb & odd));
        z[2 * l + 1] = sg * bits_to_float((snb & ~odd) | (csb & odd));
    }
}

// The three Box-Muller pairs (a, b) of one Philox block, 21 bits each: the
// top 21 bits of the four words, then two values joined from their low bits.
static inline void block_uniforms(uint32_t a[3], uint32_t b[3], const uint32_t r[4]) {
    a[0] = r[0] >> 11;
    b[0] = r[1] >> 11;
    a[1] = r[2] >> 11;
    b[1] = r[3] >> 11;
    a[2] = (r[0] & 0x7FFu) | ((r[1] & 0x3FFu) << 11);
    b[2] = (r[2] & 0x7FFu) | ((r[3] & 0x3FFu) << 11);
}

float augment_noise_at(const AugmentDraw *d, size_t e) {
    uint32_t ctr[4] = {d->noise_ctr[0], d->noise_ctr[1], d->noise_ctr[2], (uint32_t)(e / AUGMENT_NOISE_PER_BLOCK)};
    uint32_t r[4], a[3], b[3];
    float z[AUGMENT_NOISE_PER_BLOCK];
    rng_philox4x32(r, ctr, d->noise_key);
    block_uniforms(a, b, r);
    box_muller(z, a, b, 3);
    return z[e % AUGMENT_NOISE_PER_BLOCK];
}

// dst (n,) += std * N(0, 1), element e from block e / 6; blocks go in
// chunks so box_muller runs on whole vectors.
#define NOISE_CHUNK 16  // blocks
static void add_noise(float *dst, size_t n, const AugmentDraw *d) {
    const float sd = d->noise_std;
    uint32_t ctr[4] = {d->noise_ctr[0], d->noise_ctr[1], d->noise_ctr[2], 0};
    size_t blocks = (n + AUGMENT_NOISE_PER_BLOCK - 1) / AUGMENT_NOISE_PER_BLOCK;
    uint32_t a[3 * NOISE_CHUNK], b[3 * NOISE_CHUNK];
    float z[AUGMENT_NOISE_PER_BLOCK * NOISE_CHUNK];
    for (size_t j0 = 0; j0 < blocks; j0 += NOISE_CHUNK) {
        size_t nb = blocks - j0 < NOISE_CHUNK ? blocks - j0 : NOISE_CHUNK;
        for (size_t k = 0; k < nb; k++) {
            uint32_t r[4];
            ctr[3] = (uint32_t)(j0 + k);
            rng_philox4x32(r, ctr, d->noise_key);
            block_uniforms(a + 3 * k, b + 3 * k, r);
        }
        box_muller(z, a, b, 3 * nb);
        size_t e0 = j0 * AUGMENT_NOISE_PER_BLOCK;
        size_t m = n - e0 < nb * AUGMENT_NOISE_PER_BLOCK ? n - e0 : nb * AUGMENT_NOISE_PER_BLOCK;
        float *p = dst + e0;
        for (size_t i = 0; i < m; i++) p[i] += sd * z[i];
    }
}

// ---- scaling and normalisation ----

// The 0..255 values of one (S, S) channel plane to the tensor's values in
// place: x = v / 255 then, for ImageNet, (x - mean) / std, the float32 steps
// of resize_to_tensor (division, not reciprocal multiplication, so an
// unmoved pixel gets exactly its value).
static void plane_finish(float *p, size_t plane, int ch, NormMode norm, int scale) {
    const float mu = k_mean[ch], sd = k_std[ch];
    if (scale && norm == NORM_IMAGENET) {
        for (size_t i = 0; i < plane; i++) p[i] = (p[i] / 255.0f - mu) / sd;
    } else if (scale) {
        for (size_t i = 0; i < plane; i++) p[i] = p[i] / 255.0f;
    } else if (norm == NORM_IMAGENET) {
        for (size_t i = 0; i < plane; i++) p[i] = (p[i] - mu) / sd;
    }
}

// ---- apply ----

void augment_apply(float *dst, const uint8_t *src, size_t S, const AugmentSpec *s, const AugmentDraw *d,
                   NormMode norm) {
    (void)s;
    size_t plane = S * S;
    double m[2][2];
    inverse_matrix(m, d);
    int moves = !(m[0][0] == 1.0 && m[0][1] == 0.0 && m[1][0] == 0.0 && m[1][1] == 1.0);
    int noisy = d->noise && d->noise_std != 0.0f;
    if (!moves && !noisy) {
        resize_to_tensor(dst, src, S, S, norm);
        return;
    }
    if (moves) {
        warp(dst, src, S, m);
    } else {
        for (size_t i = 0; i < plane; i++) {
            dst[i] = src[3 * i + 0];  // (3, S, S), 0..255
            dst[plane + i] = src[3 * i + 1];
            dst[2 * plane + i] = src[3 * i + 2];
        }
    }
    if (!noisy) {
        for (int ch = 0; ch < 3; ch++) plane_finish(dst + ch * plane, plane, ch, norm, 1);
        return;
    }
    for (int ch = 0; ch < 3; ch++) plane_finish(dst + ch * plane, plane, ch, NORM_UNIT, 1);
    add_noise(dst, 3 * plane, d);
    for (int ch = 0; ch < 3; ch++) plane_finish(dst + ch * plane, plane, ch, norm, 0);
}
