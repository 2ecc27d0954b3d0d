/*
 * outdir_lock.c — the OUTDIR lock (see outdir_lock.h for the two layers).
 *
 * Tested under LD_PRELOAD shims (tests/shim_flock.c) that give flock NFS
 * semantics (EBADF for an exclusive lock through a read-only descriptor)
 * and Lustre-without-flock semantics (ENOSYS); tests/unit/test_outdir_lock.c
 * covers the record and the staleness rules, with a stand-in scontrol.
 */
#define _GNU_SOURCE
#include "results/outdir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

// ---- the owner record ----

void lock_owner_format(const LockOwner *o, char *buf, size_t n) {
    snprintf(buf, n, "host=%s\npid=%ld\npid_start=%llu\njob=%s\nrestarts=%ld\nstarted=%s\n", o->host, o->pid,
             o->pid_start, o->job, o->restarts, o->started);
}

int lock_owner_parse(const char *text, LockOwner *o) {
    memset(o, 0, sizeof *o);
    int have_host = 0, have_pid = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        if (len >= sizeof line) return -1;
        memcpy(line, p, len);
        line[len] = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            const char *v = eq + 1;
            char *end;
            if (strcmp(line, "host") == 0) {
                snprintf(o->host, sizeof o->host, "%s", v);
                have_host = v[0] != '\0';
            } else if (strcmp(line, "pid") == 0) {
                o->pid = strtol(v, &end, 10);
                have_pid = end != v && *end == '\0' && o->pid > 0;
            } else if (strcmp(line, "pid_start") == 0) {
                o->pid_start = strtoull(v, NULL, 10);
            } else if (strcmp(line, "job") == 0) {
                snprintf(o->job, sizeof o->job, "%s", v);
            } else if (strcmp(line, "restarts") == 0) {
                o->restarts = strtol(v, NULL, 10);
            } else if (strcmp(line, "started") == 0) {
                snprintf(o->started, sizeof o->started, "%s", v);
            }
        }
        p += len + (eol != NULL);
    }
    return have_host && have_pid ? 0 : -1;
}

// Field 22 of /proc/PID/stat: when the process started (ticks since boot);
// 0 when unknown. state (may be NULL) gets field 3 ('Z': a zombie).
static unsigned long long pid_start_time_state(long pid, char *state) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');  // the command name may hold spaces
    if (!p) return 0;
    if (state) *state = p[1] == ' ' ? p[2] : '?';
    unsigned long long v = 0;
    // After ')': state is field 3, starttime field 22.
    int field = 2;
    for (const char *q = p + 1; *q && field < 22; q++)
        if (*q == ' ') {
            field++;
            if (field == 22) v = strtoull(q + 1, NULL, 10);
        }
    return v;
}

static void host_name(char *buf, size_t n) {
    if (gethostname(buf, n - 1) != 0) snprintf(buf, n, "unknown");
    buf[n - 1] = '\0';
}

static unsigned long long pid_start_time(long pid) { return pid_start_time_state(pid, NULL); }

void lock_owner_self(LockOwner *o) {
    memset(o, 0, sizeof *o);
    host_name(o->host, sizeof o->host);
    o->pid = (long)getpid();
    o->pid_start = pid_start_time(o->pid);
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(o->job, sizeof o->job, "%s", job ? job : "");
    const char *rc = getenv("SLURM_RESTART_COUNT");
    o->restarts = rc ? strtol(rc, NULL, 10) : 0;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(o->started, sizeof o->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void owner_describe(const LockOwner *o, char *buf, size_t n) {
    snprintf(buf, n, "host %s, pid %ld%s%s%s, since %s", o->host, o->pid, o->job[0] ? ", Slurm job " : "", o->job,
             o->restarts ? " (requeued)" : "", o->started[0] ? o->started : "?");
}

// ---- is the holder gone? ----

int lock_slurm_job_ended(const char *job) {
    int out[2];
    if (!job[0] || pipe2(out, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
    // The child starts with no blocked signals (the stop-signal thread blocks
    // them in every other thread, and a mask is inherited).
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {"scontrol", "show", "job", "-o", (char *)job, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "scontrol", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        return -1;
    }
    char text[8192];
    size_t len = 0;
    ssize_t k;
    while ((k = read(out[0], text + len, sizeof text - 1 - len)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0) len += (size_t)k;
    text[len] = '\0';
    close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    // A job purged from the controller's memory (MinJobAge) is unknown.
    if (strstr(text, "Invalid job id")) return 1;
    const char *st = strstr(text, "JobState=");
    if (!st || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    static const char *const ended[] = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                                        "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"};
    st += strlen("JobState=");
    for (size_t i = 0; i < sizeof ended / sizeof *ended; i++) {
        size_t n = strlen(ended[i]);
        if (strncmp(st, ended[i], n) == 0 && (st[n] == ' ' || st[n] == '\n' || st[n] == '\0')) return 1;
    }
    return 0;
}

int lock_owner_stale(const LockOwner *o, char *why, size_t n) {
    LockOwner me;
    lock_owner_self(&me);
    if (strcmp(o->host, me.host) == 0) {
        if (o->pid == me.pid) return snprintf(why, n, "an earlier lock of this process"), 1;
        if (kill((pid_t)o->pid, 0) != 0 && errno == ESRCH)
            return snprintf(why, n, "its process %ld on %s is gone", o->pid, o->host), 1;
        char state = '?';
        unsigned long long t = pid_start_time_state(o->pid, &state);
        if (state == 'Z' || state == 'X')
            return snprintf(why, n, "its process %ld on %s has ended", o->pid, o->host), 1;
        if (t && o->pid_start && t != o->pid_start)
            return snprintf(why, n, "its process %ld on %s is gone (the pid now belongs to another)", o->pid, o->host), 1;
        return 0;
    }
    // Another host: only Slurm can tell. This job's earlier incarnation (a
    // requeue moves the job, with its id, to another node) is gone.
    if (!o->job[0]) return 0;
    if (strcmp(o->job, me.job) == 0 && o->restarts < me.restarts)
        return snprintf(why, n, "it is this job (%s) before its requeue", o->job), 1;
    if (strcmp(o->job, me.job) == 0) return 0;  // another step of this job
    if (lock_slurm_job_ended(o->job) == 1) return snprintf(why, n, "Slurm job %s has ended", o->job), 1;
    return 0;
}

// ---- taking and releasing ----

static char g_record[4300];      // our owner record's path ("" when we hold none)
static char g_record_text[1024];  // and its contents, to recognise it at release

// Reads and parses a record; raw (may be NULL, 2048 bytes) gets its text.
static int read_record(const char *path, LockOwner *o, int *exists, char *raw) {
    char text[2048];
    memset(o, 0, sizeof *o);
    if (raw) raw[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *exists = fd >= 0 || errno != ENOENT;
    if (fd < 0) return -1;
    ssize_t k = read(fd, text, sizeof text - 1);
    close(fd);
    if (k < 0) return -1;
    text[k] = '\0';
    if (raw) memcpy(raw, text, (size_t)k + 1);
    return lock_owner_parse(text, o);
}

// Creates the owner record; 1 when another exists, -1 on an error.
static int create_record(const char *path, CtError *err) {
    LockOwner me;
    lock_owner_self(&me);
    lock_owner_format(&me, g_record_text, sizeof g_record_text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return errno == EEXIST ? 1 : ct_errorf(err, "%s: %s", path, strerror(errno));
    size_t len = strlen(g_record_text);
    int ok = write(fd, g_record_text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        return ct_errorf(err, "%s: %s", path, strerror(e));
    }
    snprintf(g_record, sizeof g_record, "%s", path);
    return 0;
}

// Removes a stale record without removing a fresh one another run put there
// meanwhile: the record is renamed to a name of our own first, and put back
// if it turns out to be no longer the stale one.
static int remove_stale(const char *path, const char *stale_text) {
    char mine[4400], text[2048];
    snprintf(mine, sizeof mine, "%s.stale.%ld", path, (long)getpid());
    if (rename(path, mine) != 0) return errno == ENOENT ? 0 : -1;
    int fd = open(mine, O_RDONLY | O_CLOEXEC);
    ssize_t k = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    text[k > 0 ? k : 0] = '\0';
    if (strcmp(text, stale_text) != 0) {
        if (link(mine, path) != 0) ct_warn("%s: lost a lock record while taking over a stale one", path);
        unlink(mine);
        return 1;
    }
    unlink(mine);
    return 0;
}

static int on_this_host(const LockOwner *o) {
    char host[256];
    host_name(host, sizeof host);
    return strcmp(o->host, host) == 0;
}

static int flock_unsupported(int e) { return e == ENOSYS || e == ENOLCK || e == EOPNOTSUPP || e == ENOTSUP; }

int outdir_lock(const char *outdir, int break_lock, CtError *err) {
    char path[4200], record[4300];
    snprintf(path, sizeof path, "%s/.lock", outdir);
    snprintf(record, sizeof record, "%s/.lock.owner", outdir);
    // Read-only where flock allows it: a descriptor open for writing would
    // keep the file system from being remounted read-only mid-run (and the
    // results from being kept intact when that happens). NFS emulates flock
    // with fcntl locks, which need write access for an exclusive lock
    // (EBADF): there, and only there, .lock is opened read-write.
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ct_errorf(err, "%s: %s", path, strerror(errno));
    int rc = flock(fd, LOCK_EX | LOCK_NB), e = rc ? errno : 0;
    if (rc != 0 && e == EBADF) {
        close(fd);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return ct_errorf(err, "%s: %s", path, strerror(errno));
        rc = flock(fd, LOCK_EX | LOCK_NB);
        e = rc ? errno : 0;
    }
    int flocked = rc == 0;
    if (!flocked) {
        if (e == EWOULDBLOCK && !break_lock) {
            close(fd);
            LockOwner o;
            int exists;
            char who[400] = "";
            if (read_record(record, &o, &exists, NULL) == 0) owner_describe(&o, who, sizeof who);
            return ct_errorf(err, "%s: another ctsweep run is writing to this folder (%s holds %s)", outdir,
                             who[0] ? who : "a process", path);
        }
        if (e == EWOULDBLOCK)
            ct_warn("%s: still locked by a process; taking it anyway (--break-lock)", path);
        else if (!flock_unsupported(e)) {
            close(fd);
            return ct_errorf(err, "%s: %s", path, strerror(e));
        }
        close(fd);  // no flock here: the owner record alone guards OUTDIR
    }
    for (int attempt = 0; attempt < 8; attempt++) {
        int c = create_record(record, err);
        if (c < 0) return -1;
        if (c == 0) return 0;  // fd (when flocked) stays open until the process ends
        LockOwner o;
        int exists;
        char text[2048], who[400] = "", why[300] = "";
        int parsed = read_record(record, &o, &exists, text) == 0;
        if (!exists) continue;  // removed meanwhile: try again
        if (parsed) owner_describe(&o, who, sizeof who);
        struct stat st;
        int old = stat(record, &st) == 0 && time(NULL) - st.st_mtime > 30;
        int stale = break_lock ? (snprintf(why, sizeof why, "--break-lock"), 1)
                    : parsed   ? lock_owner_stale(&o, why, sizeof why)
                    // An unreadable record: one cut short by a kill as it was
                    // written (this host's flock says nobody holds OUTDIR), or
                    // one left long ago.
                    : (flocked || old) ? (snprintf(why, sizeof why, "an unreadable record"), 1) : 0;
        // This host's flock is ours: nobody on this host holds OUTDIR.
        if (!stale && parsed && flocked && on_this_host(&o))
            stale = (snprintf(why, sizeof why, "no process on %s holds the lock", o.host), 1);
        if (!stale)
            return ct_errorf(err, "%s: another ctsweep run holds this folder (%s, in %s); if it is gone, run again "
                             "with --break-lock", outdir, who[0] ? who : "an unreadable record", record);
        ct_info("%s: taking over a stale lock (%s): %s", outdir, who[0] ? who : "?", why);
        // A stale record is removed only if it is still the one judged.
        if (remove_stale(record, text) < 0)
            return ct_errorf(err, "%s: cannot remove the stale lock record: %s", record, strerror(errno));
    }
    return ct_errorf(err, "%s: the lock record keeps changing; another run is starting on this folder", record);
}

void outdir_lock_release(void) {
    if (!g_record[0]) return;
    char text[2048];
    int fd = open(g_record, O_RDONLY | O_CLOEXEC);
    ssize_t k = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    text[k > 0 ? k : 0] = '\0';
    // Ours only (--break-lock elsewhere may have replaced it).
    if (strcmp(text, g_record_text) == 0) unlink(g_record);
    g_record[0] = '\0';
}

int outdir_lock_held(const char *outdir, char *holder, size_t n) {
    char path[4200], record[4300];
    snprintf(path, sizeof path, "%s/.lock", outdir);
    snprintf(record, sizeof record, "%s/.lock.owner", outdir);
    if (holder && n) holder[0] = '\0';
    LockOwner o;
    int exists, parsed = read_record(record, &o, &exists, NULL) == 0;
    if (parsed && holder) owner_describe(&o, holder, n);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        int rc = flock(fd, LOCK_SH | LOCK_NB), e = errno;
        close(fd);
        if (rc != 0 && e == EWOULDBLOCK) return 1;
        // flock works here and nobody holds it: a record is a killed run's
        // (unless it is another host's, under a node-local flock).
        if (rc == 0 && (!parsed || on_this_host(&o))) return 0;
    }
    if (!parsed) return 0;
    char why[300];
    return !lock_owner_stale(&o, why, sizeof why);
}
