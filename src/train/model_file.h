/*
 * model_file.h — the exported model product (`ctsweep export` writes it,
 * `ctsweep predict` reads it): one safetensors file, every tensor F32, the
 * backbone under torchvision's names, the head as head.<i>.weight|bias and
 * head.standardize.mean|std, and __metadata__ strings (format
 * ctsweep-model/1, model, image_size, normalize, classes, threshold, epoch,
 * epoch_kind, trial_id, dataset_fingerprint, software_version, unfreeze,
 * head, feature_store).
 *
 * Reading checks everything before a forward pass is planned, so a bad file
 * is refused with one line naming the file and the key or tensor at fault.
 */
#ifndef CTSWEEP_TRAIN_MODEL_FILE_H
#define CTSWEEP_TRAIN_MODEL_FILE_H

#include <stddef.h>

#include "data/resize.h"
#include "nn/safetensors.h"
#include "train/feature_cache.h"
#include "train/head.h"
#include "train/tail.h"
#include "util/util.h"

#define MODEL_FILE_FORMAT "ctsweep-model/1"

typedef struct {
    char model[32];
    size_t image_size;
    NormMode norm;
    char classes[HEAD_CLASSES][64];  // label order: classes[1] is the positive class
    double threshold;                // P(positive) >= threshold: labelled positive
    long long epoch;
    char epoch_kind[16];
    char trial_id[96];
    int unfreeze;          // the last stages the trial trained (0: the head alone)
    HeadSpec head;         // in_dim: the backbone's output per image
    FeatureStore store;    // the precision the sweep kept prefix activations at
    Precision precision;   // the backbone's arithmetic in the sweep (train.precision; fp32 when not given)
    ConvAlgo conv_algo;    // its convolution kernels (train.conv_algo; auto when not given)
} ModelFile;

// Reads and checks the metadata and the head's tensors of path (the
// backbone's tensors are checked where they are loaded).
int model_file_read(ModelFile *mf, const char *path, CtError *err);

// The head's parameters (and standardisation statistics) from st into h,
// planned from mf->head.
int model_file_load_head(const ModelFile *mf, const SafeTensors *st, Head *h, CtError *err);

// head.standardize.mean and the multipliers the head uses (in_dim) each:
// head.standardize.inv_std when present, else 1/std in float.
int model_file_read_standardize(const ModelFile *mf, const SafeTensors *st, float *mean, float *inv_std,
                                CtError *err);

// The file's standardisation statistics into a tail (nothing without
// standardisation).
int model_file_load_tail_standardize(const ModelFile *mf, const char *path, Tail *t, CtError *err);

#endif
