/*
 * selection.h — the one rule that picks a trial's epoch, on val only:
 * the highest val AUC, ties broken by the lower val loss, then by the
 * earlier epoch. The manifest's test_acc and test_auc are the test
 * figures at that epoch, `ctsweep status` shows it, and the analysis uses
 * the same rule by default (--select val_auc), so the trial that is chosen
 * is evaluated where it was chosen, never at a test-picked epoch.
 */
#ifndef CTSWEEP_RESULTS_SELECTION_H
#define CTSWEEP_RESULTS_SELECTION_H

#include <stddef.h>

#include "results/epoch_record.h"

// How the rule reads in the tools' output.
#define SELECTION_RULE "highest val AUC, ties by lower val loss, then the earlier epoch"

// The selected epoch (1-based) of epochs[0..n), 0 when n is 0. A NaN val
// AUC (a val split of one class) ranks below every number, a NaN loss
// above every loss.
size_t selection_epoch(const EpochRecord *epochs, size_t n);
// Whether an epoch of (val AUC a, val loss a) beats an earlier one of
// (auc b, loss b): applied epoch by epoch it selects what selection_epoch does.
int selection_better(double auc_a, double loss_a, double auc_b, double loss_b);

#endif
