/*
 * image_cache.c — parallel decode + resize of a whole data set, with the
 * bad-image policy applied in index order so the outcome does not depend on
 * thread timing, and one decode/resize workspace per thread so that
 * decoding allocates per thread, not per image.
 */
#include "data/image_cache.h"

#include <stdlib.h>
#include <string.h>

#include "data/preprocess.h"

int bad_image_policy_parse(const char *s, BadImagePolicy *out) {
    if (strcmp(s, "error") == 0) *out = BAD_IMAGE_ERROR;
    else if (strcmp(s, "skip") == 0) *out = BAD_IMAGE_SKIP;
    else return -1;
    return 0;
}

int image_cache_build(ImageCache *c, DataSet *ds, size_t size, const ImageLimits *lim, BadImagePolicy policy,
                      CtError *err) {
    memset(c, 0, sizeof *c);
    size_t per, total;
    if (ct_mul_size(&per, size, size) || ct_mul_size(&per, per, 3) || ct_mul_size(&total, per, ds->n))
        return ct_errorf(err, "image cache size overflows (%zu images of %zu px)", ds->n, size);
    uint8_t *pix = ct_try_aligned_alloc(total ? total : 1, 1);
    if (!pix) return ct_errorf(err, "out of memory for the image cache (%zu MiB)", total >> 20);
    CtError *errs = ct_calloc(ds->n ? ds->n : 1, sizeof *errs);
    char *bad = ct_calloc(ds->n ? ds->n : 1, 1);
    // One workspace per thread: after the first few images nothing is
    // allocated per image.
#pragma omp parallel
    {
        PreprocessWork w;
        preprocess_work_init(&w);
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < ds->n; i++)
            bad[i] = preprocess_work_load_rgb8(&w, pix + i * per, ds->items[i].path, size, lim,
                                               &errs[i]) != 0;
        preprocess_work_free(&w);
    }
    int rc = 0;
    // Walk in index order: the first bad image is the error, or each is skipped.
    size_t n0 = ds->n, r = 0;
    for (size_t orig = 0; orig < n0; orig++) {
        if (!bad[orig]) {
            if (r != orig) memmove(pix + r * per, pix + orig * per, per);
            r++;
            continue;
        }
        if (policy == BAD_IMAGE_ERROR) {
            *err = errs[orig];
            rc = -1;
            break;
        }
        ct_warn("skipping bad image: %s", errs[orig].msg);
        // Its path starts the message; keep only the reason in the record.
        const char *reason = errs[orig].msg;
        size_t plen = strlen(ds->items[r].path);
        if (strncmp(reason, ds->items[r].path, plen) == 0 && reason[plen] == ':') reason += plen + 2;
        dataset_skip(ds, r, reason);
    }
    free(errs);
    free(bad);
    if (rc) {
        ct_aligned_free(pix);
        return -1;
    }
    if (ds->n == 0) {
        ct_aligned_free(pix);
        return ct_errorf(err, "%s: every image was bad; nothing left to train on", ds->root);
    }
    c->n = ds->n;
    c->size = size;
    c->pix = pix;
    return 0;
}

void image_cache_free(ImageCache *c) {
    ct_aligned_free(c->pix);
    memset(c, 0, sizeof *c);
}
