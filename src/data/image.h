/*
 * image.h — decoding CT images by content (PNG via libspng and libdeflate,
 * JPEG via libjpeg-turbo), never by file name, into 8-bit RGB the way PIL's
 * Image.open(path).convert('RGB') does. Size guards are checked against the
 * header before any pixel buffer is allocated. A workspace (ImageWork) lets
 * one thread decode many images without allocating for each.
 */
#ifndef CTSWEEP_DATA_IMAGE_H
#define CTSWEEP_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef struct {
    size_t max_file_bytes;     // files larger than this are refused
    uint32_t max_width;        // header width above this is refused
    uint32_t max_height;       // header height above this is refused
    size_t max_decoded_bytes;  // width * height * channels * bytes above this is refused
} ImageLimits;

// Defaults: 256 MiB files, 16384 x 16384, 1 GiB decoded.
void image_limits_default(ImageLimits *lim);

typedef struct {
    uint32_t width, height;
    uint8_t *rgb;  // (height, width, 3), row-major, interleaved RGB
} ImageRGB8;

typedef enum { IMAGE_FMT_UNKNOWN = 0, IMAGE_FMT_PNG, IMAGE_FMT_JPEG } ImageFormat;

// Sniffs the magic bytes.
ImageFormat image_sniff(const uint8_t *data, size_t len);

// Decodes an in-memory file. `name` is used in error messages only.
// Returns 0, or -1 with err = "<name>: <what is wrong>".
int image_decode_rgb8(ImageRGB8 *out, const uint8_t *data, size_t len, const ImageLimits *lim,
                      const char *name, CtError *err);
// Reads and decodes a file (errors name the path).
int image_load_rgb8(ImageRGB8 *out, const char *path, const ImageLimits *lim, CtError *err);
void image_free(ImageRGB8 *img);

// ---- reusable workspace ----

struct libdeflate_decompressor;

// Everything one decode needs besides the input: the file's bytes, the PNG
// scanlines (or JPEG CMYK samples), the decoded image, and the libdeflate
// and TurboJPEG decoders. Each buffer grows to the largest image seen and is
// kept, so a thread decoding a whole data set allocates a few times, not
// per image. One workspace per thread; never shared.
typedef struct {
    uint8_t *file;  // the last file read
    size_t file_cap;
    uint8_t *raw;   // PNG: a zero row, then the inflated scanlines; JPEG: CMYK
    size_t raw_cap;
    uint8_t *rgb;   // the decoded image, (height, width, 3)
    size_t rgb_cap;
    uint8_t *zdata; // PNG: the image data of several IDAT chunks, joined
    size_t zdata_cap;
    struct libdeflate_decompressor *inflater; // PNG image data, made on first use
    void *tj;       // tjhandle, made on first use
} ImageWork;

void image_work_init(ImageWork *w);
void image_work_free(ImageWork *w);
// As image_decode_rgb8 / image_load_rgb8, but out->rgb points into w: it
// stays valid until the next call with w, and must not be freed.
int image_work_decode_rgb8(ImageWork *w, ImageRGB8 *out, const uint8_t *data, size_t len,
                           const ImageLimits *lim, const char *name, CtError *err);
int image_work_load_rgb8(ImageWork *w, ImageRGB8 *out, const char *path, const ImageLimits *lim,
                         CtError *err);

// Writes an 8-bit greyscale PNG (used by the phantom generator).
int image_write_png_gray8(const char *path, const uint8_t *pix, uint32_t width, uint32_t height,
                          CtError *err);

// ---- shared by the format decoders (image.c's JPEG, png.c) ----

// Makes *buf hold at least need bytes (its contents are not kept).
int image_work_grow(uint8_t **buf, size_t *cap, size_t need);
// Checks a header's w x h against lim; bytes_per_pixel is the largest
// per-pixel footprint any buffer of this decode will have. kind ("PNG",
// "JPEG") and name go into the error.
int image_check_limits(const ImageLimits *lim, uint32_t w, uint32_t h, size_t bytes_per_pixel,
                       const char *kind, const char *name, CtError *err);
// Points out at w->rgb grown to (height, width, 3); sizes were checked by
// image_check_limits.
int image_alloc_rgb(ImageWork *w, ImageRGB8 *out, uint32_t width, uint32_t height,
                    const char *name, CtError *err);

#endif
