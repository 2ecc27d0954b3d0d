/*
 * h5io.c — HDF5 error capture and the small writers used by the results
 * and features files.
 */
#include "results/h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

void h5io_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    char buf[CT_ERROR_MAX / 2];
} WalkCtx;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    WalkCtx *ctx = data;
    // The innermost entry (n == 0) says what went wrong at the bottom. A
    // failed system call's entry is long (time, descriptor, buffer address);
    // its "error message = '...'" part is what the user needs (e.g. "No
    // space left on device", "Permission denied").
    if (n != 0) return 0;
    const char *d = e->desc ? e->desc : "unknown error", *m = strstr(d, "error message = '");
    if (m) {
        m += strlen("error message = '");
        const char *q = strchr(m, '\'');
        int len = q ? (int)(q - m) : (int)strlen(m);
        const char *what = strncmp(d, "unable to open file", 19) == 0 ? "cannot create or open the file"
                           : strstr(d, "write failed")                  ? "write failed"
                                                                        : "system call failed";
        snprintf(ctx->buf, sizeof ctx->buf, "%s: %.*s", what, len, m);
    } else {
        snprintf(ctx->buf, sizeof ctx->buf, "%s", d);
    }
    return 0;
}

int h5io_error(CtError *err, const char *what) {
    WalkCtx ctx = {{0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &ctx);
    H5Eclear2(H5E_DEFAULT);
    return ct_errorf(err, "%s: HDF5 error: %s", what, ctx.buf[0] ? ctx.buf : "unknown");
}

static int attr_write(hid_t obj, const char *name, hid_t type, const void *value, CtError *err) {
    hid_t space = -1, attr = -1;
    h5_try(space = H5Screate(H5S_SCALAR), name);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    h5_try(attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), name);
    h5_try(H5Awrite(attr, type, value), name);
    H5Aclose(attr);
    H5Sclose(space);
    return 0;
fail:
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    return -1;
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int h5io_attr_str(hid_t obj, const char *name, const char *value, CtError *err) {
    hid_t t = vlen_str_type();
    int rc = attr_write(obj, name, t, &value, err);
    H5Tclose(t);
    return rc;
}

int h5io_attr_i64(hid_t obj, const char *name, long long value, CtError *err) {
    int64_t v = value;
    return attr_write(obj, name, H5T_NATIVE_INT64, &v, err);
}

int h5io_attr_f64(hid_t obj, const char *name, double value, CtError *err) {
    return attr_write(obj, name, H5T_NATIVE_DOUBLE, &value, err);
}

static int attr_is_single(hid_t a) {
    hid_t s = H5Aget_space(a);
    if (s < 0) return 0;
    int one = H5Sget_simple_extent_npoints(s) == 1;
    H5Sclose(s);
    return one;
}

char *h5io_read_attr_str(hid_t obj, const char *name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    char *out = NULL;
    hid_t ft = H5Aget_type(a);
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0 && attr_is_single(a)) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *v = NULL;
        if (H5Aread(a, mt, &v) >= 0) out = ct_strdup(v ? v : "");
        if (v) H5free_memory(v);
        H5Tclose(mt);
    }
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int h5io_read_attr_text(hid_t obj, const char *name, char *buf, size_t n) {
    char *v = h5io_read_attr_str(obj, name);
    snprintf(buf, n, "%s", v ? v : "");
    free(v);
    return v ? 0 : -1;
}

int h5io_read_attr_num(hid_t obj, const char *name, hid_t mem_type, void *v) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = attr_is_single(a) && H5Aread(a, mem_type, v) >= 0 ? 0 : -1;
    H5Aclose(a);
    return rc;
}

int h5io_write_strings(hid_t loc, const char *name, const char *const *s, size_t n, CtError *err) {
    hid_t t = vlen_str_type(), space = -1, d = -1;
    hsize_t dims[1] = {n};
    h5_try(space = H5Screate_simple(1, dims, NULL), name);
    h5_try(d = H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name);
    if (n) h5_try(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), name);
    H5Dclose(d);
    H5Sclose(space);
    H5Tclose(t);
    return 0;
fail:
    if (d >= 0) H5Dclose(d);
    if (space >= 0) H5Sclose(space);
    H5Tclose(t);
    return -1;
}

hid_t h5io_create_f32(hid_t loc, const char *name, const size_t *dims, int ndim, size_t rows_per_chunk,
                      CtError *err) {
    hsize_t hd[8], chunk[8];
    if (ndim < 1 || ndim > 8) {
        ct_errorf(err, "%s: bad rank %d", name, ndim);
        return -1;
    }
    for (int i = 0; i < ndim; i++) {
        hd[i] = dims[i];
        chunk[i] = dims[i] ? dims[i] : 1;
    }
    hid_t space = -1, dcpl = -1, d = -1;
    h5_try(space = H5Screate_simple(ndim, hd, NULL), name);
    h5_try(dcpl = H5Pcreate(H5P_DATASET_CREATE), name);
    if (rows_per_chunk > 0 && dims[0] > 0) {
        chunk[0] = rows_per_chunk < dims[0] ? rows_per_chunk : dims[0];
        h5_try(H5Pset_chunk(dcpl, ndim, chunk), name);
    }
    h5_try(d = H5Dcreate2(loc, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), name);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
fail:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return -1;
}

int h5io_write_rows_f32(hid_t dset, size_t row0, size_t nrows, size_t row_elems, const float *data, CtError *err) {
    hid_t fs = -1, ms = -1;
    hsize_t full[8], start[8] = {0}, count[8];
    hsize_t mdims[2] = {nrows, row_elems};
    h5_try(fs = H5Dget_space(dset), "dataset space");
    int nd = H5Sget_simple_extent_ndims(fs);
    if (nd < 1 || nd > 8) {
        ct_errorf(err, "dataset rank %d unsupported", nd);
        goto fail;
    }
    H5Sget_simple_extent_dims(fs, full, NULL);
    hsize_t per = 1;
    for (int i = 1; i < nd; i++) per *= full[i];
    if (per != row_elems || row0 + nrows > full[0]) {
        ct_errorf(err, "row write [%zu, %zu) out of range", row0, row0 + nrows);
        goto fail;
    }
    // Rows [row0, row0 + nrows), every other dimension whole.
    start[0] = row0;
    count[0] = nrows;
    for (int i = 1; i < nd; i++) count[i] = full[i];
    h5_try(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), "row selection");
    h5_try(ms = H5Screate_simple(2, mdims, NULL), "memory space");
    h5_try(H5Dwrite(dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, data), "row write");
    H5Sclose(ms);
    H5Sclose(fs);
    return 0;
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return -1;
}

int h5io_write_array(hid_t loc, const char *name, hid_t mem, hid_t file_type, int rank, const hsize_t *dims,
                     const void *data, CtError *err) {
    hid_t s = -1, d = -1;
    h5_try(s = H5Screate_simple(rank, dims, NULL), name);
    h5_try(d = H5Dcreate2(loc, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name);
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    if (n) h5_try(H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name);
    H5Dclose(d);
    H5Sclose(s);
    return 0;
fail:
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    return -1;
}

// Fault injection for crash tests: CTSWEEP_KILL_POINT=POINT:N makes the
// process SIGKILL itself during its N-th results-file commit (counted from 1
// over every file it writes), at POINT: `open` (the new file written but not
// yet closed), `closed` (closed and flushed, not yet renamed) or `renamed`.
static void kill_point(const char *point, int first, const char *path) {
    static long calls;
    const char *v = getenv("CTSWEEP_KILL_POINT");
    if (first) calls++;
    if (!v) return;
    size_t n = strlen(point);
    if (strncmp(v, point, n) == 0 && v[n] == ':' && atol(v + n + 1) == calls) {
        fprintf(stderr, "ctsweep: kill point %s:%ld at %s\n", point, calls, path);
        fflush(stderr);
        raise(SIGKILL);
    }
}

int h5io_close_and_rename(hid_t file, const char *tmp, const char *path, int durable, CtError *err) {
    kill_point("open", 1, path);
    if (H5Fclose(file) < 0) return h5io_error(err, tmp);
    if (durable) {
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        int ok = fd >= 0 && fsync(fd) == 0;
        if (fd >= 0) close(fd);
        if (!ok) return ct_errorf(err, "%s: cannot flush to disk: %s", tmp, strerror(errno));
    }
    kill_point("closed", 0, path);
    if (rename(tmp, path) != 0) return ct_errorf(err, "%s: cannot rename into place: %s", path, strerror(errno));
    kill_point("renamed", 0, path);
    return 0;
}
