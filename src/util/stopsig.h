/*
 * stopsig.h — stop requests by signal (SIGTERM, SIGUSR1, SIGINT), taken by
 * one thread that does nothing else.
 *
 * No thread that computes may ever run a signal handler: oneDNN's JIT sgemm
 * kernels (2.x through 3.11, oneDNN issue 4845) run with the stack pointer
 * inside a heap buffer, so the kernel's signal frame, pushed below it, lands
 * on the heap. A Slurm warning signal arriving mid-kernel then corrupted the
 * worker's heap ("corrupted size vs. prev_size", or libgomp asking for
 * 700 GB). So the signals are blocked in every thread but one, which takes
 * them with sigwait().
 */
#ifndef CTSWEEP_STOPSIG_H
#define CTSWEEP_STOPSIG_H

// Blocks the stop signals in the calling thread, and so in every thread it
// creates from then on (OpenMP's, MPI's, PMIx's), and starts the thread that
// takes them. Call before any other thread exists (before MPI_Init and the
// first parallel region). Idempotent. Returns 0, or -1 when the thread could
// not start (the signals keep their default action then).
int stopsig_install(void);

// Whether a stop was asked for. A second SIGINT ends the process at once
// (exit 130).
int stopsig_requested(void);

// From now on the stop signals end the process as their default action
// would (after the sweep's verdict, when mpirun cleans up).
void stopsig_make_fatal(void);

#endif
