/*
 * image_dump.c — a test driver that runs ctsweep's image pipeline (decode,
 * optionally resize, optionally convert to a normalised tensor) on files and
 * streams the results to stdout, so compare_pil.py can check them against
 * Pillow and torchvision without a process per image.
 *
 * usage: image_dump [--size WxH] [--tensor imagenet|unit] FILE...
 *        image_dump --write-ycck-jpeg OUT.jpg
 *
 * Per file, one record (native little-endian uint32s):
 *   status (0 ok, 1 error), width, height, kind (0: uint8 (H, W, 3),
 *   1: float32 (3, H, W)), message length; then the message (errors), then
 *   the payload (ok). A decode error is a record, not an exit status; the
 *   exit status is non-zero only for usage or I/O problems.
 * --write-ycck-jpeg writes a CMYK image as a YCCK JPEG with TurboJPEG, a kind
 * of file Pillow cannot write, for the CMYK comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "data/image.h"
#include "data/resize.h"
#include "util/util.h"

static int put_record(uint32_t status, uint32_t w, uint32_t h, uint32_t kind, const char *msg,
                      const void *payload, size_t payload_bytes) {
    uint32_t hdr[5] = {status, w, h, kind, msg ? (uint32_t)strlen(msg) : 0};
    if (fwrite(hdr, sizeof hdr, 1, stdout) != 1) return -1;
    if (hdr[4] && fwrite(msg, 1, hdr[4], stdout) != hdr[4]) return -1;
    if (payload_bytes && fwrite(payload, 1, payload_bytes, stdout) != payload_bytes) return -1;
    return 0;
}

static int write_ycck(const char *path) {
    const int w = 67, h = 45;
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    if (!cmyk) return 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = cmyk + ((size_t)y * w + x) * 4;
            p[0] = (uint8_t)(x * 3 + y);
            p[1] = (uint8_t)(y * 5);
            p[2] = (uint8_t)(255 - x * 2);
            p[3] = (uint8_t)((x * y) & 255);
        }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    int rc = 1;
    if (tj && tjCompress2(tj, cmyk, w, 0, h, TJPF_CMYK, &jpg, &size, TJSAMP_420, 92, 0) == 0) {
        CtError err;
        if (ct_write_file_atomic(path, jpg, size, &err) == 0) rc = 0;
        else fprintf(stderr, "image_dump: %s\n", err.msg);
    } else {
        fprintf(stderr, "image_dump: tjCompress2: %s\n", tjGetErrorStr2(tj));
    }
    tjFree(jpg);
    if (tj) tjDestroy(tj);
    free(cmyk);
    return rc;
}

int main(int argc, char **argv) {
    size_t out_w = 0, out_h = 0;
    int tensor = 0;
    NormMode norm = NORM_IMAGENET;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (sscanf(argv[++i], "%zux%zu", &out_w, &out_h) != 2 || !out_w || !out_h) {
                fprintf(stderr, "image_dump: bad --size %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--tensor") == 0 && i + 1 < argc) {
            if (norm_mode_parse(argv[++i], &norm)) {
                fprintf(stderr, "image_dump: bad --tensor %s\n", argv[i]);
                return 2;
            }
            tensor = 1;
        } else if (strcmp(argv[i], "--write-ycck-jpeg") == 0 && i + 1 < argc) {
            return write_ycck(argv[i + 1]);
        } else {
            fprintf(stderr, "usage: image_dump [--size WxH] [--tensor imagenet|unit] FILE...\n");
            return 2;
        }
    }
    for (; i < argc; i++) {
        ImageRGB8 img;
        CtError err;
        if (image_load_rgb8(&img, argv[i], NULL, &err)) {
            if (put_record(1, 0, 0, 0, err.msg, NULL, 0)) return 3;
            continue;
        }
        size_t w = img.width, h = img.height;
        uint8_t *pix = img.rgb;
        uint8_t *resized = NULL;
        if (out_w) {
            resized = malloc(out_w * out_h * 3);
            if (!resized || resize_bilinear_rgb8(resized, out_w, out_h, img.rgb, w, h, &err)) {
                if (!resized) snprintf(err.msg, sizeof err.msg, "out of memory");
                put_record(1, 0, 0, 0, err.msg, NULL, 0);
                free(resized);
                image_free(&img);
                continue;
            }
            pix = resized;
            w = out_w;
            h = out_h;
        }
        int rc;
        if (tensor) {
            float *t = malloc(w * h * 3 * sizeof(float));
            if (!t) return 3;
            resize_to_tensor(t, pix, w, h, norm);
            rc = put_record(0, (uint32_t)w, (uint32_t)h, 1, NULL, t, w * h * 3 * sizeof(float));
            free(t);
        } else {
            rc = put_record(0, (uint32_t)w, (uint32_t)h, 0, NULL, pix, w * h * 3);
        }
        free(resized);
        image_free(&img);
        if (rc) return 3;
    }
    return fflush(stdout) == 0 ? 0 : 3;
}
