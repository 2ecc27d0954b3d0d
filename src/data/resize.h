/*
 * resize.h — antialiased bilinear resampling of 8-bit RGB images, equal to
 * PIL's Image.resize(size, Image.BILINEAR) (Pillow's two-pass, fixed-point
 * convolution with a triangle filter whose support grows with the
 * downscaling factor), and conversion of the result to a normalised float
 * tensor.
 */
#ifndef CTSWEEP_DATA_RESIZE_H
#define CTSWEEP_DATA_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef enum { NORM_IMAGENET = 0, NORM_UNIT = 1 } NormMode;

// dst (out_h, out_w, 3) from src (in_h, in_w, 3). Returns 0, or -1 on
// allocation failure, a zero size or a size past 2^24 (err says which).
int resize_bilinear_rgb8(uint8_t *dst, size_t out_w, size_t out_h, const uint8_t *src, size_t in_w,
                         size_t in_h, CtError *err);

// Reusable scratch memory for resizing many images on one thread: one block,
// grown to the largest need seen and carved per call into the coefficient
// tables, a transposed strip of source rows and the intermediate rows.
typedef struct {
    void *buf;
    size_t cap;
} ResizeWork;

void resize_work_init(ResizeWork *w);
void resize_work_free(ResizeWork *w);
// resize_bilinear_rgb8 with w's memory; the same result.
int resize_work_bilinear_rgb8(ResizeWork *w, uint8_t *dst, size_t out_w, size_t out_h,
                              const uint8_t *src, size_t in_w, size_t in_h, CtError *err);

// Tests only: on != 0 makes the resizer use its portable kernels even where
// the AVX2 ones would run, so that tests can check both; 0 restores.
void resize_set_portable(int on);

// (H, W, 3) uint8 -> (3, H, W) float: x/255, then (x - mean) / std for
// NORM_IMAGENET (mean 0.485 0.456 0.406, std 0.229 0.224 0.225), as
// torchvision's ToTensor + Normalize compute it in float32.
void resize_to_tensor(float *dst, const uint8_t *src, size_t w, size_t h, NormMode norm);

// Parses "imagenet" / "unit"; returns -1 for anything else.
int norm_mode_parse(const char *s, NormMode *out);
const char *norm_mode_name(NormMode m);

#endif
