/*
 * gradcam.h — Grad-CAM (Selvaraju et al. 2017) of an exported model's
 * positive class: the target layer is the output of the backbone's last
 * convolution with its ReLU (VGG: the last ReLU of the last block, before
 * its max pool, 14x14 at 224 px; ResNet: the output of layer4, 7x7 at 224),
 * the score the positive logit; CAM = ReLU(sum_k alpha_k A_k) with alpha_k
 * the spatial mean of d score / d A_k.
 *
 * The frozen prefix runs to the start of the last stage (the cut of
 * unfreeze 1), the last stage, the final pool and the head as a trainable
 * tail (tail.h) in eval mode, all with the file's weights (the stages a
 * trial fine-tuned are in it); the gradient comes from the tail's backward
 * through the backend's operations (tail_backward_logit), data gradients
 * only. A model trained with unfreeze 1 has this very prefix in its
 * predictor: the CAM then reads the predictor's activations at the cut
 * (gradcam_run_cut), rounded to the feature store as the trial's tail read
 * them, and the prefix runs once; otherwise Grad-CAM runs its own prefix
 * in float32. DenseNet's last stage ends in a BatchNorm + ReLU the tail has
 * no backward for: refused.
 */
#ifndef CTSWEEP_TRAIN_GRADCAM_H
#define CTSWEEP_TRAIN_GRADCAM_H

#include <stddef.h>

#include "backend/backend.h"
#include "train/model_file.h"
#include "train/tail.h"

typedef struct {
    BackendNet *net;  // the prefix to the last stage (NULL: the caller gives its output)
    Tail tail;
    int tail_ok;
    size_t target;        // tail layer whose output is the target
    size_t c, h, w;       // the target's shape per image
    size_t max_batch, in_numel;
    float *xcut;          // (max_batch, in_numel) host: activations at the cut
    float *act, *grad;    // (max_batch, c, h, w) host: the target and its gradient
} GradCam;

// own_prefix 0: no prefix is planned, gradcam_run_cut is given its output.
int gradcam_init(GradCam *gc, const char *path, const ModelFile *mf, const BackendOptions *opt, size_t max_batch,
                 int own_prefix, CtError *err);
void gradcam_free(GradCam *gc);
// CAMs of n <= max_batch preprocessed images x (n, 3, S, S) into cam
// (n, gc->h, gc->w), before any normalisation.
int gradcam_run(GradCam *gc, const float *x, size_t n, float *cam, CtError *err);
// The same from the activations at the cut of unfreeze 1, xcut (n, dim)
// host memory; dim must be gc->in_numel.
int gradcam_run_cut(GradCam *gc, const float *xcut, size_t n, size_t dim, float *cam, CtError *err);

#endif
