/*
 * manifest.h — OUT/sweep.h5, the sweep's manifest: provenance attributes
 * (schema_version, config_yaml, created_utc, software_version,
 * dataset_fingerprint, state), the data set (/dataset/path, /label, /split,
 * /group, /fold, /skipped), one /trials row per grid point with its status and headline
 * results, and /trial/<trial_id> external links to the trial files.
 *
 * Only the master writes it, always whole: a new file under a temporary
 * name, flushed, then renamed over the old one, so readers (and a kill at
 * any instant) see either the previous or the new manifest.
 */
#ifndef CTSWEEP_RESULTS_MANIFEST_H
#define CTSWEEP_RESULTS_MANIFEST_H

#include "config/config.h"
#include "config/grid.h"
#include "data/dataset.h"
#include "results/records.h"

#define MANIFEST_SCHEMA_VERSION 2  // 2: /dataset/group, /dataset/fold; fold, selected_epoch in /trials

typedef struct {
    const SweepConfig *cfg;
    const DataSet *ds;
    const Grid *grid;
    const TrialRecord *records;  // (grid->n_trials)
    const char *created_utc;
    const char *state;           // "running", "interrupted", "done"
    const char *merged_from;     // `ctsweep merge`: the source folders, one per line (NULL otherwise)
} ManifestView;

int manifest_write(const char *outdir, const ManifestView *m, CtError *err);

// UTC time as ISO 8601 ("2026-11-28T16:40:00Z") into buf (>= 21 bytes).
void manifest_utc_now(char *buf, size_t n);

#endif
