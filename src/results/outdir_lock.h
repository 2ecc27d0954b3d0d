/*
 * outdir_lock.h — one sweep writes to an OUTDIR at a time: the master (and
 * `ctsweep merge`) holds OUTDIR/.lock for its lifetime; `ctsweep status`
 * asks whether anyone does.
 */
#ifndef CTSWEEP_RESULTS_OUTDIR_LOCK_H
#define CTSWEEP_RESULTS_OUTDIR_LOCK_H

#include "util/util.h"

// Takes OUTDIR/.lock for the rest of the process's life. Returns 0, or -1
// with err naming the folder and why (another run holds it, an I/O error).
int outdir_lock(const char *outdir, CtError *err);
// Whether a live ctsweep run holds OUTDIR's lock (0 when nobody does).
int outdir_lock_held(const char *outdir);

#endif
