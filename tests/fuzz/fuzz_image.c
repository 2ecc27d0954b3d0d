/*
 * fuzz_image.c — libFuzzer target over the image entry points a data set
 * reaches: decode by content (PNG, JPEG) into RGB8 under small limits, resize
 * (Pillow-exact bilinear) and conversion to a normalised tensor. Any crash,
 * sanitizer report, leak or hang found here is a bug in src/data/image.c,
 * png.c or resize.c (or in the libraries they call, on input they let
 * through).
 *
 * Input: byte 0 chooses the output size (both sides in 1..300) and the API
 * (the per-thread workspace, or the one-off calls that allocate); the rest is
 * the file. make_seeds.c writes seeds in this form. The build skips PNG
 * chunk CRCs and the zlib Adler-32 (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION),
 * so that mutated image data reaches libdeflate, the unfiltering and the
 * conversion.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/resize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Kept across inputs, as a decoding thread keeps them: buffer growth and
// reuse are part of what is tested.
static ImageWork g_image;
static ResizeWork g_resize;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned b = data[0];
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
