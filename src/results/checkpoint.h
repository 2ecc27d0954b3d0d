/*
 * checkpoint.h — OUT/checkpoints/<id>.h5: one run's training state (head
 * parameters, Adam moments, position) as an opaque byte dataset /state with
 * @epoch and @iteration, written atomically (temporary file, fsync,
 * rename). Trial files point to it from /checkpoint.
 */
#ifndef CTSWEEP_RESULTS_CHECKPOINT_H
#define CTSWEEP_RESULTS_CHECKPOINT_H

#include <stddef.h>

#include "util/buf.h"
#include "util/util.h"

int checkpoint_write(const char *path, size_t epoch, size_t iteration, const void *state, size_t len, CtError *err);
// Reads /state into out; epoch and iteration must match the trial file's reference.
int checkpoint_read(const char *path, size_t epoch, size_t iteration, Buf *out, CtError *err);

#endif
