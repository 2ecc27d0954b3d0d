/*
 * cam_image.h — a Grad-CAM as a picture: the CAM normalised to [0, 1]
 * ((cam - min) / (max - min); all zero when it is flat), upsampled
 * bilinearly to the input's size (pixel centres aligned, as PIL's and
 * OpenCV's bilinear resize and PyTorch's interpolate with
 * align_corners=False), coloured with the jet colour map and laid over the
 * greyscale input at a fixed opacity, with a colour bar at the right.
 */
#ifndef CTSWEEP_RESULTS_CAM_IMAGE_H
#define CTSWEEP_RESULTS_CAM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

// The colour map's weight in the overlay: out = (1 - a) * grey + a * jet(cam).
#define CAM_OVERLAY_ALPHA 0.45

// jet(v) for v in [0, 1] (clamped): dark blue, blue, cyan, yellow, red, dark
// red, each channel the piecewise-linear ramp clamp(1.5 - |4v - c|) with c =
// 3 (red), 2 (green), 1 (blue).
void cam_jet(double v, uint8_t rgb[3]);

// The picture's width for an input of `size` pixels: the image, a gap, the
// colour bar and its tick marks.
size_t cam_image_width(size_t size);

// Renders out (size, cam_image_width(size), 3) from the input image rgb
// (size, size, 3) and the CAM (h, w).
void cam_image_render(uint8_t *out, const uint8_t *rgb, size_t size, const float *cam, size_t h, size_t w);

#endif
