/*
 * png_write.c — the PNG encoder of png_write.h. Sub filtering (each byte
 * less the one three to its left) shrinks the smooth colour gradients of an
 * overlay to about half the unfiltered size; chunk CRCs are libdeflate's.
 */
#include "data/png_write.h"

#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

// One chunk: length, type, data, CRC of type and data.
static int put_chunk(FILE *f, const char type[4], const uint8_t *data, size_t len) {
    uint8_t hdr[8];
    put_be32(hdr, (uint32_t)len);
    memcpy(hdr + 4, type, 4);
    uint32_t crc = libdeflate_crc32(0, type, 4);
    if (len) crc = libdeflate_crc32(crc, data, len);  // (a NULL buffer would restart the CRC)
    uint8_t tail[4];
    put_be32(tail, crc);
    return fwrite(hdr, 1, 8, f) != 8 || (len && fwrite(data, 1, len, f) != len) || fwrite(tail, 1, 4, f) != 4 ? -1 : 0;
}

int png_write_rgb8(const char *path, const uint8_t *rgb, size_t width, size_t height, CtError *err) {
    if (width == 0 || height == 0 || width > (1u << 24) || height > (1u << 24))
        return ct_errorf(err, "%s: cannot write a %zux%zu PNG", path, width, height);
    size_t stride = 3 * width, raw_len = (stride + 1) * height;
    uint8_t *raw = malloc(raw_len);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    size_t bound = c ? libdeflate_zlib_compress_bound(c, raw_len) : 0;
    uint8_t *z = bound ? malloc(bound) : NULL;
    char *tmp = ct_asprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = NULL;
    int rc = -1;
    if (!raw || !c || !z) {
        ct_errorf(err, "%s: out of memory for the PNG", path);
        goto out;
    }
    for (size_t y = 0; y < height; y++) {
        uint8_t *dst = raw + y * (stride + 1);
        const uint8_t *src = rgb + y * stride;
        dst[0] = 1;  // Sub
        for (size_t i = 0; i < stride; i++) dst[1 + i] = (uint8_t)(src[i] - (i >= 3 ? src[i - 3] : 0));
    }
    size_t zlen = libdeflate_zlib_compress(c, raw, raw_len, z, bound);
    if (zlen == 0) {
        ct_errorf(err, "%s: compression failed", path);
        goto out;
    }
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;   // bit depth
    ihdr[9] = 2;   // truecolour
    ihdr[10] = 0;  // deflate
    ihdr[11] = 0;  // adaptive filtering
    ihdr[12] = 0;  // no interlace
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    f = fopen(tmp, "wb");
    if (!f) {
        ct_errorf(err, "%s: cannot create the file", path);
        goto out;
    }
    int bad = fwrite(sig, 1, 8, f) != 8 || put_chunk(f, "IHDR", ihdr, 13) || put_chunk(f, "IDAT", z, zlen) ||
              put_chunk(f, "IEND", NULL, 0);
    if (fclose(f) != 0) bad = 1;
    f = NULL;
    if (bad || rename(tmp, path) != 0) {
        ct_errorf(err, "%s: write failed", path);
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    free(tmp);
    free(z);
    free(raw);
    if (c) libdeflate_free_compressor(c);
    return rc;
}
