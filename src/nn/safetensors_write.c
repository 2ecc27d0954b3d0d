/*
 * safetensors_write.c — the safetensors writer (safetensors_write.h).
 */
#define _GNU_SOURCE
#include "nn/safetensors_write.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"

// A JSON string: quotes, backslashes and control characters escaped.
static void json_str(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            buf_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_put(b, esc, 6);
        } else {
            buf_put(b, &c, 1);
        }
    }
    buf_put(b, "\"", 1);
}

static void put_text(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

// mkstemp makes the file 0600; the result gets the mode a plain create would.
static mode_t current_umask(void) {
    mode_t m = umask(0);
    umask(m);
    return m;
}

static int write_all(int fd, const void *p, size_t n) {
    const uint8_t *q = p;
    while (n) {
        ssize_t w = write(fd, q, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

int st_write_f32(const char *path, const StWriteTensor *t, size_t n, const StMeta *m, size_t n_meta, CtError *err) {
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1) fatal("safetensors: this writer assumes a little-endian machine");
    Buf h = {0};
    put_text(&h, "{");
    if (n_meta) {
        put_text(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) put_text(&h, ",");
            json_str(&h, m[i].key);
            put_text(&h, ":");
            json_str(&h, m[i].value);
        }
        put_text(&h, "}");
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        for (size_t d = 0; d < t[i].ndim; d++)
            if (ct_mul_size(&numel, numel, t[i].shape[d])) fatal("safetensors: tensor %s overflows", t[i].name);
        char num[64];
        put_text(&h, n_meta || i ? "," : "");
        json_str(&h, t[i].name);
        put_text(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (size_t d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%zu", d ? "," : "", t[i].shape[d]);
            put_text(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + numel * sizeof(float));
        put_text(&h, num);
        off += numel * sizeof(float);
    }
    put_text(&h, "}");
    while (h.n % 8) put_text(&h, " ");
    char *tmp = ct_asprintf("%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp), rc = -1;
    if (fd < 0) {
        ct_errorf(err, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        buf_free(&h);
        return -1;
    }
    uint64_t hlen = h.n;
    int bad = write_all(fd, &hlen, sizeof hlen) || write_all(fd, h.p, h.n);
    for (size_t i = 0; i < n && !bad; i++) {
        size_t numel = 1;
        for (size_t d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        bad = write_all(fd, t[i].data, numel * sizeof(float));
    }
    if (bad || fsync(fd) != 0) ct_errorf(err, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
    else if (fchmod(fd, 0666 & ~current_umask()) != 0 || close(fd) != 0)
        ct_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    else fd = -1, rc = 0;
    if (fd >= 0) close(fd);
    if (rc == 0 && rename(tmp, path) != 0) rc = ct_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    buf_free(&h);
    return rc;
}
