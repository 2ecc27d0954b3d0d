/*
 * grid.h — the sweep's trials: the cartesian product of the grid lists,
 * each trial identified by a short hash of its canonical hyperparameters,
 * everything else that changes its result (data, preprocessing, head,
 * optimiser, backbone and its weights' content) and the id format version,
 * so reruns dedupe and resume. Trials that differ only in `epochs` form one run: the schedule
 * does not depend on the run length (except `cosine`), so each budget's
 * result is a prefix of the longest one.
 */
#ifndef CTSWEEP_CONFIG_GRID_H
#define CTSWEEP_CONFIG_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "nn/weights_digest.h"

#define TRIAL_ID_HEX 16

// Trial id formats (the manifest's trial_id_format). 1: weights files
// hashed by path, every model's in the shared part. 2: by content
// (SHA-256), each trial hashing its own model's. A configuration that
// names no weights file hashes byte for byte as format 1 did, so its ids
// (the demo's among them) are the same under both.
#define GRID_ID_FORMAT_PATHS 1
#define GRID_ID_FORMAT 2
// Format 1 hashed one NUL-terminated weights path per registry row, and the
// registry held 3 models then: a configuration without weights hashes 3
// empty paths, however many models the registry holds now.
#define GRID_V1_WEIGHT_SLOTS 3

typedef struct {
    char id[TRIAL_ID_HEX + 1];
    size_t index;   // row in /trials
    size_t run;     // the run that computes it
    char model[32];
    size_t batch_size;
    size_t epochs;
    size_t clr_index;
    ClrSpec clr;
    uint64_t seed;
    int fold;              // k-fold: the fold it validates on; -1 without k-fold
    int unfreeze;          // trailing backbone stages that train (0: the head alone)
    double backbone_lr_scale;      // their learning rate over the schedule's (train.backbone_lr_scale)
    size_t cache_bytes_per_image;  // a cache entry's bytes per image (the activations at the cut, as stored)
    char canonical[1024];  // the hashed description (without the shared part)
} GridTrial;

typedef struct {
    size_t index;
    char model[32];
    size_t batch_size;
    ClrSpec clr;
    uint64_t seed;
    int fold;                         // -1 without k-fold
    int unfreeze;
    size_t trials[CONFIG_MAX_LIST];  // trial indices, ascending epochs
    size_t n_trials;
    size_t epochs;                    // the longest budget
    double cost;                      // expected work, for longest-first ordering
    double tail_macs;                 // multiply-adds of one image through the unfrozen tail (0: none)
    double slice_cost;                // its share of a slice's work (grid_slice): head and backbone
} GridRun;

typedef struct {
    GridTrial *trials;
    size_t n_trials;
    GridRun *runs;
    size_t n_runs;
    char shared_hash[65];  // hash of the settings every trial shares
    int weights_named;     // the configuration names a weights file (for any model): ids hash them (format 2)
    // per grid model (cfg->models order): the SHA-256 of its weights file's
    // content, "" for a seeded random backbone
    char weights_sha256[CONFIG_MAX_LIST][WEIGHTS_DIGEST_HEX + 1];
    char weights_model[CONFIG_MAX_LIST][32];
    size_t n_models;
    size_t slice, n_slices;  // slice `slice` of n_slices (grid_slice); n_slices 0: the whole grid
} Grid;

// Expands cfg's grid for a data set with this fingerprint and n_train
// training images. Reads each grid model's weights file once (its content
// is part of the ids); an unreadable one is an error naming it and its key.
// Trials are ordered model, unfreeze, batch size, schedule, seed, fold,
// epochs. With data.split.kfold K the grid gains the axis fold =
// 0..K-1 (its trials' ids hash the fold too); without it every id is what
// it was before folds existed. Likewise a trial with unfreeze > 0 hashes it
// and train.backbone_lr_scale; one with unfreeze 0 keeps its id.
int grid_build(Grid *g, const SweepConfig *cfg, const char *dataset_fingerprint, size_t n_train, CtError *err);
void grid_free(Grid *g);
// Keeps slice i (0-based) of n: the runs in one contiguous stretch of grid
// order (so a model's runs stay together and share its features) holding
// about 1/n of the expected work, with their trials, renumbered. Every run
// belongs to exactly one slice; a slice may be empty when n exceeds the
// number of runs.
void grid_slice(Grid *g, size_t i, size_t n);
// The slice as the results record it ("I/N"), or "" for the whole grid.
void grid_slice_label(const Grid *g, char *buf, size_t cap);
// Parses "I/N" (digits, 0 <= I < N <= GRID_MAX_SLICES): 0, or -1.
#define GRID_MAX_SLICES 1000000
int grid_slice_parse(const char *s, size_t *i, size_t *n);
// The SHA-256 (hex) of a grid model's weights, "" for a random backbone or
// a model outside the grid.
const char *grid_weights_sha256(const Grid *g, const char *model);
// Index of the trial with this id, or -1.
long grid_find(const Grid *g, const char *id);
// One line per trial (for --dry-run).
void grid_print(FILE *f, const Grid *g);

#endif
