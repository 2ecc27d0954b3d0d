/*
 * image.h — decoding CT images by content (PNG via libspng, JPEG via
 * libjpeg-turbo), never by file name, into 8-bit RGB the way PIL's
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

// Everything one decode needs besides the input: the file's bytes, the PNG
// scanlines (or JPEG CMYK samples), the decoded image, and the PNG inflater
// and TurboJPEG decoder. Each buffer grows to the largest image seen and is
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
    void *inflater; // PNG inflater tables, made on first use
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

// Tests only: the PNG decoder's inflater on a bare zlib stream in[0, in_len),
// into out[0, out_len), stopping when out is full (*done: bytes written).
// Returns 0, or -1 with err (zlib's words).
int image_inflate(uint8_t *out, size_t out_len, size_t *done, const uint8_t *in, size_t in_len,
                  CtError *err);

// Writes an 8-bit greyscale PNG (used by the phantom generator).
int image_write_png_gray8(const char *path, const uint8_t *pix, uint32_t width, uint32_t height,
                          CtError *err);

#endif
