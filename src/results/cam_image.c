/*
 * cam_image.c — the saliency picture of cam_image.h. The colour bar runs
 * from 1 at the top to 0 at the bottom, with tick marks at 0, 0.25, 0.5,
 * 0.75 and 1 on its right (no text: a legend without a font).
 */
#include "results/cam_image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void cam_jet(double v, uint8_t rgb[3]) {
    v = clamp01(v);
    static const double centre[3] = {3, 2, 1};
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lrint(255.0 * clamp01(1.5 - fabs(4.0 * v - centre[c])));
}

// Layout to the right of the image: gap, bar, tick marks, margin.
static size_t gap_px(size_t size) { return size / 32 > 2 ? size / 32 : 2; }
static size_t bar_px(size_t size) { return size / 16 > 6 ? size / 16 : 6; }
static size_t tick_px(size_t size) { return size / 64 > 3 ? size / 64 : 3; }

size_t cam_image_width(size_t size) { return size + gap_px(size) + bar_px(size) + tick_px(size) + gap_px(size); }

// Bilinear sample of cam (h, w) at output pixel (y, x) of a size x size
// grid: source coordinate (i + 0.5) * h / size - 0.5, clamped at the edges.
static double sample(const float *cam, size_t h, size_t w, size_t size, size_t y, size_t x) {
    double sy = ((double)y + 0.5) * (double)h / (double)size - 0.5;
    double sx = ((double)x + 0.5) * (double)w / (double)size - 0.5;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    size_t y0 = (size_t)sy, x0 = (size_t)sx;
    if (y0 > h - 1) y0 = h - 1;
    if (x0 > w - 1) x0 = w - 1;
    size_t y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    double fy = sy - (double)y0, fx = sx - (double)x0;
    if (fy > 1) fy = 1;
    if (fx > 1) fx = 1;
    double top = cam[y0 * w + x0] * (1 - fx) + cam[y0 * w + x1] * fx;
    double bot = cam[y1 * w + x0] * (1 - fx) + cam[y1 * w + x1] * fx;
    return top * (1 - fy) + bot * fy;
}

void cam_image_render(uint8_t *out, const uint8_t *rgb, size_t size, const float *cam, size_t h, size_t w) {
    const size_t W = cam_image_width(size);
    float lo = cam[0], hi = cam[0];
    for (size_t i = 1; i < h * w; i++) {
        if (cam[i] < lo) lo = cam[i];
        if (cam[i] > hi) hi = cam[i];
    }
    double range = (double)hi - (double)lo;
    memset(out, 255, size * W * 3);  // white margins
    const double a = CAM_OVERLAY_ALPHA;
    for (size_t y = 0; y < size; y++)
        for (size_t x = 0; x < size; x++) {
            const uint8_t *p = rgb + (y * size + x) * 3;
            double grey = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];  // ITU-R 601 luma, as PIL's convert("L")
            double v = range > 0 ? (sample(cam, h, w, size, y, x) - lo) / range : 0.0;
            uint8_t c[3];
            cam_jet(v, c);
            uint8_t *o = out + (y * W + x) * 3;
            for (int k = 0; k < 3; k++) o[k] = (uint8_t)lrint((1 - a) * grey + a * c[k]);
        }
    const size_t bx = size + gap_px(size), bw = bar_px(size), tw = tick_px(size);
    for (size_t y = 0; y < size; y++) {
        uint8_t c[3];
        cam_jet(size > 1 ? 1.0 - (double)y / (double)(size - 1) : 1.0, c);
        for (size_t x = bx; x < bx + bw; x++) memcpy(out + (y * W + x) * 3, c, 3);
    }
    for (int q = 0; q <= 4; q++) {
        size_t y = (size_t)lrint((double)(size - 1) * q / 4.0);
        for (size_t x = bx + bw; x < bx + bw + tw; x++) memset(out + (y * W + x) * 3, 0, 3);
    }
}
