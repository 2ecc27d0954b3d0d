/*
 * feature_cache.c — keyed storage of backbone features with a budget, and
 * the computation of a missing entry: the images of the split are
 * augmented (training views) or converted clean, run through the backbone
 * plan of the current model in batches, and stored.
 */
#include "train/feature_cache.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/models.h"
#include "util/sha256.h"

typedef struct {
    uint8_t key[32];
    size_t n, dim;
    void *data;  // (n, dim) in the store format
} Entry;

// What a request selects: a split (SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST), or
// the k-fold pool (train and val together), clean or augmented.
enum { SEL_POOL_CLEAN = DATA_SPLITS, SEL_POOL_VIEW, SEL_COUNT };

struct FeatureCache {
    size_t budget, used;
    FeatureStore store;
    Entry *entries;
    size_t n_entries;
    FeatureStats stats;
    // the backbone plan of the model last used
    uint8_t net_key[32];
    BackendNet *net;
    size_t net_batch;
    // per request kind (a split, or the k-fold pool clean or augmented):
    // fp32 rows handed out (scratch for uncached or converted entries)
    float *scratch[SEL_COUNT];
    size_t scratch_cap[SEL_COUNT];
    // a signal stops a backbone pass at the next batch (a VGG pass over a
    // large data set outlasts Slurm's warning window)
    int (*should_stop)(void *);
    void *stop_ctx;
    int stopped;
};

int feature_store_parse(const char *s, FeatureStore *out) {
    if (strcmp(s, "fp32") == 0) *out = FSTORE_FP32;
    else if (strcmp(s, "fp16") == 0) *out = FSTORE_FP16;
    else if (strcmp(s, "bf16") == 0) *out = FSTORE_BF16;
    else return -1;
    return 0;
}

const char *feature_store_name(FeatureStore s) { return s == FSTORE_FP16 ? "fp16" : s == FSTORE_BF16 ? "bf16" : "fp32"; }

FeatureCache *fcache_create(size_t budget_bytes, FeatureStore store) {
    FeatureCache *fc = ct_calloc(1, sizeof *fc);
    if (budget_bytes == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        budget_bytes = pages > 0 && page > 0 ? (size_t)pages * (size_t)page / 4 : (size_t)1 << 30;
    }
    fc->budget = budget_bytes;
    fc->store = store;
    return fc;
}

void fcache_set_stop(FeatureCache *fc, int (*should_stop)(void *), void *ctx) {
    fc->should_stop = should_stop;
    fc->stop_ctx = ctx;
}

int fcache_stopped(FeatureCache *fc) {
    int was = fc->stopped;
    fc->stopped = 0;
    return was;
}

void fcache_free(FeatureCache *fc) {
    if (!fc) return;
    for (size_t i = 0; i < fc->n_entries; i++) free(fc->entries[i].data);
    free(fc->entries);
    backend_net_free(fc->net);
    for (int s = 0; s < SEL_COUNT; s++) ct_aligned_free(fc->scratch[s]);
    free(fc);
}

FeatureStats fcache_stats(const FeatureCache *fc) { return fc->stats; }
size_t fcache_used_bytes(const FeatureCache *fc) { return fc->used; }

// ---- keys ----

// The weights by content: the same file under another path shares entries,
// a file replaced in place does not.
static void hash_model(Sha256 *h, const FeatureSpec *fs) {
    if (fs->weights[0] && strlen(fs->weights_sha256) != WEIGHTS_DIGEST_HEX)
        fatal("feature cache: %s: weights %s without their digest", fs->model, fs->weights);
    char buf[512];
    int n = snprintf(buf, sizeof buf, "model=%s|weights=%s|seed=%llu|size=%zu|norm=%d|prec=%d|algo=%d|", fs->model,
                     fs->weights[0] ? fs->weights_sha256 : "",
                     (unsigned long long)(fs->weights[0] ? 0 : fs->backbone_seed), fs->image_size,
                     (int)fs->norm, (int)fs->backend.precision, (int)fs->backend.conv_algo);
    sha256_update(h, buf, (size_t)n);
    if (fs->unfreeze > 0) {  // the activations at a cut (unfreeze 0 keeps its key)
        n = snprintf(buf, sizeof buf, "cut=%d|", fs->unfreeze);
        sha256_update(h, buf, (size_t)n);
    }
}

// Whether a request's images are augmented: training views (of a split or
// of the pool) under a non-identity augmentation.
static int sel_augmented(const FeatureSpec *fs, int sel) {
    return (sel == SPLIT_TRAIN || sel == SEL_POOL_VIEW) && !augment_spec_is_identity(&fs->aug);
}

static int sel_includes(int sel, int split) {
    return sel < DATA_SPLITS ? split == sel : split != SPLIT_TEST;
}

static void entry_key(uint8_t key[32], const FeatureSpec *fs, const DataSet *ds, int sel, uint32_t view) {
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, "ctsweep-features-v1|", 20);
    hash_model(&h, fs);
    sha256_update(&h, ds->fingerprint, strlen(ds->fingerprint));
    char buf[512];
    int n;
    // The pool's keys differ from the splits': the same images, other rows.
    const char *what = sel < DATA_SPLITS ? "train" : "pool";
    if (sel_augmented(fs, sel)) {
        n = snprintf(buf, sizeof buf, "|%s|view=%u|aug=", what, view);
        sha256_update(&h, buf, (size_t)n);
        augment_spec_hash(&h, &fs->aug, 0);
        n = snprintf(buf, sizeof buf, "|seed=%llu", (unsigned long long)fs->aug_seed);
    } else if (sel < DATA_SPLITS) {
        n = snprintf(buf, sizeof buf, "|split=%d|clean", sel);
    } else {
        n = snprintf(buf, sizeof buf, "|pool|clean");
    }
    sha256_update(&h, buf, (size_t)n);
    sha256_final(&h, key);
}

// ---- storage formats ----

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fff + ((u >> 16) & 1);  // round to nearest even
    return (uint16_t)(u >> 16);
}

static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// IEEE binary16, round to nearest even (as a C cast to _Float16 does, which
// not every compiler offers on x86-64): normals, subnormals, overflow to
// infinity, NaN kept quiet.
static uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffff;
    if (a > 0x7f800000) return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);  // NaN
    if (a >= 0x477ff000) return sign | 0x7c00;  // rounds to >= 65520: infinity
    if (a < 0x38800000) {                       // below 2^-14: subnormal or zero
        if (a < 0x33000000) return sign;        // below half the smallest subnormal
        uint32_t mant = (a & 0x7fffff) | 0x800000, shift = 126 - (a >> 23);  // 14..24
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = ((a - 0x38000000) >> 13), rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;  // a carry into the exponent is right
    return sign | (uint16_t)q;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f) u = sign | 0x7f800000 | (m << 13);
    else if (e) u = sign | ((e + 112) << 23) | (m << 13);
    else if (!m) u = sign;
    else {  // subnormal: normalise
        int k = 0;
        while (!(m & 0x400)) { m <<= 1; k++; }
        u = sign | ((uint32_t)(113 - k) << 23) | ((m & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void encode(void *dst, const float *src, size_t n, FeatureStore s) {
    if (s == FSTORE_FP32) memcpy(dst, src, n * sizeof(float));
    else if (s == FSTORE_FP16)
        for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_f16(src[i]);
    else
        for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(src[i]);
}

static void decode(float *dst, const void *src, size_t n, FeatureStore s) {
    if (s == FSTORE_FP32) memcpy(dst, src, n * sizeof(float));
    else if (s == FSTORE_FP16)
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(((const uint16_t *)src)[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(((const uint16_t *)src)[i]);
}

void feature_store_round(float *x, size_t n, FeatureStore s) {
    if (s == FSTORE_FP32) return;
    for (size_t i = 0; i < n; i++) {
        uint32_t t;  // room for any store format
        encode(&t, x + i, 1, s);
        decode(x + i, &t, 1, s);
    }
}

static size_t store_bytes(FeatureStore s) { return s == FSTORE_FP32 ? 4 : 2; }

// ---- computing ----

static int ensure_net(FeatureCache *fc, const FeatureSpec *fs, CtError *err) {
    uint8_t key[32];
    Sha256 h;
    sha256_init(&h);
    hash_model(&h, fs);
    char b[32];
    int n = snprintf(b, sizeof b, "|batch=%zu", fs->batch);
    sha256_update(&h, b, (size_t)n);
    sha256_final(&h, key);
    if (fc->net && memcmp(key, fc->net_key, 32) == 0) return 0;
    backend_net_free(fc->net);
    fc->net = NULL;
    NNGraph g;
    if (model_create(&g, fs->model, fs->weights, fs->backbone_seed, err)) return -1;
    size_t cut = 0;
    if (fs->unfreeze > 0 && (model_cut_layer(&g, fs->unfreeze, &cut, err) ||
                             model_prefix(&g, cut, fs->image_size, fs->image_size, err))) {
        graph_free(&g);
        return ct_error_prefix(err, "%s frozen prefix", fs->model);
    }
    // The CPU backend runs an image per thread, and an image's features do
    // not depend on its batch: a batch smaller than the thread count would
    // only leave cores idle.
    size_t batch = fs->batch;
    if (fs->backend.kind == BACKEND_CPU && batch < (size_t)omp_get_max_threads()) batch = (size_t)omp_get_max_threads();
    int rc = backend_net_create(&fc->net, &g, batch, fs->image_size, fs->image_size, &fs->backend, err);
    graph_free(&g);
    if (rc) return ct_error_prefix(err, "%s backbone", fs->model);
    memcpy(fc->net_key, key, 32);
    fc->net_batch = batch;
    return 0;
}

static float *scratch_for(FeatureCache *fc, int split, size_t floats) {
    if (fc->scratch_cap[split] < floats) {
        ct_aligned_free(fc->scratch[split]);
        fc->scratch[split] = ct_try_aligned_alloc(floats, sizeof(float));
        fc->scratch_cap[split] = fc->scratch[split] ? floats : 0;
    }
    return fc->scratch[split];
}

// Runs the backbone over the split's images into out (n, dim).
static int compute(FeatureCache *fc, const FeatureSpec *fs, const DataSet *ds, const ImageCache *ic, int sel,
                   uint32_t view, const size_t *idx, size_t n, float *out, size_t dim, CtError *err) {
    size_t S = fs->image_size, per = 3 * S * S, B = fc->net_batch;
    float *x = ct_try_aligned_alloc(B * per, sizeof(float));
    if (!x) return ct_errorf(err, "out of memory for a backbone batch");
    int augment = sel_augmented(fs, sel);
    int rc = 0;
    for (size_t r0 = 0; r0 < n && rc == 0; r0 += B) {
        size_t m = n - r0 < B ? n - r0 : B;
        if (fc->should_stop && fc->should_stop(fc->stop_ctx)) {
            fc->stopped = 1;
            rc = ct_errorf(err, "stopped by a signal during the backbone pass");
            break;
        }
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < m; k++) {
            size_t i = idx[r0 + k];
            const uint8_t *img = image_cache_get(ic, i);
            if (augment) {
                AugmentDraw d;
                augment_draw(&d, &fs->aug, fs->aug_seed, (uint32_t)i, view);
                augment_apply(x + k * per, img, S, &fs->aug, &d, fs->norm);
            } else {
                resize_to_tensor(x + k * per, img, S, S, fs->norm);
            }
        }
        rc = backend_net_forward(fc->net, x, m, out + r0 * dim, err);
        fc->stats.forwards += m;
    }
    ct_aligned_free(x);
    (void)ds;
    return rc;
}

static int get_rows(FeatureCache *fc, const FeatureSpec *fs, const DataSet *ds, const ImageCache *ic, int split,
                    uint32_t view, const float **out, size_t *n_out, size_t *dim_out, CtError *err) {
    if (ic->n != ds->n || ic->size != fs->image_size)
        return ct_errorf(err, "image cache (%zu images at %zu px) does not match the data set (%zu) or size (%zu)",
                         ic->n, ic->size, ds->n, fs->image_size);
    // Under an identity augmentation a pool view is the clean pool.
    if (split == SEL_POOL_VIEW && augment_spec_is_identity(&fs->aug)) split = SEL_POOL_CLEAN;
    if (!sel_augmented(fs, split)) view = 0;
    else view %= augment_view_count(&fs->aug);  // view of epoch e is e mod aug_views
    uint8_t key[32];
    entry_key(key, fs, ds, split, view);
    for (size_t i = 0; i < fc->n_entries; i++) {
        Entry *e = &fc->entries[i];
        if (memcmp(e->key, key, 32) != 0) continue;
        fc->stats.hits++;
        *n_out = e->n;
        *dim_out = e->dim;
        if (fc->store == FSTORE_FP32) {
            *out = e->data;
            return 0;
        }
        float *buf = scratch_for(fc, split, e->n * e->dim);
        if (!buf) return ct_errorf(err, "out of memory converting cached features");
        decode(buf, e->data, e->n * e->dim, fc->store);
        *out = buf;
        return 0;
    }
    fc->stats.misses++;
    if (ensure_net(fc, fs, err)) return -1;
    size_t dim = backend_net_output_numel(fc->net);
    size_t n = 0;
    size_t *idx = ct_malloc_array(ds->n ? ds->n : 1, sizeof *idx);
    for (size_t i = 0; i < ds->n; i++)
        if (sel_includes(split, ds->items[i].split)) idx[n++] = i;
    size_t floats;
    if (ct_mul_size(&floats, n, dim)) {
        free(idx);
        return ct_errorf(err, "feature size overflows");
    }
    float *buf = scratch_for(fc, split, floats ? floats : 1);
    if (!buf) {
        free(idx);
        return ct_errorf(err, "out of memory for %zu MiB of %s features", floats * 4 >> 20,
                         split < DATA_SPLITS ? split_name(split) : "train+val");
    }
    int rc = compute(fc, fs, ds, ic, split, view, idx, n, buf, dim, err);
    free(idx);
    if (rc)
        return ct_error_prefix(err, "%s features of the %s split", fs->model,
                               split < DATA_SPLITS ? split_name(split) : "pooled train+val");
    size_t bytes = floats * store_bytes(fc->store);
    void *keep = fc->used + bytes <= fc->budget ? malloc(bytes ? bytes : 1) : NULL;
    if (keep) {
        encode(keep, buf, floats, fc->store);
        fc->entries = ct_realloc(fc->entries, (fc->n_entries + 1) * sizeof *fc->entries);
        Entry *e = &fc->entries[fc->n_entries++];
        memcpy(e->key, key, 32);
        e->n = n;
        e->dim = dim;
        e->data = keep;
        fc->used += bytes;
        if (fc->store == FSTORE_FP32) {
            *out = keep;
        } else {
            decode(buf, keep, floats, fc->store);  // hand out exactly what later hits will see
            *out = buf;
        }
    } else {
        // Not kept, but rounded to the store format all the same, so results
        // do not depend on whether an entry fitted the budget.
        fc->stats.uncached++;
        feature_store_round(buf, floats, fc->store);
        *out = buf;
    }
    *n_out = n;
    *dim_out = dim;
    return 0;
}

int fcache_get(FeatureCache *fc, const FeatureSpec *fs, const DataSet *ds, const ImageCache *ic, int split,
               uint32_t view, const float **out, size_t *n, size_t *dim, CtError *err) {
    if (split < 0 || split >= DATA_SPLITS) return ct_errorf(err, "bad split %d", split);
    return get_rows(fc, fs, ds, ic, split, view, out, n, dim, err);
}

int fcache_get_pool(FeatureCache *fc, const FeatureSpec *fs, const DataSet *ds, const ImageCache *ic, int train_view,
                    uint32_t view, const float **out, size_t *n, size_t *dim, CtError *err) {
    return get_rows(fc, fs, ds, ic, train_view ? SEL_POOL_VIEW : SEL_POOL_CLEAN, view, out, n, dim, err);
}
