/*
 * predictor.h — probabilities of an exported model (model_file.h) for
 * preprocessed images, through the very functions the sweep evaluated its
 * test split with, so a model's predictions equal the trial's /test/prob:
 * the frozen prefix on a backend's network plan (backend_net_*; the whole
 * backbone for unfreeze 0, model_prefix at the cut otherwise), its output
 * rounded to the sweep's feature-cache precision (feature_store_round),
 * then the head (head_forward, head_probs) or the trainable tail
 * (tail_forward_host, tail_evaluate_rows) in eval mode.
 *
 * The prefix is batch-invariant, the head's and tail's matrix products are
 * not (oneDNN's sgemm sums a row in an order that depends on the row count),
 * so images go through the prefix in batches of any size but through the
 * head or tail in fixed groups of eval_rows consecutive images of the run,
 * as the sweep evaluates its test split in groups of the trial's
 * batch_size: the probabilities do not depend on the batch size, and for a
 * trial's test images in order with eval_rows = its batch_size they are its
 * /test/prob bit for bit.
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
    size_t max_batch;  // images per prefix forward
    size_t eval_rows;  // rows per head or tail evaluation
    BackendNet *net;   // the frozen prefix
    size_t dim;        // its output per image
    float *feat;       // (max_batch, dim), host: the prefix's output
    float *rows;       // (eval_rows, dim), host: rows waiting for the head or tail
    size_t pending;    // rows in `rows`
    size_t done;       // rows evaluated so far in this run
    uint8_t *labels;   // (eval_rows) zeros: the evaluation's loss is not used
    Head head;         // unfreeze 0
    Tail *tail;        // unfreeze > 0
} Predictor;

// Plans the model of file `path` (read into mf by model_file_read) for
// prefix batches of up to max_batch images and evaluations of eval_rows
// rows, on the backend of opt.
int predictor_init(Predictor *p, const char *path, const ModelFile *mf, const BackendOptions *opt, size_t max_batch,
                   size_t eval_rows, CtError *err);
void predictor_free(Predictor *p);
// The next n <= max_batch images of the run, x (n, 3, S, S) preprocessed as
// in training (preprocess_load_rgb8, resize_to_tensor). Each full group of
// eval_rows is evaluated at once: P(positive) of the run's image i lands in
// prob[i] (prob has room for the whole run); p->done counts them.
// p->feat then holds the n images' prefix output (n, dim), rounded.
int predictor_add(Predictor *p, const float *x, size_t n, float *prob, CtError *err);
// Evaluates the last, partial group.
int predictor_finish(Predictor *p, float *prob, CtError *err);

// The frozen prefix of the model in path for a tail at `cut` (the whole
// backbone when cut is the final pool), planned for max_batch images; the
// CPU's plan is given at least a batch per thread, as the sweep's cache
// plans it (an image's output does not depend on its batch).
int predictor_prefix_create(BackendNet **net, const char *path, const ModelFile *mf, size_t cut,
                            const BackendOptions *opt, size_t max_batch, CtError *err);

#endif
