/*
 * test_feature_cache.c — the feature cache on a small phantom set with a
 * random ResNet-34 at 64 px: hits and forwards counted, augmented views
 * distinct and stable, a zero budget recomputing the same values, and the
 * error of fp16 / bf16 storage against fp32 measured and bounded by the
 * formats' rounding (2^-11 and 2^-8 relative).
 *
 * usage: test_feature_cache SCRATCH_DIR SHARED_DATA_DIR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/phantom.h"
#include "train/feature_cache.h"

static double max_rel(const float *a, const float *ref, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]), s = fabs((double)ref[i]);
        if (s > 1e-3 && d / s > worst) worst = d / s;
    }
    return worst;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char root[4096];
    snprintf(root, sizeof root, "%s/phantoms", argv[1]);
    CtError err = {{0}};
    if (phantom_write_set(root, 24, 9, 64, &err)) {
        printf("FAIL phantoms: %s\n", err.msg);
        return 1;
    }
    DataSpec spec;
    data_spec_default(&spec, root);
    spec.fractions[0] = 0.5;
    spec.fractions[1] = 0.25;
    spec.fractions[2] = 0.25;
    DataSet ds;
    ImageCache ic;
    ImageLimits lim;
    image_limits_default(&lim);
    if (dataset_open(&ds, &spec, &err) || dataset_fingerprint(&ds, &err) ||
        image_cache_build(&ic, &ds, 64, &lim, BAD_IMAGE_ERROR, &err)) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    FeatureSpec fs;
    memset(&fs, 0, sizeof fs);
    snprintf(fs.model, sizeof fs.model, "resnet34");
    fs.backbone_seed = 3;
    fs.image_size = 64;
    fs.norm = NORM_IMAGENET;
    fs.aug = augment_spec_default();
    fs.aug.rotate_deg = 10;
    fs.aug.rotate_prob = 1;
    fs.aug.aug_views = 3;
    fs.aug_seed = 1;
    backend_options_default(&fs.backend);
    fs.batch = 8;

    FeatureCache *c32 = fcache_create(0, FSTORE_FP32), *c0 = fcache_create(1, FSTORE_FP32);
    const float *a, *b;
    size_t n, dim, n2, dim2;
    CHECK(fcache_get(c32, &fs, &ds, &ic, SPLIT_TRAIN, 1, &a, &n, &dim, &err) == 0, "%s", err.msg);
    float *view1 = malloc(n * dim * sizeof *view1);
    memcpy(view1, a, n * dim * sizeof *view1);
    CHECK(fcache_get(c32, &fs, &ds, &ic, SPLIT_TRAIN, 2, &b, &n2, &dim2, &err) == 0, "%s", err.msg);
    CHECK(memcmp(view1, b, n * dim * sizeof *b) != 0, "views 1 and 2 are identical");
    CHECK(fcache_get(c32, &fs, &ds, &ic, SPLIT_TRAIN, 1, &a, &n, &dim, &err) == 0, "%s", err.msg);
    CHECK(memcmp(view1, a, n * dim * sizeof *a) == 0, "view 1 changed on a cache hit");
    CHECK(fcache_get(c32, &fs, &ds, &ic, SPLIT_TRAIN, 4, &a, &n, &dim, &err) == 0, "%s", err.msg);
    CHECK(memcmp(view1, a, n * dim * sizeof *a) == 0, "view 4 is not view 4 mod 3 = 1");
    FeatureStats st = fcache_stats(c32);
    CHECK(st.forwards == 2 * n && st.hits == 2 && st.misses == 2, "forwards %llu hits %llu misses %llu",
          (unsigned long long)st.forwards, (unsigned long long)st.hits, (unsigned long long)st.misses);
    CHECK(fcache_get(c0, &fs, &ds, &ic, SPLIT_TRAIN, 1, &a, &n, &dim, &err) == 0, "%s", err.msg);
    CHECK(memcmp(view1, a, n * dim * sizeof *a) == 0, "a zero budget recomputes different values");
    CHECK(fcache_stats(c0).uncached == 1 && fcache_used_bytes(c0) == 0, "zero budget kept something");
    printf("ok   cache: %zu x %zu features, views distinct and stable, %llu forwards for 4 requests\n", n, dim,
           (unsigned long long)st.forwards);

    const FeatureStore stores[2] = {FSTORE_FP16, FSTORE_BF16};
    const double bound[2] = {1.0 / 2048, 1.0 / 256};
    for (int k = 0; k < 2; k++) {
        FeatureCache *c = fcache_create(0, stores[k]);
        CHECK(fcache_get(c, &fs, &ds, &ic, SPLIT_TRAIN, 1, &a, &n, &dim, &err) == 0, "%s", err.msg);
        double e1 = max_rel(a, view1, n * dim);
        CHECK(fcache_get(c, &fs, &ds, &ic, SPLIT_TRAIN, 1, &b, &n, &dim, &err) == 0, "%s", err.msg);
        double e2 = max_rel(b, view1, n * dim);
        CHECK(e1 <= bound[k] && e1 == e2, "%s store: max relative error %.3g (bound %.3g), hit %.3g",
              feature_store_name(stores[k]), e1, bound[k], e2);
        printf("ok   %s store: max relative error against fp32 %.3g (format bound %.3g), %zu -> %zu bytes per value\n",
               feature_store_name(stores[k]), e1, bound[k], sizeof(float), (size_t)2);
        fcache_free(c);
    }
    free(view1);
    fcache_free(c32);
    fcache_free(c0);
    image_cache_free(&ic);
    dataset_free(&ds);
    return check_summary();
}
