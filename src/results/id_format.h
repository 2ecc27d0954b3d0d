/*
 * id_format.h — what the manifest records of how its trial ids were made,
 * and the check that a folder's ids can be reused.
 *
 * --resume and merge find finished work by trial id. Ids made another way
 * would match nothing and every trial would silently train again (and the
 * old trial files would stay beside the new ones); so a folder whose ids
 * this build cannot reproduce is refused with one line saying why: ids of
 * format 1 with weights files (hashed by path), or weights files whose
 * content has changed since the sweep ran.
 *
 * sweep.h5 records `trial_id_format` (GRID_ID_FORMAT; absent: format 1) and,
 * when the grid's models have weights files, `weights_sha256`: one line
 * "MODEL SHA256" per such model.
 */
#ifndef CTSWEEP_RESULTS_ID_FORMAT_H
#define CTSWEEP_RESULTS_ID_FORMAT_H

#include <hdf5.h>

#include "config/config.h"
#include "config/grid.h"
#include "util/util.h"

// Writes the attributes on the manifest's root (f). 0, or -1 with err.
int id_format_write(hid_t f, const Grid *g, CtError *err);

// Whether the folder whose manifest is at path holds ids this grid (built
// from cfg) reproduces. what names the action refused ("resume", "merge").
// 0, or -1 with err = "PATH: why; what to do" (one line).
int id_format_check(const char *path, const Grid *g, const SweepConfig *cfg, const char *what, CtError *err);

// 1 when the manifest at path records ids of this format and the same
// weights content as this grid (the same models with weights files, the
// same SHA-256 each): the weights paths may then differ (files moved).
int id_format_weights_same(const char *path, const Grid *g);

#endif
