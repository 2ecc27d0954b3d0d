/*
 * kept_weights.h — a trial's trained weights at one epoch (its selected or
 * its final epoch), as the worker sends them and the trial file keeps them
 * under /model/selected and /model/final: the trainable tensors (the
 * unfrozen stages' under torchvision's names, the head's as
 * head.<i>.weight|bias) and the head's standardisation statistics
 * (head.standardize.mean and head.standardize.inv_std, the values the
 * model multiplies by), all float32.
 *
 * Only what trained is kept: the frozen stages are those the sweep loaded
 * (a weights file, recorded by its SHA-256, or the seeded random backbone),
 * and `ctsweep export` rebuilds them from the configuration.
 */
#ifndef CTSWEEP_RESULTS_KEPT_WEIGHTS_H
#define CTSWEEP_RESULTS_KEPT_WEIGHTS_H

#include <hdf5.h>
#include <stddef.h>

#include "util/util.h"

// train.keep_weights: which epochs' weights a done trial keeps (bits).
typedef enum { KEEP_NONE = 0, KEEP_SELECTED = 1, KEEP_FINAL = 2, KEEP_BOTH = 3 } KeepWeights;

int keep_weights_parse(const char *s, KeepWeights *out);
const char *keep_weights_name(KeepWeights k);
// "selected" or "final" for KEEP_SELECTED or KEEP_FINAL.
const char *keep_kind_name(int kind);

#define KEPT_MAX_DIMS 4

typedef struct {
    char name[64];
    size_t ndim, shape[KEPT_MAX_DIMS];
    size_t numel;
    size_t offset;  // into KeptWeights.data
} KeptTensor;

typedef struct {
    int kind;           // KEEP_SELECTED or KEEP_FINAL
    size_t epoch;       // 1-based, as /epochs numbers them
    KeptTensor *tensors;
    size_t n_tensors;
    float *data;        // (n_floats) every tensor, in table order
    size_t n_floats;
} KeptWeights;

// Adds a tensor to the table (data is not touched; offsets follow in order).
void kept_weights_add(KeptWeights *w, const char *name, size_t ndim, const size_t *shape);
void kept_weights_free(KeptWeights *w);
const KeptTensor *kept_weights_find(const KeptWeights *w, const char *name);

// Writes /model/<kind> under file f: one dataset per tensor (its shape,
// float32 little-endian) and the attribute `epoch`.
int kept_weights_write_h5(hid_t f, const KeptWeights *w, CtError *err);
// Reads /model/<kind> of an open trial file; 1 when it has none, 0 read,
// -1 with err (a dataset that is not float32 or not whole).
int kept_weights_read_h5(hid_t f, int kind, KeptWeights *w, CtError *err);

#endif
