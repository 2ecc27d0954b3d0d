/*
 * shim_fsync_delay.c — an LD_PRELOAD library that makes this machine's file
 * system as slow to commit as a busy shared one: every fsync, fdatasync and
 * rename sleeps CTSWEEP_FSYNC_DELAY_MS milliseconds (fractions allowed)
 * before doing its work. Used by bench/master_scale to measure the master's
 * file writes under NFS/Lustre-like latency on one machine.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void delay(void) {
    const char *v = getenv("CTSWEEP_FSYNC_DELAY_MS");
    double ms = v ? atof(v) : 0.0;
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (double)(time_t)(ms / 1000)) * 1e6)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    delay();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    delay();
    return real(fd);
}

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    delay();
    return real(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
    static int (*real)(int, const char *, int, const char *);
    if (!real) real = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
    delay();
    return real(fromfd, from, tofd, to);
}
