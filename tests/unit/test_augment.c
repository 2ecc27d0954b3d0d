/*
 * test_augment.c — the training-set augmentation (src/data/augment.c):
 * reproducibility (a view is a pure function of seed, image and view, not of
 * call order), the statistics of the draws against the configured ranges and
 * probabilities, exact geometry (identity equals resize_to_tensor bit for
 * bit, flips and quarter turns move pixels where the documented convention
 * says, zoom keeps the centre, the fill is black, and any angle, zoom and
 * flip together equal one bilinear sample of an independent double-precision
 * reference map), the noise's standard deviation, shape and independence and
 * its documented element-to-counter layout, spec validation naming the
 * field, the view of an epoch, and the time one 224 px view takes.
 *
 * Statistical checks use 4-sigma bounds from the exact sampling variance,
 * and fixed seeds, so they are deterministic and not flaky.
 *
 * argv[1]: a scratch directory (unused).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/resize.h"
#include "util/rng.h"
#include "util/util.h"

#include "check.h"

// ---- helpers ----

// A deterministic (S, S, 3) image with every byte value likely present.
static void make_image(uint8_t *img, size_t S, uint32_t which) {
    RngStream rs;
    rng_stream_init(&rs, 12345, RNG_PHANTOM, which, 0, 0);
    for (size_t i = 0; i < S * S * 3; i++) img[i] = (uint8_t)(rng_u32(&rs) >> 24);
}

// First index where two float tensors differ bitwise, or -1.
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return (long)i;
    return -1;
}

// (3, S, S) unit tensor back to (S, S, 3) uint8 (exact for v/255.0f values).
static void tensor_to_rgb8(uint8_t *dst, const float *t, size_t S) {
    size_t plane = S * S;
    for (size_t i = 0; i < plane; i++)
        for (int ch = 0; ch < 3; ch++) {
            long v = lrintf(t[ch * plane + i] * 255.0f);
            dst[3 * i + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static AugmentSpec spec_all_on(void) {
    AugmentSpec s = augment_spec_default();
    s.rotate_deg = 15;
    s.rotate_prob = 1;
    s.flip_prob = 1;
    s.zoom_min = 0.9;
    s.zoom_max = 1.1;
    s.zoom_prob = 1;
    s.noise_std = 0.05;
    s.noise_prob = 1;
    s.aug_views = 4;
    return s;
}

// ---- identity ----

static void test_identity(void) {
    size_t sizes[] = {1, 2, 37, 64};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t S = sizes[k], n = 3 * S * S;
        uint8_t *img = malloc(S * S * 3);
        float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
        make_image(img, S, (uint32_t)S);
        for (int norm = 0; norm < 2; norm++) {
            resize_to_tensor(want, img, S, S, (NormMode)norm);
            // The default spec draws nothing.
            AugmentSpec s = augment_spec_default();
            AugmentDraw d;
            augment_draw(&d, &s, 99, 3, 0);
            CHECK(!d.rotate && !d.flip && !d.zoom && !d.noise, "default spec applied something");
            augment_apply(got, img, S, &s, &d, (NormMode)norm);
            long at = first_diff(got, want, n);
            CHECK(at < 0, "S=%zu norm=%d default spec: element %ld is %.9g, resize_to_tensor %.9g", S, norm,
                  at, at < 0 ? 0 : got[at], at < 0 ? 0 : want[at]);
            // Every operation applied with its neutral value.
            augment_draw(&d, &s, 99, 3, 0);
            d.rotate = 1;
            d.angle_deg = 0.0;
            d.zoom = 1;
            d.zoom_factor = 1.0;
            d.noise = 1;
            d.noise_std = 0.0f;
            augment_apply(got, img, S, &s, &d, (NormMode)norm);
            at = first_diff(got, want, n);
            CHECK(at < 0, "S=%zu norm=%d rotate 0, zoom 1, noise 0: element %ld differs", S, norm, at);
            // A full turn is the identity too (exact trigonometry).
            d.angle_deg = 360.0;
            augment_apply(got, img, S, &s, &d, (NormMode)norm);
            CHECK(first_diff(got, want, n) < 0, "S=%zu norm=%d rotate 360 is not the identity", S, norm);
        }
        free(img);
        free(want);
        free(got);
    }
    AugmentSpec s = augment_spec_default();
    CHECK(augment_spec_is_identity(&s), "default spec is not identity");
    s.rotate_prob = 1;  // angle range 0: still identity
    CHECK(augment_spec_is_identity(&s), "rotate_deg 0 is not identity");
    s.rotate_deg = 5;
    CHECK(!augment_spec_is_identity(&s), "rotate 5 deg p 1 is identity");
    s = augment_spec_default();
    s.noise_std = 0.1;  // probability 0: identity
    CHECK(augment_spec_is_identity(&s), "noise with prob 0 is not identity");
    s.noise_prob = 0.5;
    CHECK(!augment_spec_is_identity(&s), "noise 0.1 p 0.5 is identity");
}

// ---- reproducibility ----

static void test_reproducible(void) {
    enum { N = 6 };
    const size_t S = 48, n = 3 * S * S;
    AugmentSpec s = spec_all_on();
    s.rotate_prob = s.flip_prob = s.zoom_prob = s.noise_prob = 0.5;
    uint8_t *img = malloc(N * S * S * 3);
    float *a = malloc(N * n * sizeof(float)), *b = malloc(N * n * sizeof(float));
    for (uint32_t i = 0; i < N; i++) make_image(img + i * S * S * 3, S, i);
    for (uint32_t view = 0; view < 3; view++) {
        for (uint32_t i = 0; i < N; i++) {
            AugmentDraw d;
            augment_draw(&d, &s, 7, i, view);
            augment_apply(a + i * n, img + i * S * S * 3, S, &s, &d, NORM_IMAGENET);
        }
        // Reverse order, with other keys drawn and applied in between.
        for (uint32_t k = N; k-- > 0;) {
            AugmentDraw d, other;
            augment_draw(&other, &s, 8, k + 100, view + 1);
            augment_apply(b + k * n, img + k * S * S * 3, S, &s, &other, NORM_UNIT);
            augment_draw(&d, &s, 7, k, view);
            AugmentDraw d2;
            augment_draw(&d2, &s, 7, k, view);
            CHECK(memcmp(&d, &d2, sizeof d) == 0, "two draws of (7, %u, %u) differ", k, view);
            augment_apply(b + k * n, img + k * S * S * 3, S, &s, &d, NORM_IMAGENET);
        }
        for (uint32_t i = 0; i < N; i++) {
            long at = first_diff(a + i * n, b + i * n, n);
            CHECK(at < 0, "image %u view %u: element %ld differs between call orders", i, view, at);
        }
    }
    free(img);
    free(a);
    free(b);
}

// Different views, seeds and image indices give different tensors.
static void test_keys_differ(void) {
    const size_t S = 32, n = 3 * S * S;
    AugmentSpec s = spec_all_on();
    uint8_t img[32 * 32 * 3];
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    make_image(img, S, 1);
    AugmentDraw d;
    struct { uint64_t seed; uint32_t image, view; } keys[] = {{1, 0, 1}, {2, 0, 0}, {1, 1, 0}, {1, 0, 2}};
    augment_draw(&d, &s, 1, 0, 0);
    augment_apply(a, img, S, &s, &d, NORM_IMAGENET);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        AugmentDraw e;
        augment_draw(&e, &s, keys[k].seed, keys[k].image, keys[k].view);
        augment_apply(b, img, S, &s, &e, NORM_IMAGENET);
        size_t ndiff = 0;
        for (size_t i = 0; i < n; i++) ndiff += a[i] != b[i];
        CHECK(ndiff > n / 2, "key (seed %llu, image %u, view %u) differs from (1, 0, 0) in only %zu of %zu",
              (unsigned long long)keys[k].seed, keys[k].image, keys[k].view, ndiff, n);
        CHECK(e.angle_deg != d.angle_deg && e.zoom_factor != d.zoom_factor,
              "key %zu draws the same angle or zoom as (1, 0, 0)", k);
    }
    free(a);
    free(b);
}

// ---- draw statistics ----

// |count - n p| <= 4 sqrt(n p (1 - p)).
static int freq_ok(size_t count, size_t n, double p, double *z) {
    double sd = sqrt(n * p * (1 - p));
    *z = sd > 0 ? ((double)count - n * p) / sd : ((double)count - n * p) * 1e9;
    return fabs(*z) <= 4.0;
}

static void test_draw_stats(void) {
    const size_t n = 20000;
    AugmentSpec s = augment_spec_default();
    s.rotate_deg = 20;
    s.rotate_prob = 0.3;
    s.flip_axis = AUGMENT_FLIP_UD;
    s.flip_prob = 0.5;
    s.zoom_min = 0.8;
    s.zoom_max = 1.25;
    s.zoom_prob = 0.7;
    s.noise_std = 0.03;
    s.noise_prob = 0.25;
    s.aug_views = 5;
    CtError err;
    CHECK(augment_spec_validate(&s, &err) == 0, "stats spec invalid: %s", err.msg);
    size_t n_rot = 0, n_flip = 0, n_zoom = 0, n_noise = 0, n_rot_flip = 0, bad_range = 0;
    double sum_a = 0, sum_a2 = 0, sum_z = 0;
    enum { BINS = 10 };
    size_t bins[BINS] = {0};
    for (size_t k = 0; k < n; k++) {
        AugmentDraw d;
        // Keys vary in seed, image and view.
        augment_draw(&d, &s, 1000 + k / 4000, (uint32_t)k, (uint32_t)(k % 5));
        if (d.rotate) {
            n_rot++;
            if (!(d.angle_deg >= -20 && d.angle_deg <= 20)) bad_range++;
            sum_a += d.angle_deg;
            sum_a2 += d.angle_deg * d.angle_deg;
        } else if (d.angle_deg != 0) {
            bad_range++;
        }
        if (d.flip) {
            n_flip++;
            if (d.flip_axis != AUGMENT_FLIP_UD) bad_range++;
        }
        if (d.rotate && d.flip) n_rot_flip++;
        if (d.zoom) {
            n_zoom++;
            if (!(d.zoom_factor >= 0.8 && d.zoom_factor <= 1.25)) bad_range++;
            sum_z += d.zoom_factor;
            int b = (int)((d.zoom_factor - 0.8) / 0.45 * BINS);
            bins[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
        } else if (d.zoom_factor != 1.0) {
            bad_range++;
        }
        if (d.noise) {
            n_noise++;
            if (d.noise_std != (float)0.03) bad_range++;
        }
    }
    CHECK(bad_range == 0, "%zu draws outside their configured range", bad_range);
    double z;
    CHECK(freq_ok(n_rot, n, 0.3, &z), "rotation frequency %zu/%zu vs p 0.3 (z %.2f)", n_rot, n, z);
    CHECK(freq_ok(n_flip, n, 0.5, &z), "flip frequency %zu/%zu vs p 0.5 (z %.2f)", n_flip, n, z);
    CHECK(freq_ok(n_zoom, n, 0.7, &z), "zoom frequency %zu/%zu vs p 0.7 (z %.2f)", n_zoom, n, z);
    CHECK(freq_ok(n_noise, n, 0.25, &z), "noise frequency %zu/%zu vs p 0.25 (z %.2f)", n_noise, n, z);
    CHECK(freq_ok(n_rot_flip, n, 0.15, &z), "rotate-and-flip frequency %zu/%zu vs 0.3*0.5 (z %.2f)", n_rot_flip,
          n, z);
    // Angle uniform on [-a, a]: mean 0 (sd a/sqrt(3m)), variance a^2/3
    // (sampling sd sqrt(4 a^4 / (45 m))).
    double a = 20, m = (double)n_rot;
    double mean_a = sum_a / m, var_a = sum_a2 / m - mean_a * mean_a;
    CHECK(fabs(mean_a) <= 4 * a / sqrt(3 * m), "angle mean %.4f, expected 0 +- %.4f", mean_a,
          4 * a / sqrt(3 * m));
    CHECK(fabs(var_a - a * a / 3) <= 4 * sqrt(4 * a * a * a * a / (45 * m)), "angle variance %.3f, expected %.3f",
          var_a, a * a / 3);
    // Zoom uniform on [0.8, 1.25]: mean and equal bins.
    double w = 0.45, mz = (double)n_zoom;
    CHECK(fabs(sum_z / mz - 1.025) <= 4 * w / sqrt(12 * mz), "zoom mean %.5f, expected 1.025", sum_z / mz);
    for (int b = 0; b < BINS; b++)
        CHECK(freq_ok(bins[b], n_zoom, 1.0 / BINS, &z), "zoom bin %d holds %zu of %zu (z %.2f)", b, bins[b],
              n_zoom, z);
    // Probability 1 always applies, 0 never.
    s.rotate_prob = 1;
    s.flip_prob = 0;
    size_t all = 0, none = 0;
    for (uint32_t k = 0; k < 2000; k++) {
        AugmentDraw d;
        augment_draw(&d, &s, 5, k, 0);
        all += d.rotate;
        none += d.flip;
    }
    CHECK(all == 2000 && none == 0, "p 1 applied %zu/2000, p 0 applied %zu/2000", all, none);
}

// Noise: std of (augmented - clean) equals noise_std, mean 0, Gaussian,
// independent across channels and neighbouring pixels, added before the
// ImageNet normalisation.
static void test_noise_stats(void) {
    const size_t S = 224, plane = S * S, n = 3 * plane;
    const double sd = 0.05;
    uint8_t *img = malloc(S * S * 3);
    float *clean = malloc(n * sizeof(float)), *aug = malloc(n * sizeof(float));
    make_image(img, S, 77);
    AugmentSpec s = augment_spec_default();
    s.noise_std = sd;
    s.noise_prob = 1;
    for (int norm = 0; norm < 2; norm++) {
        resize_to_tensor(clean, img, S, S, (NormMode)norm);
        AugmentDraw d;
        augment_draw(&d, &s, 3, 11, 2);
        CHECK(d.noise && !d.rotate && !d.flip && !d.zoom, "noise-only spec drew other operations");
        augment_apply(aug, img, S, &s, &d, (NormMode)norm);
        static const double stdv[3] = {0.229, 0.224, 0.225};
        double sum = 0, sum2 = 0, sum4 = 0, within1 = 0, c01 = 0, cadj = 0;
        for (size_t e = 0; e < n; e++) {
            double scale = norm == NORM_IMAGENET ? stdv[e / plane] : 1.0;
            double x = (aug[e] - clean[e]) * scale / sd;  // ~ N(0, 1)
            sum += x;
            sum2 += x * x;
            sum4 += x * x * x * x;
            within1 += fabs(x) < 1;
        }
        for (size_t i = 0; i + 1 < plane; i++) {
            double s0 = norm == NORM_IMAGENET ? stdv[0] : 1.0, s1 = norm == NORM_IMAGENET ? stdv[1] : 1.0;
            double x0 = (aug[i] - clean[i]) * s0 / sd, x1 = (aug[plane + i] - clean[plane + i]) * s1 / sd;
            double x0n = (aug[i + 1] - clean[i + 1]) * s0 / sd;
            c01 += x0 * x1;
            cadj += x0 * x0n;
        }
        double mean = sum / n, var = sum2 / n - mean * mean, kurt = sum4 / n;
        c01 /= plane - 1;
        cadj /= plane - 1;
        CHECK(fabs(mean) <= 4 / sqrt((double)n), "norm %d: noise mean %.5f sd", norm, mean);
        CHECK(fabs(sqrt(var) - 1) <= 0.02, "norm %d: noise std %.5f, configured %.3f (ratio %.4f)", norm,
              sqrt(var) * sd, sd, sqrt(var));
        CHECK(fabs(kurt - 3) <= 4 * sqrt(96.0 / n), "norm %d: noise kurtosis %.4f, Gaussian 3", norm, kurt);
        double p1 = 0.682689492;
        CHECK(fabs(within1 / n - p1) <= 4 * sqrt(p1 * (1 - p1) / n), "norm %d: %.5f within 1 sd, Gaussian %.5f",
              norm, within1 / n, p1);
        CHECK(fabs(c01) <= 4 / sqrt((double)plane), "norm %d: channel 0-1 noise correlation %.5f", norm, c01);
        CHECK(fabs(cadj) <= 4 / sqrt((double)plane), "norm %d: neighbour noise correlation %.5f", norm, cadj);
    }
    // Another view gets other noise.
    AugmentDraw d1, d2;
    augment_draw(&d1, &s, 3, 11, 0);
    augment_draw(&d2, &s, 3, 11, 1);
    augment_apply(clean, img, S, &s, &d1, NORM_UNIT);
    augment_apply(aug, img, S, &s, &d2, NORM_UNIT);
    size_t same = 0;
    for (size_t e = 0; e < n; e++) same += clean[e] == aug[e];
    CHECK(same < n / 100, "views 0 and 1 share %zu of %zu noisy values", same, n);
    free(img);
    free(clean);
    free(aug);
}

// The documented noise layout: element e is normal e mod 6 of the Philox
// block (image, view, AUGMENT_PART_NOISE, e / 6), whose words make three
// 21-bit Box-Muller pairs; recomputed here in double precision from
// rng_philox4x32 directly. augment_apply adds noise_std times exactly that
// value, including in the last, partial block (3*37*37 is not a multiple
// of 6).
static double ref_noise(const AugmentDraw *d, size_t e) {
    uint32_t ctr[4] = {d->noise_ctr[0], d->noise_ctr[1], d->noise_ctr[2], (uint32_t)(e / 6)}, r[4];
    rng_philox4x32(r, ctr, d->noise_key);
    uint32_t a[3] = {r[0] >> 11, r[2] >> 11, (r[0] & 0x7FF) | ((r[1] & 0x3FF) << 11)};
    uint32_t b[3] = {r[1] >> 11, r[3] >> 11, (r[2] & 0x7FF) | ((r[3] & 0x3FF) << 11)};
    size_t k = e % 6, p = k / 2;
    double rad = sqrt(-2.0 * log((a[p] + 0.5) / 2097152.0));
    double th = 6.283185307179586 * (b[p] / 2097152.0);
    return k % 2 == 0 ? rad * cos(th) : rad * sin(th);
}

static void test_noise_layout(void) {
    AugmentSpec s = augment_spec_default();
    s.noise_std = 0.1;
    s.noise_prob = 1;
    AugmentDraw d;
    augment_draw(&d, &s, 42, 9, 3);
    RngStream rs;
    rng_stream_init(&rs, 42, RNG_AUGMENT, 9, 3, AUGMENT_PART_NOISE);
    CHECK(d.noise_key[0] == rs.key[0] && d.noise_key[1] == rs.key[1] && d.noise_ctr[0] == 9 &&
              d.noise_ctr[1] == 3 && d.noise_ctr[2] == AUGMENT_PART_NOISE,
          "noise key/counter not (seed, RNG_AUGMENT) / (image, view, part)");
    double worst = 0;
    size_t worst_e = 0;
    for (size_t e = 0; e < 300000; e++) {
        size_t ee = e < 200000 ? e : e * 7919;  // and some far elements
        double diff = fabs(augment_noise_at(&d, ee) - ref_noise(&d, ee));
        if (diff > worst) {
            worst = diff;
            worst_e = ee;
        }
    }
    CHECK(worst <= 2e-6, "augment_noise_at differs from double Box-Muller by %.3g at element %zu", worst, worst_e);
    const size_t S = 37, n = 3 * S * S;
    uint8_t img[37 * 37 * 3];
    float clean[3 * 37 * 37], aug[3 * 37 * 37];
    make_image(img, S, 4);
    resize_to_tensor(clean, img, S, S, NORM_UNIT);
    augment_apply(aug, img, S, &s, &d, NORM_UNIT);
    size_t bad = 0;
    for (size_t e = 0; e < n; e++) {
        float want = clean[e] + d.noise_std * augment_noise_at(&d, e);
        bad += fabsf(aug[e] - want) > 2.5e-7f;  // an ulp, should the build fuse a multiply-add
    }
    CHECK(bad == 0, "%zu of %zu elements are not clean + std * augment_noise_at", bad, n);
}

// ---- geometry ----

static void test_flip(void) {
    size_t sizes[] = {37, 40};
    for (size_t k = 0; k < 2; k++) {
        size_t S = sizes[k], plane = S * S, n = 3 * plane;
        uint8_t *img = malloc(S * S * 3), *mid = malloc(S * S * 3);
        float *t = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        make_image(img, S, 5);
        for (int axis = 0; axis < 2; axis++) {
            AugmentDraw d;
            augment_draw_none(&d);
            d.flip = 1;
            d.flip_axis = axis;
            augment_apply(t, img, S, NULL, &d, NORM_UNIT);
            // One flip mirrors columns (axis 0) or rows (axis 1) exactly.
            size_t bad = 0;
            for (size_t y = 0; y < S; y++)
                for (size_t x = 0; x < S; x++) {
                    size_t sx = axis == 0 ? S - 1 - x : x, sy = axis == 0 ? y : S - 1 - y;
                    for (int ch = 0; ch < 3; ch++)
                        bad += t[ch * plane + y * S + x] != (float)img[(sy * S + sx) * 3 + ch] / 255.0f;
                }
            CHECK(bad == 0, "S=%zu flip axis %d: %zu values not mirrored", S, axis, bad);
            // Twice is the identity.
            tensor_to_rgb8(mid, t, S);
            for (int norm = 0; norm < 2; norm++) {
                augment_apply(t, mid, S, NULL, &d, (NormMode)norm);
                resize_to_tensor(want, img, S, S, (NormMode)norm);
                long at = first_diff(t, want, n);
                CHECK(at < 0, "S=%zu flip axis %d norm %d twice: element %ld differs", S, axis, norm, at);
            }
        }
        free(img);
        free(mid);
        free(t);
        free(want);
    }
}

// Quarter turns: +90 (counter-clockwise as displayed) sends (x, y) to
// (y, S-1-x); -90 to (S-1-y, x); 180 to (S-1-x, S-1-y).
static void test_rotate_quarter(void) {
    size_t sizes[] = {37, 40};
    for (size_t k = 0; k < 2; k++) {
        size_t S = sizes[k], plane = S * S, n = 3 * plane;
        uint8_t *img = malloc(S * S * 3);
        float *t = malloc(n * sizeof(float));
        double angles[] = {90, -90, 180, 270, -270};
        make_image(img, S, 9);
        for (size_t a = 0; a < sizeof angles / sizeof angles[0]; a++) {
            AugmentDraw d;
            augment_draw_none(&d);
            d.rotate = 1;
            d.angle_deg = angles[a];
            augment_apply(t, img, S, NULL, &d, NORM_UNIT);
            size_t bad = 0;
            int q = ((int)angles[a] / 90 + 4) % 4;  // counter-clockwise quarter turns
            for (size_t y = 0; y < S; y++)
                for (size_t x = 0; x < S; x++) {
                    size_t ox = x, oy = y;  // where source (x, y) lands
                    for (int r = 0; r < q; r++) {
                        size_t nx = oy, ny = S - 1 - ox;
                        ox = nx;
                        oy = ny;
                    }
                    for (int ch = 0; ch < 3; ch++)
                        bad += t[ch * plane + oy * S + ox] != (float)img[(y * S + x) * 3 + ch] / 255.0f;
                }
            CHECK(bad == 0, "S=%zu rotate %g: %zu values not where expected", S, angles[a], bad);
        }
        // A marked pixel: white at (x 5, y 2) on black; +90 puts it at
        // (2, S-1-5), and the top-right corner goes to the top-left.
        memset(img, 0, S * S * 3);
        memset(img + (2 * S + 5) * 3, 255, 3);
        memset(img + (S - 1) * 3, 200, 3);
        AugmentDraw d;
        augment_draw_none(&d);
        d.rotate = 1;
        d.angle_deg = 90;
        augment_apply(t, img, S, NULL, &d, NORM_UNIT);
        size_t lit = 0;
        for (size_t i = 0; i < plane; i++) lit += t[i] != 0.0f;
        CHECK(t[(S - 1 - 5) * S + 2] == 1.0f && t[0] == 200.0f / 255.0f && lit == 2,
              "S=%zu rotate 90: marked pixel at (2, %zu) is %g, corner %g, %zu lit", S, S - 1 - 5,
              t[(S - 1 - 5) * S + 2], t[0], lit);
        free(img);
        free(t);
    }
}

// Zoom 2 about the centre of an odd image: the centre pixel stays, and
// output (c + 2i, c + 2j) is source (c + i, c + j) exactly; zoom 0.5 fills
// the border with black.
static void test_zoom(void) {
    const size_t S = 33, plane = S * S, c = 16;
    uint8_t img[33 * 33 * 3];
    float t[3 * 33 * 33];
    make_image(img, S, 21);
    AugmentDraw d;
    augment_draw_none(&d);
    d.zoom = 1;
    d.zoom_factor = 2.0;
    augment_apply(t, img, S, NULL, &d, NORM_UNIT);
    CHECK(t[c * S + c] == (float)img[(c * S + c) * 3] / 255.0f, "zoom 2: centre pixel %g, source %g",
          t[c * S + c], img[(c * S + c) * 3] / 255.0);
    size_t bad = 0;
    for (int j = -8; j <= 8; j++)
        for (int i = -8; i <= 8; i++)
            for (int ch = 0; ch < 3; ch++)
                bad += t[ch * plane + (c + 2 * j) * S + (c + 2 * i)] !=
                       (float)img[((c + j) * S + (c + i)) * 3 + ch] / 255.0f;
    CHECK(bad == 0, "zoom 2: %zu grid values differ from the source", bad);
    // Between grid points: the average of two neighbours (bilinear).
    float mid = t[c * S + c + 1], want = (img[(c * S + c) * 3] + img[(c * S + c + 1) * 3]) * 0.5f / 255.0f;
    CHECK(fabsf(mid - want) <= 1e-6f, "zoom 2: half-way value %g, expected %g", mid, want);
    // Zoom 0.5: output (c + 2i) samples source (c + 4i); beyond +-c/2 from
    // the centre (plus the one-pixel bilinear rim) everything is fill.
    memset(img, 255, sizeof img);
    d.zoom_factor = 0.5;
    augment_apply(t, img, S, NULL, &d, NORM_UNIT);
    size_t fill_bad = 0, inside_bad = 0;
    for (size_t y = 0; y < S; y++)
        for (size_t x = 0; x < S; x++) {
            double r = fmax(fabs((double)x - c), fabs((double)y - c));
            for (size_t ch = 0; ch < 3; ch++) {
                float v = t[ch * plane + y * S + x];
                if (r >= 9) fill_bad += v != 0.0f;
                if (r <= 8) inside_bad += v != 1.0f;
            }
        }
    CHECK(fill_bad == 0 && inside_bad == 0, "zoom 0.5: %zu border values not 0, %zu inside not 1", fill_bad,
          inside_bad);
}

// Flip left-right, then +90 degrees (the documented order: flip, rotate,
// zoom) is the transpose: (x, y) -> (S-1-x, y) -> (y, x).
static void test_flip_then_rotate(void) {
    const size_t S = 40, plane = S * S;
    uint8_t img[40 * 40 * 3];
    float t[3 * 40 * 40];
    make_image(img, S, 31);
    AugmentDraw d;
    augment_draw_none(&d);
    d.flip = 1;
    d.flip_axis = AUGMENT_FLIP_LR;
    d.rotate = 1;
    d.angle_deg = 90;
    augment_apply(t, img, S, NULL, &d, NORM_UNIT);
    size_t bad = 0;
    for (size_t y = 0; y < S; y++)
        for (size_t x = 0; x < S; x++)
            for (int ch = 0; ch < 3; ch++) bad += t[ch * plane + x * S + y] != img[(y * S + x) * 3 + ch] / 255.0f;
    CHECK(bad == 0, "flip left-right then rotate 90: %zu values not transposed", bad);
}

// Any angle, zoom and flip together: every output pixel equals one
// bilinear sample (zeros outside) of the source at the documented inverse
// map, computed here independently in double precision. A second
// interpolation, a wrong centre, sign or order would all show.
static double ref_sample(const uint8_t *img, size_t S, double sx, double sy, int ch) {
    double x0 = floor(sx), y0 = floor(sy), fx = sx - x0, fy = sy - y0, v[2][2];
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            double xx = x0 + i, yy = y0 + j;
            int in = xx >= 0 && xx < (double)S && yy >= 0 && yy < (double)S;
            v[j][i] = in ? img[((size_t)yy * S + (size_t)xx) * 3 + ch] : 0.0;
        }
    double t = v[0][0] * (1 - fx) + v[0][1] * fx, b = v[1][0] * (1 - fx) + v[1][1] * fx;
    return (t * (1 - fy) + b * fy) / 255.0;
}

static void test_geometry_reference(void) {
    struct { size_t S; double angle, zoom; int flip, axis; } cases[] = {
        {64, 30, 1.3, 1, AUGMENT_FLIP_UD}, {63, -17.5, 0.8, 1, AUGMENT_FLIP_LR}, {50, 143, 1.0, 0, 0},
        {41, 0, 1.7, 0, 0}, {64, -5, 0.95, 1, AUGMENT_FLIP_LR}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t S = cases[k].S, plane = S * S;
        uint8_t *img = malloc(S * S * 3);
        float *t = malloc(3 * plane * sizeof(float));
        make_image(img, S, 40 + (uint32_t)k);
        AugmentDraw d;
        augment_draw_none(&d);
        d.rotate = 1;
        d.angle_deg = cases[k].angle;
        d.zoom = 1;
        d.zoom_factor = cases[k].zoom;
        d.flip = cases[k].flip;
        d.flip_axis = cases[k].axis;
        augment_apply(t, img, S, NULL, &d, NORM_UNIT);
        double c = (S - 1) / 2.0, th = cases[k].angle * 3.14159265358979323846 / 180.0;
        double worst = 0;
        for (size_t y = 0; y < S; y++)
            for (size_t x = 0; x < S; x++) {
                // Undo zoom, then rotation (forward: x' = cos x + sin y,
                // y' = -sin x + cos y, counter-clockwise as displayed),
                // then the flip.
                double dx = (x - c) / cases[k].zoom, dy = (y - c) / cases[k].zoom;
                double rx = cos(th) * dx - sin(th) * dy, ry = sin(th) * dx + cos(th) * dy;
                if (cases[k].flip && cases[k].axis == AUGMENT_FLIP_LR) rx = -rx;
                if (cases[k].flip && cases[k].axis == AUGMENT_FLIP_UD) ry = -ry;
                for (int ch = 0; ch < 3; ch++) {
                    double diff = fabs(t[ch * plane + y * S + x] - ref_sample(img, S, c + rx, c + ry, ch));
                    if (diff > worst) worst = diff;
                }
            }
        CHECK(worst <= 2e-4, "S=%zu angle %g zoom %g flip %d axis %d: worst |diff| %.3g from the reference", S,
              cases[k].angle, cases[k].zoom, cases[k].flip, cases[k].axis, worst);
        free(img);
        free(t);
    }
}

// Where a 45-degree rotation leaves the frame the value is the fill 0 in
// [0, 1] intensity: 0 for unit, (0 - mean) / std for ImageNet.
static void test_fill(void) {
    const size_t S = 64, plane = S * S, n = 3 * plane;
    uint8_t *img = malloc(S * S * 3);
    uint8_t black[3] = {0, 0, 0};
    float *t = malloc(n * sizeof(float)), black_t[3];
    memset(img, 255, S * S * 3);
    resize_to_tensor(black_t, black, 1, 1, NORM_IMAGENET);
    AugmentDraw d;
    augment_draw_none(&d);
    d.rotate = 1;
    d.angle_deg = 45;
    size_t corners[4] = {0, S - 1, (S - 1) * S, plane - 1};
    for (int norm = 0; norm < 2; norm++) {
        augment_apply(t, img, S, NULL, &d, (NormMode)norm);
        size_t bad = 0;
        for (int ch = 0; ch < 3; ch++) {
            float fill = norm == NORM_IMAGENET ? black_t[ch] : 0.0f;
            float white = norm == NORM_IMAGENET ? (1.0f - (ch == 0 ? 0.485f : ch == 1 ? 0.456f : 0.406f)) /
                                                      (ch == 0 ? 0.229f : ch == 1 ? 0.224f : 0.225f)
                                                : 1.0f;
            for (int k = 0; k < 4; k++) bad += t[ch * plane + corners[k]] != fill;
            bad += t[ch * plane + (S / 2) * S + S / 2] != white;
        }
        CHECK(bad == 0, "rotate 45 norm %d: %zu corner/centre values wrong (corner %g)", norm, bad, t[0]);
    }
    free(img);
    free(t);
}

// ---- validation and views ----

static void expect_invalid(AugmentSpec s, const char *field) {
    CtError err;
    memset(&err, 0, sizeof err);
    int rc = augment_spec_validate(&s, &err);
    char want[64];
    snprintf(want, sizeof want, "augment.%s = ", field);
    CHECK(rc != 0 && strstr(err.msg, want) != NULL, "bad %s: rc %d, message \"%s\"", field, rc, err.msg);
}

static void test_validate(void) {
    CtError err;
    AugmentSpec ok = augment_spec_default();
    CHECK(augment_spec_validate(&ok, &err) == 0, "default spec invalid: %s", err.msg);
    ok = spec_all_on();
    CHECK(augment_spec_validate(&ok, &err) == 0, "all-on spec invalid: %s", err.msg);
    AugmentSpec s;
    s = ok; s.rotate_prob = 1.5; expect_invalid(s, "rotate_prob");
    s = ok; s.rotate_prob = 1.5;
    augment_spec_validate(&s, &err);
    CHECK(strcmp(err.msg, "augment.rotate_prob = 1.5 is outside [0, 1]") == 0, "message \"%s\"", err.msg);
    s = ok; s.rotate_prob = NAN; expect_invalid(s, "rotate_prob");
    s = ok; s.rotate_deg = -1; expect_invalid(s, "rotate_deg");
    s = ok; s.rotate_deg = 181; expect_invalid(s, "rotate_deg");
    s = ok; s.rotate_deg = INFINITY; expect_invalid(s, "rotate_deg");
    s = ok; s.flip_axis = 2; expect_invalid(s, "flip_axis");
    s = ok; s.flip_axis = -1; expect_invalid(s, "flip_axis");
    s = ok; s.flip_prob = -0.1; expect_invalid(s, "flip_prob");
    s = ok; s.zoom_min = 0; expect_invalid(s, "zoom_min");
    s = ok; s.zoom_min = NAN; expect_invalid(s, "zoom_min");
    s = ok; s.zoom_max = 11; expect_invalid(s, "zoom_max");
    s = ok; s.zoom_min = 1.2; s.zoom_max = 1.1; expect_invalid(s, "zoom_min");
    s = ok; s.zoom_prob = 2; expect_invalid(s, "zoom_prob");
    s = ok; s.noise_std = -0.01; expect_invalid(s, "noise_std");
    s = ok; s.noise_std = 1.5; expect_invalid(s, "noise_std");
    s = ok; s.noise_prob = NAN; expect_invalid(s, "noise_prob");
    s = ok; s.aug_views = 0; expect_invalid(s, "aug_views");
}

static void test_views(void) {
    AugmentSpec s = spec_all_on();
    s.aug_views = 3;
    CHECK(augment_view_count(&s) == 3, "view count %u, expected 3", augment_view_count(&s));
    size_t bad = 0;
    for (uint32_t e = 0; e < 100; e++) bad += augment_view_of_epoch(&s, e) != e % 3;
    CHECK(bad == 0, "%zu epochs not on view epoch mod 3", bad);
    s.aug_views = 1;
    bad = 0;
    for (uint32_t e = 0; e < 10; e++) bad += augment_view_of_epoch(&s, e) != 0;
    CHECK(bad == 0, "K = 1 gave a view other than 0");
    // An identity spec has one distinct view whatever K says.
    s = augment_spec_default();
    s.aug_views = 5;
    CHECK(augment_view_count(&s) == 1 && augment_view_of_epoch(&s, 7) == 0,
          "identity spec: %u views, epoch 7 on view %u", augment_view_count(&s), augment_view_of_epoch(&s, 7));
}

// ---- timing ----

static void test_timing(void) {
    const size_t S = 224, n = 3 * S * S;
    uint8_t *img = malloc(S * S * 3);
    float *t = malloc(n * sizeof(float));
    make_image(img, S, 1);
    struct { const char *name; int rot, zoom, noise; } cases[] = {
        {"identity", 0, 0, 0}, {"rotate+flip+zoom", 1, 1, 0}, {"noise", 0, 0, 1}, {"all", 1, 1, 1}};
    double all_ms = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        AugmentSpec s = spec_all_on();
        s.rotate_prob = s.flip_prob = s.zoom_prob = cases[k].rot;
        s.noise_prob = cases[k].noise;
        const int reps = 200;
        double t0 = ct_now();
        for (int r = 0; r < reps; r++) {
            AugmentDraw d;
            augment_draw(&d, &s, 1, (uint32_t)r, 0);
            augment_apply(t, img, S, &s, &d, NORM_IMAGENET);
        }
        double ms = (ct_now() - t0) * 1e3 / reps;
        printf("time per 224 px view, %-17s %.3f ms\n", cases[k].name, ms);
        if (k == 3) all_ms = ms;
    }
    // A generous bound that only a pathological slowdown (or a sanitizer
    // build far off) would break.
    CHECK(all_ms < 50.0, "one 224 px view with everything on took %.2f ms", all_ms);
    free(img);
    free(t);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    test_identity();
    test_reproducible();
    test_keys_differ();
    test_draw_stats();
    test_noise_stats();
    test_noise_layout();
    test_flip();
    test_rotate_quarter();
    test_zoom();
    test_flip_then_rotate();
    test_geometry_reference();
    test_fill();
    test_validate();
    test_views();
    test_timing();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
