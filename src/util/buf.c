/*
 * buf.c — byte buffer and reader (see buf.h).
 */
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void buf_reset(Buf *b) { b->n = 0; }

void buf_free(Buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void buf_put(Buf *b, const void *data, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) fatal("message buffer too large");
            cap *= 2;
        }
        b->p = ct_realloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void buf_put_u64(Buf *b, uint64_t v) { buf_put(b, &v, sizeof v); }
void buf_put_f64(Buf *b, double v) { buf_put(b, &v, sizeof v); }

void buf_put_str(Buf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    buf_put_u64(b, n);
    buf_put(b, s, n);
}

void rd_init(Rd *r, const void *p, size_t n) {
    r->p = p;
    r->n = n;
    r->off = 0;
    r->bad = 0;
}

const void *rd_view(Rd *r, size_t n) {
    if (r->bad || r->n - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    const void *v = r->p + r->off;
    r->off += n;
    return v;
}

void rd_get(Rd *r, void *out, size_t n) {
    const void *v = rd_view(r, n);
    if (v) memcpy(out, v, n);
    else memset(out, 0, n);
}

uint64_t rd_u64(Rd *r) {
    uint64_t v;
    rd_get(r, &v, sizeof v);
    return v;
}

double rd_f64(Rd *r) {
    double v;
    rd_get(r, &v, sizeof v);
    return v;
}

void rd_str(Rd *r, char *out, size_t cap) {
    uint64_t n = rd_u64(r);
    const char *s = rd_view(r, (size_t)n);
    if (!s || cap == 0) {
        if (cap) out[0] = '\0';
        return;
    }
    size_t k = n < cap - 1 ? (size_t)n : cap - 1;
    memcpy(out, s, k);
    out[k] = '\0';
}
