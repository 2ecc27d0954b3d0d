/*
 * shim_flock.c — an LD_PRELOAD library that gives flock the semantics of
 * shared file systems, so the OUTDIR lock can be tested on one machine.
 * CTSWEEP_SHIM_FLOCK selects them, for files named .lock* only (MPI's own
 * locks are left alone):
 *   nfs     the Linux NFS client: flock is emulated with whole-file fcntl
 *           locks, so an exclusive lock through a descriptor not open for
 *           writing fails with EBADF (shared locks work)
 *   enosys  Lustre mounted without -o flock: every flock fails with ENOSYS
 *   enolck  NFS mounted with nolock and no local_lock: ENOLCK
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int is_lock_file(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    const char *base = strrchr(path, '/');
    return strncmp(base ? base + 1 : path, ".lock", 5) == 0;
}

int flock(int fd, int op) {
    static int (*real)(int, int);
    if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
    const char *mode = getenv("CTSWEEP_SHIM_FLOCK");
    if (mode && is_lock_file(fd)) {
        if (strcmp(mode, "enosys") == 0) return errno = ENOSYS, -1;
        if (strcmp(mode, "enolck") == 0) return errno = ENOLCK, -1;
        if (strcmp(mode, "nfs") == 0 && (op & LOCK_EX)) {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0 && (fl & O_ACCMODE) == O_RDONLY) return errno = EBADF, -1;
        }
    }
    return real(fd, op);
}
