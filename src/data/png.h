/*
 * png.h — the PNG decoder behind image_decode_rgb8 and friends (image.h):
 * a PNG file in memory to 8-bit RGB by Pillow's convert('RGB') rules. Not
 * called directly outside src/data/image.c, which sniffs the format and
 * applies the file-size limit first.
 */
#ifndef CTSWEEP_DATA_PNG_H
#define CTSWEEP_DATA_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "util/util.h"

// Decodes the PNG data[0, len) (signature already checked) into out, whose
// pixels live in w. lim and name are never NULL. Returns 0, or -1 with err =
// "<name>: <what is wrong>" and out cleared.
int png_decode_rgb8(ImageWork *w, ImageRGB8 *out, const uint8_t *data, size_t len,
                    const ImageLimits *lim, const char *name, CtError *err);

#endif
