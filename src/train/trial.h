/*
 * trial.h — one trial end to end on a worker: features from the worker's
 * feature cache (val and test clean, training features per augmentation
 * view), labels from the data set, and the head trained by the trainer.
 * A k-fold trial takes its fold's train and val rows from the pooled
 * features that every fold shares.
 * This is what the sweep worker calls for each trial it is given.
 */
#ifndef CTSWEEP_TRAIN_TRIAL_H
#define CTSWEEP_TRAIN_TRIAL_H

#include "train/feature_cache.h"
#include "train/trainer.h"

typedef struct {
    FeatureCache *cache;
    const FeatureSpec *features;
    const DataSet *ds;
    const ImageCache *images;
    int fold;  // k-fold (ds->kfold > 0): the fold that validates, train and val gathered from the pool; ignored otherwise
    // filled by trial_prepare
    TrainData data;
    uint8_t *labels[DATA_SPLITS];
    size_t *index[DATA_SPLITS];  // data set rows of each split, in order
    CtError *err;                // where train_view reports
    // k-fold: the fold's val rows and the training rows of one view,
    // gathered from the pooled features
    float *val_rows, *train_rows;  // (n_val, dim), (n_train, dim)
    size_t *pool_pos;              // (ds->n) each image's row in the pool
    long train_rows_view;          // the view train_rows holds; -1: none
} TrialInputs;

// Gathers labels and clean val/test features; sets up in->data.
int trial_prepare(TrialInputs *in, CtError *err);
void trial_inputs_free(TrialInputs *in);

// Prepares, initialises the state and trains to the last budget (or until
// hooks->should_stop). Returns as train_run does. The state is left for the
// caller (checkpointing); free it with train_state_free.
int trial_train(TrialInputs *in, TrainState *st, const TrainSpec *spec, const TrainHooks *hooks, CtError *err);
// The same, continuing from a checkpoint made by train_state_save (blob may
// be NULL: a fresh start).
int trial_resume(TrialInputs *in, TrainState *st, const TrainSpec *spec, const TrainHooks *hooks, const void *blob,
                 size_t blob_len, CtError *err);

#endif
