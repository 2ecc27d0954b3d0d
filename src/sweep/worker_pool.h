/*
 * worker_pool.h — the master's view of its workers (group leaders): what
 * each is doing and when it was last heard from (a worker that sends
 * nothing for sweep.worker_timeout is hung or lost), which ones are retired
 * (two runs in a row failed with device errors: a broken GPU would fail
 * every run it is given), and which runs are being retried and where they
 * must not go again.
 */
#ifndef CTSWEEP_SWEEP_WORKER_POOL_H
#define CTSWEEP_SWEEP_WORKER_POOL_H

#include <stddef.h>

typedef struct {
    int size;           // ranks (index = rank; the master's entry unused)
    int group;          // ranks per trial: leaders are ranks 1, 1 + group, ...
    long *run;          // (size) the run a worker holds, -1 when idle
    double *heard;      // (size) when it was last heard from (ct_now)
    int *device_fails;  // (size) runs in a row that failed with a device error
    char *gone;         // (size) 1: stopped or retired, asks for nothing more
    size_t n_runs;
    size_t *attempts;   // (n_runs) retries so far
    int *avoid;         // (n_runs) the rank a retried run failed on, -1 none
} WorkerPool;

void pool_init(WorkerPool *p, int size, int group, size_t n_runs);
void pool_free(WorkerPool *p);
void pool_heard(WorkerPool *p, int rank, double now);
// The leader with a run that has been silent longest past timeout, or -1.
int pool_hung(const WorkerPool *p, double now, double timeout);
// Workers (leaders) other than rank that can still take work.
int pool_others_active(const WorkerPool *p, int rank);
// Records how a run on rank ended (failed with a device error or not);
// returns 1 when the rank must be retired (the second device error in a row).
int pool_run_ended(WorkerPool *p, int rank, int failed, int device_error);
// Whether an error message is the device's fault rather than the trial's:
// a CUDA, cuDNN, cuBLAS or NCCL call that failed (not "out of GPU memory",
// which a model too large for the GPU would give on every GPU).
int pool_is_device_error(const char *msg);

#endif
