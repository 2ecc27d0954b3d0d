/*
 * image_cache.h — every image of a data set decoded and resized once per run
 * into one uint8 block, so epochs and augmented views never decode again.
 * Decoding runs in parallel; a bad image either stops the run before any
 * training (policy error, one line naming the file) or is left out and
 * recorded (policy skip).
 */
#ifndef CTSWEEP_DATA_IMAGE_CACHE_H
#define CTSWEEP_DATA_IMAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/image.h"

typedef enum { BAD_IMAGE_ERROR = 0, BAD_IMAGE_SKIP = 1 } BadImagePolicy;

int bad_image_policy_parse(const char *s, BadImagePolicy *out);

typedef struct {
    size_t n, size;
    uint8_t *pix;  // (n, size, size, 3)
} ImageCache;

// Decodes ds's images at size x size. With BAD_IMAGE_SKIP the bad ones are
// removed from ds (dataset_skip) with a warning each; with BAD_IMAGE_ERROR
// the first bad one (in index order) is the error.
int image_cache_build(ImageCache *c, DataSet *ds, size_t size, const ImageLimits *lim, BadImagePolicy policy,
                      CtError *err);
static inline const uint8_t *image_cache_get(const ImageCache *c, size_t i) {
    return c->pix + i * c->size * c->size * 3;
}
void image_cache_free(ImageCache *c);

#endif
