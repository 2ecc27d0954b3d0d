/*
 * util.c — error reporting, logging, checked allocation and small file
 * helpers shared by every layer (see util.h for the error policy).
 */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

static int g_rank = -1;
static int g_size = 1;

void ct_log_set_rank(int rank, int size) {
    g_rank = rank;
    g_size = size;
}

int ct_log_rank(void) { return g_rank; }

static void vprefix(FILE *f, const char *kind) {
    if (g_rank >= 0 && g_size > 1)
        fprintf(f, "ctsweep[%d]: %s", g_rank, kind);
    else
        fprintf(f, "ctsweep: %s", kind);
}

int ct_errorf(CtError *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int ct_error_prefix(CtError *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[CT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[2 * CT_ERROR_MAX + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, joined);
    return -1;
}

void ct_fatal_at(const char *file, int line, const char *fmt, ...) {
    fflush(stdout);
    vprefix(stderr, "fatal: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    fflush(stderr);
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
}

void ct_warn(const char *fmt, ...) {
    vprefix(stderr, "warning: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void ct_info(const char *fmt, ...) {
    vprefix(stderr, "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

// ---- checked sizes ----

int ct_mul_size(size_t *out, size_t a, size_t b) {
    if (__builtin_mul_overflow(a, b, out)) return -1;
    return 0;
}

int ct_mul_sizes(size_t *out, const size_t *dims, size_t n) {
    size_t p = 1;
    for (size_t i = 0; i < n; i++)
        if (ct_mul_size(&p, p, dims[i])) return -1;
    *out = p;
    return 0;
}

// ---- allocation ----

void *ct_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *ct_calloc(size_t count, size_t size) {
    size_t n;
    if (ct_mul_size(&n, count, size)) fatal("allocation size overflow (%zu x %zu)", count, size);
    void *p = calloc(n ? n : 1, 1);
    if (!p) fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *ct_malloc_array(size_t count, size_t size) {
    size_t n;
    if (ct_mul_size(&n, count, size)) fatal("allocation size overflow (%zu x %zu)", count, size);
    return ct_malloc(n);
}

void *ct_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) fatal("out of memory reallocating %zu bytes", n);
    return q;
}

char *ct_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ct_malloc(n);
    memcpy(d, s, n);
    return d;
}

char *ct_asprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) fatal("bad format string");
    char *s = ct_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void *ct_try_aligned_alloc(size_t count, size_t size) {
    size_t n;
    if (ct_mul_size(&n, count, size)) return NULL;
    if (n > SIZE_MAX - 64) return NULL;
    n = (n + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    return aligned_alloc(64, n);
}

void ct_aligned_free(void *p) { free(p); }

// ---- files ----

int ct_read_file_reuse(const char *path, uint8_t **buf, size_t *cap, size_t *len, size_t max_len, CtError *err) {
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ct_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ct_errorf(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ct_errorf(err, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (n > max_len) {
        close(fd);
        return ct_errorf(err, "%s: file is %zu bytes, more than the limit of %zu", path, n, max_len);
    }
    if (!*buf || *cap < n) {
        free(*buf);
        *buf = malloc(n ? n : 1);
        *cap = *buf ? n : 0;
        if (!*buf) {
            close(fd);
            return ct_errorf(err, "%s: out of memory reading %zu bytes", path, n);
        }
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, *buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            return ct_errorf(err, "%s: read failed: %s", path, r < 0 ? strerror(e) : "unexpected end of file");
        }
        got += (size_t)r;
    }
    close(fd);
    *len = n;
    return 0;
}

int ct_read_file(const char *path, uint8_t **data, size_t *len, size_t max_len, CtError *err) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    *data = NULL;
    if (ct_read_file_reuse(path, &buf, &cap, len, max_len, err)) {
        free(buf);
        return -1;
    }
    *data = buf;
    return 0;
}

int ct_write_file_renamed(const char *path, const void *data, size_t len, int durable, CtError *err) {
    char *tmp = ct_asprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ct_errorf(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    const uint8_t *p = data;
    size_t done = 0;
    const char *failed = NULL;
    while (done < len && !failed) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) failed = "write failed";
        else done += (size_t)w;
    }
    if (!failed && durable && fsync(fd) != 0) failed = "flush failed";
    int e = errno;
    if (close(fd) != 0 && !failed) {
        failed = "write failed";
        e = errno;
    }
    if (!failed && rename(tmp, path) != 0) {
        ct_errorf(err, "%s: rename failed: %s", path, strerror(errno));
        failed = "";
    } else if (failed) {
        ct_errorf(err, "%s: %s: %s", tmp, failed, strerror(e));
    }
    if (failed) unlink(tmp);
    free(tmp);
    return failed ? -1 : 0;
}

int ct_write_file_atomic(const char *path, const void *data, size_t len, CtError *err) {
    return ct_write_file_renamed(path, data, len, 1, err);
}

int ct_mkdirs(const char *path, CtError *err) {
    char *p = ct_strdup(path);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                ct_errorf(err, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            p[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ct_errorf(err, "%s: not a directory", path);
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

double ct_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t ct_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024;
}
