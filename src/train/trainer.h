/*
 * trainer.h — one trial's training of the head on frozen features: the
 * epoch loop with a seeded shuffle, the last partial batch kept, Adam, the
 * learning-rate schedule stepped per iteration, and per-epoch metrics
 * (train loss and accuracy running over the epoch; val loss, accuracy and
 * AUC; val and test probabilities); each epoch budget is reported too.
 *
 * Epoch budgets: the schedule does not depend on the total length (except
 * `cosine`), so the records of a run of E epochs are, epoch for epoch, the
 * records of any shorter run: trials that differ only in `epochs` share one
 * run and each budget's result is its prefix.
 *
 * The trainer's whole state (head parameters, Adam moments and step, epoch
 * and iteration, best-so-far) is in TrainState, so a run can stop at a batch
 * boundary and continue later with bit-identical results.
 */
#ifndef CTSWEEP_TRAIN_TRAINER_H
#define CTSWEEP_TRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "results/epoch_record.h"
#include "train/adam.h"
#include "train/clr.h"
#include "train/head.h"
#include "train/tail.h"
#include "util/buf.h"
#include "util/util.h"

#define TRAIN_MAX_BUDGETS 32

// The trainable tail (unfreeze > 0): the backbone whose last `unfreeze`
// stages train with the head, from activations at the cut (TrainData.dim is
// then the cut's c*h*w). Its parameters start from the same weights (or the
// same seeded random backbone) as the frozen prefix that made the
// activations, the head from TrainSpec.seed as a head alone would.
typedef struct {
    int unfreeze;              // 0: the head alone on features (all of this is ignored)
    double backbone_lr_scale;  // the unfrozen stages' LR is the schedule's times this
    char model[32];
    const char *weights;       // safetensors path; NULL or "": seeded random backbone
    uint64_t backbone_seed;
    size_t image_size;
    BackendKind backend;
    ConvAlgo conv_algo;        // train.conv_algo: direct keeps the tail's convolutions direct too
    // Bytes of backend memory for the trial's activations at the cut (val,
    // test, then the training view in use), so batches are gathered there
    // instead of sent from host memory; what does not fit is sent a batch
    // at a time. Only backends whose memory is not the host's use it (a
    // test may force it on the CPU: device_cache_always).
    size_t device_cache_bytes;
    int device_cache_always;
} TailSpec;

typedef struct {
    HeadSpec head;
    TailSpec tail;
    AdamSpec adam;
    ClrSpec clr;
    size_t batch_size;
    size_t budgets[TRAIN_MAX_BUDGETS];  // ascending epoch counts; the run lasts budgets[n_budgets - 1]
    size_t n_budgets;
    uint64_t seed;  // head init, shuffle and dropout
    int keep_weights;  // KeepWeights (results/kept_weights.h): KEEP_SELECTED allocates the selected copy
} TrainSpec;

// Features and labels. val and test are clean (unaugmented); training
// features come per augmentation view (view = epoch mod aug_views).
typedef struct {
    size_t dim;
    size_t n_train, n_val, n_test;
    const uint8_t *y_train, *y_val, *y_test;
    const float *val;   // (n_val, dim)
    const float *test;  // (n_test, dim)
    uint32_t aug_views;
    // (n_train, dim) for a view; valid until the next call.
    const float *(*train_view)(void *ctx, uint32_t view, CtError *err);
    void *ctx;
} TrainData;

typedef struct {
    // Called after each epoch with its record, the learning rate of each of
    // its iterations, the val probabilities (n_val) and the test
    // probabilities (n_test): the test is scored at every epoch, so a trial
    // can be evaluated at the epoch that val selects.
    int (*on_epoch)(void *ctx, const EpochRecord *r, const double *lr_trace, size_t n_iters, const float *val_prob,
                    const float *test_prob, CtError *err);
    // Called when an epoch budget completes: test probabilities (n_test) and
    // the best val epoch within the budget.
    int (*on_budget)(void *ctx, size_t budget, const float *test_prob, size_t best_epoch, double best_val_acc,
                     CtError *err);
    // Called once everything about an epoch has been reported (on_epoch and
    // any on_budget of that epoch): the state is then consistent with every
    // report, which is where a checkpoint belongs (a checkpoint taken before
    // a budget's report would resume past a budget nobody recorded).
    void (*epoch_reported)(void *ctx, size_t epoch);
    // Polled at each batch boundary; non-zero stops the run there (the
    // state then resumes mid-epoch).
    int (*should_stop)(void *ctx);
    void *ctx;
    // Data parallel (dp_size > 1): this rank trains its share
    // [m * dp_rank / dp_size, m * (dp_rank + 1) / dp_size) of each batch's m
    // rows, and allreduce sums gradients, losses and flags over the group;
    // every rank then takes the same optimiser step. Evaluation runs whole
    // on every rank. The hooks run on every rank of the group.
    int dp_rank, dp_size;
    // A trainable tail's gradients are summed by its backend's allreduce_sum
    // over dp_comm (what that backend's table says it points to: an MPI_Comm
    // on the CPU); NULL: through host memory with allreduce_f32.
    void *dp_comm;
    void (*allreduce_f32)(void *ctx, float *buf, size_t n);
    void (*allreduce_f64)(void *ctx, double *buf, size_t n);
} TrainHooks;

typedef struct TrainState {
    Head head;         // unfreeze 0
    Tail *tail;        // unfreeze > 0 (the head is then the tail's, and Head is unused)
    AdamState adam;
    size_t iters_per_epoch, total_iters;
    size_t epoch;      // epochs completed
    size_t iter;       // iterations completed in total
    // running sums of the epoch in progress
    double run_loss_sum;
    size_t run_correct, run_seen;
    double epoch_t0_offset;  // seconds spent on the epoch before a stop
    size_t best_epoch;
    double best_val_acc;
    double *lr_trace;  // (iters_per_epoch) of the epoch in progress
    float *val_prob, *test_prob;
    uint32_t *perm;    // (n_train) this epoch's order
    // The selected epoch so far (train/keep.h): its val AUC and loss, and
    // with KEEP_SELECTED a copy of its weights (n_sel floats, host memory).
    int keep;
    size_t sel_epoch;
    double sel_auc, sel_loss;
    int sel_lost;      // resumed from a checkpoint without the copy
    float *sel;
    size_t n_sel;
    int initialised;
} TrainState;

// Validates spec against data and allocates the state (head, Adam, buffers);
// parameters are initialised from spec->seed. Errors name the field.
int train_state_init(TrainState *st, const TrainSpec *spec, const TrainData *data, CtError *err);
void train_state_free(TrainState *st);

// The state as bytes (parameters, Adam moments and step, position, running
// sums, best so far), for checkpoints; and back, into a state initialised
// with the same spec and data (errors say what does not match).
void train_state_save(const TrainState *st, Buf *out);
int train_state_load(TrainState *st, const void *blob, size_t len, CtError *err);

// Runs from the state's position to the last budget or until should_stop.
// Returns 0 when finished, 1 when stopped early, -1 on error (a non-finite
// loss or weight names the epoch and iteration).
int train_run(TrainState *st, const TrainSpec *spec, const TrainData *data, const TrainHooks *hooks, CtError *err);

#endif
