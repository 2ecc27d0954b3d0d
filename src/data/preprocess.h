/*
 * preprocess.h — one image file to one network input: decode by content,
 * convert to RGB, resize (PIL bilinear) to size x size, scale and normalise.
 */
#ifndef CTSWEEP_DATA_PREPROCESS_H
#define CTSWEEP_DATA_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "data/resize.h"

// Decodes path and resizes it to (size, size, 3) uint8 into dst.
int preprocess_load_rgb8(uint8_t *dst, const char *path, size_t size, const ImageLimits *lim, CtError *err);

// Same, then to a (3, size, size) float tensor with the normalisation.
int preprocess_load_tensor(float *dst, const char *path, size_t size, NormMode norm, const ImageLimits *lim,
                           CtError *err);

// The decoder's and the resizer's scratch memory, for one thread that
// preprocesses many images (image_cache_build keeps one per thread).
typedef struct {
    ImageWork image;
    ResizeWork resize;
} PreprocessWork;

void preprocess_work_init(PreprocessWork *w);
void preprocess_work_free(PreprocessWork *w);
// preprocess_load_rgb8 with w's memory: no allocation once w has grown to
// the largest image.
int preprocess_work_load_rgb8(PreprocessWork *w, uint8_t *dst, const char *path, size_t size,
                              const ImageLimits *lim, CtError *err);

#endif
