/*
 * sweep.h — `ctsweep run`: the MPI master/worker runtime of a sweep.
 *
 * Rank 0 is the master: it expands the grid, hands runs to workers from a
 * dynamic queue (longest expected first, preferring the model a worker has
 * cached), records every epoch and result they stream back, and alone
 * writes the results. With one rank, that rank is master and worker.
 */
#ifndef CTSWEEP_SWEEP_SWEEP_H
#define CTSWEEP_SWEEP_SWEEP_H

#include <stddef.h>

// Exit codes of `ctsweep run`.
#define SWEEP_EXIT_OK 0
#define SWEEP_EXIT_ERROR 1
#define SWEEP_EXIT_USAGE 2
#define SWEEP_EXIT_FAILED_TRIALS 3  // finished, but some trials failed
#define SWEEP_EXIT_UNWRITABLE 74    // the results cannot be written (full, quota, read-only): fix, then --resume
#define SWEEP_EXIT_RESUME 75        // stopped early (signal, lost or hung rank): run again with --resume

typedef struct {
    const char *config_path;
    const char *outdir;
    int resume;
    int dry_run;
    int retry_failed;
    int break_lock;          // --break-lock: take OUTDIR's lock whatever holds it
    size_t slice, n_slices;  // --slice I/N: run only slice I (0-based) of N; n_slices 0: the whole grid
} SweepArgs;

// Runs the sweep on MPI_COMM_WORLD (MPI must be initialised). Returns the
// exit code; every rank returns the same one.
int sweep_main(const SweepArgs *a);
// `ctsweep merge`: one results folder OUTDIR from the folders of a sweep's
// slices (or any runs of one configuration): every trial file is taken from
// the folder where it got furthest (done, else the most epochs), with its
// checkpoint, and the manifest lists the whole grid, so `ctsweep run
// --resume` on OUTDIR finishes what no slice did. MPI must be initialised
// (one process). Returns 0 (all trials done), SWEEP_EXIT_FAILED_TRIALS, or
// SWEEP_EXIT_RESUME (trials still pending), SWEEP_EXIT_ERROR.
int sweep_merge(const char *outdir, char *const *dirs, size_t n_dirs, int break_lock);
// SIGTERM, SIGUSR1 and SIGINT ask for a clean stop (exit SWEEP_EXIT_RESUME);
// call once, before MPI_Init (before any thread exists: see stopsig.h), so
// that a signal during start-up is not lost.
void sweep_install_signals(void);

#endif
