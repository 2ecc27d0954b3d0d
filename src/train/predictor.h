/*
 * predictor.h — probabilities of an exported model (model_file.h) for
 * preprocessed images, through the very functions the sweep evaluated its
 * test split with, so a model's predictions equal the trial's /test/prob:
 * the frozen prefix on a backend's network plan (backend_net_*; the whole
 * backbone for unfreeze 0, model_prefix at the cut otherwise), its output
 * rounded to the sweep's feature-cache precision (feature_store_round),
 * then the head (head_forward, head_probs) or the trainable tail
 * (tail_forward_host, tail_evaluate_rows) in eval mode. Every step is
 * batch-invariant, so the probabilities do not depend on the batch size.
 */
#ifndef CTSWEEP_TRAIN_PREDICTOR_H
#define CTSWEEP_TRAIN_PREDICTOR_H

#include <stddef.h>

#include "backend/backend.h"
#include "train/head.h"
#include "train/model_file.h"
#include "train/tail.h"

typedef struct {
    ModelFile mf;
    size_t max_batch;
    BackendNet *net;   // the frozen prefix
    size_t dim;        // its output per image
    float *feat;       // (max_batch, dim), host
    uint8_t *labels;   // (max_batch) zeros: the evaluation's loss is not used
    Head head;         // unfreeze 0
    Tail *tail;        // unfreeze > 0
} Predictor;

// Plans the model of file `path` (read into mf by model_file_read) for up
// to max_batch images on the backend of opt.
int predictor_init(Predictor *p, const char *path, const ModelFile *mf, const BackendOptions *opt, size_t max_batch,
                   CtError *err);
void predictor_free(Predictor *p);
// P(positive) of n <= max_batch images x (n, 3, S, S), preprocessed as in
// training (preprocess_load_rgb8, resize_to_tensor), into prob (n).
int predictor_run(Predictor *p, const float *x, size_t n, float *prob, CtError *err);

// The frozen prefix of the model in path for a tail at `cut` (the whole
// backbone when cut is the final pool), planned for max_batch images; the
// CPU's plan is given at least a batch per thread, as the sweep's cache
// plans it (an image's output does not depend on its batch).
int predictor_prefix_create(BackendNet **net, const char *path, const ModelFile *mf, size_t cut,
                            const BackendOptions *opt, size_t max_batch, CtError *err);

#endif
