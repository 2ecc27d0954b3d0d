/*
 * test_resize.c — the Pillow-exact bilinear resize and the tensor
 * conversion, against reference values computed once with Pillow 9.4
 * (Image.resize(size, Image.BILINEAR)) and torch 1.13 (ToTensor +
 * Normalize) and embedded here, plus properties that hold for any size:
 * identity, constant images stay constant, zero sizes are refused; and
 * against a plain transcription of Pillow's algorithm on hundreds of random
 * sizes, with the AVX2 kernels and with the portable ones.
 * tests/data/compare_pil.py checks the same code on real images.
 *
 * argv[1]: a scratch directory (unused).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/resize.h"
#include "util/util.h"

static int g_pass, g_fail;
static int g_worst_diff = -1;
static char g_worst[512];

static void check_bytes(const char *name, const uint8_t *got, const uint8_t *want, size_t n) {
    int worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)want[i]);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    if (worst == 0) {
        g_pass++;
        return;
    }
    g_fail++;
    printf("FAIL %s: byte %zu is %u, expected %u (|diff| %d)\n", name, at, got[at], want[at], worst);
    if (worst > g_worst_diff) {
        g_worst_diff = worst;
        snprintf(g_worst, sizeof g_worst, "%s: byte %zu is %u, expected %u", name, at, got[at],
                 want[at]);
    }
}

// The 7x5 source: (x*37 + y*91 + c*53 + x*y*7) & 255, as given to Pillow.
static void make_source(uint8_t *src) {
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++)
            for (int c = 0; c < 3; c++)
                src[(y * 7 + x) * 3 + c] = (uint8_t)((x * 37 + y * 91 + c * 53 + x * y * 7) & 255);
}

static const uint8_t want_3x4[] = {
    56,  109, 149, 120, 147, 174, 158, 143, 113, 147, 154, 137, 125, 110, 122, 114, 129, 136,
    110, 117, 133, 142, 154, 139, 145, 128, 135, 140, 152, 122, 136, 129, 133, 168, 139, 110};
static const uint8_t want_11x9[] = {
    0,   53,  106, 17,  70,  123, 40,  93,  146, 64,  117, 170, 87,  140, 193, 111, 164, 217,
    135, 188, 241, 158, 211, 194, 182, 235, 55,  205, 119, 55,  222, 19,  72,  30,  83,  136,
    48,  101, 154, 73,  126, 171, 98,  151, 142, 123, 145, 144, 148, 116, 169, 119, 141, 194,
    113, 166, 172, 138, 191, 89,  163, 123, 98,  181, 63,  116, 81,  134, 187, 101, 154, 207,
    128, 181, 214, 156, 209, 96,  183, 153, 61,  211, 36,  89,  93,  64,  117, 38,  91,  136,
    66,  119, 146, 93,  131, 171, 113, 137, 190, 131, 184, 124, 153, 154, 145, 172, 122, 162,
    130, 152, 102, 129, 131, 93,  159, 70,  123, 98,  100, 153, 77,  130, 152, 107, 160, 109,
    137, 128, 129, 158, 97,  150, 182, 235, 32,  205, 142, 55,  214, 35,  88,  84,  67,  120,
    47,  100, 153, 79,  132, 185, 111, 164, 217, 144, 197, 180, 176, 229, 50,  209, 122, 59,
    232, 29,  82,  90,  143, 83,  115, 116, 107, 140, 89,  142, 102, 124, 177, 106, 159, 161,
    141, 194, 105, 176, 138, 140, 172, 122, 144, 117, 157, 107, 139, 130, 131, 164, 103, 156,
    27,  80,  133, 54,  107, 147, 91,  141, 169, 128, 161, 206, 156, 191, 161, 175, 228, 53,
    212, 121, 91,  188, 75,  121, 80,  113, 140, 97,  135, 175, 124, 148, 201, 78,  131, 184,
    106, 159, 134, 146, 184, 81,  186, 115, 121, 164, 108, 130, 95,  148, 116, 135, 133, 155,
    152, 143, 149, 137, 182, 80,  169, 129, 104, 198, 80,  133, 108, 161, 214, 138, 191, 127,
    179, 209, 29,  220, 87,  70,  169, 59,  112, 47,  100, 153, 88,  141, 194, 130, 183, 166,
    171, 224, 44,  212, 126, 62,  242, 39,  92};
static const uint8_t want_7x2[] = {79,  132, 127, 123, 118, 171, 109, 162, 110, 153, 101,
                                   143, 92,  134, 187, 125, 178, 91,  169, 82,  135, 87,
                                   140, 135, 145, 140, 111, 145, 116, 158, 121, 163, 111,
                                   168, 116, 169, 121, 174, 87,  179, 92,  145};
static const uint8_t want_2x5[] = {59,  112, 165, 163, 163, 139, 143, 154, 142, 89,
                                   100, 135, 138, 113, 113, 151, 151, 126, 109, 144,
                                   155, 142, 130, 141, 151, 139, 114, 157, 139, 114};
static const uint8_t want_1x1[] = {131, 133, 134};

static void test_against_pillow(void) {
    uint8_t src[7 * 5 * 3];
    make_source(src);
    struct {
        const char *name;
        size_t w, h;
        const uint8_t *want;
    } cases[] = {
        {"7x5 -> 3x4 (down)", 3, 4, want_3x4},
        {"7x5 -> 11x9 (up)", 11, 9, want_11x9},
        {"7x5 -> 7x2 (vertical pass only)", 7, 2, want_7x2},
        {"7x5 -> 2x5 (horizontal pass only)", 2, 5, want_2x5},
        {"7x5 -> 1x1", 1, 1, want_1x1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t dst[11 * 9 * 3];
        CtError err;
        if (resize_bilinear_rgb8(dst, cases[i].w, cases[i].h, src, 7, 5, &err)) {
            g_fail++;
            printf("FAIL %s: %s\n", cases[i].name, err.msg);
            continue;
        }
        check_bytes(cases[i].name, dst, cases[i].want, cases[i].w * cases[i].h * 3);
    }
}

static void test_properties(void) {
    // Same size: an exact copy.
    uint8_t src[7 * 5 * 3], dst[7 * 5 * 3];
    make_source(src);
    CtError err;
    if (resize_bilinear_rgb8(dst, 7, 5, src, 7, 5, &err) == 0) check_bytes("identity", dst, src, sizeof src);
    else g_fail++;
    // A constant image stays constant at every size (weights sum to one).
    const size_t sizes[][2] = {{37, 23}, {224, 224}, {97, 97}, {5, 300}, {1, 1}, {512, 3}};
    uint8_t *flat = ct_malloc(37 * 23 * 3);
    for (size_t i = 0; i < 37 * 23 * 3; i++) flat[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 17 : 255);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t w = sizes[s][0], h = sizes[s][1];
        uint8_t *out = ct_malloc(w * h * 3), *want = ct_malloc(w * h * 3);
        for (size_t i = 0; i < w * h * 3; i++) want[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 17 : 255);
        char name[64];
        snprintf(name, sizeof name, "constant 37x23 -> %zux%zu", w, h);
        if (resize_bilinear_rgb8(out, w, h, flat, 37, 23, &err) == 0) {
            check_bytes(name, out, want, w * h * 3);
        } else {
            g_fail++;
            printf("FAIL %s: %s\n", name, err.msg);
        }
        free(out);
        free(want);
    }
    free(flat);
    // Zero sizes are refused with a message.
    if (resize_bilinear_rgb8(dst, 0, 5, src, 7, 5, &err) == 0 || !strstr(err.msg, "zero")) {
        g_fail++;
        printf("FAIL zero output size accepted or unexplained\n");
    } else {
        g_pass++;
    }
    if (resize_bilinear_rgb8(dst, 7, 5, src, 7, 0, &err) == 0) {
        g_fail++;
        printf("FAIL zero input size accepted\n");
    } else {
        g_pass++;
    }
}

// ---- against a plain transcription of Pillow ----

// Pillow's ImagingResample for 8-bit RGB and the bilinear filter, written
// out as directly as possible (the shape the production code had before it
// was vectorised, and which compare_pil.py checked against Pillow). The
// weights use the same double operations in the same order, without fused
// multiply-adds.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static int *ref_coeffs(size_t in_size, size_t out_size, size_t *ksize_out, int32_t **kk_out) {
    double scale = (double)(float)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale, support = filterscale;
    size_t ksize = (size_t)ceil(support) * 2 + 1;
    int *bounds = ct_malloc_array(out_size * 2, sizeof(int));
    int32_t *kk = ct_malloc_array(out_size * ksize, sizeof(int32_t));
    double *pre = ct_malloc_array(ksize, sizeof(double));
    for (size_t xx = 0; xx < out_size; xx++) {
        double center = ((double)xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > (int)in_size) xmax = (int)in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double t = ((double)(x + xmin) - center + 0.5) * (1.0 / filterscale);
            if (t < 0) t = -t;
            pre[x] = t < 1.0 ? 1.0 - t : 0.0;
            ww += pre[x];
        }
        for (size_t x = 0; x < ksize; x++) {
            double v = (int)x < xmax ? (ww != 0.0 ? pre[x] / ww : pre[x]) : 0.0;
            kk[xx * ksize + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << 22)) : (int32_t)(0.5 + v * (1 << 22));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(pre);
    *ksize_out = ksize;
    *kk_out = kk;
    return bounds;
}

static uint8_t ref_clip(int64_t ss) {
    int64_t v = ss >> 22;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void ref_resize(uint8_t *dst, size_t out_w, size_t out_h, const uint8_t *src, size_t in_w,
                       size_t in_h) {
    size_t kv, kh;
    int32_t *kkv, *kkh;
    int *bv = ref_coeffs(in_h, out_h, &kv, &kkv), *bh = ref_coeffs(in_w, out_w, &kh, &kkh);
    size_t y0 = (size_t)bv[0], y1 = (size_t)bv[2 * out_h - 2] + (size_t)bv[2 * out_h - 1];
    int need_h = out_w != in_w, need_v = out_h != in_h;
    // Horizontal pass over the rows the vertical pass reads (all rows when
    // it is skipped), then the vertical pass.
    size_t tw = need_h ? out_w : in_w, rows = need_v ? y1 - y0 : in_h, r0 = need_v ? y0 : 0;
    uint8_t *tmp = ct_malloc_array(rows * tw, 3);
    for (size_t y = 0; y < rows; y++)
        for (size_t x = 0; x < tw; x++)
            for (int c = 0; c < 3; c++) {
                const uint8_t *s = src + ((r0 + y) * in_w) * 3;
                if (!need_h) {
                    tmp[(y * tw + x) * 3 + c] = s[x * 3 + c];
                    continue;
                }
                int64_t ss = 1 << 21;
                for (int t = 0; t < bh[2 * x + 1]; t++)
                    ss += (int64_t)s[(size_t)(bh[2 * x] + t) * 3 + c] * kkh[x * kh + (size_t)t];
                tmp[(y * tw + x) * 3 + c] = ref_clip(ss);
            }
    for (size_t y = 0; y < out_h; y++)
        for (size_t x = 0; x < out_w; x++)
            for (int c = 0; c < 3; c++) {
                if (!need_v) {
                    dst[(y * out_w + x) * 3 + c] = tmp[(y * tw + x) * 3 + c];
                    continue;
                }
                int64_t ss = 1 << 21;
                for (int t = 0; t < bv[2 * y + 1]; t++)
                    ss += (int64_t)tmp[((size_t)(bv[2 * y] - (int)r0 + t) * tw + x) * 3 + c] *
                          kkv[y * kv + (size_t)t];
                dst[(y * out_w + x) * 3 + c] = ref_clip(ss);
            }
    free(tmp);
    free(bv);
    free(bh);
    free(kkv);
    free(kkh);
}

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint32_t next_rand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

// Random sizes (downscale, upscale, one axis only, 1 pixel, strips and
// vectors cut anywhere) and random or smooth pixels, through the resizer
// with and without its AVX2 kernels, with one reused workspace and with
// the one-off call, against ref_resize.
static void test_against_reference(void) {
    ResizeWork w;
    resize_work_init(&w);
    int cases = 0, bad = 0;
    for (int it = 0; it < 400 && bad < 5; it++) {
        size_t in_w = 1 + next_rand() % 300, in_h = 1 + next_rand() % 300;
        size_t out_w = 1 + next_rand() % 300, out_h = 1 + next_rand() % 300;
        switch (it % 8) {
            case 0: out_w = in_w; break;                        // vertical pass only
            case 1: out_h = in_h; break;                        // horizontal pass only
            case 2: out_w = 1 + next_rand() % 4; break;         // heavy downscale
            case 3: in_w = 1 + next_rand() % 3; break;          // heavy upscale
            case 4: in_h = 200 + next_rand() % 100, out_h = 224; break;
            default: break;
        }
        uint8_t *src = ct_malloc_array(in_w * in_h, 3);
        for (size_t i = 0; i < in_w * in_h * 3; i++)
            src[i] = it % 3 ? (uint8_t)next_rand() : (uint8_t)(i / 3 % in_w + i / 3 / in_w);
        uint8_t *want = ct_malloc_array(out_w * out_h, 3), *got = ct_malloc_array(out_w * out_h, 3);
        ref_resize(want, out_w, out_h, src, in_w, in_h);
        for (int portable = 0; portable < 2; portable++) {
            resize_set_portable(portable);
            CtError err;
            int rc = it % 5 == 0 ? resize_bilinear_rgb8(got, out_w, out_h, src, in_w, in_h, &err)
                                 : resize_work_bilinear_rgb8(&w, got, out_w, out_h, src, in_w, in_h, &err);
            char name[128];
            snprintf(name, sizeof name, "reference %zux%zu -> %zux%zu (%s kernels)", in_w, in_h,
                     out_w, out_h, portable ? "portable" : "fastest");
            if (rc) {
                g_fail++;
                bad++;
                printf("FAIL %s: %s\n", name, err.msg);
                continue;
            }
            int before = g_fail;
            check_bytes(name, got, want, out_w * out_h * 3);
            bad += g_fail != before;
            cases++;
        }
        resize_set_portable(0);
        free(src);
        free(want);
        free(got);
    }
    resize_work_free(&w);
    printf("ok   %d resizes equal to the reference transcription\n", cases);
}

// torch: (uint8 -> float).div(255), then (x - mean) / std, float32.
static void test_tensor(void) {
    const uint8_t px[5] = {0, 1, 128, 254, 255};
    const float want[3][5] = {
        {-0x1.0f177ap+1f, -0x1.0ce656p+1f, 0x1.2f5e64p-4f, 0x1.1dab14p+1f, 0x1.1fdc3ap+1f},
        {-0x1.049248p+1f, -0x1.02549ep+1f, 0x1.a4369p-3f, 0x1.349dcp+1f, 0x1.36db6ep+1f},
        {-0x1.cdf012p+0f, -0x1.c979d4p+0f, 0x1.b4ba78p-2f, 0x1.4fb068p+1f, 0x1.51eb86p+1f},
    };
    const float want_unit[5] = {0.0f, 0x1.010102p-8f, 0x1.010102p-1f, 0x1.fdfdfep-1f, 1.0f};
    uint8_t src[5 * 3];
    for (int i = 0; i < 5; i++) src[3 * i] = src[3 * i + 1] = src[3 * i + 2] = px[i];
    float t[15];
    resize_to_tensor(t, src, 5, 1, NORM_IMAGENET);  // (3, 1, 5)
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 5; i++)
            if (t[c * 5 + i] != want[c][i]) {
                printf("FAIL tensor imagenet c%d v%u: %a, torch %a\n", c, px[i], t[c * 5 + i], want[c][i]);
                bad = 1;
            }
    resize_to_tensor(t, src, 5, 1, NORM_UNIT);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 5; i++)
            if (t[c * 5 + i] != want_unit[i]) {
                printf("FAIL tensor unit c%d v%u: %a, torch %a\n", c, px[i], t[c * 5 + i], want_unit[i]);
                bad = 1;
            }
    // Layout: (3, H, W) planes from (H, W, 3).
    uint8_t rgb[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float p[12];
    resize_to_tensor(p, rgb, 2, 2, NORM_UNIT);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++)
            if (p[c * 4 + i] != (float)rgb[3 * i + c] / 255.0f) {
                printf("FAIL tensor layout c%d i%d\n", c, i);
                bad = 1;
            }
    if (bad) g_fail++;
    else g_pass++;

    NormMode m;
    int ok = norm_mode_parse("imagenet", &m) == 0 && m == NORM_IMAGENET &&
             norm_mode_parse("unit", &m) == 0 && m == NORM_UNIT &&
             norm_mode_parse("ImageNet", &m) == -1 && norm_mode_parse("", &m) == -1 &&
             norm_mode_parse(NULL, &m) == -1 && strcmp(norm_mode_name(NORM_IMAGENET), "imagenet") == 0 &&
             strcmp(norm_mode_name(NORM_UNIT), "unit") == 0;
    if (ok) g_pass++;
    else {
        g_fail++;
        printf("FAIL norm_mode_parse / norm_mode_name\n");
    }
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    test_against_pillow();
    resize_set_portable(1);  // the same checks on the portable kernels
    test_against_pillow();
    resize_set_portable(0);
    test_properties();
    test_against_reference();
    test_tensor();
    if (g_fail && g_worst_diff >= 0) printf("worst failure: %s\n", g_worst);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
