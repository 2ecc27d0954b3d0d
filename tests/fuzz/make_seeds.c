/*
 * make_seeds.c — writes the seed corpus of fuzz_image into a folder: tiny
 * valid PNGs of every colour type and bit depth (plain and Adam7, with PLTE
 * and tRNS where they apply, deflated with stored, fixed and dynamic Huffman
 * blocks and with every filter) and JPEGs (grey, RGB at each subsampling,
 * CMYK, progressive), and PNGs whose image data zlib wrote with each of its
 * strategies and small windows, split over many IDATs.
 * Generated, so the corpus is neither downloaded nor committed; each file
 * starts with the byte fuzz_image reads first.
 *
 * usage: make_seeds DIR   (DIR must exist)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spng.h>
#include <turbojpeg.h>
#include <zlib.h>

static int g_count, g_failed;
static const char *g_dir;

static void write_seed(const char *name, uint8_t size_byte, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputc(size_byte, f) == EOF || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        exit(1);
    }
    g_count++;
}

// A pattern that varies along both axes, so every filter type pays off
// somewhere and the deflate stream has matches and literals.
static uint8_t pattern(unsigned x, unsigned y, unsigned c) {
    return (uint8_t)(x * 37u + y * 91u + c * 53u + x * y * 7u);
}

static void png_seed(const char *name, uint32_t w, uint32_t h, uint8_t color, uint8_t depth,
                     uint8_t interlace, int level, int strategy, int trns, uint8_t size_byte) {
    static const unsigned channels[7] = {1, 0, 3, 1, 2, 0, 4};
    size_t row = ((size_t)w * channels[color] * depth + 7) / 8, len = row * h;
    uint8_t *img = malloc(len);
    for (size_t y = 0; y < h; y++)
        for (size_t i = 0; i < row; i++) img[y * row + i] = pattern((unsigned)i, (unsigned)y, 0);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    struct spng_ihdr ihdr = {w, h, depth, color, 0, 0, interlace};
    int r = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!r) r = spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, level);
    if (!r) r = spng_set_option(ctx, SPNG_IMG_COMPRESSION_STRATEGY, strategy);
    if (!r) r = spng_set_option(ctx, SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_ALL);
    if (!r) r = spng_set_ihdr(ctx, &ihdr);
    if (!r && color == SPNG_COLOR_TYPE_INDEXED) {
        // A short palette: indices past its end are grey in Pillow's rules.
        struct spng_plte plte = {0};
        plte.n_entries = depth == 1 ? 2 : depth == 2 ? 3 : 5;
        for (uint32_t i = 0; i < plte.n_entries; i++) {
            plte.entries[i].red = pattern(i, 1, 0);
            plte.entries[i].green = pattern(i, 2, 1);
            plte.entries[i].blue = pattern(i, 3, 2);
        }
        r = spng_set_plte(ctx, &plte);
        if (!r && trns) {
            struct spng_trns t = {0};
            t.n_type3_entries = 2;
            t.type3_alpha[0] = 0;
            t.type3_alpha[1] = 128;
            r = spng_set_trns(ctx, &t);
        }
    } else if (!r && trns && (color == SPNG_COLOR_TYPE_GRAYSCALE || color == SPNG_COLOR_TYPE_TRUECOLOR)) {
        struct spng_trns t = {0};
        t.gray = 1;
        t.red = 1;
        t.green = 2;
        t.blue = 3;
        r = spng_set_trns(ctx, &t);
    }
    if (!r) r = spng_encode_image(ctx, img, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    size_t png_len = 0;
    void *png = r ? NULL : spng_get_png_buffer(ctx, &png_len, &r);
    if (png) {
        write_seed(name, size_byte, png, png_len);
        free(png);
    } else {
        fprintf(stderr, "make_seeds: %s: %s\n", name, spng_strerror(r));
        g_failed++;
    }
    spng_ctx_free(ctx);
    free(img);
}

static void jpeg_seed(const char *name, int w, int h, int pf, int subsamp, int flags,
                      uint8_t size_byte) {
    int ps = tjPixelSize[pf];
    uint8_t *img = malloc((size_t)w * h * ps);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ps; c++) img[((size_t)y * w + x) * ps + c] = pattern(x, y, c);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    if (tj && tjCompress2(tj, img, w, 0, h, pf, &jpg, &len, subsamp, 85, flags) == 0) {
        write_seed(name, size_byte, jpg, len);
    } else {
        fprintf(stderr, "make_seeds: %s: %s\n", name, tjGetErrorStr2(tj));
        g_failed++;
    }
    tjFree(jpg);
    if (tj) tjDestroy(tj);
    free(img);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

// Appends a chunk (length, type, data, CRC) at png + *at.
static void put_chunk(uint8_t *png, size_t *at, const char *type, const uint8_t *d, size_t n) {
    put_be32(png + *at, (uint32_t)n);
    memcpy(png + *at + 4, type, 4);
    if (n) memcpy(png + *at + 8, d, n);
    put_be32(png + *at + 8 + n, (uint32_t)crc32(0, png + *at + 4, (uInt)(n + 4)));
    *at += n + 12;
}

// An 8-bit grey PNG whose image data zlib writes with the given level,
// strategy and window (libspng offers no choice of window), every row with
// the next filter type, the stream split over IDATs of idat_max bytes.
// kind: 0 smooth, 1 runs, 2 noise.
static void png_zlib_seed(const char *name, uint32_t w, uint32_t h, int level, int strategy,
                          int window_bits, int kind, size_t idat_max, uint8_t size_byte) {
    size_t n = (size_t)h * (w + 1);
    uint8_t *raw = malloc(n), *z = NULL, *png = NULL;
    for (size_t y = 0, i = 0; y < h; y++) {
        raw[i++] = (uint8_t)(y % 5);
        for (size_t x = 0; x < w; x++, i++)
            raw[i] = kind == 0 ? pattern((unsigned)x, (unsigned)y, 0)
                   : kind == 1 ? (uint8_t)((i / 7) % 5)
                               : (uint8_t)(i * 2654435761u >> 24);
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8, strategy) != Z_OK) {
        g_failed++;
        free(raw);
        return;
    }
    size_t cap = deflateBound(&zs, n);
    z = malloc(cap);
    zs.next_in = raw;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) == Z_STREAM_END) {
        size_t zn = zs.total_out, at = 8;
        png = malloc(8 + 25 + zn + 12 * (zn / idat_max + 1) + 12);
        memcpy(png, "\x89PNG\r\n\x1a\n", 8);
        uint8_t ihdr[13] = {0};
        put_be32(ihdr, w);
        put_be32(ihdr + 4, h);
        ihdr[8] = 8;  // depth 8, grey, no interlace
        put_chunk(png, &at, "IHDR", ihdr, sizeof ihdr);
        for (size_t off = 0; off < zn; off += idat_max)
            put_chunk(png, &at, "IDAT", z + off, zn - off < idat_max ? zn - off : idat_max);
        put_chunk(png, &at, "IEND", NULL, 0);
        write_seed(name, size_byte, png, at);
    } else {
        g_failed++;
    }
    deflateEnd(&zs);
    free(png);
    free(z);
    free(raw);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    g_dir = argv[1];
    static const struct {
        uint8_t color, depth;
    } kinds[] = {{0, 1}, {0, 2}, {0, 4}, {0, 8}, {0, 16}, {2, 8}, {2, 16}, {3, 1}, {3, 2},
                 {3, 4}, {3, 8}, {4, 8}, {4, 16}, {6, 8}, {6, 16}};
    // Deflate variants: stored (level 0), fixed Huffman, dynamic Huffman.
    static const struct {
        int level, strategy;
        const char *tag;
    } zs[] = {{0, Z_DEFAULT_STRATEGY, "stored"}, {6, Z_FIXED, "fixed"},
              {9, Z_DEFAULT_STRATEGY, "dynamic"}};
    unsigned k = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        for (int interlace = 0; interlace < 2; interlace++) {
            for (size_t z = 0; z < 3; z++, k++) {
                char name[64];
                snprintf(name, sizeof name, "png_c%u_d%u_%s%s", kinds[i].color, kinds[i].depth,
                         zs[z].tag, interlace ? "_adam7" : "");
                uint32_t w = 5 + (uint32_t)(k % 7), h = 3 + (uint32_t)(k % 5);
                png_seed(name, w, h, kinds[i].color, kinds[i].depth, (uint8_t)interlace,
                         zs[z].level, zs[z].strategy, (int)(k % 2), (uint8_t)(k * 37));
            }
        }
    }
    // A wider one, so that resizing has several taps per output.
    png_seed("png_rgb_wide", 61, 23, 2, 8, 0, 9, Z_DEFAULT_STRATEGY, 0, 40);
    png_seed("png_rgba_wide", 47, 29, 6, 8, 0, 9, Z_DEFAULT_STRATEGY, 0, 200);

    jpeg_seed("jpeg_grey", 13, 9, TJPF_GRAY, TJSAMP_GRAY, 0, 3);
    jpeg_seed("jpeg_rgb444", 13, 9, TJPF_RGB, TJSAMP_444, 0, 60);
    jpeg_seed("jpeg_rgb422", 17, 9, TJPF_RGB, TJSAMP_422, 0, 90);
    jpeg_seed("jpeg_rgb420", 19, 11, TJPF_RGB, TJSAMP_420, 0, 120);
    jpeg_seed("jpeg_rgb440", 11, 17, TJPF_RGB, TJSAMP_440, 0, 150);
    jpeg_seed("jpeg_rgb411", 33, 9, TJPF_RGB, TJSAMP_411, 0, 170);
    jpeg_seed("jpeg_cmyk", 13, 9, TJPF_CMYK, TJSAMP_444, 0, 210);
    jpeg_seed("jpeg_progressive", 21, 13, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE, 230);
    jpeg_seed("jpeg_grey_progressive", 21, 13, TJPF_GRAY, TJSAMP_GRAY, TJFLAG_PROGRESSIVE, 250);
    // Image data zlib wrote with each strategy, a small window, noisy data
    // and IDATs of a few bytes.
    png_zlib_seed("png_zlib_stored", 40, 30, 0, Z_DEFAULT_STRATEGY, 15, 0, 1 << 16, 0x40);
    png_zlib_seed("png_zlib_fixed", 50, 40, 6, Z_FIXED, 15, 0, 1 << 16, 0x80);
    png_zlib_seed("png_zlib_rle", 60, 30, 6, Z_RLE, 15, 1, 1 << 16, 0x81);
    png_zlib_seed("png_zlib_huffman", 30, 40, 6, Z_HUFFMAN_ONLY, 15, 2, 1 << 16, 0x41);
    png_zlib_seed("png_zlib_filtered", 64, 48, 9, Z_FILTERED, 15, 0, 1 << 16, 0xC1);
    png_zlib_seed("png_zlib_window9", 255, 255, 9, Z_DEFAULT_STRATEGY, 9, 1, 1 << 16, 0xC0);
    png_zlib_seed("png_zlib_split", 20, 15, 9, Z_DEFAULT_STRATEGY, 15, 0, 7, 0x10);
    printf("make_seeds: %d seeds in %s\n", g_count, g_dir);
    return g_failed ? 1 : 0;
}
