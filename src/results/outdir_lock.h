/*
 * outdir_lock.h — one sweep writes to an OUTDIR at a time: the master (and
 * `ctsweep merge`) holds OUTDIR's lock for its lifetime; `ctsweep status`
 * asks whether anyone does.
 *
 * Two layers, because shared file systems differ in what they offer:
 * an exclusive flock on OUTDIR/.lock (released by the kernel however the
 * holder ends; on NFS it needs a descriptor open for writing, on Lustre it
 * needs `-o flock`), and an owner record OUTDIR/.lock.owner created with
 * O_CREAT|O_EXCL (atomic on local file systems, NFSv3+ and Lustre alike)
 * naming host, pid, Slurm job and start time. The record is what guards
 * OUTDIR where flock is missing (ENOSYS, ENOLCK, EOPNOTSUPP) or node-local
 * (Lustre `localflock`, NFS `local_lock`); a record whose holder is gone
 * (same host and its pid gone; or a Slurm job that has ended, or is this
 * job's own earlier incarnation before a requeue) is taken over.
 */
#ifndef CTSWEEP_RESULTS_OUTDIR_LOCK_H
#define CTSWEEP_RESULTS_OUTDIR_LOCK_H

#include <stddef.h>

#include "util/util.h"

// Who holds (or held) a lock: the contents of OUTDIR/.lock.owner.
typedef struct {
    char host[256];
    long pid;
    unsigned long long pid_start;  // the pid's start time in clock ticks since boot (tells a reused pid)
    char job[64];                  // SLURM_JOB_ID, "" outside Slurm
    long restarts;                 // SLURM_RESTART_COUNT (requeues of that job)
    char started[32];              // UTC, ISO 8601
} LockOwner;

// Takes OUTDIR's lock for the rest of the process's life. break_lock: take
// it whatever holds it (the user says the holder is gone). Returns 0, or -1
// with err naming the folder and the live holder (host, pid, job), or why
// the lock could not be taken.
int outdir_lock(const char *outdir, int break_lock, CtError *err);
// Removes this process's owner record (a clean exit); a kill leaves it for
// the next run to take over.
void outdir_lock_release(void);
// Whether a live ctsweep run holds OUTDIR's lock (0 when nobody does);
// holder (may be NULL) gets a description of it.
int outdir_lock_held(const char *outdir, char *holder, size_t n);

// ---- the pieces, for tests ----
// Serialises an owner record (key=value lines) / parses one; -1 when malformed.
void lock_owner_format(const LockOwner *o, char *buf, size_t n);
int lock_owner_parse(const char *text, LockOwner *o);
// This process as an owner.
void lock_owner_self(LockOwner *o);
// Whether the holder o is gone: 1 gone (why says why), 0 alive or unknown.
int lock_owner_stale(const LockOwner *o, char *why, size_t n);
// What `scontrol show job` says of a Slurm job: 1 ended (or unknown to
// Slurm), 0 still queued or running, -1 no answer (no scontrol).
int lock_slurm_job_ended(const char *job);

#endif
