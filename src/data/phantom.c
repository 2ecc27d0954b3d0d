/*
 * phantom.c — synthetic axial lung CT slices, the embedded default data set
 * (so a sweep, its tests and the demo run without downloading anything).
 *
 * A slice, in normalised coordinates x, y in [-1, 1] (y grows downwards,
 * anterior at the top as CT is displayed): air, a body ellipse with a fat
 * rim and soft tissue, two lungs (dark, with a random posterior "dependent
 * density" gradient) cut by the heart, vessels as short bright segments
 * with a Gaussian cross-section radiating from the hilum (thicker near it),
 * the aorta, a vertebra (cortex, marrow, canal, posterior elements), a
 * curved table line under the body, and Gaussian noise. Every shape, size and intensity varies a little per image.
 * Positives add 1–4 ground-glass-like patches: soft, anisotropic Gaussian
 * brightenings of the lung (vessels stay visible through them), confined to
 * the lung fields.
 *
 * Difficulty, measured with PyTorch on 600 slices of 128 px (400 to train,
 * 200 to test): features of a randomly initialised, frozen ResNet-34 or
 * VGG16, z-scored, with a logistic-regression head (C 0.01 to 1), reach
 * 0.84-0.87 (ResNet-34) and 0.92 (VGG16) test accuracy at 112 px, 0.80-0.85
 * at 64 px; the mean grey level alone gives an AUC of only 0.68.
 * Learnable, not trivial.
 *
 * Reproducibility: every draw comes from the counter RNG keyed by
 * (seed, RNG_PHANTOM) with counter (index, part, row), never from call
 * order. Geometry, blobs and noise use separate parts, so the positive and
 * negative renderings of one index differ only by the blobs, and an image is
 * a pure function of (seed, index, positive).
 */
#include "data/phantom.h"

#include <math.h>
#include <stdlib.h>

#include "data/image.h"
#include "util/rng.h"

enum { PART_GEOMETRY = 0, PART_BLOBS = 1, PART_NOISE = 2 };

#define PH_MAX_VESSELS 96  // 2 lungs x at most 41
#define PH_MAX_BLOBS 4
#define PH_MAX_SIZE 8192

static void phantom_stream(RngStream *s, uint64_t seed, uint64_t index, uint32_t part,
                           uint32_t row) {
    rng_stream_init(s, seed, RNG_PHANTOM, (uint32_t)index, (uint32_t)(index >> 32),
                    (part << 24) | (row & 0xFFFFFFu));
}

static float uni(RngStream *s, float lo, float hi) { return lo + (hi - lo) * rng_uniform_f(s); }

// ---- shapes ----

typedef struct {
    float cx, cy, ax, ay, c, s;  // centre, semi-axes, cos/sin of the rotation
    float iax, iay, amin, reach;  // 1/ax, 1/ay, min(ax, ay), bounding half-extent
} Ellipse;

static Ellipse ellipse_make(float cx, float cy, float ax, float ay, float rot) {
    Ellipse e = {cx, cy, ax, ay, cosf(rot), sinf(rot), 1.0f / ax, 1.0f / ay, fminf(ax, ay),
                 fmaxf(ax, ay)};
    return e;
}

// Squared normalised radius (1 on the outline).
static inline float ellipse_r2(const Ellipse *e, float x, float y) {
    float dx = x - e->cx, dy = y - e->cy;
    float u = (dx * e->c + dy * e->s) * e->iax;
    float v = (dy * e->c - dx * e->s) * e->iay;
    return u * u + v * v;
}

// Approximate signed distance to the outline (negative inside).
static inline float ellipse_dist(const Ellipse *e, float x, float y) {
    return (sqrtf(ellipse_r2(e, x, y)) - 1.0f) * e->amin;
}

// Antialiased coverage of a shape at signed distance d, edge `edge` wide.
static inline float coverage(float d, float edge) {
    float t = 0.5f - d / edge;
    return t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
}

// Coverage of an ellipse grown by `grow` (negative shrinks), with a
// bounding-box test first: most shapes miss most pixels.
static inline float ellipse_cover(const Ellipse *e, float x, float y, float grow, float edge) {
    // Outside this square the approximate distance is past the soft edge.
    float r = e->reach * (1.0f + (edge + fabsf(grow)) / e->amin);
    if (fabsf(x - e->cx) > r || fabsf(y - e->cy) > r) return 0.0f;
    return coverage(ellipse_dist(e, x, y) - grow, edge);
}

static inline float lerp(float a, float b, float t) { return a + (b - a) * t; }

// A point inside the ellipse e at normalised radius <= rmax.
static void ellipse_sample(const Ellipse *e, RngStream *s, float rmax, float *x, float *y) {
    float r = rmax * sqrtf(rng_uniform_f(s));
    float t = 6.2831853f * rng_uniform_f(s);
    float u = r * cosf(t) * e->ax, v = r * sinf(t) * e->ay;
    *x = e->cx + u * e->c - v * e->s;
    *y = e->cy + u * e->s + v * e->c;
}

// Squared distance from (x, y) to the segment (x0, y0)-(x1, y1).
static inline float segment_d2_xy(float x0, float y0, float x1, float y1, float x, float y) {
    float dx = x1 - x0, dy = y1 - y0;
    float len2 = dx * dx + dy * dy;
    float t = len2 > 0.0f ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0.0f;
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    float ex = x - x0 - t * dx, ey = y - y0 - t * dy;
    return ex * ex + ey * ey;
}

// ---- scene ----

// A ground-glass patch: amp * exp(-r2 / 2) with r2 from `shape`, whose
// semi-axes are the Gaussian's sigmas.
typedef struct {
    Ellipse shape;
    float amp;
    float reach;  // half-extent of its bounding box (normalised units)
} Spot;

// A vessel: segment (x0, y0)-(x1, y1), Gaussian cross-section of width
// sigma, peak amp. Widened to at least half a pixel per render (with amp
// scaled to keep the integral), so thin vessels do not alias away.
typedef struct {
    float x0, y0, x1, y1, sigma, amp;
    float r_amp, r_inv2s2, r_box[4];  // per render: amp, 1/(2 sigma^2), x/y min/max
} Vessel;

typedef struct {
    Ellipse body, body_inner, lung[2], heart, aorta, vert, canal, posterior;
    float tissue, fat, lung_level, lung_grad, marrow, cortex, table_y, table_half, table_level;
    float noise_sigma;
    Vessel vessel[PH_MAX_VESSELS];
    int n_vessels;
    Spot blob[PH_MAX_BLOBS];
    int n_blobs;
} Scene;

static void scene_geometry(Scene *sc, RngStream *s) {
    float cx = uni(s, -0.03f, 0.03f), cy = uni(s, 0.0f, 0.07f);
    float a = uni(s, 0.78f, 0.88f), b = uni(s, 0.54f, 0.64f);
    float rot = uni(s, -0.05f, 0.05f), fat = uni(s, 0.03f, 0.06f);
    sc->body = ellipse_make(cx, cy, a, b, rot);
    sc->body_inner = ellipse_make(cx, cy, a - fat, b - fat, rot);
    sc->tissue = uni(s, 112.0f, 136.0f);
    sc->fat = sc->tissue - uni(s, 28.0f, 42.0f);

    for (int side = 0; side < 2; side++) {
        float sgn = side ? 1.0f : -1.0f;
        sc->lung[side] = ellipse_make(cx + sgn * a * uni(s, 0.40f, 0.46f), cy - b * uni(s, 0.02f, 0.10f),
                                      a * uni(s, 0.27f, 0.32f), b * uni(s, 0.62f, 0.72f),
                                      sgn * uni(s, 0.04f, 0.20f));
    }
    sc->lung_level = uni(s, 22.0f, 40.0f);
    sc->lung_grad = uni(s, 0.0f, 22.0f);
    // Heart towards the image right (the patient's left), anterior.
    sc->heart = ellipse_make(cx + a * uni(s, 0.06f, 0.14f), cy - b * uni(s, 0.05f, 0.20f),
                             a * uni(s, 0.20f, 0.26f), b * uni(s, 0.30f, 0.40f), uni(s, -0.4f, 0.0f));
    float vy = cy + b * uni(s, 0.58f, 0.66f), vr = b * uni(s, 0.12f, 0.15f);
    sc->vert = ellipse_make(cx + uni(s, -0.015f, 0.015f), vy, vr * uni(s, 1.0f, 1.15f), vr, 0.0f);
    sc->canal = ellipse_make(sc->vert.cx, vy + vr + b * 0.055f, b * 0.05f, b * 0.045f, 0.0f);
    sc->posterior = ellipse_make(sc->vert.cx, vy + vr + b * 0.16f, vr * 1.1f, b * 0.045f, 0.0f);
    sc->aorta = ellipse_make(sc->vert.cx + a * uni(s, 0.10f, 0.15f), vy - vr * uni(s, 1.1f, 1.5f),
                             a * uni(s, 0.055f, 0.075f), a * uni(s, 0.055f, 0.075f), 0.0f);
    sc->marrow = uni(s, 165.0f, 195.0f);
    sc->cortex = uni(s, 222.0f, 250.0f);
    sc->table_y = cy + b + uni(s, 0.05f, 0.09f);
    sc->table_half = uni(s, 0.006f, 0.011f);
    sc->table_level = uni(s, 105.0f, 150.0f);
    sc->noise_sigma = uni(s, 4.0f, 8.0f);

    // Vessels: thicker and longer near the hilum (the medial side of each
    // lung), pointing away from it.
    sc->n_vessels = 0;
    for (int side = 0; side < 2; side++) {
        const Ellipse *l = &sc->lung[side];
        int n = 22 + (int)rng_below(s, 20);
        float hx = l->cx + (side ? -1.0f : 1.0f) * l->ax * 0.7f, hy = l->cy + l->ay * 0.1f;
        for (int i = 0; i < n && sc->n_vessels < PH_MAX_VESSELS; i++) {
            float x, y;
            ellipse_sample(l, s, 0.92f, &x, &y);
            float near = fmaxf(0.0f, 1.0f - hypotf(x - hx, y - hy) / 0.45f);
            float ang = atan2f(y - hy, x - hx) + uni(s, -0.45f, 0.45f);
            // Mostly short: vessels cut across the slice show as dots.
            float u = rng_uniform_f(s);
            float half = 0.04f * u * u * (1.0f + 0.8f * near);
            Vessel *v = &sc->vessel[sc->n_vessels++];
            v->x0 = x - half * cosf(ang);
            v->y0 = y - half * sinf(ang);
            v->x1 = x + half * cosf(ang);
            v->y1 = y + half * sinf(ang);
            v->sigma = uni(s, 0.0025f, 0.005f) * (1.0f + 1.6f * near);
            v->amp = uni(s, 60.0f, 120.0f) * (0.7f + 0.3f * near);
        }
    }
}

static void scene_blobs(Scene *sc, RngStream *s) {
    sc->n_blobs = 1 + (int)rng_below(s, PH_MAX_BLOBS);
    for (int i = 0; i < sc->n_blobs; i++) {
        const Ellipse *l = &sc->lung[rng_below(s, 2)];
        float x, y;
        ellipse_sample(l, s, 0.7f, &x, &y);
        float sx = uni(s, 0.06f, 0.12f), sy = sx * uni(s, 0.65f, 1.4f);
        Spot *b = &sc->blob[i];
        // The ellipse holds the Gaussian's sigmas; exp(-r2 / 2) is the profile.
        b->shape = ellipse_make(x, y, sx, sy, uni(s, 0.0f, 3.1415927f));
        b->amp = uni(s, 55.0f, 90.0f);
        b->reach = 4.0f * fmaxf(sx, sy);  // exp(-8) * amp: under 0.02 of a grey level
    }
}

// Soft tissue, lungs, heart, bones and table at (x, y); *lung_w receives how
// much of the pixel is lung parenchyma (where vessels and blobs show).
static inline float segment_d2(const Vessel *v, float x, float y) {
    return segment_d2_xy(v->x0, v->y0, v->x1, v->y1, x, y);
}

static float scene_base(const Scene *sc, float x, float y, float edge, float *lung_w) {
    float v = 2.0f;  // air
    *lung_w = 0.0f;
    float body = ellipse_cover(&sc->body, x, y, 0.0f, edge);
    if (body > 0.0f) {
        v = lerp(v, sc->fat, body);
        v = lerp(v, sc->tissue, ellipse_cover(&sc->body_inner, x, y, 0.0f, edge));
        float lw = fmaxf(ellipse_cover(&sc->lung[0], x, y, 0.0f, edge),
                         ellipse_cover(&sc->lung[1], x, y, 0.0f, edge));
        if (lw > 0.0f) {
            lw *= 1.0f - ellipse_cover(&sc->heart, x, y, 0.0f, edge);
            float lung_level =
                sc->lung_level + sc->lung_grad * fmaxf(0.0f, (y - sc->body.cy) / sc->body.ay + 0.2f);
            v = lerp(v, lung_level, lw);
        }
        float aorta = ellipse_cover(&sc->aorta, x, y, 0.0f, edge);
        v = lerp(v, sc->tissue + 14.0f, aorta);
        float cort = fmaxf(ellipse_cover(&sc->vert, x, y, 0.0f, edge),
                           ellipse_cover(&sc->posterior, x, y, 0.0f, edge));
        v = lerp(v, sc->cortex, cort);
        v = lerp(v, sc->marrow, ellipse_cover(&sc->vert, x, y, -0.018f, edge));
        v = lerp(v, sc->tissue - 6.0f, ellipse_cover(&sc->canal, x, y, 0.0f, edge));
        *lung_w = lw * (1.0f - aorta) * (1.0f - cort);
    }
    // Table: a thin curved band under the body.
    float ty = sc->table_y + 0.06f * x * x;
    if (fabsf(x) < 0.95f && fabsf(y - ty) < sc->table_half + edge)
        v = lerp(v, sc->table_level, coverage(fabsf(y - ty) - sc->table_half, edge));
    return v;
}

// Standard normal quantiles at (i + 0.5) / PH_NOISE_LEVELS (Acklam's
// rational approximation, relative error < 1.2e-9): noise is drawn by table
// look-up, three 10-bit indices per 32-bit draw, which keeps a slice's noise
// cheap next to its geometry. The tails stop at 3.3 sigma, invisible after
// rounding to 8 bits.
#define PH_NOISE_BITS 10
#define PH_NOISE_LEVELS (1 << PH_NOISE_BITS)

static double normal_quantile(double p) {
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    if (p < 0.02425) {
        double q = sqrt(-2.0 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    if (p > 1.0 - 0.02425) return -normal_quantile(1.0 - p);
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

void phantom_render(uint8_t *gray, size_t size, uint64_t seed, uint64_t index, int positive) {
    if (!gray || size == 0) return;
    Scene sc;
    RngStream s;
    phantom_stream(&s, seed, index, PART_GEOMETRY, 0);
    scene_geometry(&sc, &s);
    sc.n_blobs = 0;
    if (positive) {
        phantom_stream(&s, seed, index, PART_BLOBS, 0);
        scene_blobs(&sc, &s);
    }
    float px = 2.0f / (float)size;  // one pixel in normalised units
    float edge = 1.5f * px;
    float noise[PH_NOISE_LEVELS];
    for (int i = 0; i < PH_NOISE_LEVELS; i++)
        noise[i] = sc.noise_sigma * (float)normal_quantile((i + 0.5) / PH_NOISE_LEVELS);
    for (int i = 0; i < sc.n_vessels; i++) {
        Vessel *v = &sc.vessel[i];
        float sg = fmaxf(v->sigma, 0.5f * px);
        v->r_amp = v->amp * v->sigma / sg;
        v->r_inv2s2 = 1.0f / (2.0f * sg * sg);
        float m = 3.5f * sg;  // exp(-6.1): under 0.3 of a grey level
        v->r_box[0] = fminf(v->x0, v->x1) - m;
        v->r_box[1] = fmaxf(v->x0, v->x1) + m;
        v->r_box[2] = fminf(v->y0, v->y1) - m;
        v->r_box[3] = fmaxf(v->y0, v->y1) + m;
    }
    int near_v[PH_MAX_VESSELS], near_b[PH_MAX_BLOBS];
    for (size_t row = 0; row < size; row++) {
        float y = -1.0f + ((float)row + 0.5f) * px;
        // Only the spots whose bounding box meets this row.
        int nv = 0, nb = 0;
        for (int i = 0; i < sc.n_vessels; i++)
            if (y > sc.vessel[i].r_box[2] && y < sc.vessel[i].r_box[3]) near_v[nv++] = i;
        for (int i = 0; i < sc.n_blobs; i++)
            if (fabsf(y - sc.blob[i].shape.cy) < sc.blob[i].reach) near_b[nb++] = i;
        RngStream ns;
        phantom_stream(&ns, seed, index, PART_NOISE, (uint32_t)row);
        uint32_t bits = 0;
        for (size_t col = 0; col < size; col++) {
            float x = -1.0f + ((float)col + 0.5f) * px;
            float lw;
            float v = scene_base(&sc, x, y, edge, &lw);
            if (lw > 0.0f) {
                float add = 0.0f;
                for (int k = 0; k < nv; k++) {
                    const Vessel *vs = &sc.vessel[near_v[k]];
                    if (x <= vs->r_box[0] || x >= vs->r_box[1]) continue;
                    add += vs->r_amp * expf(-segment_d2(vs, x, y) * vs->r_inv2s2);
                }
                for (int k = 0; k < nb; k++) {
                    const Spot *sp = &sc.blob[near_b[k]];
                    if (fabsf(x - sp->shape.cx) >= sp->reach) continue;
                    add += sp->amp * expf(-0.5f * ellipse_r2(&sp->shape, x, y));
                }
                v += lw * add;
            }
            if (col % 3 == 0) bits = rng_u32(&ns);
            v += noise[bits & (PH_NOISE_LEVELS - 1)];
            bits >>= PH_NOISE_BITS;
            v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
            gray[row * size + col] = (uint8_t)(v + 0.5f);
        }
    }
}

int phantom_write_set(const char *dir, size_t n, uint64_t seed, size_t size, CtError *err) {
    if (size < 8 || size > PH_MAX_SIZE)
        return ct_errorf(err, "%s: phantom size %zu is outside 8..%d", dir, size, PH_MAX_SIZE);
    static const char *const class_dir[2] = {"CT_NonCOVID", "CT_COVID"};
    for (int c = 0; c < 2; c++) {
        char *d = ct_asprintf("%s/%s", dir, class_dir[c]);
        int rc = ct_mkdirs(d, err);
        free(d);
        if (rc) return -1;
    }
    uint8_t *gray = malloc(size * size);
    if (!gray) return ct_errorf(err, "%s: out of memory for a %zux%zu phantom", dir, size, size);
    int rc = 0;
    // Even indices negative, odd positive: n / 2 positives, a fixed order.
    for (size_t i = 0; i < n && rc == 0; i++) {
        int positive = (int)(i & 1);
        phantom_render(gray, size, seed, i, positive);
        char *path = ct_asprintf("%s/%s/phantom_%05zu.png", dir, class_dir[positive], i);
        rc = image_write_png_gray8(path, gray, (uint32_t)size, (uint32_t)size, err);
        free(path);
    }
    free(gray);
    return rc;
}
