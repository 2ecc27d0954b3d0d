/*
 * preprocess.c — the decode, resize and normalise chain shared by
 * `ctsweep features` and the data pipeline.
 */
#include "data/preprocess.h"

#include <stdlib.h>

int preprocess_load_rgb8(uint8_t *dst, const char *path, size_t size, const ImageLimits *lim, CtError *err) {
    ImageRGB8 img = {0};
    if (image_load_rgb8(&img, path, lim, err)) return -1;
    int rc = resize_bilinear_rgb8(dst, size, size, img.rgb, img.width, img.height, err);
    if (rc) ct_error_prefix(err, "%s", path);
    image_free(&img);
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
