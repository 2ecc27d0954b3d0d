/*
 * png.c — decoding a PNG to 8-bit RGB equal to Pillow 9.4's
 * Image.open(path).convert('RGB'): libspng reads the header chunks (IHDR,
 * PLTE), libdeflate inflates the image data, and the rows are unfiltered and
 * converted here (the rules shared with the JPEG path are in image.c's
 * opening comment).
 *
 * Why libdeflate, and why the rows are unfiltered here rather than by
 * libspng: profiling the decoding of the COVID-CT set, libspng's row
 * unfiltering (Debian builds it without its SIMD code) and zlib's inflate
 * (fed one scanline per call) were 46% of all the time. Inflating the image
 * data of the 510 COVID-CT PNGs in one call each (239 MiB of scanlines, one
 * core of an AMD EPYC with AVX2, best of 5 on a shared machine,
 * 2026-12-07): libdeflate 0.43 s, the hand-written inflater ctsweep had
 * before 0.55 s, zlib's uncompress 0.92 s. So the IDAT stream is inflated
 * in one call into a reused buffer of exactly the scanlines' size, by a
 * decompressor kept in the workspace (one per decoding thread); each row is
 * unfiltered (SSE2 for 3- and 4-byte pixels) and converted to RGB while it
 * is in cache; 8-bit RGB rows are unfiltered straight into the output.
 *
 * Integrity: every chunk's CRC is checked here (libdeflate's CRC-32, three
 * times zlib's speed; libspng is told not to repeat it) and libdeflate
 * checks the zlib stream's Adler-32. Both are skipped in fuzzing builds, so
 * that mutated files reach the decoder.
 *
 * One deliberate difference from Pillow: a 16-bit greyscale PNG opens in
 * Pillow 9.4 as mode "I" and convert('RGB') clips each sample to 0..255, so
 * any real 16-bit CT slice (values in the thousands) becomes a white
 * rectangle. That is a silent data-destroying conversion, so ctsweep keeps
 * the high byte instead (v >> 8), exactly as Pillow itself does for 16-bit
 * RGB, RGBA and grey+alpha PNGs. tests/unit/test_image.c checks this rule
 * and tests/data/compare_pil.py reports the difference from Pillow.
 *
 * Damaged files: a PNG must have every chunk complete with a valid CRC up
 * to IEND, and its zlib stream must be intact (Adler-32 included) and hold
 * exactly the scanlines its header's size needs. That is stricter than
 * Pillow, which skips IDAT CRCs, tolerates a missing IEND and stops reading
 * once the image is full: a damaged file is reported, never half-trusted.
 * Bytes after the end of the zlib stream are ignored, as Pillow and libpng
 * ignore them.
 *
 * Every size is checked against ImageLimits from the header, and the
 * scanline buffer's size for overflow, before any pixel buffer is
 * allocated; every failure is returned as one CtError line naming the file.
 */
#include "data/png.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <spng.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// ---- chunks ----

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// Checks that every chunk up to IEND is complete and has a valid CRC, and
// finds the first IDAT chunk (*idat = 0 when there is none). This is the
// only CRC check: libspng is told not to repeat it. libspng alone would
// stop after the image data, so a file cut inside the last IDAT's CRC or
// before IEND, or with a corrupt IDAT CRC, would decode; Pillow refuses
// files cut inside the image data and files with bad header-chunk CRCs;
// ctsweep refuses all of these, since a damaged file is better reported
// than half-trusted.
static int png_walk_chunks(const uint8_t *d, size_t n, size_t *idat, const char *name,
                           CtError *err) {
    size_t i = 8;
    *idat = 0;
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
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
        // (Fuzzing builds skip this, as libpng's and others' do, so that
        // mutated files reach the decoder instead of stopping here.)
        if (libdeflate_crc32(0, d + i + 4, len + 4) != be32(d + i + 8 + len))
            return ct_errorf(err, "%s: corrupt PNG: chunk '%s' at byte %zu has a bad CRC", name,
                             type, i);
#endif
        if (!*idat && memcmp(d + i + 4, "IDAT", 4) == 0) *idat = i;
        if (memcmp(d + i + 4, "IEND", 4) == 0) return 0;
        i += len + 12;
    }
}

// ---- image data: zlib stream (libdeflate) ----

// What is wrong with the 2-byte zlib header at in (RFC 1950), in zlib's
// words, or NULL. libdeflate refuses the same headers.
static const char *zlib_header_problem(const uint8_t *in, size_t n) {
    if (n < 2) return "the zlib stream ends inside its header";
    unsigned cmf = in[0], flg = in[1];
    if (((cmf << 8) | flg) % 31 != 0) return "incorrect zlib header check";
    if ((cmf & 15) != 8) return "unknown compression method in the zlib header";
    if ((cmf >> 4) > 7) return "invalid window size in the zlib header";
    if (flg & 0x20) return "the zlib stream needs a preset dictionary";
    return NULL;
}

// What is wrong with a zlib stream libdeflate refused (or that did not
// fill out[0, out_len)): its header, its deflate data, its length, or its
// Adler-32 trailer (missing or wrong). libdeflate says only "bad data" or
// "insufficient space", and it takes the last 4 bytes of the input to be
// the trailer whatever the deflate data says, so a stream cut inside its
// trailer can read as cut deflate data. A file's error line should say
// which it is, so the deflate data is decompressed again on its own. Runs
// on failures only; writes into out and buf[0, buf_len).
static const char *zlib_diagnose(struct libdeflate_decompressor *dec, const uint8_t *in,
                                 size_t n, uint8_t *out, size_t out_len, char *buf,
                                 size_t buf_len) {
    const char *bad = zlib_header_problem(in, n);
    if (bad) return bad;
    size_t used = 0, got = 0;
    switch (libdeflate_deflate_decompress_ex(dec, in + 2, n - 2, out, out_len, &used, &got)) {
        case LIBDEFLATE_SUCCESS: break;
        case LIBDEFLATE_INSUFFICIENT_SPACE:
            snprintf(buf, buf_len, "the zlib stream does not end after the %zu bytes of "
                     "scanlines the header's size needs", out_len);
            return buf;
        default: return "corrupt or truncated deflate data";
    }
    if (got < out_len) {
        snprintf(buf, buf_len, "the image data ends after %zu of %zu bytes", got, out_len);
        return buf;
    }
    if (n - 2 - used < 4) return "the zlib stream ends before its Adler-32 checksum";
    snprintf(buf, buf_len, "Adler-32 checksum mismatch (stored %08x, computed %08x)",
             be32(in + 2 + used), libdeflate_adler32(1, out, got));
    return buf;
}

// The IDAT run that starts at byte idat, inflated into out[0, out_len),
// which must be filled exactly: out_len is what the header's size needs.
// A single IDAT is read in place; several are joined first into w->zdata
// (libdeflate takes the whole stream at once). Bytes after the end of the
// zlib stream are ignored, as Pillow and libpng ignore them; a stream that
// holds more than out_len bytes is refused (Pillow would stop reading once
// the image is full, but libdeflate cannot stop there, and such a stream
// does not match the header's size).
static int png_inflate(ImageWork *w, uint8_t *out, size_t out_len, const uint8_t *d, size_t idat,
                       const char *name, CtError *err) {
    if (!w->inflater && !(w->inflater = libdeflate_alloc_decompressor()))
        return ct_errorf(err, "%s: out of memory for the PNG decompressor", name);
    struct libdeflate_decompressor *dec = w->inflater;
    size_t n = 0, chunks = 0;
    for (size_t i = idat; memcmp(d + i + 4, "IDAT", 4) == 0; i += be32(d + i) + 12) {
        n += be32(d + i);  // <= the file's length: the chunks were walked
        chunks++;
    }
    const uint8_t *in = d + idat + 8;
    if (chunks > 1) {
        if (image_work_grow(&w->zdata, &w->zdata_cap, n))
            return ct_errorf(err, "%s: out of memory for %zu bytes of PNG data", name, n);
        size_t at = 0;
        for (size_t i = idat; memcmp(d + i + 4, "IDAT", 4) == 0; i += be32(d + i) + 12) {
            memcpy(w->zdata + at, d + i + 8, be32(d + i));
            at += be32(d + i);
        }
        in = w->zdata;
    }
    size_t got = 0;
    enum libdeflate_result r;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    r = libdeflate_zlib_decompress(dec, in, n, out, out_len, &got);
#else
    // Fuzzing builds skip the Adler-32, as they skip the chunk CRCs, so
    // that mutated image data reaches the unfiltering and conversion.
    r = zlib_header_problem(in, n)
            ? LIBDEFLATE_BAD_DATA
            : libdeflate_deflate_decompress(dec, in + 2, n - 2, out, out_len, &got);
#endif
    if (r == LIBDEFLATE_SUCCESS && got == out_len) return 0;
    char buf[160];
    return ct_errorf(err, "%s: PNG data: %s", name,
                     zlib_diagnose(dec, in, n, out, out_len, buf, sizeof buf));
}

// ---- scanlines ----

// Reverses a row's filter: dst[i] = src[i] + predictor, where the
// predictor reads this row's unfiltered bytes (a: one pixel left) and the
// row above (b: above, c: above left). dst may be src. n is a multiple of
// bpp (whole pixels, or bpp 1 for depths below 8). bpp is a constant in
// every caller (see png_unfilter), so the per-pixel loops unroll and a and c
// stay in registers instead of being reloaded from the bytes just stored.
static inline __attribute__((always_inline)) void unfilter_bpp(uint8_t *dst, const uint8_t *src,
                                                               const uint8_t *prev, size_t n,
                                                               unsigned ft, const size_t bpp) {
    uint8_t a[8] = {0}, c[8] = {0};
    switch (ft) {
        case 0:
            if (dst != src) memcpy(dst, src, n);
            break;
        case 1:
            for (size_t i = 0; i < n; i += bpp)
                for (size_t k = 0; k < bpp; k++) dst[i + k] = a[k] = (uint8_t)(src[i + k] + a[k]);
            break;
        case 2:
            for (size_t i = 0; i < n; i++) dst[i] = (uint8_t)(src[i] + prev[i]);
            break;
        case 3:
            for (size_t i = 0; i < n; i += bpp)
                for (size_t k = 0; k < bpp; k++)
                    dst[i + k] = a[k] = (uint8_t)(src[i + k] + ((a[k] + prev[i + k]) >> 1));
            break;
        default:  // 4, Paeth; a = c = 0 left of the first pixel, as the spec says
            for (size_t i = 0; i < n; i += bpp) {
                for (size_t k = 0; k < bpp; k++) {
                    int b = prev[i + k];
                    int pa = b - c[k], pb = a[k] - c[k], pc = pa + pb;
                    pa = pa < 0 ? -pa : pa;
                    pb = pb < 0 ? -pb : pb;
                    pc = pc < 0 ? -pc : pc;
                    int p = (pa <= pb && pa <= pc) ? a[k] : pb <= pc ? b : c[k];
                    dst[i + k] = a[k] = (uint8_t)(src[i + k] + p);
                    c[k] = (uint8_t)b;
                }
            }
            break;
    }
}

#if defined(__SSE2__)
// Sub, Average and Paeth for 3- and 4-byte pixels (8-bit RGB and RGBA, most
// PNGs), one pixel per step in 16-bit lanes: the same arithmetic as
// unfilter_bpp, branch-free, all channels at once.

// Loads a pixel as 4 bytes, whatever bpp: the buffers are laid out so that
// a byte exists after every row's last pixel (see PNG_ROW_PAD); for 3-byte
// pixels that fourth lane is computed and never stored.
static inline __m128i px_load(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)v), _mm_setzero_si128());
}

// Stores exactly bpp bytes: in place, the byte after a 3-byte pixel is the
// next pixel's still filtered first byte.
static inline void px_store(uint8_t *p, __m128i v, size_t bpp) {
    uint32_t x = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(v, v));
    if (bpp == 4) {
        memcpy(p, &x, 4);
    } else {
        uint16_t lo = (uint16_t)x;
        memcpy(p, &lo, 2);
        p[2] = (uint8_t)(x >> 16);
    }
}

static inline __m128i abs16(__m128i x) {
    return _mm_max_epi16(x, _mm_sub_epi16(_mm_setzero_si128(), x));
}

// m ? x : y, lane by lane (m all ones or all zeros).
static inline __m128i select16(__m128i m, __m128i x, __m128i y) {
    return _mm_or_si128(_mm_and_si128(m, x), _mm_andnot_si128(m, y));
}

static inline __attribute__((always_inline)) void unfilter_simd(uint8_t *dst, const uint8_t *src,
                                                                const uint8_t *prev, size_t n,
                                                                unsigned ft, const size_t bpp) {
    const __m128i lo = _mm_set1_epi16(0xFF);
    __m128i a = _mm_setzero_si128(), c = _mm_setzero_si128();
    if (ft == 1) {
        for (size_t i = 0; i < n; i += bpp) {
            a = _mm_and_si128(_mm_add_epi16(px_load(src + i), a), lo);
            px_store(dst + i, a, bpp);
        }
    } else if (ft == 3) {
        for (size_t i = 0; i < n; i += bpp) {
            __m128i avg = _mm_srli_epi16(_mm_add_epi16(a, px_load(prev + i)), 1);
            a = _mm_and_si128(_mm_add_epi16(px_load(src + i), avg), lo);
            px_store(dst + i, a, bpp);
        }
    } else {
        for (size_t i = 0; i < n; i += bpp) {
            __m128i b = px_load(prev + i);
            __m128i pa = _mm_sub_epi16(b, c), pb = _mm_sub_epi16(a, c);
            __m128i pc = abs16(_mm_add_epi16(pa, pb));
            pa = abs16(pa);
            pb = abs16(pb);
            __m128i m = _mm_min_epi16(pa, _mm_min_epi16(pb, pc));
            __m128i p = select16(_mm_cmpeq_epi16(pa, m), a,
                                 select16(_mm_cmpeq_epi16(pb, m), b, c));
            a = _mm_and_si128(_mm_add_epi16(px_load(src + i), p), lo);
            px_store(dst + i, a, bpp);
            c = b;
        }
    }
}
#endif

static void png_unfilter(uint8_t *dst, const uint8_t *src, const uint8_t *prev, size_t n,
                         unsigned ft, size_t bpp) {
#if defined(__SSE2__)
    if ((bpp == 3 || bpp == 4) && (ft == 1 || ft == 3 || ft == 4)) {
        if (bpp == 3) unfilter_simd(dst, src, prev, n, ft, 3);
        else unfilter_simd(dst, src, prev, n, ft, 4);
        return;
    }
#endif
    switch (bpp) {
        case 1: unfilter_bpp(dst, src, prev, n, ft, 1); break;
        case 2: unfilter_bpp(dst, src, prev, n, ft, 2); break;
        case 3: unfilter_bpp(dst, src, prev, n, ft, 3); break;
        case 4: unfilter_bpp(dst, src, prev, n, ft, 4); break;
        case 6: unfilter_bpp(dst, src, prev, n, ft, 6); break;
        default: unfilter_bpp(dst, src, prev, n, ft, 8); break;
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

typedef struct {
    unsigned color_type, depth, channels;
    uint8_t pal[256][3];  // palette images only
} PngFormat;

// One unfiltered row of n pixels to RGB at o, o + step, o + 2 step, ...
// (step 3 for a whole row, 3 * dx for an Adam7 pass).
static void png_row_to_rgb(uint8_t *o, size_t step, const uint8_t *row, size_t n,
                           const PngFormat *f) {
    unsigned ch = f->channels, depth = f->depth;
    if (depth == 8 && step == 3) {  // the common cases, written to be fast
        switch (f->color_type) {
            case SPNG_COLOR_TYPE_TRUECOLOR:
                memcpy(o, row, n * 3);
                return;
            case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA:
                // 4-byte copies; each one's fourth byte is overwritten by
                // the next pixel, and the last pixel is copied exactly.
                for (size_t x = 0; x + 1 < n; x++) memcpy(o + 3 * x, row + 4 * x, 4);
                memcpy(o + 3 * (n - 1), row + 4 * (n - 1), 3);
                return;
            case SPNG_COLOR_TYPE_GRAYSCALE:
                for (size_t x = 0; x < n; x++) o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = row[x];
                return;
            default: break;
        }
    }
    for (size_t x = 0; x < n; x++, o += step) {
        size_t s = x * ch;
        switch (f->color_type) {
            case SPNG_COLOR_TYPE_GRAYSCALE:
            case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:  // alpha dropped
                o[0] = o[1] = o[2] = (uint8_t)png_sample(row, s, depth, 1);
                break;
            case SPNG_COLOR_TYPE_INDEXED: {
                const uint8_t *p = f->pal[png_sample(row, s, depth, 0)];
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

// Zero bytes after the last scanline. Every other row is followed by a
// byte of the buffer too (the next row's filter byte; the zero row is
// followed by the first scanline; an output row by the next output row), so
// the unfilters may read a whole 4-byte word at each pixel.
#define PNG_ROW_PAD 8

// Adam7: pass origins and steps (x0, y0, dx, dy).
static const uint8_t adam7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                    {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

// The size of pass p (p = 0 when not interlaced); 0 when it is empty.
static void png_pass_size(unsigned interlace, int p, size_t width, size_t height, size_t *pw,
                          size_t *ph) {
    if (!interlace) {
        *pw = width;
        *ph = height;
        return;
    }
    size_t x0 = adam7[p][0], y0 = adam7[p][1], dx = adam7[p][2], dy = adam7[p][3];
    *pw = (width + dx - 1 - x0) / dx;  // dx - 1 >= x0 in every pass
    *ph = (height + dy - 1 - y0) / dy;
}

// The bytes of a row of `pixels` pixels; png_scanlines_size has checked
// that the whole row's size does not overflow.
static size_t png_row_bytes(size_t pixels, const PngFormat *f) {
    return (pixels * f->channels * f->depth + 7) / 8;
}

// *out = a + b; -1 when that overflows.
static int size_add(size_t *out, size_t a, size_t b) {
    if (a > SIZE_MAX - b) return -1;
    *out = a + b;
    return 0;
}

// The bytes of a whole row (*full_row) and of the filtered scanlines of
// every pass, each a filter byte and the packed samples (*scan_len), every
// product and sum checked. Returns -1 when one overflows. (The size limits
// already keep them far below it; this keeps the allocation safe whatever
// limits a caller sets.)
static int png_scanlines_size(size_t *full_row, size_t *scan_len, unsigned interlace,
                              size_t width, size_t height, const PngFormat *f) {
    size_t bits, dims[3] = {width, f->channels, f->depth};
    if (ct_mul_sizes(&bits, dims, 3) || size_add(&bits, bits, 7)) return -1;
    *full_row = bits / 8;
    *scan_len = 0;
    for (int p = 0; p < (interlace ? 7 : 1); p++) {
        size_t pw, ph, rows;
        png_pass_size(interlace, p, width, height, &pw, &ph);
        if (!pw || !ph) continue;
        if (ct_mul_size(&rows, ph, 1 + png_row_bytes(pw, f)) || size_add(scan_len, *scan_len, rows))
            return -1;
    }
    return 0;
}

// ---- decode ----

int png_decode_rgb8(ImageWork *w, ImageRGB8 *out, const uint8_t *data, size_t len,
                    const ImageLimits *lim, const char *name, CtError *err) {
    size_t idat;
    if (png_walk_chunks(data, len, &idat, name, err)) return -1;
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return ct_errorf(err, "%s: out of memory creating the PNG decoder", name);
    int rc = -1, r;
    // Ancillary chunks (text, ICC profiles) are kept in memory by libspng;
    // bound them so a hostile file cannot make us allocate without limit.
    spng_set_chunk_limits(ctx, (size_t)64 << 20, (size_t)64 << 20);
    spng_set_crc_action(ctx, SPNG_CRC_USE, SPNG_CRC_USE);  // checked above
    if ((r = spng_set_png_buffer(ctx, data, len)) != 0) {
        ct_errorf(err, "%s: PNG: %s", name, spng_strerror(r));
        goto done;
    }
    struct spng_ihdr ihdr;
    if ((r = spng_get_ihdr(ctx, &ihdr)) != 0) {
        ct_errorf(err, "%s: PNG header: %s", name, spng_strerror(r));
        goto done;
    }
    PngFormat f;
    f.color_type = ihdr.color_type;
    f.depth = ihdr.bit_depth;
    switch (ihdr.color_type) {
        case SPNG_COLOR_TYPE_GRAYSCALE: f.channels = 1; break;
        case SPNG_COLOR_TYPE_TRUECOLOR: f.channels = 3; break;
        case SPNG_COLOR_TYPE_INDEXED: f.channels = 1; break;
        case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: f.channels = 2; break;
        case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: f.channels = 4; break;
        default: f.channels = 0; break;
    }
    unsigned depth = f.depth;
    if (f.channels == 0 ||
        (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16)) {
        ct_errorf(err, "%s: PNG has an unsupported color type %u / bit depth %u", name,
                  ihdr.color_type, depth);
        goto done;
    }
    if (ihdr.interlace_method > 1) {
        ct_errorf(err, "%s: PNG has an unknown interlace method %u", name, ihdr.interlace_method);
        goto done;
    }
    size_t bpp = f.channels * (depth == 16 ? 2u : 1u);
    if (image_check_limits(lim, ihdr.width, ihdr.height, bpp > 3 ? bpp : 3, "PNG", name, err))
        goto done;
    if (!idat) {
        ct_errorf(err, "%s: PNG has no image data (IDAT)", name);
        goto done;
    }

    // Palette: entries past the end of PLTE are grey (i, i, i), as in
    // Pillow's palette, which starts out as a grey ramp.
    if (ihdr.color_type == SPNG_COLOR_TYPE_INDEXED) {
        struct spng_plte plte;
        if ((r = spng_get_plte(ctx, &plte)) != 0) {
            ct_errorf(err, "%s: PNG palette: %s", name, spng_strerror(r));
            goto done;
        }
        for (unsigned i = 0; i < 256; i++) {
            if (i < plte.n_entries) {
                f.pal[i][0] = plte.entries[i].red;
                f.pal[i][1] = plte.entries[i].green;
                f.pal[i][2] = plte.entries[i].blue;
            } else {
                f.pal[i][0] = f.pal[i][1] = f.pal[i][2] = (uint8_t)i;
            }
        }
    }

    // The buffer: a zero row that stands above each pass's first row, the
    // filtered scanlines of every pass (exactly what the zlib stream must
    // hold), then PNG_ROW_PAD zero bytes.
    uint32_t width = ihdr.width, height = ihdr.height;
    int npass = ihdr.interlace_method ? 7 : 1;
    size_t full_row, scan_len, buf_len;
    if (png_scanlines_size(&full_row, &scan_len, ihdr.interlace_method, width, height, &f) ||
        size_add(&buf_len, full_row, scan_len) || size_add(&buf_len, buf_len, PNG_ROW_PAD)) {
        ct_errorf(err, "%s: PNG of %ux%u: the size of its scanlines overflows", name, width,
                  height);
        goto done;
    }
    if (image_work_grow(&w->raw, &w->raw_cap, buf_len)) {
        ct_errorf(err, "%s: out of memory for %zu bytes of PNG scanlines", name, scan_len);
        goto done;
    }
    uint8_t *zero = w->raw, *raw = w->raw + full_row;
    memset(zero, 0, full_row);
    memset(raw + scan_len, 0, PNG_ROW_PAD);
    // No tRNS handling: Pillow's convert('RGB') ignores transparency.
    if (png_inflate(w, raw, scan_len, data, idat, name, err)) goto done;
    if (image_alloc_rgb(w, out, width, height, name, err)) goto done;

    // A non-interlaced 8-bit RGB row is unfiltered straight into the
    // output; every other kind is unfiltered in place and converted.
    int direct = !ihdr.interlace_method && f.color_type == SPNG_COLOR_TYPE_TRUECOLOR && depth == 8;
    for (int p = 0; p < npass; p++) {
        size_t x0 = 0, y0 = 0, dx = 1, dy = 1, pw, ph;
        png_pass_size(ihdr.interlace_method, p, width, height, &pw, &ph);
        if (!pw || !ph) continue;
        if (ihdr.interlace_method) {
            x0 = adam7[p][0];
            y0 = adam7[p][1];
            dx = adam7[p][2];
            dy = adam7[p][3];
        }
        size_t rb = png_row_bytes(pw, &f);
        const uint8_t *prev = zero;
        for (size_t yy = 0; yy < ph; yy++, raw += 1 + rb) {
            unsigned ft = raw[0];
            if (ft > 4) {
                ct_errorf(err, "%s: PNG data: row %zu has an unknown filter type %u", name,
                          y0 + yy * dy, ft);
                goto done;
            }
            uint8_t *o = out->rgb + ((y0 + yy * dy) * width + x0) * 3;
            if (direct) {
                png_unfilter(o, raw + 1, prev, rb, ft, bpp);
                prev = o;
            } else {
                png_unfilter(raw + 1, raw + 1, prev, rb, ft, bpp);
                png_row_to_rgb(o, 3 * dx, raw + 1, pw, &f);
                prev = raw + 1;
            }
        }
    }
    rc = 0;
done:
    spng_ctx_free(ctx);
    if (rc) {
        out->rgb = NULL;
        out->width = out->height = 0;
    }
    return rc;
}

