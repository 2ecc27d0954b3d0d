/*
 * epoch_record.h — one epoch's figures as the trainer reports them and the
 * results keep them (a row of a trial file's /epochs). It lives with the
 * results so that they read it without depending on the trainer.
 */
#ifndef CTSWEEP_RESULTS_EPOCH_RECORD_H
#define CTSWEEP_RESULTS_EPOCH_RECORD_H

#include <stddef.h>

typedef struct {
    size_t epoch;  // 1-based
    double lr;     // rate used by the epoch's last iteration
    double train_loss, train_acc, val_loss, val_acc, val_auc, seconds;
} EpochRecord;

#endif
