/*
 * buf.h — a growable byte buffer and a bounds-checked reader, for the
 * messages workers and the master exchange. Values are written in the
 * machine's byte order: every rank of one job runs the same build.
 */
#ifndef CTSWEEP_BUF_H
#define CTSWEEP_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;

void buf_reset(Buf *b);
void buf_free(Buf *b);
void buf_put(Buf *b, const void *data, size_t n);
void buf_put_u64(Buf *b, uint64_t v);
void buf_put_f64(Buf *b, double v);
void buf_put_str(Buf *b, const char *s);  // length-prefixed

typedef struct {
    const uint8_t *p;
    size_t n, off;
    int bad;  // set on any read past the end; reads then return zeros
} Rd;

void rd_init(Rd *r, const void *p, size_t n);
void rd_get(Rd *r, void *out, size_t n);
uint64_t rd_u64(Rd *r);
double rd_f64(Rd *r);
// Copies a string into out (truncated to cap - 1).
void rd_str(Rd *r, char *out, size_t cap);
// Pointer to the next n bytes (NULL and bad when fewer remain).
const void *rd_view(Rd *r, size_t n);

#endif
