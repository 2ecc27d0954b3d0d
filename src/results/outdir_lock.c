/*
 * outdir_lock.c — the OUTDIR lock: an exclusive flock on OUTDIR/.lock,
 * released by the kernel whenever the process ends, however it ends.
 */
#include "results/outdir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int outdir_lock(const char *outdir, CtError *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", outdir);
    // Read-only: flock needs no write access, and an fd open for writing
    // would keep the file system from being remounted read-only.
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ct_errorf(err, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return ct_errorf(err, "%s: another ctsweep run is writing to this folder (it holds %s)", outdir, path);
        return ct_errorf(err, "%s: %s", path, strerror(e));
    }
    return 0;  // fd stays open until the process ends
}

int outdir_lock_held(const char *outdir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", outdir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}
