/*
 * records.h — what the master knows about each trial while a sweep runs:
 * status, per-epoch records, learning-rate trace, val and test
 * probabilities, and where it ran. The results writers turn these into
 * HDF5; resume reads them back.
 */
#ifndef CTSWEEP_RESULTS_RECORDS_H
#define CTSWEEP_RESULTS_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "results/epoch_record.h"
#include "results/kept_weights.h"

typedef enum { TRIAL_PENDING = 0, TRIAL_RUNNING, TRIAL_DONE, TRIAL_FAILED } TrialStatus;

const char *trial_status_name(TrialStatus s);
int trial_status_parse(const char *s, TrialStatus *out);

typedef struct {
    TrialStatus status;
    char error[512];
    size_t budget;         // the trial's epochs
    size_t epochs_done;
    EpochRecord *epochs;   // (budget)
    double *lr_trace;      // (budget * iters_per_epoch)
    size_t iters_per_epoch;
    size_t n_val, n_test;
    float *val_prob;       // (budget, n_val)
    float *test_prob;      // (budget, n_test): every epoch's test probabilities
    size_t best_epoch;     // the highest val accuracy (kept for the leaderboard's peak)
    size_t selected_epoch; // selection.h's rule; 0 until the trial is done
    double best_val_acc, test_acc, test_auc, wall_seconds;
    char host[64], device[64];
    int rank;
    uint64_t forwards, cache_hits;
    // Weights received for the trial's budget and not yet in its file
    // (the master's): [0] selected, [1] final; NULL when none waits.
    KeptWeights *kept[2];
} TrialRecord;

void trial_record_init(TrialRecord *r, size_t budget, size_t n_val, size_t n_test);
void trial_record_free(TrialRecord *r);
// Forgets epochs after `keep` (a resumed run recomputes them bit-identically).
void trial_record_truncate(TrialRecord *r, size_t keep);
// Stores one epoch (epochs must arrive in order; later ones past the budget are ignored).
void trial_record_epoch(TrialRecord *r, const EpochRecord *e, const double *lr, size_t n_iters, const float *val_prob,
                        const float *test_prob);
// Selects the epoch (selection.h) among the epochs done and sets
// selected_epoch, test_acc (P > 0.5) and test_auc at it; labels (n_test).
void trial_record_select(TrialRecord *r, const uint8_t *test_labels);

#endif
