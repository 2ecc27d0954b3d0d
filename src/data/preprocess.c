/*
 * preprocess.c — the decode, resize and normalise chain shared by
 * `ctsweep features` and the data pipeline, with or without a reusable
 * per-thread workspace.
 */
#include "data/preprocess.h"

#include <stdlib.h>

void preprocess_work_init(PreprocessWork *w) {
    image_work_init(&w->image);
    resize_work_init(&w->resize);
}

void preprocess_work_free(PreprocessWork *w) {
    image_work_free(&w->image);
    resize_work_free(&w->resize);
}

int preprocess_work_load_rgb8(PreprocessWork *w, uint8_t *dst, const char *path, size_t size,
                              const ImageLimits *lim, CtError *err) {
    ImageRGB8 img;
    if (image_work_load_rgb8(&w->image, &img, path, lim, err)) return -1;
    int rc = resize_work_bilinear_rgb8(&w->resize, dst, size, size, img.rgb, img.width,
                                       img.height, err);
    if (rc) ct_error_prefix(err, "%s", path);
    return rc;
}

int preprocess_load_rgb8(uint8_t *dst, const char *path, size_t size, const ImageLimits *lim, CtError *err) {
    PreprocessWork w;
    preprocess_work_init(&w);
    int rc = preprocess_work_load_rgb8(&w, dst, path, size, lim, err);
    preprocess_work_free(&w);
    return rc;
}

int preprocess_load_tensor(float *dst, const char *path, size_t size, NormMode norm, const ImageLimits *lim,
                           CtError *err) {
    size_t n;
    if (ct_mul_size(&n, size, size) || ct_mul_size(&n, n, 3)) return ct_errorf(err, "image size %zu overflows", size);
    uint8_t *rgb = malloc(n);
    if (!rgb) return ct_errorf(err, "%s: out of memory", path);
    int rc = preprocess_load_rgb8(rgb, path, size, lim, err);
    if (rc == 0) resize_to_tensor(dst, rgb, size, size, norm);
    free(rgb);
    return rc;
}
