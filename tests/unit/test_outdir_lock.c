/*
 * test_outdir_lock.c — the OUTDIR lock's rules: the owner record round-trips;
 * a holder on this host is gone when its pid is (or belongs to a later
 * process); a holder on another host is gone only when Slurm says its job
 * has ended (a stand-in scontrol on PATH answers), or when it is this job
 * before a requeue; a live holder is refused naming host and pid, a stale
 * one taken over, and --break-lock takes any; release removes only our own
 * record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/outdir_lock.h"

#include "check.h"

static void write_text(const char *path, const char *text, int mode) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

// A stand-in scontrol printing `answer` and exiting with `code`.
static void fake_scontrol(const char *bin, const char *answer, int code) {
    char path[4200], text[512];
    snprintf(path, sizeof path, "%s/scontrol", bin);
    snprintf(text, sizeof text, "#!/bin/sh\necho '%s'\nexit %d\n", answer, code);
    write_text(path, text, 0755);
}

static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

int main(int argc, char **argv) {
    const char *scratch = argc > 1 ? argv[1] : "/tmp/test_outdir_lock";
    char cmd[4300], bin[4200], dir[4200], record[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/bin' '%s/out'", scratch, scratch, scratch);
    if (system(cmd) != 0) return 1;
    snprintf(bin, sizeof bin, "%s/bin", scratch);
    snprintf(dir, sizeof dir, "%s/out", scratch);
    snprintf(record, sizeof record, "%s/.lock.owner", dir);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");

    // ---- the record ----
    LockOwner me, back;
    lock_owner_self(&me);
    char text[1024], why[300];
    lock_owner_format(&me, text, sizeof text);
    CHECK(lock_owner_parse(text, &back) == 0 && strcmp(back.host, me.host) == 0 && back.pid == me.pid &&
              back.pid_start == me.pid_start && strcmp(back.started, me.started) == 0,
          "record round trip: %s", text);
    CHECK(me.pid_start > 0, "this process's start time read from /proc");
    CHECK(lock_owner_parse("host=a\n", &back) < 0 && lock_owner_parse("pid=3\n", &back) < 0 &&
              lock_owner_parse("", &back) < 0 && lock_owner_parse("host=a\npid=x\n", &back) < 0,
          "records without host or pid are malformed");

    // ---- this host ----
    LockOwner o = me;
    o.pid = dead_pid();
    CHECK(lock_owner_stale(&o, why, sizeof why) == 1 && strstr(why, "gone"), "dead pid on this host: %s", why);
    o.pid = (long)getppid();
    o.pid_start = 0;
    CHECK(lock_owner_stale(&o, why, sizeof why) == 0, "live pid on this host holds it");
    o.pid_start = 1;  // the pid now belongs to a process that started later
    CHECK(lock_owner_stale(&o, why, sizeof why) == 1 && strstr(why, "another"), "reused pid: %s", why);

    // ---- another host: Slurm decides ----
    char path[8400];
    snprintf(path, sizeof path, "%s:%s", bin, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    LockOwner far = me;
    snprintf(far.host, sizeof far.host, "node-that-is-not-this-one");
    CHECK(lock_owner_stale(&far, why, sizeof why) == 0, "another host, no Slurm job: cannot tell, held");
    snprintf(far.job, sizeof far.job, "4242");
    fake_scontrol(bin, "JobId=4242 JobName=sweep JobState=RUNNING Reason=None", 0);
    CHECK(lock_slurm_job_ended("4242") == 0 && lock_owner_stale(&far, why, sizeof why) == 0, "job RUNNING: held");
    fake_scontrol(bin, "JobId=4242 JobName=sweep JobState=COMPLETING Reason=None", 0);
    CHECK(lock_slurm_job_ended("4242") == 0, "job COMPLETING: not ended yet");
    fake_scontrol(bin, "JobId=4242 JobName=sweep JobState=TIMEOUT Reason=TimeLimit", 0);
    CHECK(lock_owner_stale(&far, why, sizeof why) == 1 && strstr(why, "4242"), "job TIMEOUT: stale (%s)", why);
    fake_scontrol(bin, "JobId=4242 JobName=sweep JobState=NODE_FAIL Reason=NodeDown", 0);
    CHECK(lock_slurm_job_ended("4242") == 1, "job NODE_FAIL: ended");
    fake_scontrol(bin, "slurm_load_jobs error: Invalid job id specified", 1);
    CHECK(lock_slurm_job_ended("4242") == 1, "job purged from the controller: ended");
    fake_scontrol(bin, "slurm_load_jobs error: Unable to contact slurm controller", 1);
    CHECK(lock_slurm_job_ended("4242") == -1 && lock_owner_stale(&far, why, sizeof why) == 0,
          "no answer from Slurm: held");
    setenv("SLURM_JOB_ID", "4242", 1);
    setenv("SLURM_RESTART_COUNT", "2", 1);
    far.restarts = 1;
    CHECK(lock_owner_stale(&far, why, sizeof why) == 1 && strstr(why, "requeue"), "this job before its requeue: %s",
          why);
    far.restarts = 2;
    CHECK(lock_owner_stale(&far, why, sizeof why) == 0, "another step of this very job: held");
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");

    // ---- taking, refusing, taking over, releasing ----
    CtError err = {{0}};
    CHECK(outdir_lock(dir, 0, &err) == 0, "first lock: %s", err.msg);
    struct stat st;
    CHECK(stat(record, &st) == 0, "owner record written");
    char holder[400];
    CHECK(outdir_lock_held(dir, holder, sizeof holder) == 1 && strstr(holder, me.host), "held, by %s", holder);
    // Another open file description of .lock: the flock is refused.
    err.msg[0] = '\0';
    CHECK(outdir_lock(dir, 0, &err) < 0 && strstr(err.msg, "another ctsweep run") && strstr(err.msg, "pid"),
          "second lock refused: %s", err.msg);
    outdir_lock_release();
    CHECK(stat(record, &st) != 0 && errno == ENOENT, "release removes the record");
    // A record left by a killed run on this host (no flock held any more
    // after the process ended: simulate with a fresh folder).
    snprintf(dir, sizeof dir, "%s/out2", scratch);
    mkdir(dir, 0755);
    snprintf(record, sizeof record, "%s/.lock.owner", dir);
    o = me;
    o.pid = dead_pid();
    lock_owner_format(&o, text, sizeof text);
    write_text(record, text, 0644);
    CHECK(outdir_lock_held(dir, holder, sizeof holder) == 0, "a dead holder's record: not held");
    err.msg[0] = '\0';
    CHECK(outdir_lock(dir, 0, &err) == 0, "stale record taken over: %s", err.msg);
    FILE *f = fopen(record, "r");
    char now[1024] = "";
    if (f) {
        size_t n = fread(now, 1, sizeof now - 1, f);
        now[n] = '\0';
        fclose(f);
    }
    CHECK(lock_owner_parse(now, &back) == 0 && back.pid == (long)getpid(), "the record is now ours: %s", now);
    outdir_lock_release();
    // A record of a live run elsewhere: refused, then --break-lock.
    snprintf(dir, sizeof dir, "%s/out3", scratch);
    mkdir(dir, 0755);
    snprintf(record, sizeof record, "%s/.lock.owner", dir);
    lock_owner_format(&far, text, sizeof text);
    write_text(record, text, 0644);
    err.msg[0] = '\0';
    CHECK(outdir_lock(dir, 0, &err) < 0 && strstr(err.msg, far.host) && strstr(err.msg, "--break-lock"),
          "live holder on another host refused: %s", err.msg);
    err.msg[0] = '\0';
    CHECK(outdir_lock(dir, 1, &err) == 0, "--break-lock takes it: %s", err.msg);
    // Release leaves a record that is not ours (replaced meanwhile).
    write_text(record, text, 0644);
    outdir_lock_release();
    CHECK(stat(record, &st) == 0, "release keeps another run's record");
    return check_summary();
}
