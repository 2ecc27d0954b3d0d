/*
 * config.h — a sweep configuration: YAML (libfyaml) to a validated
 * SweepConfig. One table of keys drives the parser, the defaults, the
 * validation and the `--help-config` text, so they cannot drift apart.
 * Unknown keys, wrong types, empty lists and out-of-range values are errors
 * of the form "FILE:LINE: KEY: what is wrong".
 */
#ifndef CTSWEEP_CONFIG_H
#define CTSWEEP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"
#include "data/augment.h"
#include "data/data_check.h"
#include "data/dataset.h"
#include "data/image_cache.h"
#include "data/resize.h"
#include "results/kept_weights.h"
#include "train/adam.h"
#include "train/clr.h"
#include "train/feature_cache.h"
#include "train/head.h"
#include "util/util.h"

#define CONFIG_MAX_LIST 32
// Capacity of the per-model weights; the registry (nn/models.c) lists the
// models, and test_config checks that each has a weights key within it.
#define CONFIG_MAX_MODELS 8

typedef struct {
    // ---- data ----
    DataSpec data;            // root (resolved relative to the config file's folder), classes, split
    int data_root_set;        // data.root given
    size_t phantoms_count;    // data.phantoms: generated into OUTDIR/phantoms when data.root is not given
    size_t phantoms_size;
    uint64_t phantoms_seed;
    size_t image_size;        // data.image_size
    NormMode normalize;       // data.normalize
    AugmentSpec augment;      // data.augment (+ data.aug_views into augment.aug_views)
    uint64_t augment_seed;    // data.augment_seed
    BadImagePolicy on_bad_image;
    DuplicatePolicy on_duplicate;  // data.on_duplicate: identical files across splits
    ImageLimits limits;       // data.max_width, data.max_height, data.max_decoded_mb
    // ---- weights: per model, "" = seeded random backbone ----
    char weights[CONFIG_MAX_MODELS][4096];
    uint64_t backbone_seed;   // train.backbone_seed
    // ---- head ----
    HeadSpec head;            // head.hidden (n_hidden = 0 and head_hidden_set = 0: the model's default), dropout, standardize
    int head_hidden_set, head_dropout_set;
    // ---- train ----
    AdamSpec adam;            // train.optimizer, weight_decay, beta1, beta2, eps
    size_t feature_cache_mb;  // 0 = a quarter of physical memory
    FeatureStore feature_store;
    BackendOptions backend;   // train.backend, train.precision, train.threads
    size_t feature_batch;     // train.feature_batch: images per backbone forward
    int gpu_share;            // train.gpu_share: workers on one node may share a GPU
    double backbone_lr_scale; // train.backbone_lr_scale: unfrozen stages train at this times the LR
    size_t gpu_cache_mb;      // train.gpu_cache_mb: the cut-point activations kept in GPU memory
    KeepWeights keep_weights; // train.keep_weights: the epochs whose weights a done trial keeps (not in the id)
    // ---- grid (cartesian product) ----
    char models[CONFIG_MAX_LIST][32];
    size_t n_models;
    size_t epochs[CONFIG_MAX_LIST];
    size_t n_epochs;
    size_t batch_sizes[CONFIG_MAX_LIST];
    size_t n_batch_sizes;
    ClrSpec clr[CONFIG_MAX_LIST];
    size_t n_clr;
    uint64_t seeds[CONFIG_MAX_LIST];
    size_t n_seeds;
    size_t unfreeze[CONFIG_MAX_LIST];  // grid.unfreeze: trailing backbone stages that train ([0]: the head alone)
    size_t n_unfreeze;
    size_t ranks_per_trial;
    // ---- sweep (how the job runs; may change on --resume) ----
    double worker_timeout;  // sweep.worker_timeout: seconds without a message from a busy worker
    size_t retries;         // sweep.retries: reruns of a failed run on another worker
    // ---- provenance ----
    char path[4096];  // the file read
    char *yaml;       // its text, verbatim (stored in the results)
} SweepConfig;

// Index of a model name in weights[]: its row in the registry (model_at), -1 if unknown.
int config_model_index(const char *model);
// The weights file of a model, "" for a seeded random backbone.
const char *config_weights(const SweepConfig *cfg, const char *model);
// The head for a model: its defaults (head_spec_default) with the hidden
// sizes, dropout and standardisation the configuration sets.
void config_head_spec(HeadSpec *out, const SweepConfig *cfg, const char *model, size_t in_dim);

// Every default, nothing given: the grid lists are empty (they are required)
// except seeds = [0]. Help prints its defaults from this.
void config_init(SweepConfig *cfg);

// Reads and validates path. Returns 0, or -1 with err = "path:line: key: message"
// (one line; LINE is 1-based). Checks that files it names (weights, data root
// and its class and split folders) exist; paths are stored absolute. On error
// cfg holds nothing to free (config_free is still safe).
int config_load(SweepConfig *cfg, const char *path, CtError *err);
// Same from a string; name is used in messages and its folder resolves
// relative paths. For tests and fuzzing.
int config_parse(SweepConfig *cfg, const char *name, const char *text, size_t len, CtError *err);
// The same for a configuration stored with results, to compare with the
// current one: a weights file that is no longer where it names it is kept
// as named (weights are compared by content, which the results record).
int config_parse_stored(SweepConfig *cfg, const char *name, const char *text, size_t len, CtError *err);
void config_free(SweepConfig *cfg);

// The resolved configuration (every key, defaults filled in) as YAML that
// config_parse accepts and that resolves to the same configuration.
void config_print(FILE *f, const SweepConfig *cfg);
// Every key with its type, default and meaning (for `ctsweep run --help-config`).
void config_print_help(FILE *f);

#endif
