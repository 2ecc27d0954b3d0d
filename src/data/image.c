/*
 * image.c — decoding PNG (libspng) and JPEG (libjpeg-turbo's TurboJPEG API)
 * by content into 8-bit RGB, equal to Pillow 9.4's
 * Image.open(path).convert('RGB'), and writing 8-bit greyscale PNGs.
 *
 * Why by hand rather than with the libraries' own RGB conversions: Pillow's
 * rules are specific (alpha is dropped, never composited; tRNS is ignored;
 * palette indices past the end of PLTE map to grey (i, i, i); 16-bit samples
 * keep their high byte; CMYK JPEGs are read as Adobe-inverted and converted
 * with Pillow's cmyk2rgb), so PNGs are decoded to their raw samples and
 * converted here, where every rule is visible and tested.
 *
 * One deliberate difference from Pillow: a 16-bit greyscale PNG opens in
 * Pillow 9.4 as mode "I" and convert('RGB') clips each sample to 0..255, so
 * any real 16-bit CT slice (values in the thousands) becomes a white
 * rectangle. That is a silent data-destroying conversion, so ctsweep keeps
 * the high byte instead (v >> 8), exactly as Pillow itself does for 16-bit
 * RGB, RGBA and grey+alpha PNGs. tests/unit/test_image.c checks this rule
 * and tests/data/compare_pil.py reports the difference from Pillow.
 *
 * Damaged files: a JPEG must reach its end-of-image marker (Pillow refuses
 * it otherwise: "image file is truncated"), and libjpeg's warnings about
 * corrupt but complete data are ignored, as Pillow ignores them. A PNG must
 * have every chunk complete with a valid CRC up to IEND, which is stricter
 * than Pillow (it skips IDAT CRCs and tolerates a missing IEND): a damaged
 * file is reported, never half-trusted.
 *
 * Every size is checked against ImageLimits from the header, before any
 * pixel buffer is allocated; every failure is returned as one CtError line
 * naming the file.
 */
#include "data/image.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <spng.h>
#include <turbojpeg.h>

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

// ---- guards ----

// Checks the header's size against the limits. bytes_per_pixel is the
// largest per-pixel footprint any buffer of this decode will have.
static int check_limits(const ImageLimits *lim, uint32_t w, uint32_t h, size_t bytes_per_pixel,
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

// Allocates the (h, w, 3) output; sizes were checked by check_limits.
static int alloc_rgb(ImageRGB8 *out, uint32_t w, uint32_t h, const char *name, CtError *err) {
    size_t dims[3] = {w, h, 3};
    size_t bytes;
    if (ct_mul_sizes(&bytes, dims, 3)) return ct_errorf(err, "%s: image size overflows", name);
    out->rgb = malloc(bytes);
    if (!out->rgb) return ct_errorf(err, "%s: out of memory for %ux%u pixels", name, w, h);
    out->width = w;
    out->height = h;
    return 0;
}

// ---- PNG ----

static unsigned png_channels(uint8_t color_type) {
    switch (color_type) {
        case SPNG_COLOR_TYPE_GRAYSCALE: return 1;
        case SPNG_COLOR_TYPE_TRUECOLOR: return 3;
        case SPNG_COLOR_TYPE_INDEXED: return 1;
        case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: return 2;
        case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: return 4;
        default: return 0;
    }
}

// Sample i of a raw (big-endian, packed) PNG row, as 8 bits the way Pillow
// unpacks it: low depths scaled to 0..255 (L;1, L;2, L;4), 16 bits by their
// high byte. For palette images the raw index is returned (scale = 0).
static inline unsigned png_sample(const uint8_t *row, size_t i, unsigned depth, int scale) {
    switch (depth) {
        case 8: return row[i];
        case 16: return row[2 * i];  // high byte (big-endian)
        default: {
            size_t bit = i * depth;
            unsigned shift = 8 - depth - (unsigned)(bit & 7);
            unsigned v = (row[bit >> 3] >> shift) & ((1u << depth) - 1);
            if (!scale) return v;
            return v * (255u / ((1u << depth) - 1));  // 1 -> x255, 2 -> x85, 4 -> x17
        }
    }
}

static uint32_t crc_table[256];

static void crc_table_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        crc_table[n] = c;
    }
}

static uint32_t png_crc(const uint8_t *d, size_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_table_init);
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ d[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// Checks that every chunk up to IEND is complete and has a valid CRC.
// libspng checks the CRCs of the chunks it reads but stops after the image
// data, so a file cut inside the last IDAT's CRC or before IEND, or with a
// corrupt IDAT CRC, would otherwise decode. Pillow refuses files cut inside
// the image data and files with bad header-chunk CRCs; ctsweep refuses all
// of these, since a damaged file is better reported than half-trusted.
static int png_check_chunks(const uint8_t *d, size_t n, const char *name, CtError *err) {
    size_t i = 8;
    for (;;) {
        if (n - i < 12) {
            if (i == n)
                return ct_errorf(err, "%s: truncated PNG: data ends at byte %zu before IEND", name, n);
            return ct_errorf(err, "%s: truncated PNG: chunk header at byte %zu is cut off", name, i);
        }
        size_t len = be32(d + i);
        char type[5] = {0};
        for (int k = 0; k < 4; k++) {
            uint8_t c = d[i + 4 + k];
            type[k] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? (char)c : '?';
        }
        if (len > n - i - 12)
            return ct_errorf(err, "%s: truncated PNG: chunk '%s' at byte %zu needs %zu bytes, "
                             "%zu are left", name, type, i, len + 12, n - i);
        if (png_crc(d + i + 4, len + 4) != be32(d + i + 8 + len))
            return ct_errorf(err, "%s: corrupt PNG: chunk '%s' at byte %zu has a bad CRC", name,
                             type, i);
        if (memcmp(d + i + 4, "IEND", 4) == 0) return 0;
        i += len + 12;
    }
}

static int png_decode(ImageRGB8 *out, const uint8_t *data, size_t len, const ImageLimits *lim,
                      const char *name, CtError *err) {
    if (png_check_chunks(data, len, name, err)) return -1;
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return ct_errorf(err, "%s: out of memory creating the PNG decoder", name);
    uint8_t *raw = NULL;
    int rc = -1, r;
    // Ancillary chunks (text, ICC profiles) are kept in memory by libspng;
    // bound them so a hostile file cannot make us allocate without limit.
    spng_set_chunk_limits(ctx, (size_t)64 << 20, (size_t)64 << 20);
    if ((r = spng_set_png_buffer(ctx, data, len)) != 0) {
        ct_errorf(err, "%s: PNG: %s", name, spng_strerror(r));
        goto done;
    }
    struct spng_ihdr ihdr;
    if ((r = spng_get_ihdr(ctx, &ihdr)) != 0) {
        ct_errorf(err, "%s: PNG header: %s", name, spng_strerror(r));
        goto done;
    }
    unsigned ch = png_channels(ihdr.color_type);
    unsigned depth = ihdr.bit_depth;
    if (ch == 0 || (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16)) {
        ct_errorf(err, "%s: PNG has an unsupported color type %u / bit depth %u", name,
                  ihdr.color_type, depth);
        goto done;
    }
    size_t bpp = ch * (depth == 16 ? 2u : 1u);
    if (check_limits(lim, ihdr.width, ihdr.height, bpp > 3 ? bpp : 3, "PNG", name, err)) goto done;

    // Palette: entries past the end of PLTE are grey (i, i, i), as in
    // Pillow's palette, which starts out as a grey ramp.
    uint8_t pal[256][3];
    if (ihdr.color_type == SPNG_COLOR_TYPE_INDEXED) {
        struct spng_plte plte;
        if ((r = spng_get_plte(ctx, &plte)) != 0) {
            ct_errorf(err, "%s: PNG palette: %s", name, spng_strerror(r));
            goto done;
        }
        for (unsigned i = 0; i < 256; i++) {
            if (i < plte.n_entries) {
                pal[i][0] = plte.entries[i].red;
                pal[i][1] = plte.entries[i].green;
                pal[i][2] = plte.entries[i].blue;
            } else {
                pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
            }
        }
    }

    size_t raw_len;
    if ((r = spng_decoded_image_size(ctx, SPNG_FMT_RAW, &raw_len)) != 0) {
        ct_errorf(err, "%s: PNG: %s", name, spng_strerror(r));
        goto done;
    }
    if (raw_len % ihdr.height != 0) {
        ct_errorf(err, "%s: PNG: unexpected decoded size %zu", name, raw_len);
        goto done;
    }
    size_t row_bytes = raw_len / ihdr.height;
    size_t need_bits;
    if (ct_mul_size(&need_bits, (size_t)ihdr.width * ch, depth) || row_bytes < (need_bits + 7) / 8) {
        ct_errorf(err, "%s: PNG: decoded row of %zu bytes is too short", name, row_bytes);
        goto done;
    }
    raw = malloc(raw_len);
    if (!raw) {
        ct_errorf(err, "%s: out of memory for a %zu-byte PNG", name, raw_len);
        goto done;
    }
    // No SPNG_DECODE_TRNS: Pillow's convert('RGB') ignores transparency.
    if ((r = spng_decode_image(ctx, raw, raw_len, SPNG_FMT_RAW, 0)) != 0) {
        ct_errorf(err, "%s: PNG data: %s", name, spng_strerror(r));
        goto done;
    }
    if (alloc_rgb(out, ihdr.width, ihdr.height, name, err)) goto done;

    for (uint32_t y = 0; y < ihdr.height; y++) {
        const uint8_t *row = raw + (size_t)y * row_bytes;
        uint8_t *o = out->rgb + (size_t)y * ihdr.width * 3;
        for (uint32_t x = 0; x < ihdr.width; x++, o += 3) {
            size_t s = (size_t)x * ch;
            switch (ihdr.color_type) {
                case SPNG_COLOR_TYPE_GRAYSCALE:
                case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:  // alpha dropped
                    o[0] = o[1] = o[2] = (uint8_t)png_sample(row, s, depth, 1);
                    break;
                case SPNG_COLOR_TYPE_INDEXED: {
                    const uint8_t *p = pal[png_sample(row, s, depth, 0)];
                    o[0] = p[0];
                    o[1] = p[1];
                    o[2] = p[2];
                    break;
                }
                default:  // truecolor, with or without alpha (dropped)
                    o[0] = (uint8_t)png_sample(row, s + 0, depth, 1);
                    o[1] = (uint8_t)png_sample(row, s + 1, depth, 1);
                    o[2] = (uint8_t)png_sample(row, s + 2, depth, 1);
                    break;
            }
        }
    }
    rc = 0;
done:
    free(raw);
    spng_ctx_free(ctx);
    if (rc) image_free(out);
    return rc;
}

// ---- JPEG ----

typedef enum { JPEG_WALK_EOI, JPEG_WALK_TRUNCATED, JPEG_WALK_CORRUPT } JpegWalk;

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
        while (i < n && d[i] != 0xFF) i++;
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
            while (i < n && d[i] != 0xFF) i++;
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

static int jpeg_decode(ImageRGB8 *out, const uint8_t *data, size_t len, const ImageLimits *lim,
                       const char *name, CtError *err) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return ct_errorf(err, "%s: cannot create the JPEG decoder: %s", name, tjGetErrorStr2(NULL));
    uint8_t *cmyk = NULL;
    int rc = -1;
    int w = 0, h = 0, subsamp = -1, cs = -1;
    if (len > (size_t)(unsigned long)-1) {
        ct_errorf(err, "%s: JPEG too large", name);
        goto done;
    }
    size_t end;
    JpegWalk walk = jpeg_walk_markers(data, len, &end);
    if (walk == JPEG_WALK_TRUNCATED) {
        ct_errorf(err, "%s: truncated JPEG: Premature end of JPEG file (data ends at byte %zu "
                  "before the end-of-image marker)", name, end);
        goto done;
    }
    if (walk == JPEG_WALK_CORRUPT) {
        ct_errorf(err, "%s: corrupt JPEG: bad marker segment length at byte %zu", name, end);
        goto done;
    }
    // tjDecompressHeader3's return value is not a reliable verdict: it fails
    // on libjpeg warnings and on sampling factors TurboJPEG has no name for
    // (both of which Pillow and tjDecompress2 accept), and it can return 0
    // for a header it could not read. The outputs decide.
    tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &cs);
    if (w <= 0 || h <= 0) {
        ct_errorf(err, "%s: JPEG header: %s", name, tjGetErrorStr2(tj));
        goto done;
    }
    int is_cmyk = (cs == TJCS_CMYK || cs == TJCS_YCCK);
    if (!is_cmyk && cs != TJCS_RGB && cs != TJCS_YCbCr && cs != TJCS_GRAY) {
        ct_errorf(err, "%s: JPEG has an unsupported colour space: %s", name, tjGetErrorStr2(tj));
        goto done;
    }
    if (check_limits(lim, (uint32_t)w, (uint32_t)h, is_cmyk ? 4 : 3, "JPEG", name, err)) goto done;
    if (alloc_rgb(out, (uint32_t)w, (uint32_t)h, name, err)) goto done;
    // Default flags: ISLOW DCT and fancy upsampling, as Pillow decodes.
    // TJFLAG_LIMITSCANS only refuses progressive files with > 500 scans
    // (a denial-of-service pattern); no real image has that many.
    int flags = TJFLAG_LIMITSCANS;
    uint8_t *dst = out->rgb;
    if (is_cmyk) {
        cmyk = malloc((size_t)w * (size_t)h * 4);
        if (!cmyk) {
            ct_errorf(err, "%s: out of memory for %dx%d CMYK pixels", name, w, h);
            goto done;
        }
        dst = cmyk;
    }
    if (tjDecompress2(tj, data, (unsigned long)len, dst, w, 0, h, is_cmyk ? TJPF_CMYK : TJPF_RGB,
                      flags) != 0) {
        // Warnings (e.g. extraneous bytes, a corrupt scan that libjpeg
        // fills in) are ignored, as Pillow ignores them; truncation was
        // caught above.
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) != TJERR_WARNING || !jpeg_is_warning_text(msg)) {
            ct_errorf(err, "%s: JPEG data: %s", name, msg);
            goto done;
        }
    }
    if (is_cmyk) {
        size_t npix = (size_t)w * (size_t)h;
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *p = cmyk + 4 * i;
            unsigned nk = p[3];  // 255 - (255 - stored k): Adobe inversion
            out->rgb[3 * i + 0] = cmyk_channel(255u - p[0], nk);
            out->rgb[3 * i + 1] = cmyk_channel(255u - p[1], nk);
            out->rgb[3 * i + 2] = cmyk_channel(255u - p[2], nk);
        }
    }
    rc = 0;
done:
    free(cmyk);
    tjDestroy(tj);
    if (rc) image_free(out);
    return rc;
}

// ---- entry points ----

int image_decode_rgb8(ImageRGB8 *out, const uint8_t *data, size_t len, const ImageLimits *lim,
                      const char *name, CtError *err) {
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
        case IMAGE_FMT_PNG: return png_decode(out, data, len, lim, name, err);
        case IMAGE_FMT_JPEG: return jpeg_decode(out, data, len, lim, name, err);
        default: return ct_errorf(err, "%s: not a PNG or JPEG image", name);
    }
}

int image_load_rgb8(ImageRGB8 *out, const char *path, const ImageLimits *lim, CtError *err) {
    out->width = out->height = 0;
    out->rgb = NULL;
    ImageLimits def;
    if (!lim) {
        image_limits_default(&def);
        lim = &def;
    }
    uint8_t *data;
    size_t len;
    if (ct_read_file(path, &data, &len, lim->max_file_bytes, err)) return -1;
    int rc = image_decode_rgb8(out, data, len, lim, path, err);
    free(data);
    return rc;
}

// ---- writing ----

// Writes through a temporary name and renames, so a reader never sees half
// a file. No fsync: these files (phantoms) are regenerable and a sweep
// writes hundreds of them, where a sync each would dominate the run time.
static int write_file_renamed(const char *path, const void *buf, size_t len, CtError *err) {
    char *tmp = ct_asprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ct_errorf(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t wrote = fwrite(buf, 1, len, f);
    int bad = wrote != len;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        ct_errorf(err, "%s: write failed: %s", path, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        ct_errorf(err, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

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
    rc = write_file_renamed(path, png, png_len, err);
done:
    free(png);
    spng_ctx_free(ctx);
    return rc;
}
