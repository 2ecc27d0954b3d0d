/*
 * head.h — the trainable classifier head on frozen features: optional
 * standardisation (training-set mean and std, stored with the head), then
 * Linear -> ReLU -> Dropout for each hidden size, then Linear to 2 logits,
 * softmax cross-entropy. Initialised as torch.nn.Linear does by default
 * (weights and biases uniform in +-1/sqrt(fan_in)) from the counter RNG.
 *
 * Memory: parameters, gradients and a workspace for max_batch rows are
 * allocated once by head_init; nothing is allocated per step.
 */
#ifndef CTSWEEP_TRAIN_HEAD_H
#define CTSWEEP_TRAIN_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define HEAD_MAX_HIDDEN 7
#define HEAD_CLASSES 2

typedef struct {
    size_t in_dim;
    size_t hidden[HEAD_MAX_HIDDEN];
    size_t n_hidden;
    double dropout;   // probability of zeroing a hidden activation in training
    int standardize;  // z-score inputs with training-set statistics
} HeadSpec;

// The model's default head from the registry (nn/models.c: the reference
// workflow's), a linear classifier for a name the registry does not know.
void head_spec_default(HeadSpec *s, const char *model, size_t in_dim);
int head_spec_check(const HeadSpec *s, CtError *err);

typedef struct {
    HeadSpec spec;
    size_t n_lin;                         // linear layers
    size_t dim[HEAD_MAX_HIDDEN + 2];      // dim[0] = in_dim ... dim[n_lin] = 2
    size_t max_batch;
    size_t n_params;
    float *params;                        // flat W0, b0, W1, b1, ...
    float *grads;                         // same layout
    float *w[HEAD_MAX_HIDDEN + 1], *b[HEAD_MAX_HIDDEN + 1];
    float *gw[HEAD_MAX_HIDDEN + 1], *gb[HEAD_MAX_HIDDEN + 1];
    float *mean, *inv_std;                // (in_dim) when standardize
    // workspace, max_batch rows each
    float *h[HEAD_MAX_HIDDEN + 2];        // h[0] input (standardised), h[l] input of linear l, h[n_lin] logits
    float *mask[HEAD_MAX_HIDDEN + 1];     // dropout scale per hidden activation (0 or 1/(1-p))
    float *dh[2];                         // ping-pong activation gradients
    void *block;                          // the one allocation behind all of the above
} Head;

// Allocates everything (returns -1 with err when memory is short).
int head_init(Head *h, const HeadSpec *spec, size_t max_batch, CtError *err);
void head_free(Head *h);
size_t head_bytes(const Head *h);
// PyTorch's default Linear initialisation from (seed, RNG_INIT_HEAD, layer).
void head_reset_params(Head *h, uint64_t seed);
// Standardisation statistics from n training feature rows (double sums).
void head_fit_standardize(Head *h, const float *x /* (n, in_dim) */, size_t n);
// The same statistics a block of rows at a time (the trainable tail reads
// its head's input in batches): sums s and s2 (D each, zeroed by the caller)
// gain rows x (n, D); then mean and inverse std of all n rows.
void head_stats_add(double *s, double *s2, const float *x, size_t n, size_t D);
void head_stats_finish(const double *s, const double *s2, size_t n, size_t D, float *mean, float *inv_std);

// Forward pass over n <= max_batch rows. train: apply dropout with masks
// keyed by (seed, iteration). Returns the logits (n, 2) inside the workspace.
const float *head_forward(Head *h, const float *x /* (n, in_dim) */, size_t n, int train, uint64_t seed,
                          uint64_t iteration);
// The same for rows [row0, row0 + n) of a larger batch (data-parallel
// shards): dropout masks are those of the whole batch's rows.
const float *head_forward_rows(Head *h, const float *x, size_t n, size_t row0, int train, uint64_t seed,
                               uint64_t iteration);
// Softmax cross-entropy of the last forward's logits: returns the mean loss
// over n rows, fills correct (argmax == label count) and, when backward is
// set, accumulates parameter gradients (grads += d mean loss / d params).
double head_loss_backward(Head *h, const uint8_t *labels, size_t n, size_t *correct, int backward);
// The same with the gradient of (sum of losses) / batch_rows, for a shard of
// a batch of batch_rows rows; returns the shard's sum of losses.
double head_loss_backward_shard(Head *h, const uint8_t *labels, size_t n, size_t batch_rows, size_t *correct,
                                int backward);
// P(label 1) = softmax(logits)[1] for each row of the last forward.
void head_probs(const Head *h, size_t n, float *p);
void head_zero_grads(Head *h);

// Dropout keep-mask scale for one element (exposed for tests): 0 or 1/(1-p).
float head_dropout_scale(uint64_t seed, uint64_t iteration, uint32_t layer, size_t index, double p);

#endif
