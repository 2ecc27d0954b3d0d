/*
 * fuzz_image.c — libFuzzer target over the image entry points a data set
 * reaches: decode by content (PNG, JPEG) into RGB8 under small limits, resize
 * (Pillow-exact bilinear) and conversion to a normalised tensor. Any crash,
 * sanitizer report, leak or hang found here is a bug in src/data/image.c or
 * src/data/resize.c (or in the libraries they call, on input they let through).
 *
 * Input: byte 0 chooses the output size (both sides in 1..300) and the API
 * (the per-thread workspace, or the one-off calls that allocate); the rest is
 * the file. make_seeds.c writes seeds in this form. When byte 0 has bits 1
 * and 2 set, the rest is instead a bare zlib stream, inflated by the PNG
 * decoder's own inflater and by zlib, which must agree (differential).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "data/image.h"
#include "data/resize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// The PNG decoder's inflater against zlib inflating into one buffer (the
// same leniency about the declared window): the same bytes whenever zlib
// fills the buffer, the same bytes when ours ends the stream early, and a
// refusal by ours only where zlib did not decode the stream to its end.
static void fuzz_inflate(unsigned b, const uint8_t *data, size_t size) {
    size_t out_len = (size_t)64 << (4 * (b >> 6));  // 64 B .. 256 KiB
    uint8_t *ours = malloc(out_len), *ref = malloc(out_len);
    if (!ours || !ref) abort();
    size_t done = 0;
    CtError err;
    int rc = image_inflate(ours, out_len, &done, data, size, &err);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) abort();
    inflateValidate(&z, 0);  // the decoder relies on chunk CRCs instead
    z.next_in = (uint8_t *)data;
    z.avail_in = (uInt)size;
    z.next_out = ref;
    z.avail_out = (uInt)out_len;
    int zr = inflate(&z, Z_NO_FLUSH);
    size_t zdone = out_len - z.avail_out;
    inflateEnd(&z);
    if (zdone == out_len) {
        // zlib filled the buffer: so must ours, with the same bytes.
        if (rc != 0 || done != out_len || memcmp(ours, ref, out_len) != 0) abort();
    } else if (rc == 0) {
        // Ours ended the stream early (it never reads the Adler-32 trailer,
        // which zlib may still be waiting for): zlib must have decoded the
        // same bytes without an error.
        if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || done != zdone ||
            memcmp(ours, ref, done) != 0)
            abort();
    } else if (zr == Z_STREAM_END) {
        abort();  // ours refused a stream zlib decoded to its end
    }
    free(ours);
    free(ref);
}

// Kept across inputs, as a decoding thread keeps them: buffer growth and
// reuse are part of what is tested.
static ImageWork g_image;
static ResizeWork g_resize;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned b = data[0];
    if ((b & 0x06) == 0x06) {
        fuzz_inflate(b, data + 1, size - 1);
        return 0;
    }
    size_t out_w = 1 + (b * 299u) / 255u, out_h = 1 + ((b ^ 0x5Au) * 299u) / 255u;
    int one_off = (b & 0x81) == 0x81;
    data++;
    size--;

    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_width = 4096;
    lim.max_height = 4096;
    lim.max_decoded_bytes = (size_t)64 << 20;

    ImageRGB8 img;
    CtError err;
    int rc = one_off ? image_decode_rgb8(&img, data, size, &lim, "fuzz", &err)
                     : image_work_decode_rgb8(&g_image, &img, data, size, &lim, "fuzz", &err);
    if (rc) {
        // Every refusal is one line that names the input.
        if (strncmp(err.msg, "fuzz: ", 6) != 0) abort();
        return 0;
    }
    if (img.width == 0 || img.height == 0 || !img.rgb) abort();

    uint8_t *rgb = malloc(out_w * out_h * 3);
    float *tensor = malloc(out_w * out_h * 3 * sizeof(float));
    if (!rgb || !tensor) abort();
    rc = one_off ? resize_bilinear_rgb8(rgb, out_w, out_h, img.rgb, img.width, img.height, &err)
                 : resize_work_bilinear_rgb8(&g_resize, rgb, out_w, out_h, img.rgb, img.width,
                                             img.height, &err);
    if (rc) abort();  // any decoded image resizes
    resize_to_tensor(tensor, rgb, out_w, out_h, (b & 1) ? NORM_UNIT : NORM_IMAGENET);
    free(tensor);
    free(rgb);
    if (one_off) image_free(&img);
    return 0;
}
