/*
 * trial_file.h — OUT/trials/<trial_id>.h5, one trial's results: its
 * hyperparameters as attributes, /epochs (one row per finished epoch),
 * /lr_trace (one value per iteration), /val/prob [epochs, n_val] and
 * /val/index, /test/prob [epochs, n_test] and /test/index (rows of the
 * manifest's /dataset), and /checkpoint for resume (schema version 2;
 * version 1 kept /test/prob [n_test] at the final epoch only).
 *
 * Crash consistency: the file is written whole under a temporary name,
 * flushed to disk and renamed over the old one, so a kill at any instant
 * leaves either the previous or the new complete file. Trial files are small
 * (the checkpoint state lives in its own file, written only at checkpoints).
 * A done trial's file also keeps its weights (/model/selected,
 * /model/final: kept_weights.h), written once from TrialRecord.kept and
 * copied from the previous file when the file is rewritten afterwards.
 */
#ifndef CTSWEEP_RESULTS_TRIAL_FILE_H
#define CTSWEEP_RESULTS_TRIAL_FILE_H

#include <stdint.h>

#include "config/grid.h"
#include "results/records.h"

typedef struct {
    size_t epoch, iteration;  // position of the saved state
    char file[256];           // relative to OUT, e.g. "checkpoints/<run>.h5"
} CheckpointRef;

int trial_file_write(const char *path, const GridTrial *t, const TrialRecord *r, const int64_t *val_index,
                     const int64_t *test_index, const CheckpointRef *ckpt, CtError *err);

// Reads back a trial's records (for --resume). r must be initialised with
// the trial's budget and split sizes; on success it holds the file's epochs.
int trial_file_read(const char *path, TrialRecord *r, CheckpointRef *ckpt, CtError *err);

#endif
