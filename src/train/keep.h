/*
 * keep.h — the trained weights a trial keeps (train.keep_weights), on the
 * trainer's side: the table of its trainable tensors, the current values
 * as the final epoch's, and one copy of the best epoch so far by the
 * selection rule (results/selection.h), so that a trial at budget B can
 * hand over the weights of its selected epoch (<= B) as well.
 *
 * The rule is applied epoch by epoch to the same val AUC and loss the
 * master records, so the epoch kept here is the epoch the trial file
 * selects. The copy lives in host memory (one extra copy of the trainable
 * parameters, only when selected weights are kept) and in the checkpoint,
 * so a killed and resumed run keeps the same bits.
 *
 * Order of a snapshot: the trainable parameters as they lie in the
 * parameter block (a tail's unfrozen stages, then the head's W0, b0, W1,
 * b1, ...), then head.standardize.mean and head.standardize.inv_std when
 * standardisation is on.
 */
#ifndef CTSWEEP_TRAIN_KEEP_H
#define CTSWEEP_TRAIN_KEEP_H

#include <stddef.h>

#include "results/epoch_record.h"
#include "results/kept_weights.h"
#include "util/buf.h"
#include "util/util.h"

typedef struct TrainState TrainState;

// Allocates the selected copy when keep has KEEP_SELECTED (after the head
// or tail exists); the selection is tracked whatever keep says.
int train_keep_init(TrainState *st, int keep, CtError *err);
void train_keep_free(TrainState *st);
// Floats in a snapshot.
size_t train_keep_floats(const TrainState *st);
// The snapshot's tensor table (names, shapes, offsets), data left NULL.
void train_keep_table(const TrainState *st, KeptWeights *w);
// Appends the current parameters, in snapshot order, to out.
void train_keep_put(const TrainState *st, Buf *out);
// After an epoch's val evaluation: keeps a copy when it is the best so far.
void train_keep_epoch(TrainState *st, const EpochRecord *r);
// The tracking state (and the copy) for checkpoints; load accepts a
// checkpoint without it (an older one): the selected weights are then lost
// until a later epoch is selected.
void train_keep_save(const TrainState *st, Buf *out);
int train_keep_load(TrainState *st, Rd *r, CtError *err);

#endif
