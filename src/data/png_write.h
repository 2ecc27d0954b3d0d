/*
 * png_write.h — a minimal PNG encoder for 8-bit RGB images (the saliency
 * overlays of `ctsweep predict`): IHDR, one IDAT compressed with
 * libdeflate's zlib compressor, IEND; every row with filter type Sub.
 */
#ifndef CTSWEEP_DATA_PNG_WRITE_H
#define CTSWEEP_DATA_PNG_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

// Writes rgb (height, width, 3) to path, under a temporary name renamed into
// place, so a failure never leaves a partial file. Errors name path.
int png_write_rgb8(const char *path, const uint8_t *rgb, size_t width, size_t height, CtError *err);

#endif
