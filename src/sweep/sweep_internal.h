/*
 * sweep_internal.h — what the files of the sweep runtime share: the Sweep
 * that every rank holds (the master's records and queue, a worker's cache
 * and group), and the functions one file calls in another. Not for use
 * outside src/sweep (the interface is sweep.h).
 *
 * sweep.c: set-up and sweep_main; master.c: the queue, the results, the
 * progress; worker.c: training runs and their reports; resume.c: what an
 * earlier run left in OUTDIR; merge.c: `ctsweep merge`; protocol.c: the
 * messages between them; placement.c: threads, GPUs and worker groups.
 */
#ifndef CTSWEEP_SWEEP_SWEEP_INTERNAL_H
#define CTSWEEP_SWEEP_SWEEP_INTERNAL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/grid.h"
#include "data/dataset.h"
#include "data/image_cache.h"
#include "results/epoch_record.h"
#include "results/records.h"
#include "results/trial_file.h"
#include "sweep/master_stats.h"
#include "sweep/outdir_claim.h"
#include "sweep/worker_pool.h"
#include "train/feature_cache.h"
#include "util/buf.h"
#include "util/util.h"

typedef struct {
    SweepConfig cfg;
    DataSet ds;
    ImageCache ic;
    Grid grid;
    int rank, size;
    char outdir[4096];
    OutdirClaim claim;  // what this run made in OUTDIR, undone when it is refused before training
    char host[64];
    // master
    TrialRecord *rec;
    int64_t *index[DATA_SPLITS];
    size_t n_split[DATA_SPLITS];
    int64_t *fold_val[DATA_MAX_FOLDS];  // k-fold: each fold's val rows (index[SPLIT_VAL] without k-fold)
    size_t fold_n_val[DATA_MAX_FOLDS];
    uint8_t *test_labels;
    char created[32];
    double t_start, cpu_start, last_manifest;  // cpu_start: the process's CPU seconds at t_start
    size_t n_done, n_failed, n_skipped_done;
    int interrupted;
    double last_progress;
    int progress_shown;
    CheckpointRef *ckpt;     // (n_runs) the latest checkpoint of each run
    Buf *resume_state;       // (n_runs) the state a resumed run starts from
    int manifest_dirty;
    char (*hosts)[64];        // (size) each rank's host, for messages that name a rank
    char *pending;            // (n_runs) runs still to hand out
    WorkerPool pool;          // the workers: busy, silent, retired; runs being retried
    char *trial_dirty;        // (n_trials) records newer than the trial's file
    double *flushed_at;       // (n_runs) when the run's trial files were last written
    MasterStats stats;
    int merging;              // sweep_merge: no resume messages
    const char *merged_from;  // sweep_merge: the source folders, one per line
    // worker
    FeatureCache *fc;
    char last_model[32];
    MPI_Comm group;  // the ranks that train one trial together (ranks_per_trial)
    int group_rank, group_size;
    char device[64];  // "cpu", or the bound GPU's name and UUID
    double last_alive;  // when this worker last told the master it is alive
    void *nccl;       // the group's NCCL communicator (CUDA groups of GPUs)
} Sweep;

// What identifies a stored sweep: its manifest's root attributes, each NULL
// when absent or not one string.
typedef struct {
    char *yaml, *config_path, *fingerprint, *slice, *created, *merged_from;
    size_t slice_i, slice_n;  // the slice, parsed (by merge_sources)
} StoredSweep;

// ---- sweep.c: set-up ----

int path_exists(const char *p);
// Removes a folder and everything in it.
void remove_tree(const char *dir);
// Opens the data set of s->cfg (generating phantoms when it names none),
// decodes it into s->ic and fingerprints it. Collective over MPI_COMM_WORLD
// when phantoms are generated. tmp_phantoms (4096 bytes): the temporary
// phantom folder of a dry run, "" otherwise.
int setup_data(Sweep *s, int dry_run, char *tmp_phantoms, CtError *err);
// Everything a Sweep holds, and the Sweep.
void sweep_free(Sweep *s);

// ---- master.c ----

void trial_path(const Sweep *s, size_t t, char *buf, size_t n);
// An empty record sized for the trial's fold.
void trial_record_for(const Sweep *s, const GridTrial *t, TrialRecord *r);
void write_trial(Sweep *s, size_t t);
void write_manifest(Sweep *s, const char *state);
// Ends a live progress line before other output.
void progress_clear(Sweep *s);
// The master's handlers of its workers' reports (called directly with one rank).
void master_epoch(Sweep *s, size_t run, const EpochRecord *r, const double *lr, size_t n_iters, const float *vp,
                  const float *tp, int rank);
void master_budget(Sweep *s, size_t run, size_t budget, const float *tp, int rank);
// Kept weights of the run's trial at that budget (before its BUDGET):
// held until the trial's file is written done; takes w's contents.
void master_weights(Sweep *s, size_t run, size_t budget, KeptWeights *w);
void master_checkpoint(Sweep *s, size_t run, size_t epoch, size_t iter, const void *blob, size_t len);
// outcome: 1 done, 2 interrupted (its unfinished trials stay pending), 0 failed.
void master_end(Sweep *s, size_t run, int outcome, const char *error, double wall, uint64_t fwd, uint64_t hits,
                const char *host, const char *device, int rank, int device_error);
// Deletes a finished run's checkpoint (when every trial of the run is done).
void master_drop_checkpoint(Sweep *s, size_t run);
// Reads the checkpoint a run starts from into s->resume_state[run].
void master_take_checkpoint(Sweep *s, size_t run);
// The next pending run for rank self (-1: none); model_of may be NULL.
long pick_run(const Sweep *s, const char *pending, const char *model, char (*model_of)[32], int self);
// Hands out the pending runs to the workers until every worker is stopped.
void master_loop(Sweep *s, char *pending);
// Split rows of the data set and test labels, for the results.
void master_index(Sweep *s);

// ---- worker.c ----

// Runs one run of the grid on this rank (from the state blob, when given).
void worker_run(Sweep *s, size_t run_index, const void *blob, size_t blob_len);
// A worker rank's life: runs as the master assigns them, until STOP.
void worker_loop(Sweep *s);

// ---- resume.c ----

// Takes over what an earlier run of this sweep left in OUTDIR (pending: the
// runs still to do).
void master_resume(Sweep *s, char *pending, int retry_failed);
// Reads the manifest at path once; -1 when it does not open.
int stored_sweep_read(const char *path, StoredSweep *m);
void stored_sweep_free(StoredSweep *m);
// The configuration stored in OUTDIR/sweep.h5 against s->cfg: 0, or -1 with
// the differing keys in err.
int check_resume_config(Sweep *s, CtError *err);

#endif
