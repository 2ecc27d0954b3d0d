/*
 * feature_cache.h — frozen-backbone features, computed once per worker and
 * reused by every trial of the same model.
 *
 * The backbone is frozen, so each (model, image, augmentation view) needs
 * one forward pass per worker (with unfrozen stages: through the frozen
 * prefix, the entry holding the activations at the cut, keyed by the cut): val and test features once, training
 * features once per view. An entry is keyed by everything that changes the
 * features (model, weights content, image size, normalisation,
 * augmentation settings and seed, data set fingerprint, split, view). Entries
 * live within a memory budget; beyond it a request is computed into a
 * scratch buffer per split and not kept, so a tight budget costs time, never
 * memory. Entries are stored in fp32, or fp16/bf16 to fit more.
 */
#ifndef CTSWEEP_TRAIN_FEATURE_CACHE_H
#define CTSWEEP_TRAIN_FEATURE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/image_cache.h"
#include "data/resize.h"
#include "nn/weights_digest.h"

typedef enum { FSTORE_FP32 = 0, FSTORE_FP16, FSTORE_BF16 } FeatureStore;

int feature_store_parse(const char *s, FeatureStore *out);
const char *feature_store_name(FeatureStore s);
// Rounds x (n values) in place to the store format and back, exactly as an
// entry of the cache holds them (identity for fp32): what a trial reads.
void feature_store_round(float *x, size_t n, FeatureStore s);

typedef struct {
    char model[32];
    char weights[4096];   // safetensors path, "" = seeded random backbone
    char weights_sha256[WEIGHTS_DIGEST_HEX + 1];  // its content's SHA-256 (weights_digest): required with weights
    uint64_t backbone_seed;
    size_t image_size;
    NormMode norm;
    AugmentSpec aug;
    uint64_t aug_seed;
    BackendOptions backend;
    size_t batch;  // images per backbone forward
    int unfreeze;  // > 0: activations at the cut before the last `unfreeze` stages (c*h*w per image), not features
} FeatureSpec;

typedef struct {
    uint64_t forwards;   // images passed through the backbone
    uint64_t hits;       // requests served from the cache
    uint64_t misses;     // requests that ran the backbone
    uint64_t uncached;   // misses that did not fit the budget
} FeatureStats;

typedef struct FeatureCache FeatureCache;

// budget_bytes: memory for kept entries (0: a quarter of physical memory).
FeatureCache *fcache_create(size_t budget_bytes, FeatureStore store);
// A backbone pass asks should_stop(ctx) before each batch and, when it says
// stop, fails with "stopped" (fcache_stopped tells that failure from a real
// one, and clears it). NULL: never stops.
void fcache_set_stop(FeatureCache *fc, int (*should_stop)(void *), void *ctx);
int fcache_stopped(FeatureCache *fc);
void fcache_free(FeatureCache *fc);
FeatureStats fcache_stats(const FeatureCache *fc);
size_t fcache_used_bytes(const FeatureCache *fc);

// Features (n, dim) of the images of `split` in data set order, for
// augmentation view `view` (training split only; other splits are always
// clean). The pointer is valid until the next request for the same split.
// ds->fingerprint must be set. Errors name the model or weights file.
int fcache_get(FeatureCache *fc, const FeatureSpec *fs, const DataSet *ds, const ImageCache *ic, int split,
               uint32_t view, const float **out, size_t *n, size_t *dim, CtError *err);

// K-fold cross-validation: features (n, dim) of the pooled train and val
// images (every image not in the test split, in data set order), clean
// (train_view 0) or of training view `view` (train_view 1). Every fold
// gathers its train and val rows from these, so a K-fold sweep runs the
// backbone once per (image, view) whatever K is: as often as one split
// without augmentation (the pool clean and the test split); with it, the
// pooled images' views and their clean features. The pointer is valid
// until the next request of the same kind.
int fcache_get_pool(FeatureCache *fc, const FeatureSpec *fs, const DataSet *ds, const ImageCache *ic, int train_view,
                    uint32_t view, const float **out, size_t *n, size_t *dim, CtError *err);

#endif
