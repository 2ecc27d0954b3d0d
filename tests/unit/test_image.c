/*
 * test_image.c — the image decoder on a corpus this test builds itself: the
 * Pillow conversion rules on small hand-made PNGs (grey 1/2/4/8/16-bit,
 * grey+alpha, RGB 8/16, RGBA, palette with tRNS and out-of-range indices),
 * JPEGs from TurboJPEG (RGB, grey, CMYK, 1x1); every colour type and bit
 * depth through every filter type, Adam7 interlacing, stored / fixed /
 * dynamic deflate blocks of every zlib setting and split IDATs, against
 * Pillow's rules written out here; one reused workspace against the one-off
 * decoder; and bad input that must be refused with one line naming the file
 * and never crash (empty, text, truncated, bad CRC, missing EOI, corrupt,
 * cut or over-long zlib streams and wrong Adler-32s, headers claiming huge
 * sizes, and every prefix and many random mutations of valid files; run
 * under ASan/UBSan).
 *
 * The expected pixel values of the PNG cases were measured with Pillow 9.4
 * (Image.open(p).convert('RGB')); the one deliberate difference, 16-bit
 * grey, is described in src/data/png.c. tests/data/ compares against
 * Pillow itself on real and generated images.
 *
 * argv[1]: a scratch directory (created).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>
#include <zlib.h>

#include "data/image.h"
#include "util/util.h"

static int g_pass, g_fail;
static char g_worst[CT_ERROR_MAX + 256];
static int g_worst_rank = -1;

// rank orders failures for the final "worst" line: a crash-free wrong
// answer on a valid file (2) is worse than a wrong message (1).
static void fail(int rank, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(int rank, const char *fmt, ...) {
    char line[sizeof g_worst];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("FAIL %s\n", line);
    g_fail++;
    if (rank > g_worst_rank) {
        g_worst_rank = rank;
        snprintf(g_worst, sizeof g_worst, "%s", line);
    }
}

static void pass(void) { g_pass++; }

// ---- byte buffers, CRC, zlib-stored PNG builder ----

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = ct_realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void buf_u8(Buf *b, uint8_t v) { buf_put(b, &v, 1); }

static void buf_u32be(Buf *b, uint32_t v) {
    uint8_t d[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, d, 4);
}

static uint32_t crc32_of(const uint8_t *d, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= d[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void png_chunk(Buf *b, const char *type, const uint8_t *data, size_t n) {
    buf_u32be(b, (uint32_t)n);
    size_t start = b->n;
    buf_put(b, type, 4);
    buf_put(b, data, n);
    buf_u32be(b, crc32_of(b->p + start, n + 4, 0));
}

// A zlib stream with stored (uncompressed) deflate blocks.
static void zlib_stored(Buf *out, const uint8_t *raw, size_t n) {
    buf_u8(out, 0x78);
    buf_u8(out, 0x01);
    size_t off = 0;
    do {
        size_t len = n - off > 65535 ? 65535 : n - off;
        buf_u8(out, off + len == n ? 1 : 0);
        uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)~len, (uint8_t)(~len >> 8)};
        buf_put(out, hdr, 4);
        buf_put(out, raw + off, len);
        off += len;
    } while (off < n);
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    buf_u32be(out, (b << 16) | a);
}

// rows: height rows of row_bytes each, without filter bytes (fewer when the
// header is meant to lie: n_rows). extra: chunks between IHDR and IDAT.
static Buf png_build_rows(uint32_t w, uint32_t h, uint8_t depth, uint8_t color,
                          const uint8_t *rows, size_t row_bytes, uint32_t n_rows,
                          const Buf *extra) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    Buf b = {0}, ihdr = {0}, raw = {0}, z = {0};
    buf_put(&b, sig, 8);
    buf_u32be(&ihdr, w);
    buf_u32be(&ihdr, h);
    uint8_t rest[5] = {depth, color, 0, 0, 0};
    buf_put(&ihdr, rest, 5);
    png_chunk(&b, "IHDR", ihdr.p, ihdr.n);
    if (extra) buf_put(&b, extra->p, extra->n);
    for (uint32_t y = 0; y < n_rows; y++) {
        buf_u8(&raw, 0);
        buf_put(&raw, rows + (size_t)y * row_bytes, row_bytes);
    }
    zlib_stored(&z, raw.p, raw.n);
    png_chunk(&b, "IDAT", z.p, z.n);
    png_chunk(&b, "IEND", NULL, 0);
    free(ihdr.p);
    free(raw.p);
    free(z.p);
    return b;
}

static Buf png_build(uint32_t w, uint32_t h, uint8_t depth, uint8_t color, const uint8_t *rows,
                     size_t row_bytes, const Buf *extra) {
    return png_build_rows(w, h, depth, color, rows, row_bytes, h, extra);
}

// ---- files ----

static const char *g_dir;

static char *scratch(const char *name) { return ct_asprintf("%s/%s", g_dir, name); }

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "test_image: cannot write %s\n", path);
        exit(2);
    }
}

// ---- checks ----

// Decodes file `name` (written from d, n) and expects success with pixels
// `want` (w * h * 3), or want == NULL to only expect success.
static void expect_pixels(const char *name, const Buf *file, uint32_t w, uint32_t h,
                          const uint8_t *want) {
    char *path = scratch(name);
    write_bytes(path, file->p, file->n);
    ImageRGB8 img;
    CtError err;
    if (image_load_rgb8(&img, path, NULL, &err)) {
        fail(2, "%s: expected to decode, got: %s", name, err.msg);
        free(path);
        return;
    }
    if (img.width != w || img.height != h) {
        fail(2, "%s: size %ux%u, expected %ux%u", name, img.width, img.height, w, h);
    } else if (want) {
        size_t n = (size_t)w * h * 3;
        for (size_t i = 0; i < n; i++) {
            if (img.rgb[i] != want[i]) {
                fail(2, "%s: pixel %zu channel %zu is %u, expected %u", name, i / 3, i % 3,
                     img.rgb[i], want[i]);
                image_free(&img);
                free(path);
                return;
            }
        }
        pass();
    } else {
        pass();
    }
    image_free(&img);
    free(path);
}

// Expects an error whose message contains the path and `what`.
static void expect_error(const char *name, const Buf *file, const ImageLimits *lim,
                         const char *what) {
    char *path = scratch(name);
    write_bytes(path, file->p, file->n);
    ImageRGB8 img;
    CtError err = {{0}};
    if (image_load_rgb8(&img, path, lim, &err) == 0) {
        fail(2, "%s: decoded (%ux%u) but should have been refused (%s)", name, img.width,
             img.height, what);
        image_free(&img);
    } else if (!strstr(err.msg, path) || (what && !strstr(err.msg, what)) ||
               strchr(err.msg, '\n')) {
        fail(1, "%s: message \"%s\" should be one line that names the file and says \"%s\"",
             name, err.msg, what);
    } else if (img.rgb != NULL) {
        fail(2, "%s: failed decode left a pixel buffer", name);
    } else {
        printf("ok   %-22s -> %s\n", name, err.msg);
        pass();
    }
    free(path);
}

// ---- PNG cases (expected values measured with Pillow 9.4) ----

static void test_png_modes(void) {
    // 16-bit grey: high byte (Pillow would clip to 255; see png.c).
    {
        uint8_t row[] = {0x12, 0x34, 0xFF, 0xFF, 0x00, 0xFF};
        uint8_t want[] = {0x12, 0x12, 0x12, 0xFF, 0xFF, 0xFF, 0, 0, 0};
        Buf f = png_build(3, 1, 16, 0, row, sizeof row, NULL);
        expect_pixels("grey16.png", &f, 3, 1, want);
        free(f.p);
    }
    // 16-bit RGB: high byte, as Pillow's RGB;16B.
    {
        uint8_t row[] = {0x12, 0x34, 0xFF, 0x80, 0x00, 0x80, 0x7F, 0xFF, 0x80, 0x00, 0x00, 0xFF};
        uint8_t want[] = {18, 255, 0, 127, 128, 0};
        Buf f = png_build(2, 1, 16, 2, row, sizeof row, NULL);
        expect_pixels("rgb16.png", &f, 2, 1, want);
        free(f.p);
    }
    // 16-bit RGBA and grey+alpha: high byte, alpha dropped.
    {
        uint8_t row[] = {0x12, 0x80, 0xAB, 0x7F, 0x00, 0xFF, 0x00, 0x00};
        uint8_t want[] = {18, 171, 0};
        Buf f = png_build(1, 1, 16, 6, row, sizeof row, NULL);
        expect_pixels("rgba16.png", &f, 1, 1, want);
        free(f.p);
        uint8_t row2[] = {0x12, 0x80, 0x00, 0x00, 0xAB, 0x7F, 0xFF, 0xFF};
        uint8_t want2[] = {18, 18, 18, 171, 171, 171};
        f = png_build(2, 1, 16, 4, row2, sizeof row2, NULL);
        expect_pixels("la16.png", &f, 2, 1, want2);
        free(f.p);
    }
    // 8-bit grey+alpha and RGBA: alpha dropped, never composited (alpha 0
    // keeps its colour).
    {
        uint8_t row[] = {10, 0, 200, 255};
        uint8_t want[] = {10, 10, 10, 200, 200, 200};
        Buf f = png_build(2, 1, 8, 4, row, sizeof row, NULL);
        expect_pixels("la8.png", &f, 2, 1, want);
        free(f.p);
        uint8_t row2[] = {10, 20, 30, 0, 200, 100, 50, 128};
        uint8_t want2[] = {10, 20, 30, 200, 100, 50};
        f = png_build(2, 1, 8, 6, row2, sizeof row2, NULL);
        expect_pixels("rgba8_alpha0.png", &f, 2, 1, want2);
        free(f.p);
    }
    // Low bit depths: scaled to 0..255 like Pillow's "1", L;2, L;4.
    {
        uint8_t r1[] = {0xB0};  // 1 0 1 1 0 0 0 0
        uint8_t w1[] = {255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255,
                        0,   0,   0,   0, 0, 0, 0,   0,   0,   0,   0,   0};
        Buf f = png_build(8, 1, 1, 0, r1, 1, NULL);
        expect_pixels("grey1.png", &f, 8, 1, w1);
        free(f.p);
        uint8_t r2[] = {0x1B};  // 0 1 2 3
        uint8_t w2[] = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255};
        f = png_build(4, 1, 2, 0, r2, 1, NULL);
        expect_pixels("grey2.png", &f, 4, 1, w2);
        free(f.p);
        uint8_t r4[] = {0x1F};
        uint8_t w4[] = {17, 17, 17, 255, 255, 255};
        f = png_build(2, 1, 4, 0, r4, 1, NULL);
        expect_pixels("grey4.png", &f, 2, 1, w4);
        free(f.p);
    }
    // Palette with tRNS: tRNS ignored; indices past PLTE are grey (i, i, i).
    {
        Buf extra = {0};
        uint8_t plte[] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
        uint8_t trns[] = {0, 128};
        png_chunk(&extra, "PLTE", plte, sizeof plte);
        png_chunk(&extra, "tRNS", trns, sizeof trns);
        uint8_t row[] = {0, 1, 2, 3, 200};
        uint8_t want[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 3, 3, 3, 200, 200, 200};
        Buf f = png_build(5, 1, 8, 3, row, sizeof row, &extra);
        expect_pixels("palette_trns.png", &f, 5, 1, want);
        free(f.p);
        uint8_t row4[] = {0x12};
        uint8_t want4[] = {0, 255, 0, 0, 0, 255};
        f = png_build(2, 1, 4, 3, row4, 1, &extra);
        expect_pixels("palette4.png", &f, 2, 1, want4);
        free(f.p);
        free(extra.p);
    }
    // Grey with tRNS: unchanged.
    {
        Buf extra = {0};
        uint8_t trns[] = {0, 5};
        png_chunk(&extra, "tRNS", trns, sizeof trns);
        uint8_t row[] = {5, 7};
        uint8_t want[] = {5, 5, 5, 7, 7, 7};
        Buf f = png_build(2, 1, 8, 0, row, sizeof row, &extra);
        expect_pixels("grey_trns.png", &f, 2, 1, want);
        free(f.p);
        free(extra.p);
    }
}

// A valid 8-bit RGB PNG of w x h with a pattern (used for corruptions).
static Buf png_pattern(uint32_t w, uint32_t h) {
    uint8_t *rows = ct_malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) rows[i] = (uint8_t)(i * 7 + i / 5);
    Buf f = png_build(w, h, 8, 2, rows, (size_t)w * 3, NULL);
    free(rows);
    return f;
}

static void test_png_bad(void) {
    Buf empty = {0};
    expect_error("empty.png", &empty, NULL, "not a PNG or JPEG image");
    const char *txt = "this is not an image, just text in a file named .png\n";
    Buf text = {0};
    buf_put(&text, txt, strlen(txt));
    expect_error("text.png", &text, NULL, "not a PNG or JPEG image");
    free(text.p);

    Buf good = png_pattern(40, 30);
    Buf cut = {0};
    buf_put(&cut, good.p, good.n / 2);
    expect_error("truncated.png", &cut, NULL, "truncated");
    free(cut.p);

    // Bad CRC in IHDR, then in IDAT (last byte of the IDAT chunk's CRC).
    Buf bad = {0};
    buf_put(&bad, good.p, good.n);
    bad.p[8 + 8 + 13] ^= 0x5A;
    expect_error("bad_crc_ihdr.png", &bad, NULL, "CRC");
    memcpy(bad.p, good.p, good.n);
    bad.p[good.n - 12 - 1] ^= 0x01;
    expect_error("bad_crc_idat.png", &bad, NULL, "CRC");
    // IEND missing.
    memcpy(bad.p, good.p, good.n);
    bad.n = good.n - 12;
    expect_error("no_iend.png", &bad, NULL, "truncated");
    bad.n = good.n;
    // Corrupt deflate data inside IDAT with a recomputed CRC.
    memcpy(bad.p, good.p, good.n);
    size_t idat = 8 + 25;  // signature + IHDR chunk
    bad.p[idat + 8] = 0xFF;  // zlib CMF byte
    uint32_t len = ((uint32_t)bad.p[idat] << 24) | ((uint32_t)bad.p[idat + 1] << 16) |
                   ((uint32_t)bad.p[idat + 2] << 8) | bad.p[idat + 3];
    uint32_t crc = crc32_of(bad.p + idat + 4, len + 4, 0);
    uint8_t *c = bad.p + idat + 8 + len;
    c[0] = (uint8_t)(crc >> 24);
    c[1] = (uint8_t)(crc >> 16);
    c[2] = (uint8_t)(crc >> 8);
    c[3] = (uint8_t)crc;
    expect_error("bad_zlib.png", &bad, NULL, "PNG");
    free(bad.p);

    // A header claiming 100000 x 100000 with a 1-row IDAT: refused from the
    // header, before any pixel buffer.
    uint8_t row[3] = {0};
    Buf huge = png_build_rows(100000, 100000, 8, 2, row, 3, 1, NULL);
    expect_error("huge_header.png", &huge, NULL, "limit");
    free(huge.p);

    // Caller limits: width, decoded bytes, file size.
    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_width = 32;
    expect_error("limit_width.png", &good, &lim, "limit");
    image_limits_default(&lim);
    lim.max_decoded_bytes = 40 * 30 * 3 - 1;
    expect_error("limit_bytes.png", &good, &lim, "limit");
    image_limits_default(&lim);
    lim.max_file_bytes = good.n - 1;
    expect_error("limit_file.png", &good, &lim, "limit");

    // A missing file.
    ImageRGB8 img;
    CtError err;
    char *missing = scratch("does_not_exist.png");
    if (image_load_rgb8(&img, missing, NULL, &err) == 0 || !strstr(err.msg, missing))
        fail(1, "missing file: message \"%s\" should name %s", err.msg, missing);
    else
        pass();
    free(missing);
    free(good.p);
}

// ---- JPEG ----

static Buf jpeg_make(const uint8_t *pix, int w, int h, int pf, int subsamp, int quality) {
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    if (!tj || tjCompress2(tj, pix, w, 0, h, pf, &jpg, &size, subsamp, quality, 0) != 0) {
        fprintf(stderr, "test_image: tjCompress2: %s\n", tjGetErrorStr2(tj));
        exit(2);
    }
    Buf b = {0};
    buf_put(&b, jpg, size);
    tjFree(jpg);
    tjDestroy(tj);
    return b;
}

// Pillow's cmyk2rgb on Adobe-inverted samples, written out independently.
static uint8_t pil_cmyk(uint8_t stored_c, uint8_t stored_k) {
    int c = 255 - stored_c, k = 255 - stored_k, nk = 255 - k;
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void test_jpeg(void) {
    const int w = 48, h = 40;
    uint8_t *rgb = ct_malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 5);
            p[1] = (uint8_t)(y * 6);
            p[2] = (uint8_t)(128 + (x - y) * 2);
        }
    Buf j = jpeg_make(rgb, w, h, TJPF_RGB, TJSAMP_420, 90);

    // Decodes, in the right orientation and channel order (JPEG is lossy:
    // mean absolute error only).
    {
        char *path = scratch("rgb.jpg");
        write_bytes(path, j.p, j.n);
        ImageRGB8 img;
        CtError err;
        if (image_load_rgb8(&img, path, NULL, &err)) {
            fail(2, "rgb.jpg: %s", err.msg);
        } else {
            double mae = 0;
            for (size_t i = 0; i < (size_t)w * h * 3; i++) mae += abs((int)img.rgb[i] - rgb[i]);
            mae /= (double)w * h * 3;
            if (img.width != (uint32_t)w || img.height != (uint32_t)h || mae > 4.0)
                fail(2, "rgb.jpg: %ux%u, mean abs error %.2f", img.width, img.height, mae);
            else
                pass();
            image_free(&img);
        }
        free(path);
    }
    // Content, not name: a JPEG named .png and a PNG named .jpg.
    expect_pixels("jpeg_named.png", &j, (uint32_t)w, (uint32_t)h, NULL);
    {
        Buf p = png_pattern(5, 4);
        expect_pixels("png_named.jpg", &p, 5, 4, NULL);
        free(p.p);
    }
    // Trailing bytes after EOI are ignored (as by Pillow).
    {
        Buf t = {0};
        buf_put(&t, j.p, j.n);
        buf_put(&t, "trailing junk", 13);
        expect_pixels("trailing.jpg", &t, (uint32_t)w, (uint32_t)h, NULL);
        free(t.p);
    }
    // Grey JPEG: replicated.
    {
        uint8_t *g = ct_malloc((size_t)w * h);
        for (int i = 0; i < w * h; i++) g[i] = (uint8_t)(i * 3);
        Buf gj = jpeg_make(g, w, h, TJPF_GRAY, TJSAMP_GRAY, 90);
        char *path = scratch("grey.jpg");
        write_bytes(path, gj.p, gj.n);
        ImageRGB8 img;
        CtError err;
        if (image_load_rgb8(&img, path, NULL, &err)) {
            fail(2, "grey.jpg: %s", err.msg);
        } else {
            int ok = img.width == (uint32_t)w && img.height == (uint32_t)h;
            for (size_t i = 0; ok && i < (size_t)w * h; i++)
                ok = img.rgb[3 * i] == img.rgb[3 * i + 1] && img.rgb[3 * i] == img.rgb[3 * i + 2];
            if (!ok) fail(2, "grey.jpg: channels not replicated");
            else pass();
            image_free(&img);
        }
        free(path);
        free(gj.p);
        free(g);
    }
    // 1x1 JPEG and PNG.
    {
        uint8_t one[3] = {200, 100, 50};
        Buf oj = jpeg_make(one, 1, 1, TJPF_RGB, TJSAMP_444, 100);
        expect_pixels("one.jpg", &oj, 1, 1, NULL);
        free(oj.p);
        char *path = scratch("one.png");
        CtError err;
        uint8_t v = 77;
        if (image_write_png_gray8(path, &v, 1, 1, &err)) {
            fail(2, "one.png: write: %s", err.msg);
        } else {
            ImageRGB8 img;
            if (image_load_rgb8(&img, path, NULL, &err)) {
                fail(2, "one.png: %s", err.msg);
            } else {
                if (img.width != 1 || img.height != 1 || img.rgb[0] != 77 || img.rgb[1] != 77 ||
                    img.rgb[2] != 77)
                    fail(2, "one.png: wrong pixel");
                else
                    pass();
                image_free(&img);
            }
        }
        free(path);
    }
    // CMYK (TurboJPEG writes YCCK with an Adobe marker): Pillow's rule.
    {
        uint8_t *cmyk = ct_malloc((size_t)w * h * 4);
        for (int i = 0; i < w * h; i++) {
            cmyk[4 * i + 0] = (uint8_t)(i * 3);
            cmyk[4 * i + 1] = (uint8_t)(i * 5 + 40);
            cmyk[4 * i + 2] = (uint8_t)(255 - i);
            cmyk[4 * i + 3] = (uint8_t)(i * 7);
        }
        Buf cj = jpeg_make(cmyk, w, h, TJPF_CMYK, TJSAMP_444, 95);
        // What libjpeg decodes the samples to (lossy), then the rule.
        tjhandle tj = tjInitDecompress();
        uint8_t *raw = ct_malloc((size_t)w * h * 4);
        uint8_t *want = ct_malloc((size_t)w * h * 3);
        if (tjDecompress2(tj, cj.p, cj.n, raw, w, 0, h, TJPF_CMYK, 0) != 0) {
            fail(2, "cmyk.jpg: reference decode: %s", tjGetErrorStr2(tj));
        } else {
            for (int i = 0; i < w * h; i++)
                for (int c = 0; c < 3; c++) want[3 * i + c] = pil_cmyk(raw[4 * i + c], raw[4 * i + 3]);
            expect_pixels("cmyk.jpg", &cj, (uint32_t)w, (uint32_t)h, want);
        }
        tjDestroy(tj);
        free(raw);
        free(want);
        free(cj.p);
        free(cmyk);
    }
    // Truncated in the scan, EOI missing, header only.
    {
        Buf t = {0};
        buf_put(&t, j.p, j.n / 2);
        expect_error("truncated.jpg", &t, NULL, "truncated");
        t.n = 0;
        buf_put(&t, j.p, j.n - 40);
        expect_error("truncated_scan.jpg", &t, NULL, "truncated");
        t.n = 0;
        buf_put(&t, j.p, j.n - 2);
        expect_error("no_eoi.jpg", &t, NULL, "truncated");
        t.n = 0;
        buf_put(&t, j.p, 3);
        expect_error("soi_only.jpg", &t, NULL, "truncated");
        free(t.p);
    }
    // A SOF claiming 60000 x 60000: refused from the header.
    {
        Buf big = {0};
        buf_put(&big, j.p, j.n);
        int patched = 0;
        for (size_t i = 2; i + 9 < big.n; i++) {
            if (big.p[i] == 0xFF && big.p[i + 1] == 0xC0) {
                big.p[i + 5] = 60000 >> 8;
                big.p[i + 6] = 60000 & 0xFF;
                big.p[i + 7] = 60000 >> 8;
                big.p[i + 8] = 60000 & 0xFF;
                patched = 1;
                break;
            }
        }
        if (!patched) fail(1, "huge_sof.jpg: no SOF0 marker to patch");
        else expect_error("huge_sof.jpg", &big, NULL, "limit");
        free(big.p);
    }
    free(j.p);
    free(rgb);
}

// ---- robustness: every prefix and random mutations ----

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_rand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static int decode_mem(const uint8_t *d, size_t n) {
    ImageRGB8 img;
    CtError err;
    int rc = image_decode_rgb8(&img, d, n, NULL, "mem", &err);
    if (rc == 0) {
        // Touch every byte so ASan/MSan-style tools see uninitialised output.
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++) sum += img.rgb[i];
        (void)sum;
        image_free(&img);
    } else if (strncmp(err.msg, "mem: ", 5) != 0) {
        fail(1, "error message \"%s\" does not start with the name", err.msg);
    }
    return rc;
}

// Recomputes every chunk CRC of a (mutated) PNG whose chunk structure is
// still intact, so the mutation reaches the decoder instead of the CRC check.
static void png_fix_crcs(uint8_t *d, size_t n) {
    size_t i = 8;
    while (n >= 12 && i <= n - 12) {
        size_t len = ((size_t)d[i] << 24) | ((size_t)d[i + 1] << 16) | ((size_t)d[i + 2] << 8) | d[i + 3];
        if (len > n - i - 12) return;
        uint32_t crc = crc32_of(d + i + 4, len + 4, 0);
        uint8_t *c = d + i + 8 + len;
        c[0] = (uint8_t)(crc >> 24);
        c[1] = (uint8_t)(crc >> 16);
        c[2] = (uint8_t)(crc >> 8);
        c[3] = (uint8_t)crc;
        i += len + 12;
    }
}

static void test_fuzz(void) {
    Buf png = png_pattern(21, 13);
    uint8_t rgb[21 * 13 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 13);
    Buf jpg = jpeg_make(rgb, 21, 13, TJPF_RGB, TJSAMP_420, 85);
    const Buf *files[2] = {&png, &jpg};
    const char *names[2] = {"PNG", "JPEG"};
    for (int f = 0; f < 2; f++) {
        const Buf *b = files[f];
        // Every strict prefix must fail: a JPEG without its EOI, a PNG
        // without a complete IEND (stricter than Pillow, see png.c).
        int bad = 0;
        for (size_t n = 0; n < b->n; n++) {
            if (decode_mem(b->p, n) == 0) {
                if (!bad) fail(2, "%s prefix of %zu of %zu bytes decoded", names[f], n, b->n);
                bad = 1;
            }
        }
        if (!bad) pass();
        // Random byte changes: must not crash; any outcome is allowed.
        uint8_t *m = ct_malloc(b->n);
        int decoded = 0;
        for (int it = 0; it < 3000; it++) {
            memcpy(m, b->p, b->n);
            int k = 1 + (int)(next_rand() % 4);
            for (int i = 0; i < k; i++) m[next_rand() % b->n] = (uint8_t)next_rand();
            if (f == 0 && (it & 1)) png_fix_crcs(m, b->n);
            size_t n = (next_rand() % 8 == 0) ? next_rand() % b->n : b->n;
            decoded += decode_mem(m, n) == 0;
        }
        printf("ok   %s mutations: %d of 3000 still decode\n", names[f], decoded);
        pass();
        free(m);
    }
    free(png.p);
    free(jpg.p);
}

// ---- every colour type and depth, every filter, Adam7 ----

static const unsigned k_channels[7] = {1, 0, 3, 1, 2, 0, 4};

// Packs n samples (each < 2^depth) big-endian into out (row bytes).
static void pack_samples(uint8_t *out, const uint16_t *s, size_t n, unsigned depth) {
    if (depth == 16) {
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = (uint8_t)(s[i] >> 8);
            out[2 * i + 1] = (uint8_t)s[i];
        }
        return;
    }
    memset(out, 0, (n * depth + 7) / 8);
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * depth;
        out[bit / 8] |= (uint8_t)(s[i] << (8 - depth - bit % 8));
    }
}

// The PNG encoder's side of the filters, as the specification states them.
static void filter_row(uint8_t *out, const uint8_t *cur, const uint8_t *prev, size_t n, size_t bpp,
                       unsigned ft) {
    for (size_t i = 0; i < n; i++) {
        int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
        int pred = 0;
        switch (ft) {
            case 1: pred = a; break;
            case 2: pred = b; break;
            case 3: pred = (a + b) / 2; break;
            case 4: {
                int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
                pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                break;
            }
            default: break;
        }
        out[i] = (uint8_t)(cur[i] - pred);
    }
}

// A zlib stream of raw made by zlib itself (real Huffman blocks), with every
// parameter given.
static void zlib_deflate(Buf *out, const uint8_t *raw, size_t n, int level, int wbits, int mem,
                         int strategy) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, wbits, mem, strategy) != Z_OK) exit(2);
    size_t cap = deflateBound(&z, n);
    uint8_t *tmp = ct_malloc(cap);
    z.next_in = (uint8_t *)raw;
    z.avail_in = (uInt)n;
    z.next_out = tmp;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(2);
    buf_put(out, tmp, z.total_out);
    deflateEnd(&z);
    free(tmp);
}

// A PNG of w x h pixels whose samples (h, w, channels) are s: interlaced or
// not, every row filtered with filter (row number % 5) when `filters`,
// deflated as stored blocks (zmode 0) or by zlib (1 default, 2 fixed
// Huffman only), the image data split over IDATs of idat_max bytes.
static Buf png_from_samples(uint32_t w, uint32_t h, uint8_t color, uint8_t depth,
                            const uint16_t *s, int interlace, int filters, int zmode,
                            size_t idat_max, const Buf *extra) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t passes[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                         {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    unsigned ch = k_channels[color];
    size_t bpp = ch * depth >= 8 ? ch * depth / 8 : 1;
    Buf raw = {0};
    uint16_t *line = ct_malloc_array((size_t)w * ch, sizeof(uint16_t));
    size_t rb_max = ((size_t)w * ch * depth + 7) / 8;
    uint8_t *cur = ct_calloc(rb_max + 1, 1), *prev = ct_calloc(rb_max + 1, 1),
            *out = ct_malloc(rb_max + 1);
    unsigned row_no = 0;
    for (int p = 0; p < (interlace ? 7 : 1); p++) {
        size_t x0 = interlace ? passes[p][0] : 0, y0 = interlace ? passes[p][1] : 0;
        size_t dx = interlace ? passes[p][2] : 1, dy = interlace ? passes[p][3] : 1;
        size_t pw = w > x0 ? (w - x0 + dx - 1) / dx : 0, ph = h > y0 ? (h - y0 + dy - 1) / dy : 0;
        if (!pw || !ph) continue;
        size_t rb = (pw * ch * depth + 7) / 8;
        memset(prev, 0, rb_max + 1);
        for (size_t yy = 0; yy < ph; yy++) {
            for (size_t xx = 0; xx < pw; xx++)
                for (unsigned c = 0; c < ch; c++)
                    line[xx * ch + c] = s[(((y0 + yy * dy) * w) + x0 + xx * dx) * ch + c];
            pack_samples(cur, line, pw * ch, depth);
            unsigned ft = filters ? row_no++ % 5 : 0;
            filter_row(out, cur, prev, rb, bpp, ft);
            buf_u8(&raw, (uint8_t)ft);
            buf_put(&raw, out, rb);
            memcpy(prev, cur, rb);
        }
    }
    Buf z = {0}, b = {0}, ihdr = {0};
    if (zmode == 0) zlib_stored(&z, raw.p, raw.n);
    else zlib_deflate(&z, raw.p, raw.n, 9, 15, 8, zmode == 2 ? Z_FIXED : Z_DEFAULT_STRATEGY);
    buf_put(&b, sig, 8);
    buf_u32be(&ihdr, w);
    buf_u32be(&ihdr, h);
    uint8_t rest[5] = {depth, color, 0, 0, (uint8_t)(interlace ? 1 : 0)};
    buf_put(&ihdr, rest, 5);
    png_chunk(&b, "IHDR", ihdr.p, ihdr.n);
    if (extra) buf_put(&b, extra->p, extra->n);
    for (size_t off = 0; off < z.n; off += idat_max)
        png_chunk(&b, "IDAT", z.p + off, z.n - off < idat_max ? z.n - off : idat_max);
    png_chunk(&b, "IEND", NULL, 0);
    free(raw.p);
    free(z.p);
    free(ihdr.p);
    free(line);
    free(cur);
    free(prev);
    free(out);
    return b;
}

// Pillow's convert('RGB') of the samples (16-bit grey: the high byte, see
// png.c), written out independently of the decoder.
static void expected_rgb(uint8_t *rgb, const uint16_t *s, size_t npix, uint8_t color,
                         uint8_t depth, const uint8_t pal[][3], unsigned pal_n) {
    unsigned ch = k_channels[color];
    for (size_t i = 0; i < npix; i++) {
        const uint16_t *p = s + i * ch;
        uint8_t *o = rgb + 3 * i;
        unsigned v[3];
        for (unsigned c = 0; c < 3; c++) {
            unsigned x = p[color == 2 || color == 6 ? c : 0];
            v[c] = depth == 16 ? x >> 8 : depth == 8 ? x : x * (255u / ((1u << depth) - 1));
        }
        if (color == 3) {
            unsigned idx = p[0];
            for (unsigned c = 0; c < 3; c++) v[c] = idx < pal_n ? pal[idx][c] : idx;
        }
        for (unsigned c = 0; c < 3; c++) o[c] = (uint8_t)v[c];
    }
}

static void test_png_all_kinds(void) {
    static const struct {
        uint8_t color, depth;
    } kinds[] = {{0, 1}, {0, 2}, {0, 4}, {0, 8}, {0, 16}, {2, 8}, {2, 16}, {3, 1}, {3, 2},
                 {3, 4}, {3, 8}, {4, 8}, {4, 16}, {6, 8}, {6, 16}};
    int checked = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int it = 0; it < 8; it++) {
            uint8_t color = kinds[k].color, depth = kinds[k].depth;
            uint32_t w = 1 + next_rand() % 37, h = 1 + next_rand() % 19;
            if (it == 0) w = h = 1;
            unsigned ch = k_channels[color];
            size_t n = (size_t)w * h * ch;
            uint16_t *s = ct_malloc_array(n, sizeof(uint16_t));
            unsigned maxv = depth == 16 ? 65535u : (1u << depth) - 1;
            for (size_t i = 0; i < n; i++)
                s[i] = (uint16_t)(it & 1 ? next_rand() % (maxv + 1) : (i * 7 / 3) % (maxv + 1));
            // A short palette for the indexed kinds (3 entries, 2 at 1 bit:
            // libspng refuses more entries than the depth can index), the
            // indices past it grey.
            uint8_t pal[3][3] = {{200, 10, 30}, {0, 255, 128}, {17, 34, 51}};
            unsigned pal_n = depth == 1 ? 2 : 3;
            Buf extra = {0};
            if (color == 3) png_chunk(&extra, "PLTE", &pal[0][0], pal_n * 3);
            uint8_t *want = ct_malloc_array((size_t)w * h, 3);
            expected_rgb(want, s, (size_t)w * h, color, depth, (const uint8_t(*)[3])pal, pal_n);
            for (int variant = 0; variant < 4; variant++) {
                int interlace = variant & 1, filters = variant >= 1;
                int zmode = (it + variant) % 3;
                size_t idat_max = it % 4 == 3 ? 7 : 1 << 16;
                Buf f = png_from_samples(w, h, color, depth, s, interlace, filters, zmode,
                                         idat_max, color == 3 ? &extra : NULL);
                char name[96];
                snprintf(name, sizeof name, "kind_c%u_d%u_%ux%u_%s%s_z%d.png", color, depth, w,
                         h, interlace ? "adam7" : "plain", filters ? "_filtered" : "", zmode);
                expect_pixels(name, &f, w, h, want);
                checked++;
                free(f.p);
            }
            free(extra.p);
            free(want);
            free(s);
        }
    }
    printf("ok   %d PNGs of every colour type, depth, filter and interlace decoded as Pillow would\n",
           checked);
}

// ---- one workspace for many images ----

// A workspace reused over images of changing kinds and sizes, good and
// bad, decodes each good one as the one-off call does.
static void test_workspace(void) {
    Buf files[10];
    int nf = 0;
    files[nf++] = png_pattern(300, 200);
    uint8_t rgb[64 * 48 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 5 + i / 97);
    files[nf++] = jpeg_make(rgb, 64, 48, TJPF_RGB, TJSAMP_420, 80);
    Buf bad = png_pattern(50, 40);
    bad.p[bad.n - 20] ^= 0x10;  // a bad IDAT CRC
    files[nf++] = bad;
    uint8_t cmyk[16 * 16 * 4];
    for (size_t i = 0; i < sizeof cmyk; i++) cmyk[i] = (uint8_t)(i * 3);
    files[nf++] = jpeg_make(cmyk, 16, 16, TJPF_CMYK, TJSAMP_444, 90);
    Buf cut = {0};
    buf_put(&cut, files[1].p, files[1].n - 30);  // truncated JPEG
    files[nf++] = cut;
    files[nf++] = png_pattern(3, 2);
    uint16_t s[40 * 30 * 4];
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) s[i] = (uint16_t)(i * 2654435761u >> 16);
    files[nf++] = png_from_samples(40, 30, 6, 16, s, 1, 1, 1, 100, NULL);
    files[nf++] = png_pattern(301, 199);
    // A wrong Adler-32 (libdeflate refuses it after decoding the data; the
    // decompressor kept in the workspace must still work for the next).
    Buf adler = png_pattern(30, 20);
    size_t trailer = adler.n - 12 - 4 - 1;  // the Adler-32's last byte, before IDAT's CRC
    adler.p[trailer] ^= 0x40;
    png_fix_crcs(adler.p, adler.n);
    files[nf++] = adler;
    files[nf++] = png_pattern(30, 20);
    ImageWork w;
    image_work_init(&w);
    int ok = 1;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < nf; i++) {
            ImageRGB8 a, b;
            CtError ea, eb;
            int ra = image_work_decode_rgb8(&w, &a, files[i].p, files[i].n, NULL, "ws", &ea);
            int rb = image_decode_rgb8(&b, files[i].p, files[i].n, NULL, "ws", &eb);
            if (ra != rb || (ra && strcmp(ea.msg, eb.msg) != 0) ||
                (!ra && (a.width != b.width || a.height != b.height ||
                         memcmp(a.rgb, b.rgb, (size_t)a.width * a.height * 3) != 0))) {
                fail(2, "workspace decode of file %d (round %d) differs from the one-off decode", i,
                     round);
                ok = 0;
            }
            if (i == nf - 2 && (ra == 0 || !strstr(ea.msg, "Adler-32 checksum mismatch"))) {
                fail(2, "workspace: the PNG with a wrong Adler-32 was not refused for it (%s)",
                     ra ? ea.msg : "decoded");
                ok = 0;
            }
            if (!rb) image_free(&b);
        }
    }
    image_work_free(&w);
    image_work_free(&w);  // freeing twice is harmless
    for (int i = 0; i < nf; i++) free(files[i].p);
    if (ok) pass();
}

// ---- the image data's zlib stream ----

// A w x h 8-bit grey PNG whose image data is the zlib stream z[0, zn), as
// given (right or wrong), split over IDATs of idat_max bytes.
static Buf png_wrap_zlib(uint32_t w, uint32_t h, const uint8_t *z, size_t zn, size_t idat_max) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    Buf b = {0}, ihdr = {0};
    buf_put(&b, sig, 8);
    buf_u32be(&ihdr, w);
    buf_u32be(&ihdr, h);
    uint8_t rest[5] = {8, 0, 0, 0, 0};
    buf_put(&ihdr, rest, 5);
    png_chunk(&b, "IHDR", ihdr.p, ihdr.n);
    size_t off = 0;
    do {
        size_t k = zn - off < idat_max ? zn - off : idat_max;
        png_chunk(&b, "IDAT", z + off, k);
        off += k;
    } while (off < zn);
    png_chunk(&b, "IEND", NULL, 0);
    free(ihdr.p);
    return b;
}

// w x h grey samples -> scanlines with filter 0 (raw) and the RGB Pillow
// gives (want).
static void grey_scanlines(Buf *raw, uint8_t *want, const uint8_t *pix, uint32_t w, uint32_t h) {
    for (size_t y = 0; y < h; y++) {
        buf_u8(raw, 0);
        buf_put(raw, pix + y * w, w);
    }
    for (size_t i = 0; i < (size_t)w * h; i++)
        want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = pix[i];
}

// Whether zlib itself inflates z[0, zn) to its end, Adler-32 included, into
// exactly n bytes (the reference for the refusals below).
static int zlib_inflates_to(const uint8_t *z, size_t zn, size_t n) {
    uint8_t *out = ct_malloc(n + 1);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit(&s) != Z_OK) exit(2);
    s.next_in = (uint8_t *)z;
    s.avail_in = (uInt)zn;
    s.next_out = out;
    s.avail_out = (uInt)(n + 1);
    int r = inflate(&s, Z_FINISH);
    int ok = r == Z_STREAM_END && s.total_out == n;
    inflateEnd(&s);
    free(out);
    return ok;
}

// LSB-first bit writer for hand-made deflate blocks (RFC 1951 3.1.1).
typedef struct {
    Buf *b;
    uint32_t acc;
    unsigned n;
} Bits;

static void bits_put(Bits *w, uint32_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        w->acc |= ((v >> i) & 1u) << w->n;
        if (++w->n == 8) {
            buf_u8(w->b, (uint8_t)w->acc);
            w->acc = 0;
            w->n = 0;
        }
    }
}

// A Huffman code: sent most significant bit first.
static void bits_put_code(Bits *w, uint32_t code, unsigned len) {
    for (unsigned i = len; i-- > 0;) bits_put(w, (code >> i) & 1u, 1);
}

static void bits_flush(Bits *w) {
    if (w->n) bits_put(w, 0, 8 - w->n);
}

// Streams zlib writes with every level, strategy, window and memory size,
// from smooth, repetitive and random scanlines (stored, fixed and dynamic
// blocks, long and overlapping matches), in one IDAT or many, decode to
// their pixels; every truncation, a wrong Adler-32 and more or less data
// than the header's size needs are refused, each with one line that names
// the file and what is wrong; bytes after the stream's end are ignored.
static void test_png_zlib(void) {
    static const int strategies[5] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE,
                                      Z_FIXED};
    int checked = 0;
    for (int it = 0; it < 60; it++) {
        uint32_t w = it % 7 == 0 ? 1 + next_rand() % 6 : 1 + next_rand() % 600;
        uint32_t rows = 200000 / (w + 1) < 16000 ? 200000 / (w + 1) : 16000;
        uint32_t h = it % 7 == 0 ? 1 + next_rand() % 6 : 1 + next_rand() % rows;
        size_t npix = (size_t)w * h;
        uint8_t *pix = ct_malloc(npix), *want = ct_malloc_array(npix, 3);
        for (size_t i = 0; i < npix; i++) {
            switch (it % 4) {
                case 0: pix[i] = (uint8_t)(i * 7 / 3 + i / 500); break;
                case 1: pix[i] = (uint8_t)((i / 13) % 3); break;
                case 2: pix[i] = (uint8_t)next_rand(); break;
                default: pix[i] = i % 1000 < 600 ? (uint8_t)(i % 4) : (uint8_t)next_rand(); break;
            }
        }
        Buf raw = {0}, z = {0};
        grey_scanlines(&raw, want, pix, w, h);
        int level = it % 10, strategy = strategies[(it / 10) % 5], wbits = 9 + it % 7;
        zlib_deflate(&z, raw.p, raw.n, level, wbits, 1 + it % 9, strategy);
        char name[96];
        snprintf(name, sizeof name, "zlib_l%d_s%d_w%d_%ux%u.png", level, strategy, wbits, w, h);
        Buf f = png_wrap_zlib(w, h, z.p, z.n, it % 3 == 2 ? 1 + next_rand() % 5000 : z.n);
        expect_pixels(name, &f, w, h, want);
        free(f.p);
        checked++;

        // Cut anywhere in the deflate data, or inside the Adler-32: zlib
        // cannot finish the stream either.
        for (int t = 0; t < 4 && z.n > 6; t++) {
            size_t cut = t < 2 ? 2 + next_rand() % (z.n - 6) : z.n - 1 - (size_t)(t - 2) * 2;
            if (zlib_inflates_to(z.p, cut, raw.n)) {
                fail(1, "%s: zlib decodes the stream cut to %zu of %zu bytes", name, cut, z.n);
                continue;
            }
            f = png_wrap_zlib(w, h, z.p, cut, z.n);
            snprintf(name, sizeof name, "zlib_cut_%zu_of_%zu.png", cut, z.n);
            // (A cut in the deflate data reads as corrupt or truncated data,
            // or as data that ends early, or, when the bits that are
            // missing, read as zeros, would decode to more output, as a
            // stream that does not end where the image does.)
            expect_error(name, &f, NULL,
                         t < 2 ? "PNG data: "
                               : "PNG data: the zlib stream ends before its Adler-32 checksum");
            free(f.p);
        }
        // A wrong Adler-32 (the chunk CRCs are right: they are computed over
        // the wrong trailer).
        Buf bad = {0};
        buf_put(&bad, z.p, z.n);
        bad.p[bad.n - 1 - it % 4] ^= (uint8_t)(1u << (it % 8));
        f = png_wrap_zlib(w, h, bad.p, bad.n, bad.n);
        snprintf(name, sizeof name, "zlib_adler_%ux%u.png", w, h);
        expect_error(name, &f, NULL, "PNG data: Adler-32 checksum mismatch");
        free(f.p);
        // Bytes after the end of the stream, in its IDAT: ignored.
        bad.n = 0;
        buf_put(&bad, z.p, z.n);
        const char *junk = "junk after the zlib stream";
        buf_put(&bad, junk, strlen(junk));
        f = png_wrap_zlib(w, h, bad.p, bad.n, it % 2 ? z.n : bad.n);
        snprintf(name, sizeof name, "zlib_trailing_%ux%u.png", w, h);
        expect_pixels(name, &f, w, h, want);
        free(f.p);
        // One scanline less (the header's size needs more) or one more.
        if (h > 1) {
            f = png_wrap_zlib(w, h + 1, z.p, z.n, z.n);
            snprintf(name, sizeof name, "zlib_short_%ux%u.png", w, h + 1);
            expect_error(name, &f, NULL, "PNG data: the image data ends after");
            free(f.p);
            f = png_wrap_zlib(w, h - 1, z.p, z.n, z.n);
            snprintf(name, sizeof name, "zlib_long_%ux%u.png", w, h - 1);
            expect_error(name, &f, NULL, "PNG data: the zlib stream does not end after");
            free(f.p);
        }
        free(bad.p);
        free(raw.p);
        free(z.p);
        free(pix);
        free(want);
    }

    // Hand-made streams for a 2 x 2 image (6 bytes of scanlines): header
    // errors in zlib's words, and deflate data that zlib refuses too.
    Buf z = {0};
    static const struct {
        uint8_t d[8];
        size_t n;
        const char *what;
    } cases[] = {
        {{0x78}, 1, "the zlib stream ends inside its header"},
        {{0x78, 0x9d}, 2, "incorrect zlib header check"},
        {{0x79, 0x18}, 2, "unknown compression method"},
        {{0x88, 0x98}, 2, "invalid window size"},
        {{0x78, 0xbb}, 2, "needs a preset dictionary"},
        {{0x78, 0x9c, 0x07}, 3, "corrupt or truncated deflate data"},  // block type 3
        {{0x78, 0x9c, 0x01, 0x05, 0x00, 0xfa, 0xfe}, 7, "corrupt or truncated deflate data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "zlib_header_%zu.png", i);
        Buf f = png_wrap_zlib(2, 2, cases[i].d, cases[i].n, cases[i].n);
        expect_error(name, &f, NULL, cases[i].what);
        free(f.p);
    }
    // A dynamic block whose code-length code is over-subscribed (four
    // 1-bit codes), and a fixed block whose first symbol is a match
    // reaching before the start of the data.
    {
        buf_u8(&z, 0x78);
        buf_u8(&z, 0x01);
        Bits b = {&z, 0, 0};
        bits_put(&b, 1, 1);  // final
        bits_put(&b, 2, 2);  // dynamic
        bits_put(&b, 0, 5);  // 257 literal/length codes
        bits_put(&b, 0, 5);  // 1 distance code
        bits_put(&b, 0, 4);  // 4 code-length codes
        for (int i = 0; i < 4; i++) bits_put(&b, 1, 3);
        bits_put(&b, 0, 32);
        bits_flush(&b);
        Buf f = png_wrap_zlib(2, 2, z.p, z.n, z.n);
        if (zlib_inflates_to(z.p, z.n, 6)) fail(1, "zlib decodes the over-subscribed code");
        expect_error("zlib_bad_huffman.png", &f, NULL, "corrupt or truncated deflate data");
        free(f.p);
        z.n = 0;
        buf_u8(&z, 0x78);
        buf_u8(&z, 0x01);
        b = (Bits){&z, 0, 0};
        bits_put(&b, 1, 1);               // final
        bits_put(&b, 1, 2);               // fixed
        bits_put_code(&b, 0x30, 8);       // literal 0 (a filter byte)
        bits_put_code(&b, 0x01, 7);       // length 3 (symbol 257)
        bits_put_code(&b, 0x01, 5);       // distance 2: one byte back is all there is
        bits_put_code(&b, 0x00, 7);       // end of block
        bits_flush(&b);
        buf_u32be(&z, 0);  // an Adler-32 is never reached
        f = png_wrap_zlib(2, 2, z.p, z.n, z.n);
        if (zlib_inflates_to(z.p, z.n, 6)) fail(1, "zlib decodes a distance too far back");
        expect_error("zlib_too_far_back.png", &f, NULL, "corrupt or truncated deflate data");
        free(f.p);
    }
    // Found by tests/fuzz against the hand-written inflater ctsweep had
    // before libdeflate: a fixed-Huffman stream cut right after its 64th
    // byte, which that inflater accepted once its output was full (it
    // never read the end code nor the Adler-32). Now a cut stream is
    // refused, whatever it has produced by then; here the bits that are
    // missing would decode to a 65th byte.
    {
        static const uint8_t cut_after_output[75] = {
            0x78, 0x9c, 0x12, 0x8a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x48};
        Buf f = png_wrap_zlib(7, 8, cut_after_output, sizeof cut_after_output,
                              sizeof cut_after_output);
        expect_error("zlib_cut_after_output.png", &f, NULL,
                     "PNG data: the zlib stream does not end after the 64 bytes");
        free(f.p);
    }
    free(z.p);
    printf("ok   %d zlib streams of every kind decoded, and their damaged forms refused\n",
           checked);
}

static void test_sniff(void) {
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t jpg[3] = {0xFF, 0xD8, 0xFF};
    int ok = image_sniff(png, 8) == IMAGE_FMT_PNG && image_sniff(png, 7) == IMAGE_FMT_UNKNOWN &&
             image_sniff(jpg, 3) == IMAGE_FMT_JPEG && image_sniff(jpg, 2) == IMAGE_FMT_UNKNOWN &&
             image_sniff(NULL, 0) == IMAGE_FMT_UNKNOWN;
    if (ok) pass();
    else fail(1, "image_sniff misclassifies a signature");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_image SCRATCH_DIR\n");
        return 2;
    }
    g_dir = argv[1];
    CtError err;
    if (ct_mkdirs(g_dir, &err)) {
        fprintf(stderr, "test_image: %s\n", err.msg);
        return 2;
    }
    test_sniff();
    test_png_modes();
    test_png_bad();
    test_jpeg();
    test_png_all_kinds();
    test_png_zlib();
    test_workspace();
    test_fuzz();
    if (g_fail) printf("worst failure: %s\n", g_worst);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
