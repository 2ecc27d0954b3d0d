/*
 * image.c — decoding PNG (libspng reads the header chunks; the image data
 * is inflated, unfiltered and converted here) and JPEG (libjpeg-turbo's
 * TurboJPEG API) by content into 8-bit RGB, equal to Pillow 9.4's
 * Image.open(path).convert('RGB'), and writing 8-bit greyscale PNGs.
 *
 * Why by hand rather than with the libraries' own RGB conversions: Pillow's
 * rules are specific (alpha is dropped, never composited; tRNS is ignored;
 * palette indices past the end of PLTE map to grey (i, i, i); 16-bit samples
 * keep their high byte; CMYK JPEGs are read as Adobe-inverted and converted
 * with Pillow's cmyk2rgb), so PNGs are decoded to their raw samples and
 * converted here, where every rule is visible and tested.
 *
 * Why the PNG image data does not go through libspng's decoder (nor zlib's
 * inflate): profiling the decoding of the COVID-CT set, libspng's row
 * unfiltering (Debian builds it without its SIMD code) and zlib's inflate
 * (fed one scanline per call) were 46% of all the time; with the rows
 * unfiltered here, zlib's inflate alone was still 47%, and the inflater
 * below takes about a third less time than it. So the IDAT stream is
 * inflated in one pass into a reused buffer by that inflater (see its
 * section), each row is unfiltered (SSE2 for 3- and 4-byte pixels) and
 * converted to RGB while it is in cache; 8-bit RGB rows are unfiltered
 * straight into the output. Each integrity check is made once: the chunk
 * CRCs here (zlib's crc32; libspng is told not to repeat them); the zlib
 * stream's Adler-32 is not checked, since it covers data whose chunks' CRCs
 * have just been verified. tests/unit/test_image.c checks every colour
 * type, depth, filter and interlacing; tests/fuzz compares the inflater with
 * zlib's on fuzzed streams.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <spng.h>
#include <turbojpeg.h>
#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
    free(w->inflater);
    if (w->tj) tjDestroy(w->tj);
    memset(w, 0, sizeof *w);
}

// Makes *buf hold at least need bytes (its contents are not kept).
static int work_grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap && *buf) return 0;
    free(*buf);
    *buf = malloc(need ? need : 1);
    *cap = *buf ? need : 0;
    return *buf ? 0 : -1;
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

// Makes w->rgb hold the (h, w, 3) output; sizes were checked by check_limits.
static int alloc_rgb(ImageWork *w, ImageRGB8 *out, uint32_t width, uint32_t height,
                     const char *name, CtError *err) {
    size_t dims[3] = {width, height, 3};
    size_t bytes;
    if (ct_mul_sizes(&bytes, dims, 3)) return ct_errorf(err, "%s: image size overflows", name);
    if (work_grow(&w->rgb, &w->rgb_cap, bytes))
        return ct_errorf(err, "%s: out of memory for %ux%u pixels", name, width, height);
    out->rgb = w->rgb;
    out->width = width;
    out->height = height;
    return 0;
}

// ---- PNG: chunks ----

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
        if (crc32_z(0, d + i + 4, len + 4) != be32(d + i + 8 + len))
            return ct_errorf(err, "%s: corrupt PNG: chunk '%s' at byte %zu has a bad CRC", name,
                             type, i);
#endif
        if (!*idat && memcmp(d + i + 4, "IDAT", 4) == 0) *idat = i;
        if (memcmp(d + i + 4, "IEND", 4) == 0) return 0;
        i += len + 12;
    }
}

// ---- PNG: inflate (RFC 1950 / 1951) ----
//
// The image data's zlib stream is inflated here rather than by zlib: on the
// COVID-CT PNGs zlib's inflate was half of all decoding time, and this one
// takes about a third less (same output; tests/fuzz compares the two). The
// gains: a 64-bit bit buffer refilled 8 bytes at a time without branches,
// table entries that consume a code and its extra bits in one shift, up to
// three literals per refill, and matches copied 8 bytes at a time (short
// distances as a repeated 8-byte pattern). It accepts exactly the codes
// zlib accepts (the same checks, zlib's words in the messages). The stream
// is only ever read inside [in, in + in_len), and written inside
// [out, out + out_len): fast paths run only while 16 input bytes and 3 x 258
// output bytes are left, the careful path checks every step.

#define INFL_LIT_ROOT 11   // root table bits: most literal/length codes
#define INFL_DIST_ROOT 8
#define INFL_LIT_CAP 4096  // > 2^11 + every subtable a complete code can need
#define INFL_DIST_CAP 1024 // > 2^8 + the same for distance codes

// A table entry: bits 0-5 the bits to consume (the code, plus the extra bits
// of a length or distance), 6-9 the code's own length (for E_SUB, the
// subtable's index bits), 10-12 the kind, 16-31 the value (literal, length or
// distance base, subtable offset).
enum { E_LIT = 0, E_BASE = 1, E_END = 2, E_SUB = 3, E_BAD = 4 };
#define ENTRY(kind, nbits, codelen, value)                                                  \
    ((uint32_t)(nbits) | ((uint32_t)(codelen) << 6) | ((uint32_t)(kind) << 10) |            \
     ((uint32_t)(value) << 16))
#define E_NBITS(e) ((e) & 63u)
#define E_CODELEN(e) (((e) >> 6) & 15u)
#define E_KIND(e) (((e) >> 10) & 7u)
#define E_VALUE(e) ((e) >> 16)
#define E_IS_LIT(e) (((e) & (7u << 10)) == 0)

typedef struct {
    uint32_t lit[INFL_LIT_CAP];
    uint32_t dist[INFL_DIST_CAP];
    uint32_t cl[128];  // the code-length code (7 bits at most)
    int fixed;         // lit and dist hold the fixed codes
} Inflater;

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,
                                      15, 17, 19, 23, 27, 31, 35, 43, 51,  59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                       33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

typedef enum { HUFF_CL, HUFF_LIT, HUFF_DIST } HuffKind;

// Symbol s's entry without its code length; a length's or distance's extra
// bits are counted in nbits already.
static uint32_t huff_symbol_entry(HuffKind kind, unsigned s) {
    switch (kind) {
        case HUFF_CL: return ENTRY(E_LIT, 0, 0, s);
        case HUFF_LIT:
            if (s < 256) return ENTRY(E_LIT, 0, 0, s);
            if (s == 256) return ENTRY(E_END, 0, 0, 0);
            if (s < 286) return ENTRY(E_BASE, len_extra[s - 257], 0, len_base[s - 257]);
            return ENTRY(E_BAD, 1, 1, 0);  // 286, 287: in the fixed code, never valid
        default:
            if (s < 30) return ENTRY(E_BASE, dist_extra[s], 0, dist_base[s]);
            return ENTRY(E_BAD, 1, 1, 0);  // 30, 31
    }
}

static inline uint32_t bit_reverse16(uint32_t v) {
    v = ((v >> 1) & 0x5555u) | ((v & 0x5555u) << 1);
    v = ((v >> 2) & 0x3333u) | ((v & 0x3333u) << 2);
    v = ((v >> 4) & 0x0F0Fu) | ((v & 0x0F0Fu) << 4);
    return ((v >> 8) & 0x00FFu) | ((v & 0x00FFu) << 8);
}

// The decoding table of a canonical Huffman code from its code lengths: a
// root table indexed by the next `root` bits of the stream and, for longer
// codes, subtables indexed by the bits after those. Accepts what zlib
// accepts: no over-subscribed code, and an incomplete code only when it is a
// single 1-bit literal/length or distance code (never for the code-length
// code). Returns 0, or -1 for a code zlib refuses.
static int huff_build(uint32_t *table, size_t cap, const uint8_t *lens, unsigned n, unsigned root,
                      HuffKind kind) {
    unsigned count[16] = {0}, offs[16];
    uint16_t sorted[288];
    for (unsigned s = 0; s < n; s++) count[lens[s]]++;
    count[0] = 0;
    unsigned max = 15;
    while (max > 0 && count[max] == 0) max--;
    size_t root_size = (size_t)1 << root;
    for (size_t i = 0; i < root_size; i++) table[i] = ENTRY(E_BAD, 1, 1, 0);
    if (max == 0) return kind == HUFF_CL ? -1 : 0;  // no codes: using one is the error
    int left = 1;
    for (unsigned l = 1; l <= 15; l++) {
        left = 2 * left - (int)count[l];
        if (left < 0) return -1;  // over-subscribed
    }
    if (left > 0 && (kind == HUFF_CL || max != 1)) return -1;  // incomplete
    offs[1] = 0;
    for (unsigned l = 1; l < 15; l++) offs[l + 1] = offs[l] + count[l];
    unsigned total = 0;
    for (unsigned s = 0; s < n; s++)
        if (lens[s]) sorted[offs[lens[s]]++] = (uint16_t)s, total++;

    // Canonical codes in order of (length, symbol); each is placed at its
    // bit-reversed value, since the stream sends codes most significant bit
    // first into a buffer read from the least significant end.
    uint32_t code = 0, cur_prefix = UINT32_MAX;
    unsigned prev_len = 0, sub_bits = 0;  // code is 0 until the first symbol: any start shifts it to 0
    size_t next_sub = root_size, sub = 0;
    for (unsigned i = 0; i < total; i++) {
        unsigned s = sorted[i], len = lens[s];
        code <<= len - prev_len;
        prev_len = len;
        uint32_t rev = bit_reverse16(code) >> (16 - len);
        uint32_t e = huff_symbol_entry(kind, s);
        if (len <= root) {
            e += len + (len << 6);
            for (size_t j = rev; j < root_size; j += (size_t)1 << len) table[j] = e;
        } else {
            uint32_t prefix = rev & (uint32_t)(root_size - 1);
            if (prefix != cur_prefix) {
                // A new subtable, with as many index bits as the codes that
                // share this prefix need (count[] holds the codes not yet
                // placed, this one included).
                sub_bits = len - root;
                int room = 1 << sub_bits;
                while (sub_bits + root < max) {
                    room -= (int)count[sub_bits + root];
                    if (room <= 0) break;
                    sub_bits++;
                    room <<= 1;
                }
                if (next_sub + ((size_t)1 << sub_bits) > cap) return -1;
                sub = next_sub;
                next_sub += (size_t)1 << sub_bits;
                for (size_t j = 0; j < ((size_t)1 << sub_bits); j++)
                    table[sub + j] = ENTRY(E_BAD, 1, 1, 0);
                table[prefix] = ENTRY(E_SUB, root, sub_bits, sub);
                cur_prefix = prefix;
            }
            unsigned l = len - root;
            e += l + (l << 6);
            for (size_t j = rev >> root; j < ((size_t)1 << sub_bits); j += (size_t)1 << l)
                table[sub + j] = e;
        }
        count[len]--;
        code++;
    }
    return 0;
}

// The bit reader. The fast refill loads 8 bytes at once and may leave bits of
// a partly loaded byte above cnt; the next refill ORs the same byte at the
// same place, so they are harmless. Past the end of the input the careful
// refill supplies zero bytes and counts them in overrun: a stream that
// consumes one of them is truncated.
typedef struct {
    const uint8_t *in, *end;
    uint64_t buf;
    unsigned cnt;  // valid bits in buf, <= 63 before every refill
    size_t overrun;
} Bits;

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

// 8 bytes must be readable at in: leaves 56..63 bits in buf.
static inline void bits_refill_fast(Bits *b) {
    b->buf |= load_le64(b->in) << b->cnt;
    b->in += (63 - b->cnt) >> 3;
    b->cnt |= 56;
}

// Leaves at least 49 bits in buf: a length and its distance with their extra
// bits (48), or a code-length symbol and its repeat bits (14).
static inline void bits_refill(Bits *b) {
    if (b->end - b->in >= 8) {
        bits_refill_fast(b);
        return;
    }
    while (b->cnt <= 48) {
        uint64_t byte = 0;
        if (b->in < b->end) byte = *b->in++;
        else b->overrun++;
        b->buf |= byte << b->cnt;
        b->cnt += 8;
    }
}

static inline uint32_t bits_peek(const Bits *b, unsigned n) {
    return (uint32_t)(b->buf & (((uint64_t)1 << n) - 1));
}

static inline void bits_drop(Bits *b, unsigned n) {
    b->buf >>= n;
    b->cnt -= n;
}

static inline uint32_t bits_take(Bits *b, unsigned n) {
    uint32_t v = bits_peek(b, n);
    bits_drop(b, n);
    return v;
}

static inline int bits_overrun(const Bits *b) { return b->overrun * 8 > b->cnt; }

// The next symbol's entry, through a subtable if need be (whose root bits
// are then consumed); the entry's own bits are not consumed.
static inline uint32_t huff_lookup(Bits *b, const uint32_t *t, unsigned root) {
    uint32_t e = t[bits_peek(b, root)];
    if (E_KIND(e) == E_SUB) {
        bits_drop(b, root);
        e = t[E_VALUE(e) + bits_peek(b, E_CODELEN(e))];
    }
    return e;
}

// Consumes an entry's bits; returns its value plus its extra bits.
static inline uint32_t huff_take(Bits *b, uint32_t e) {
    uint64_t saved = b->buf;
    unsigned n = E_NBITS(e);
    bits_drop(b, n);
    return E_VALUE(e) + (uint32_t)((saved & (((uint64_t)1 << n) - 1)) >> E_CODELEN(e));
}

static void inflate_fixed_tables(Inflater *z) {
    uint8_t lens[288];
    unsigned i = 0;
    for (; i < 144; i++) lens[i] = 8;
    for (; i < 256; i++) lens[i] = 9;
    for (; i < 280; i++) lens[i] = 7;
    for (; i < 288; i++) lens[i] = 8;
    huff_build(z->lit, INFL_LIT_CAP, lens, 288, INFL_LIT_ROOT, HUFF_LIT);
    for (i = 0; i < 32; i++) lens[i] = 5;
    huff_build(z->dist, INFL_DIST_CAP, lens, 32, INFL_DIST_ROOT, HUFF_DIST);
    z->fixed = 1;
}

// Reads a dynamic block's code lengths and builds its tables. Returns NULL
// or what is wrong.
static const char *inflate_dynamic_tables(Inflater *z, Bits *b) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                      11, 4,  12, 3, 13, 2, 14, 1, 15};
    uint8_t lens[286 + 30];
    bits_refill(b);
    unsigned nlit = bits_take(b, 5) + 257, ndist = bits_take(b, 5) + 1, ncl = bits_take(b, 4) + 4;
    if (nlit > 286 || ndist > 30) return "too many length or distance symbols";
    memset(lens, 0, 19);
    for (unsigned i = 0; i < ncl; i++) {
        if (b->cnt < 3) bits_refill(b);
        lens[order[i]] = (uint8_t)bits_take(b, 3);
    }
    z->fixed = 0;
    if (huff_build(z->cl, 128, lens, 19, 7, HUFF_CL)) return "invalid code lengths set";
    unsigned n = 0, total = nlit + ndist;
    while (n < total) {
        bits_refill(b);
        uint32_t e = z->cl[bits_peek(b, 7)];
        if (E_KIND(e) == E_BAD) return "invalid code lengths set";
        bits_drop(b, E_NBITS(e));
        unsigned sym = E_VALUE(e), rep;
        uint8_t val = 0;
        if (sym < 16) {
            lens[n++] = (uint8_t)sym;
            continue;
        }
        if (sym == 16) {
            if (n == 0) return "invalid bit length repeat";
            val = lens[n - 1];
            rep = 3 + bits_take(b, 2);
        } else if (sym == 17) {
            rep = 3 + bits_take(b, 3);
        } else {
            rep = 11 + bits_take(b, 7);
        }
        if (n + rep > total) return "invalid bit length repeat";
        memset(lens + n, val, rep);
        n += rep;
    }
    if (bits_overrun(b)) return "compressed data ends early";
    if (lens[256] == 0) return "invalid code -- missing end-of-block";
    if (huff_build(z->lit, INFL_LIT_CAP, lens, nlit, INFL_LIT_ROOT, HUFF_LIT))
        return "invalid literal/lengths set";
    if (huff_build(z->dist, INFL_DIST_CAP, lens + nlit, ndist, INFL_DIST_ROOT, HUFF_DIST))
        return "invalid distances set";
    return NULL;
}

// Copies a match of len bytes from dist back. With `wide`, o + len + 8 is
// inside the output and up to 7 bytes past the match may be written (the
// next symbols overwrite them).
static inline uint8_t *copy_match(uint8_t *o, size_t dist, size_t len, int wide) {
    const uint8_t *s = o - dist;
    uint8_t *e = o + len;
    if (wide && dist >= 8) {
        do {
            memcpy(o, s, 8);
            o += 8;
            s += 8;
        } while (o < e);
        return e;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (wide) {
        // dist < 8: the dist bytes before o, repeated, as one 8-byte word;
        // it has period dist, so it is stored every largest multiple of
        // dist that fits in 8 bytes.
        uint64_t v, w;
        memcpy(&v, s, 8);  // bytes past dist are o's own, masked off
        v &= ~(uint64_t)0 >> (64 - 8 * dist);
        w = v;
        for (size_t k = dist; k < 8; k += dist) w |= v << (8 * k);
        size_t step = 8 - 8 % dist;
        for (; o < e; o += step) memcpy(o, &w, 8);
        return e;
    }
#endif
    while (o < e) *o++ = *s++;
    return e;
}

// Inflates the zlib stream in[0, in_len) into out[0, out_len), stopping when
// out is full (data past it is not decoded; Pillow ignores it too). *done
// receives the bytes written. Returns NULL, or what is wrong. A distance may
// reach back to the start of the output, whatever window size the header
// declares, as with zlib inflating into one buffer (some encoders declare
// too small a window).
static const char *inflate_zlib(Inflater *z, uint8_t *out, size_t out_len, const uint8_t *in,
                                size_t in_len, size_t *done) {
    *done = 0;
    if (in_len < 2) return "compressed data ends early";
    unsigned cmf = in[0], flg = in[1];
    if (((cmf << 8) | flg) % 31 != 0) return "incorrect header check";
    if ((cmf & 15) != 8) return "unknown compression method";
    if ((cmf >> 4) > 7) return "invalid window size";
    if (flg & 0x20) return "needs a preset dictionary";
    Bits b = {in + 2, in + in_len, 0, 0, 0};
    uint8_t *o = out, *oend = out + out_len;
    const char *msg;
    int final = 0;
    while (!final && o < oend) {
        bits_refill(&b);
        final = (int)bits_take(&b, 1);
        unsigned type = bits_take(&b, 2);
        if (type == 0) {
            // Stored: the whole bytes left in the bit buffer are the next
            // ones of the stream; give them back and copy from the input.
            bits_drop(&b, b.cnt & 7);
            if (bits_overrun(&b)) return "compressed data ends early";
            b.in -= b.cnt / 8 - b.overrun;
            b.buf = 0;
            b.cnt = 0;
            b.overrun = 0;
            if (b.end - b.in < 4) return "compressed data ends early";
            unsigned len = b.in[0] | (unsigned)b.in[1] << 8;
            unsigned nlen = b.in[2] | (unsigned)b.in[3] << 8;
            b.in += 4;
            if (len != (~nlen & 0xFFFFu)) return "invalid stored block lengths";
            size_t n = len < (size_t)(oend - o) ? len : (size_t)(oend - o);
            if ((size_t)(b.end - b.in) < n) return "compressed data ends early";
            memcpy(o, b.in, n);
            o += n;
            b.in += n;
            continue;
        }
        if (type == 3) return "invalid block type";
        if (type == 1) {
            if (!z->fixed) inflate_fixed_tables(z);
        } else if ((msg = inflate_dynamic_tables(z, &b)) != NULL) {
            return msg;
        }
        const uint32_t *lit = z->lit, *dist = z->dist;
        // Fast loop: 16 readable input bytes (two whole refills) and room
        // for three literals and a match plus 8 bytes. A refill leaves >= 56
        // bits: three literals (45), or a length and its distance (48).
        while (b.end - b.in >= 16 && oend - o >= 3 * 258) {
            bits_refill_fast(&b);
            uint32_t e = huff_lookup(&b, lit, INFL_LIT_ROOT);
            if (E_IS_LIT(e)) {
                bits_drop(&b, E_NBITS(e));
                *o++ = (uint8_t)E_VALUE(e);
                e = huff_lookup(&b, lit, INFL_LIT_ROOT);
                if (E_IS_LIT(e)) {
                    bits_drop(&b, E_NBITS(e));
                    *o++ = (uint8_t)E_VALUE(e);
                    e = huff_lookup(&b, lit, INFL_LIT_ROOT);
                    if (E_IS_LIT(e)) {
                        bits_drop(&b, E_NBITS(e));
                        *o++ = (uint8_t)E_VALUE(e);
                        continue;
                    }
                }
                if (b.cnt < 48) bits_refill_fast(&b);  // for the length and distance
            }
            if (E_KIND(e) != E_BASE) {
                if (E_KIND(e) != E_END) return "invalid literal/length code";
                bits_drop(&b, E_NBITS(e));
                goto block_end;
            }
            size_t len = huff_take(&b, e);
            e = huff_lookup(&b, dist, INFL_DIST_ROOT);
            if (E_KIND(e) != E_BASE) return "invalid distance code";
            size_t d = huff_take(&b, e);
            if (d > (size_t)(o - out)) return "invalid distance too far back";
            o = copy_match(o, d, len, 1);
        }
        // Careful loop: near the end of the input or of the output. Once
        // the output is full nothing more is read, not even the end code.
        for (;;) {
            if (o == oend) break;
            bits_refill(&b);
            uint32_t e = huff_lookup(&b, lit, INFL_LIT_ROOT);
            if (E_IS_LIT(e)) {
                bits_drop(&b, E_NBITS(e));
                if (bits_overrun(&b)) return "compressed data ends early";
                *o++ = (uint8_t)E_VALUE(e);
                continue;
            }
            if (E_KIND(e) != E_BASE) {
                if (E_KIND(e) != E_END) return "invalid literal/length code";
                bits_drop(&b, E_NBITS(e));
                break;
            }
            size_t len = huff_take(&b, e);
            e = huff_lookup(&b, dist, INFL_DIST_ROOT);
            if (E_KIND(e) != E_BASE) return "invalid distance code";
            size_t d = huff_take(&b, e);
            if (bits_overrun(&b)) return "compressed data ends early";
            if (d > (size_t)(o - out)) return "invalid distance too far back";
            size_t room = (size_t)(oend - o);
            if (len + 8 <= room) o = copy_match(o, d, len, 1);
            else o = copy_match(o, d, len < room ? len : room, 0);
        }
    block_end:
        if (bits_overrun(&b)) return "compressed data ends early";
    }
    *done = (size_t)(o - out);
    return NULL;
}

int image_inflate(uint8_t *out, size_t out_len, size_t *done, const uint8_t *in, size_t in_len,
                  CtError *err) {
    Inflater *z = malloc(sizeof *z);
    if (!z) return ct_errorf(err, "inflate: out of memory");
    z->fixed = 0;
    const char *msg = inflate_zlib(z, out, out_len, in, in_len, done);
    free(z);
    return msg ? ct_errorf(err, "inflate: %s", msg) : 0;
}

// The IDAT run that starts at byte idat, inflated into out[0, out_len).
// A single IDAT is read in place; several are joined first into w->zdata.
static int png_inflate(ImageWork *w, uint8_t *out, size_t out_len, const uint8_t *d, size_t idat,
                       const char *name, CtError *err) {
    if (!w->inflater && !(w->inflater = malloc(sizeof(Inflater))))
        return ct_errorf(err, "%s: out of memory for the PNG inflater", name);
    Inflater *z = w->inflater;
    z->fixed = 0;
    size_t n = 0, chunks = 0;
    for (size_t i = idat; memcmp(d + i + 4, "IDAT", 4) == 0; i += be32(d + i) + 12) {
        n += be32(d + i);
        chunks++;
    }
    const uint8_t *in = d + idat + 8;
    if (chunks > 1) {
        if (work_grow(&w->zdata, &w->zdata_cap, n))
            return ct_errorf(err, "%s: out of memory for %zu bytes of PNG data", name, n);
        size_t at = 0;
        for (size_t i = idat; memcmp(d + i + 4, "IDAT", 4) == 0; i += be32(d + i) + 12) {
            memcpy(w->zdata + at, d + i + 8, be32(d + i));
            at += be32(d + i);
        }
        in = w->zdata;
    }
    size_t done;
    const char *msg = inflate_zlib(z, out, out_len, in, n, &done);
    if (msg) return ct_errorf(err, "%s: PNG data: %s", name, msg);
    if (done < out_len)
        return ct_errorf(err, "%s: PNG data: the image data ends after %zu of %zu bytes", name,
                         done, out_len);
    return 0;
}

// ---- PNG: scanlines ----

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

static size_t png_row_bytes(size_t pixels, const PngFormat *f) {
    return (pixels * f->channels * f->depth + 7) / 8;
}

// ---- PNG: decode ----

static int png_decode(ImageWork *w, ImageRGB8 *out, const uint8_t *data, size_t len,
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
    if (check_limits(lim, ihdr.width, ihdr.height, bpp > 3 ? bpp : 3, "PNG", name, err)) goto done;
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

    // The scanlines of every pass, each a filter byte and the packed
    // samples, after a zero row that stands above each pass's first row.
    // The limits bound every size here far below overflow.
    uint32_t width = ihdr.width, height = ihdr.height;
    int npass = ihdr.interlace_method ? 7 : 1;
    size_t full_row = png_row_bytes(width, &f);
    size_t raw_len = full_row;
    for (int p = 0; p < npass; p++) {
        size_t pw, ph;
        png_pass_size(ihdr.interlace_method, p, width, height, &pw, &ph);
        if (pw && ph) raw_len += ph * (1 + png_row_bytes(pw, &f));
    }
    if (work_grow(&w->raw, &w->raw_cap, raw_len + PNG_ROW_PAD)) {
        ct_errorf(err, "%s: out of memory for a %zu-byte PNG", name, raw_len);
        goto done;
    }
    uint8_t *zero = w->raw, *raw = w->raw + full_row;
    memset(zero, 0, full_row);
    memset(w->raw + raw_len, 0, PNG_ROW_PAD);
    // No tRNS handling: Pillow's convert('RGB') ignores transparency.
    if (png_inflate(w, raw, raw_len - full_row, data, idat, name, err)) goto done;
    if (alloc_rgb(w, out, width, height, name, err)) goto done;

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
    if (check_limits(lim, (uint32_t)w, (uint32_t)h, is_cmyk ? 4 : 3, "JPEG", name, err)) return -1;
    if (alloc_rgb(wk, out, (uint32_t)w, (uint32_t)h, name, err)) return -1;
    // Default flags: ISLOW DCT and fancy upsampling, as Pillow decodes (no
    // DCT scaling either: it would change the pixels).
    // TJFLAG_LIMITSCANS only refuses progressive files with > 500 scans
    // (a denial-of-service pattern); no real image has that many.
    int flags = TJFLAG_LIMITSCANS;
    uint8_t *dst = out->rgb;
    size_t npix = (size_t)w * (size_t)h;
    if (is_cmyk) {
        if (work_grow(&wk->raw, &wk->raw_cap, npix * 4)) {
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
        case IMAGE_FMT_PNG: return png_decode(w, out, data, len, lim, name, err);
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
