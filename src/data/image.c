/*
 * image.c — decoding images by content into 8-bit RGB, equal to Pillow 9.4's
 * Image.open(path).convert('RGB'): sniffing, the size guards and the
 * reusable workspace shared by both formats, JPEG (libjpeg-turbo's
 * TurboJPEG API), and writing 8-bit greyscale PNGs. PNG decoding is in
 * png.c.
 *
 * Why by hand rather than with the libraries' own RGB conversions: Pillow's
 * rules are specific (alpha is dropped, never composited; tRNS is ignored;
 * palette indices past the end of PLTE map to grey (i, i, i); 16-bit samples
 * keep their high byte; CMYK JPEGs are read as Adobe-inverted and converted
 * with Pillow's cmyk2rgb), so images are decoded to their raw samples and
 * converted here and in png.c, where every rule is visible and tested
 * (tests/unit/test_image.c; tests/data/compare_pil.py against Pillow itself).
 *
 * Damaged files: a JPEG must reach its end-of-image marker (Pillow refuses
 * it otherwise: "image file is truncated"), and libjpeg's warnings about
 * corrupt but complete data are ignored, as Pillow ignores them. PNGs: see
 * png.c (stricter than Pillow: a damaged file is reported, never
 * half-trusted).
 *
 * Every size is checked against ImageLimits from the header, before any
 * pixel buffer is allocated; every failure is returned as one CtError line
 * naming the file.
 */
#include "data/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <spng.h>
#include <turbojpeg.h>

#include "data/png.h"

void image_limits_default(ImageLimits *lim) {
    lim->max_file_bytes = (size_t)256 << 20;
    lim->max_width = 16384;
    lim->max_height = 16384;
    lim->max_decoded_bytes = (size_t)1 << 30;
}

ImageFormat image_sniff(const uint8_t *data, size_t len) {
    // The same prefixes Pillow's PngImagePlugin and JpegImagePlugin accept.
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(data, png_sig, 8) == 0) return IMAGE_FMT_PNG;
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return IMAGE_FMT_JPEG;
    return IMAGE_FMT_UNKNOWN;
}

void image_free(ImageRGB8 *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

// ---- workspace ----

void image_work_init(ImageWork *w) { memset(w, 0, sizeof *w); }

void image_work_free(ImageWork *w) {
    if (!w) return;
    free(w->file);
    free(w->raw);
    free(w->rgb);
    free(w->zdata);
    libdeflate_free_decompressor(w->inflater);
    if (w->tj) tjDestroy(w->tj);
    memset(w, 0, sizeof *w);
}

int image_work_grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap && *buf) return 0;
    free(*buf);
    *buf = malloc(need ? need : 1);
    *cap = *buf ? need : 0;
    return *buf ? 0 : -1;
}

// ---- guards ----

int image_check_limits(const ImageLimits *lim, uint32_t w, uint32_t h, size_t bytes_per_pixel,
                       const char *kind, const char *name, CtError *err) {
    if (w == 0 || h == 0) return ct_errorf(err, "%s: %s has an empty size %ux%u", name, kind, w, h);
    if (w > lim->max_width || h > lim->max_height)
        return ct_errorf(err, "%s: %s is %ux%u, more than the limit of %ux%u", name, kind, w, h,
                         lim->max_width, lim->max_height);
    size_t dims[3] = {w, h, bytes_per_pixel};
    size_t bytes;
    if (ct_mul_sizes(&bytes, dims, 3) || bytes > lim->max_decoded_bytes)
        return ct_errorf(err, "%s: %s of %ux%u would decode to more than the limit of %zu bytes",
                         name, kind, w, h, lim->max_decoded_bytes);
    return 0;
}

int image_alloc_rgb(ImageWork *w, ImageRGB8 *out, uint32_t width, uint32_t height,
                    const char *name, CtError *err) {
    size_t dims[3] = {width, height, 3};
    size_t bytes;
    if (ct_mul_sizes(&bytes, dims, 3)) return ct_errorf(err, "%s: image size overflows", name);
    if (image_work_grow(&w->rgb, &w->rgb_cap, bytes))
        return ct_errorf(err, "%s: out of memory for %ux%u pixels", name, width, height);
    out->rgb = w->rgb;
    out->width = width;
    out->height = height;
    return 0;
}

// ---- JPEG ----

typedef enum { JPEG_WALK_EOI, JPEG_WALK_TRUNCATED, JPEG_WALK_CORRUPT } JpegWalk;

// The offset of the first 0xFF byte at or after i, or n.
static size_t next_ff(const uint8_t *d, size_t i, size_t n) {
    if (i >= n) return n;
    const uint8_t *f = memchr(d + i, 0xFF, n - i);
    return f ? (size_t)(f - d) : n;
}

// Follows the marker structure the way libjpeg's marker reader does
// (extraneous bytes before a marker skipped, fill bytes skipped, entropy-coded
// data scanned for the next non-stuffed, non-RST marker) and says whether an
// EOI marker is reached before the data ends. Pillow refuses JPEGs whose data
// ends first ("image file is truncated"); libjpeg only warns and pads with
// grey, so this is how the refusal is reproduced. *end receives the offset
// where the walk stopped.
static JpegWalk jpeg_walk_markers(const uint8_t *d, size_t n, size_t *end) {
    size_t i = 2;  // past SOI (checked by image_sniff)
    for (;;) {
        i = next_ff(d, i, n);
        while (i < n && d[i] == 0xFF) i++;
        if (i >= n) break;
        uint8_t m = d[i++];
        if (m == 0x00) continue;  // a stuffed zero outside a scan: discarded
        if (m == 0xD9) {
            *end = i;
            return JPEG_WALK_EOI;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // no length field
        if (n - i < 2) break;
        size_t seg = ((size_t)d[i] << 8) | d[i + 1];
        if (seg < 2) {
            *end = i;
            return JPEG_WALK_CORRUPT;
        }
        if (n - i < seg) break;
        i += seg;
        if (m != 0xDA) continue;
        // Entropy-coded data after SOS: runs until a real marker.
        for (;;) {
            i = next_ff(d, i, n);
            size_t j = i + 1;
            while (j < n && d[j] == 0xFF) j++;
            if (j >= n) {
                i = n;
                break;
            }
            if (d[j] == 0x00 || (d[j] >= 0xD0 && d[j] <= 0xD7)) {
                i = j + 1;
                continue;
            }
            break;  // i is at the 0xFF of the next marker
        }
    }
    *end = n;
    return JPEG_WALK_TRUNCATED;
}

// TurboJPEG reports TJERR_WARNING whenever any warning was raised, even if a
// fatal error followed it. libjpeg prints only the first warning of a decode
// and a fatal error overwrites it, so the message still tells which it was:
// a decode whose message is one of libjpeg's warning texts (jerror.h JWRN_*)
// finished.
static int jpeg_is_warning_text(const char *msg) {
    static const char *const warnings[] = {
        "Corrupt JPEG data",                          // ARITH/HUFF_BAD_CODE, EXTRANEOUS_DATA,
                                                      // HIT_MARKER, MUST_RESYNC, BOGUS_ICC
        "Premature end of JPEG file",                 // JPEG_EOF
        "Unknown Adobe color transform code",         // ADOBE_XFORM
        "Inconsistent progression sequence",          // BOGUS_PROGRESSION
        "Warning: unknown JFIF revision number",      // JFIF_MAJOR
        "Invalid SOS parameters for sequential JPEG", // NOT_SEQUENTIAL
        "Application transferred too many scanlines", // TOO_MUCH_DATA
    };
    if (!msg) return 0;
    for (size_t i = 0; i < sizeof warnings / sizeof warnings[0]; i++)
        if (strncmp(msg, warnings[i], strlen(warnings[i])) == 0) return 1;
    return 0;
}

// Pillow's cmyk2rgb (Convert.c) on Adobe-inverted samples ("CMYK;I").
static inline uint8_t cmyk_channel(unsigned c, unsigned nk) {
    unsigned t = c * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int jpeg_decode(ImageWork *wk, ImageRGB8 *out, const uint8_t *data, size_t len,
                       const ImageLimits *lim, const char *name, CtError *err) {
    if (!wk->tj && !(wk->tj = tjInitDecompress()))
        return ct_errorf(err, "%s: cannot create the JPEG decoder: %s", name, tjGetErrorStr2(NULL));
    tjhandle tj = wk->tj;
    int w = 0, h = 0, subsamp = -1, cs = -1;
    if (len > (size_t)(unsigned long)-1) return ct_errorf(err, "%s: JPEG too large", name);
    size_t end;
    JpegWalk walk = jpeg_walk_markers(data, len, &end);
    if (walk == JPEG_WALK_TRUNCATED)
        return ct_errorf(err, "%s: truncated JPEG: Premature end of JPEG file (data ends at byte "
                         "%zu before the end-of-image marker)", name, end);
    if (walk == JPEG_WALK_CORRUPT)
        return ct_errorf(err, "%s: corrupt JPEG: bad marker segment length at byte %zu", name, end);
    // tjDecompressHeader3's return value is not a reliable verdict: it fails
    // on libjpeg warnings and on sampling factors TurboJPEG has no name for
    // (both of which Pillow and tjDecompress2 accept), and it can return 0
    // for a header it could not read. The outputs decide.
    tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &cs);
    if (w <= 0 || h <= 0) return ct_errorf(err, "%s: JPEG header: %s", name, tjGetErrorStr2(tj));
    int is_cmyk = (cs == TJCS_CMYK || cs == TJCS_YCCK);
    if (!is_cmyk && cs != TJCS_RGB && cs != TJCS_YCbCr && cs != TJCS_GRAY)
        return ct_errorf(err, "%s: JPEG has an unsupported colour space: %s", name,
                         tjGetErrorStr2(tj));
    if (image_check_limits(lim, (uint32_t)w, (uint32_t)h, is_cmyk ? 4 : 3, "JPEG", name, err))
        return -1;
    if (image_alloc_rgb(wk, out, (uint32_t)w, (uint32_t)h, name, err)) return -1;
    // Default flags: ISLOW DCT and fancy upsampling, as Pillow decodes (no
    // DCT scaling either: it would change the pixels).
    // TJFLAG_LIMITSCANS only refuses progressive files with > 500 scans
    // (a denial-of-service pattern); no real image has that many.
    int flags = TJFLAG_LIMITSCANS;
    uint8_t *dst = out->rgb;
    size_t npix = (size_t)w * (size_t)h;
    if (is_cmyk) {
        if (image_work_grow(&wk->raw, &wk->raw_cap, npix * 4)) {
            ct_errorf(err, "%s: out of memory for %dx%d CMYK pixels", name, w, h);
            goto fail;
        }
        dst = wk->raw;
    }
    if (tjDecompress2(tj, data, (unsigned long)len, dst, w, 0, h, is_cmyk ? TJPF_CMYK : TJPF_RGB,
                      flags) != 0) {
        // Warnings (e.g. extraneous bytes, a corrupt scan that libjpeg
        // fills in) are ignored, as Pillow ignores them; truncation was
        // caught above.
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) != TJERR_WARNING || !jpeg_is_warning_text(msg)) {
            ct_errorf(err, "%s: JPEG data: %s", name, msg);
            goto fail;
        }
    }
    if (is_cmyk) {
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *p = wk->raw + 4 * i;
            unsigned nk = p[3];  // 255 - (255 - stored k): Adobe inversion
            out->rgb[3 * i + 0] = cmyk_channel(255u - p[0], nk);
            out->rgb[3 * i + 1] = cmyk_channel(255u - p[1], nk);
            out->rgb[3 * i + 2] = cmyk_channel(255u - p[2], nk);
        }
    }
    return 0;
fail:
    out->rgb = NULL;
    out->width = out->height = 0;
    return -1;
}

// ---- entry points ----

int image_work_decode_rgb8(ImageWork *w, ImageRGB8 *out, const uint8_t *data, size_t len,
                           const ImageLimits *lim, const char *name, CtError *err) {
    out->width = out->height = 0;
    out->rgb = NULL;
    ImageLimits def;
    if (!lim) {
        image_limits_default(&def);
        lim = &def;
    }
    if (!name) name = "(image)";
    if (len > lim->max_file_bytes)
        return ct_errorf(err, "%s: file is %zu bytes, more than the limit of %zu", name, len,
                         lim->max_file_bytes);
    switch (image_sniff(data, len)) {
        case IMAGE_FMT_PNG: return png_decode_rgb8(w, out, data, len, lim, name, err);
        case IMAGE_FMT_JPEG: return jpeg_decode(w, out, data, len, lim, name, err);
        default: return ct_errorf(err, "%s: not a PNG or JPEG image", name);
    }
}

// Reads path into w->file, as ct_read_file does but into the reused buffer.
static int work_read_file(ImageWork *w, const char *path, size_t max_len, size_t *len,
                          CtError *err) {
    return ct_read_file_reuse(path, &w->file, &w->file_cap, len, max_len, err);
}

int image_work_load_rgb8(ImageWork *w, ImageRGB8 *out, const char *path, const ImageLimits *lim,
                         CtError *err) {
    out->width = out->height = 0;
    out->rgb = NULL;
    ImageLimits def;
    if (!lim) {
        image_limits_default(&def);
        lim = &def;
    }
    size_t len;
    if (work_read_file(w, path, lim->max_file_bytes, &len, err)) return -1;
    return image_work_decode_rgb8(w, out, w->file, len, lim, path, err);
}

// The one-off entry points: a workspace for one image, whose pixel buffer
// (allocated to the exact size) the caller then owns.
static int take_rgb(ImageWork *w, ImageRGB8 *out, int rc) {
    if (rc == 0) w->rgb = NULL;  // out->rgb is it
    image_work_free(w);
    return rc;
}

int image_decode_rgb8(ImageRGB8 *out, const uint8_t *data, size_t len, const ImageLimits *lim,
                      const char *name, CtError *err) {
    ImageWork w;
    image_work_init(&w);
    return take_rgb(&w, out, image_work_decode_rgb8(&w, out, data, len, lim, name, err));
}

int image_load_rgb8(ImageRGB8 *out, const char *path, const ImageLimits *lim, CtError *err) {
    ImageWork w;
    image_work_init(&w);
    return take_rgb(&w, out, image_work_load_rgb8(&w, out, path, lim, err));
}

// ---- writing ----

int image_write_png_gray8(const char *path, const uint8_t *pix, uint32_t width, uint32_t height,
                          CtError *err) {
    size_t len;
    if (width == 0 || height == 0 || ct_mul_size(&len, width, height))
        return ct_errorf(err, "%s: cannot write a %ux%u image", path, width, height);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return ct_errorf(err, "%s: out of memory creating the PNG encoder", path);
    int rc = -1, r;
    void *png = NULL;
    struct spng_ihdr ihdr = {0};
    ihdr.width = width;
    ihdr.height = height;
    ihdr.bit_depth = 8;
    ihdr.color_type = SPNG_COLOR_TYPE_GRAYSCALE;
    if ((r = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1)) != 0 ||
        (r = spng_set_ihdr(ctx, &ihdr)) != 0 ||
        (r = spng_encode_image(ctx, pix, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE)) != 0) {
        ct_errorf(err, "%s: PNG encode: %s", path, spng_strerror(r));
        goto done;
    }
    size_t png_len;
    png = spng_get_png_buffer(ctx, &png_len, &r);
    if (!png) {
        ct_errorf(err, "%s: PNG encode: %s", path, spng_strerror(r));
        goto done;
    }
    // No fsync: phantoms are regenerable and a sweep writes hundreds of them,
    // where a sync each would dominate the run time.
    rc = ct_write_file_renamed(path, png, png_len, 0, err);
done:
    free(png);
    spng_ctx_free(ctx);
    return rc;
}
