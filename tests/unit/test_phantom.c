/*
 * test_phantom.c — the synthetic CT generator: every image is a pure
 * function of (seed, index, positive); the positive and negative renderings
 * of one index differ only by non-negative ground-glass blobs inside the
 * body; a written set has the promised names, classes and pixels; it is
 * fast; bad arguments are refused with a message.
 *
 * argv[1]: a scratch directory (created).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/image.h"
#include "data/phantom.h"
#include "util/util.h"

static int g_pass, g_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_phantom SCRATCH_DIR\n");
        return 2;
    }
    const size_t S = 96;
    uint8_t *a = ct_malloc(S * S), *b = ct_malloc(S * S), *c = ct_malloc(S * S);

    // Pure function of (seed, index, positive), whatever was rendered before.
    phantom_render(a, S, 11, 7, 1);
    phantom_render(c, S, 11, 3, 0);
    phantom_render(b, S, 11, 7, 1);
    check(memcmp(a, b, S * S) == 0, "render(11, 7) differs between calls");
    phantom_render(b, S, 12, 7, 1);
    check(memcmp(a, b, S * S) != 0, "seed does not change the image");
    phantom_render(b, S, 11, 8, 1);
    check(memcmp(a, b, S * S) != 0, "index does not change the image");

    // Positive vs negative of the same index: same anatomy and noise, plus
    // blobs that only brighten, only inside the body, by a visible amount.
    // Over 20 indices the blobs must be there every time.
    int min_changed = (int)(S * S), max_neg = 0;
    double mean_delta = 0;
    for (uint64_t idx = 0; idx < 20; idx++) {
        phantom_render(a, S, 5, idx, 1);
        phantom_render(b, S, 5, idx, 0);
        int changed = 0;
        double delta = 0;
        for (size_t i = 0; i < S * S; i++) {
            int d = (int)a[i] - (int)b[i];
            if (d < 0 && -d > max_neg) max_neg = -d;
            if (d > 0) changed++;
            delta += d;
            size_t x = i % S, y = i / S;
            int corner = (x < S / 16 || x >= S - S / 16) && (y < S / 16 || y >= S - S / 16);
            if (corner && d != 0) {
                check(0, "index %llu: blob outside the body at (%zu, %zu)", (unsigned long long)idx, x, y);
                break;
            }
        }
        if (changed < min_changed) min_changed = changed;
        mean_delta += delta / (double)(S * S) / 20.0;
    }
    check(max_neg == 0, "positive darker than negative by %d somewhere", max_neg);
    check(min_changed >= (int)(S * S / 200), "a positive changed only %d pixels", min_changed);
    printf("positives: at least %d changed pixels of %zu, mean brightening %.2f grey levels\n",
           min_changed, S * S, mean_delta);

    // Anatomy sanity: dark corners (air), bright body centre band.
    phantom_render(a, S, 1, 0, 0);
    double corner = 0, centre = 0;
    for (size_t y = 0; y < 4; y++)
        for (size_t x = 0; x < 4; x++) corner += a[y * S + x] / 16.0;
    for (size_t y = S / 2 - 2; y < S / 2 + 2; y++)
        for (size_t x = S / 2 - 2; x < S / 2 + 2; x++) centre += a[y * S + x] / 16.0;
    check(corner < 20 && centre > 80, "corner %.1f (air) / centre %.1f (mediastinum)", corner, centre);

    // A written set: even indices negative, odd positive; pixels as rendered.
    char *dir = ct_asprintf("%s/set", argv[1]);
    CtError err;
    int rc = phantom_write_set(dir, 9, 21, 64, &err);
    check(rc == 0, "phantom_write_set: %s", rc ? err.msg : "");
    if (rc == 0) {
        int n_pos = 0, n_neg = 0;
        for (size_t i = 0; i < 10; i++) {
            char *pos = ct_asprintf("%s/CT_COVID/phantom_%05zu.png", dir, i);
            char *neg = ct_asprintf("%s/CT_NonCOVID/phantom_%05zu.png", dir, i);
            n_pos += file_exists(pos);
            n_neg += file_exists(neg);
            if (i < 9) check(file_exists(i & 1 ? pos : neg) && !file_exists(i & 1 ? neg : pos),
                             "phantom %zu is not in the %s folder only", i, i & 1 ? "COVID" : "NonCOVID");
            ImageRGB8 img;
            if (i < 9 && image_load_rgb8(&img, i & 1 ? pos : neg, NULL, &err) == 0) {
                uint8_t g[64 * 64];
                phantom_render(g, 64, 21, i, (int)(i & 1));
                int same = img.width == 64 && img.height == 64;
                for (size_t k = 0; same && k < 64 * 64; k++)
                    same = img.rgb[3 * k] == g[k] && img.rgb[3 * k + 1] == g[k] && img.rgb[3 * k + 2] == g[k];
                check(same, "phantom %zu on disk differs from phantom_render", i);
                image_free(&img);
            }
            free(pos);
            free(neg);
        }
        check(n_pos == 4 && n_neg == 5, "9 phantoms gave %d positive and %d negative files", n_pos, n_neg);
    }

    // Speed: 200 slices of 128 px (the demo's size) well under a second in a
    // release build; the bound is loose for sanitizer builds.
    char *fast = ct_asprintf("%s/speed", argv[1]);
    double t0 = ct_now();
    rc = phantom_write_set(fast, 200, 1, 128, &err);
    double dt = ct_now() - t0;
    check(rc == 0, "phantom_write_set 200: %s", rc ? err.msg : "");
    printf("200 phantoms of 128 px written in %.3f s\n", dt);
    check(dt < 10.0, "200 phantoms took %.1f s", dt);

    // Bad arguments.
    check(phantom_write_set(dir, 2, 1, 0, &err) != 0 && strstr(err.msg, dir) != NULL,
          "size 0 accepted or message without the folder: %s", err.msg);
    char *blocked = ct_asprintf("%s/set/CT_COVID/phantom_00001.png/sub", argv[1]);
    check(phantom_write_set(blocked, 2, 1, 32, &err) != 0, "writing under a file succeeded");
    if (g_fail == 0) printf("ok   bad folder -> %s\n", err.msg);

    free(blocked);
    free(fast);
    free(dir);
    free(a);
    free(b);
    free(c);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
