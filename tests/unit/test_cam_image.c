/*
 * test_cam_image.c — the saliency picture's pieces: the PNG writer (its
 * files decoded by the project's PNG decoder, itself checked against PIL,
 * pixel for pixel; the torch_predict test opens the real outputs with PIL),
 * the jet colour map at its control points, and the overlay's exact values
 * where the CAM is at its extremes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "data/image.h"
#include "data/png_write.h"
#include "results/cam_image.h"

static void test_png_roundtrip(const char *dir) {
    const size_t W = 37, H = 23;  // odd sizes: no row is a multiple of anything
    uint8_t *rgb = malloc(W * H * 3);
    uint32_t s = 12345;
    for (size_t i = 0; i < W * H * 3; i++) {
        s = s * 1664525u + 1013904223u;
        rgb[i] = (uint8_t)(s >> 24);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/noise.png", dir);
    CtError err = {{0}};
    CHECK(png_write_rgb8(path, rgb, W, H, &err) == 0, "png_write_rgb8: %s", err.msg);
    ImageLimits lim;
    image_limits_default(&lim);
    ImageRGB8 img = {0};
    CHECK(image_load_rgb8(&img, path, &lim, &err) == 0, "decode: %s", err.msg);
    CHECK(img.width == W && img.height == H, "decoded %ux%u, wrote %zux%zu", img.width, img.height, W, H);
    if (img.rgb && img.width == W && img.height == H) {
        size_t bad = 0;
        for (size_t i = 0; i < W * H * 3; i++) bad += img.rgb[i] != rgb[i];
        CHECK(bad == 0, "%zu bytes differ after the round trip", bad);
    }
    image_free(&img);
    // A folder that does not exist: one error naming the file, nothing left.
    snprintf(path, sizeof path, "%s/no/such/folder/x.png", dir);
    CHECK(png_write_rgb8(path, rgb, W, H, &err) != 0 && strstr(err.msg, path) == err.msg, "error: %s", err.msg);
    free(rgb);
}

static void test_jet(void) {
    // clamp(1.5 - |4v - c|) for c = 3, 2, 1, times 255, rounded.
    static const struct {
        double v;
        uint8_t rgb[3];
    } want[] = {{0.0, {0, 0, 128}}, {0.25, {0, 128, 255}}, {0.5, {128, 255, 128}}, {0.75, {255, 128, 0}},
                {1.0, {128, 0, 0}},  {-1.0, {0, 0, 128}},   {2.0, {128, 0, 0}}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint8_t c[3];
        cam_jet(want[i].v, c);
        CHECK(memcmp(c, want[i].rgb, 3) == 0, "jet(%g) = (%u,%u,%u), expected (%u,%u,%u)", want[i].v, c[0], c[1],
              c[2], want[i].rgb[0], want[i].rgb[1], want[i].rgb[2]);
    }
}

static void test_overlay(void) {
    const size_t S = 64, W = cam_image_width(S);
    CHECK(W == S + 2 + 6 + 3 + 2, "width %zu for %zu px", W, S);  // gap 2, bar 6, ticks 3, gap 2 (the minima)
    uint8_t *rgb = malloc(S * S * 3), *out = malloc(S * W * 3);
    memset(rgb, 100, S * S * 3);  // flat grey 100
    const float cam[4] = {5.0f, 2.0f, 2.0f, 1.0f};  // (2, 2): maximum top left, minimum bottom right
    cam_image_render(out, rgb, S, cam, 2, 2);
    // Corners sit outside the CAM's pixel centres: clamped to cam[0] and
    // cam[3], normalised to 1 and 0: 0.55 * 100 + 0.45 * jet.
    const uint8_t top_left[3] = {113, 55, 55}, bottom_right[3] = {55, 55, 113};
    CHECK(memcmp(out, top_left, 3) == 0, "top left (%u,%u,%u)", out[0], out[1], out[2]);
    const uint8_t *br = out + ((S - 1) * W + S - 1) * 3;
    CHECK(memcmp(br, bottom_right, 3) == 0, "bottom right (%u,%u,%u)", br[0], br[1], br[2]);
    // Pixel (32, 32) samples the CAM at (32.5 * 2 / 64 - 0.5) = 0.515625 in
    // both directions (pixel centres aligned), normalised by (v - 1) / 4.
    double f = 0.515625, top = 5 * (1 - f) + 2 * f, bot = 2 * (1 - f) + 1 * f, v = (top * (1 - f) + bot * f - 1) / 4;
    const uint8_t *c = out + ((S / 2) * W + S / 2) * 3;
    for (int k = 0; k < 3; k++) {
        double jet = 255 * fmin(1, fmax(0, 1.5 - fabs(4 * v - (3 - k))));
        long want = lrint(0.55 * 100 + 0.45 * lrint(jet));
        CHECK(labs(c[k] - want) <= 1, "centre channel %d: %u, expected %ld (v %.4f)", k, c[k], want, v);
    }
    // The colour bar: jet(1) at the top, jet(0) at the bottom; white gaps.
    const size_t bx = S + 2 + 1;
    CHECK(memcmp(out + bx * 3, (uint8_t[]){128, 0, 0}, 3) == 0, "bar top");
    CHECK(memcmp(out + ((S - 1) * W + bx) * 3, (uint8_t[]){0, 0, 128}, 3) == 0, "bar bottom");
    CHECK(memcmp(out + (10 * W + S) * 3, (uint8_t[]){255, 255, 255}, 3) == 0, "gap");
    // A flat CAM (nothing to show) is all zero: the blue end everywhere.
    const float flat[4] = {3, 3, 3, 3};
    cam_image_render(out, rgb, S, flat, 2, 2);
    CHECK(memcmp(out, bottom_right, 3) == 0, "flat CAM (%u,%u,%u)", out[0], out[1], out[2]);
    free(rgb);
    free(out);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/test_cam_image";
    mkdir(dir, 0777);
    test_png_roundtrip(dir);
    test_jet();
    test_overlay();
    return check_summary();
}
