/*
 * outdir_claim.c — undoing what a refused run created in OUTDIR.
 */
#define _GNU_SOURCE
#include "sweep/outdir_claim.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

static int exists(const char *dir, const char *name) {
    char p[4200];
    snprintf(p, sizeof p, "%s%s%s", dir, name[0] ? "/" : "", name);
    struct stat st;
    return lstat(p, &st) == 0;
}

void outdir_claim_note(OutdirClaim *c, const char *outdir) {
    memset(c, 0, sizeof *c);
    snprintf(c->outdir, sizeof c->outdir, "%s", outdir);
    size_t len = strlen(c->outdir);
    while (len > 1 && c->outdir[len - 1] == '/') c->outdir[--len] = '\0';
    outdir = c->outdir;
    c->had_outdir = exists(outdir, "");
    // mkdir -p makes every missing folder on the way: note the highest.
    char p[4096];
    snprintf(p, sizeof p, "%s", outdir);
    while (!exists(p, "")) {
        snprintf(c->top_made, sizeof c->top_made, "%s", p);
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) break;
        *slash = '\0';
    }
    c->had_trials = exists(outdir, "trials");
    c->had_lock = exists(outdir, ".lock");
    c->had_phantoms = exists(outdir, "phantoms");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)ftw;
    if ((type == FTW_DP ? rmdir(path) : unlink(path)) != 0) ct_warn("could not remove %s: %s", path, strerror(errno));
    return 0;
}

// An empty folder only: anything in it is someone's (ENOTEMPTY is not an error).
static void remove_if_empty(const char *path) {
    if (rmdir(path) != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
        ct_warn("could not remove %s: %s", path, strerror(errno));
}

void outdir_claim_undo(const OutdirClaim *c) {
    if (!c->held) return;
    char p[4200];
    if (!c->had_phantoms) {
        snprintf(p, sizeof p, "%s/phantoms", c->outdir);
        if (exists(p, "")) nftw(p, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (!c->had_lock) {
        snprintf(p, sizeof p, "%s/.lock", c->outdir);
        if (unlink(p) != 0 && errno != ENOENT) ct_warn("could not remove %s: %s", p, strerror(errno));
    }
    if (!c->had_trials) {
        snprintf(p, sizeof p, "%s/trials", c->outdir);
        remove_if_empty(p);
    }
    if (c->had_outdir || !c->top_made[0]) return;
    snprintf(p, sizeof p, "%s", c->outdir);
    for (;;) {
        remove_if_empty(p);
        char *slash = strrchr(p, '/');
        if (strcmp(p, c->top_made) == 0 || !slash || slash == p) break;
        *slash = '\0';
    }
}
