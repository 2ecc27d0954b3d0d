/*
 * fuzz_tmp.c — temporary folders of the fuzz targets (see fuzz_tmp.h).
 */
#define _GNU_SOURCE
#include "fuzz_tmp.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void fuzz_tmp_remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void remove_at_exit(void) {
    if (g_dir[0]) fuzz_tmp_remove_tree(g_dir);
}

// Removes base/<tag>.<pid>.* of processes that are gone.
static void remove_stale(const char *base, const char *tag) {
    DIR *d = opendir(base);
    if (!d) return;
    size_t tl = strlen(tag);
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strncmp(ent->d_name, tag, tl) != 0 || ent->d_name[tl] != '.') continue;
        char *end;
        long pid = strtol(ent->d_name + tl + 1, &end, 10);
        if (end == ent->d_name + tl + 1 || *end != '.' || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", base, ent->d_name);
        fuzz_tmp_remove_tree(path);
    }
    closedir(d);
}

void fuzz_tmp_make(const char *tag, char *out, size_t n) {
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    remove_stale(base, tag);
    snprintf(g_dir, sizeof g_dir, "%s/%s.%ld.XXXXXX", base, tag, (long)getpid());
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "%s: cannot make a temporary folder %s: %s\n", tag, g_dir, strerror(errno));
        abort();
    }
    atexit(remove_at_exit);
    snprintf(out, n, "%s", g_dir);
}
