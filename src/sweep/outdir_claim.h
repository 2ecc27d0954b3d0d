/*
 * outdir_claim.h — what a run creates in OUTDIR before it trains (the folder
 * itself, trials/, .lock, phantoms/), noted so that a run refused before
 * training (a data set no classifier can be judged on, a bad image, a
 * configuration the ranks cannot run) takes exactly that away again and
 * leaves OUTDIR as it found it. Whatever was there before is never touched.
 */
#ifndef CTSWEEP_SWEEP_OUTDIR_CLAIM_H
#define CTSWEEP_SWEEP_OUTDIR_CLAIM_H

typedef struct {
    char outdir[4096];  // without trailing slashes
    char top_made[4096];  // the highest folder on the way to outdir that did not exist ("" when outdir did)
    int had_outdir, had_trials, had_lock, had_phantoms;
    int held;  // the lock was taken: this run may undo (another run's files are never ours)
} OutdirClaim;

// Notes what exists in outdir now; call before creating anything there.
void outdir_claim_note(OutdirClaim *c, const char *outdir);
// Removes what was not there when noted: phantoms/ (the tree), .lock, and
// trials/ and OUTDIR (and the parents made for it) when empty. Nothing
// unless c->held.
void outdir_claim_undo(const OutdirClaim *c);

#endif
