/*
 * util.h — the error, logging and allocation primitives every layer uses.
 *
 * Two kinds of error exist in ctsweep. Programming or environment failures
 * (a failed MPI call, an HDF5 library error, an impossible state) go through
 * fatal(), which prints one line and aborts the whole MPI job. Errors caused
 * by input (a bad image, a malformed weights file, a trial whose loss blew up)
 * are returned to the caller in a CtError so that the caller can name the
 * thing at fault and decide whether the run, or only one trial, fails.
 */
#ifndef CTSWEEP_UTIL_H
#define CTSWEEP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CT_ERROR_MAX 1024

// An input error: the message names the file, key or trial at fault.
typedef struct {
    char msg[CT_ERROR_MAX];
} CtError;

// Sets err's message (printf-style) and returns -1, so callers can write
// `return ct_errorf(err, "...")`. err may be NULL.
int ct_errorf(CtError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefixes an existing message: "<prefix>: <old message>". Returns -1.
int ct_error_prefix(CtError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints "ctsweep: fatal: <msg> (file:line)" with rank and aborts the job.
_Noreturn void ct_fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define fatal(...) ct_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

// Messages to stderr, one line each, prefixed with "ctsweep: " (and the MPI
// rank when running under MPI with more than one rank).
void ct_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ct_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Set by the MPI layer once it knows the rank; -1 means "not under MPI".
void ct_log_set_rank(int rank, int size);
int ct_log_rank(void);

// ---- checked sizes ----
// a*b into *out; returns 0, or -1 when the product overflows size_t.
int ct_mul_size(size_t *out, size_t a, size_t b);
// Product of n dims; -1 on overflow.
int ct_mul_sizes(size_t *out, const size_t *dims, size_t n);

// ---- allocation ----
// Allocation failures here are fatal: they are for bounded, start-up sized
// blocks. Trial-sized blocks use ct_try_malloc and report failure.
void *ct_malloc(size_t n);
void *ct_calloc(size_t count, size_t size);  // overflow-checked
void *ct_malloc_array(size_t count, size_t size);  // overflow-checked
void *ct_realloc(void *p, size_t n);
char *ct_strdup(const char *s);
char *ct_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// 64-byte aligned, overflow-checked, NULL on failure (never fatal).
void *ct_try_aligned_alloc(size_t count, size_t size);
void ct_aligned_free(void *p);

// ---- files ----
// Reads a whole file into a new buffer. Returns 0 or -1 with err naming path.
int ct_read_file(const char *path, uint8_t **data, size_t *len, size_t max_len, CtError *err);
// The same into a reusable buffer *buf of *cap bytes, grown as needed (the
// caller frees it), so loops over many files allocate rarely.
int ct_read_file_reuse(const char *path, uint8_t **buf, size_t *cap, size_t *len, size_t max_len, CtError *err);
// Writes through a temporary name in the same directory and renames, so a
// reader never sees half a file; durable: fsync before the rename.
int ct_write_file_renamed(const char *path, const void *data, size_t len, int durable, CtError *err);
// ct_write_file_renamed with fsync: survives a power cut as well as a kill.
int ct_write_file_atomic(const char *path, const void *data, size_t len, CtError *err);
// mkdir -p. Returns 0 or -1 with err.
int ct_mkdirs(const char *path, CtError *err);

// Monotonic seconds.
double ct_now(void);
// Peak resident set size of this process in bytes (0 if unknown).
size_t ct_peak_rss_bytes(void);

#endif
