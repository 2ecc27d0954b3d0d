/*
 * weights_digest.c — SHA-256 of a weights file, remembered per file for the
 * life of the process (see weights_digest.h).
 */
#include "nn/weights_digest.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/sha256.h"

// Files remembered; a sweep names one per model, so a handful suffices
// (beyond it the oldest is forgotten, which only costs a second reading).
#define MEMO_SLOTS 16
#define CHUNK_BYTES ((size_t)1 << 20)

typedef struct {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char hex[WEIGHTS_DIGEST_HEX + 1];
} Memo;

static Memo g_memo[MEMO_SLOTS];
static size_t g_next;

static int same_file(const Memo *m, const char *path, const struct stat *st) {
    return m->path && strcmp(m->path, path) == 0 && m->dev == st->st_dev && m->ino == st->st_ino &&
           m->size == st->st_size && m->mtime.tv_sec == st->st_mtim.tv_sec && m->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int weights_digest(const char *path, char hex[WEIGHTS_DIGEST_HEX + 1], CtError *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_errorf(err, "%s: cannot read (%s)", path, strerror(errno));
    struct stat st;
    const char *why = fstat(fileno(f), &st) != 0 ? strerror(errno) : !S_ISREG(st.st_mode) ? "not a regular file" : NULL;
    if (why) {
        fclose(f);
        return ct_errorf(err, "%s: cannot read (%s)", path, why);
    }
    for (size_t i = 0; i < MEMO_SLOTS; i++)
        if (same_file(&g_memo[i], path, &st)) {
            fclose(f);
            memcpy(hex, g_memo[i].hex, WEIGHTS_DIGEST_HEX + 1);
            return 0;
        }
    uint8_t *buf = ct_malloc(CHUNK_BYTES);
    Sha256 h;
    sha256_init(&h);
    size_t got;
    while ((got = fread(buf, 1, CHUNK_BYTES, f)) > 0) sha256_update(&h, buf, got);
    int bad = ferror(f), e = errno;
    free(buf);
    fclose(f);
    if (bad) return ct_errorf(err, "%s: cannot read (%s)", path, strerror(e));
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_hex(d, 32, hex);
    Memo *m = &g_memo[g_next++ % MEMO_SLOTS];
    free(m->path);
    m->path = ct_strdup(path);
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->size = st.st_size;
    m->mtime = st.st_mtim;
    memcpy(m->hex, hex, WEIGHTS_DIGEST_HEX + 1);
    return 0;
}
