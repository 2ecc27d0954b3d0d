/*
 * h5io.h — small HDF5 helpers: the h5_check macro (HDF5's own error
 * printing is switched off; we print its stack ourselves), and writers for
 * attributes, string lists and float arrays.
 */
#ifndef CTSWEEP_RESULTS_H5IO_H
#define CTSWEEP_RESULTS_H5IO_H

#include <hdf5.h>
#include <stddef.h>

#include "util/util.h"

// Turns off HDF5's automatic error printing (call once at start-up).
void h5io_init(void);
// Fills err with "<what>: <HDF5 error stack, innermost message>". Returns -1.
int h5io_error(CtError *err, const char *what);

#define h5_try(call, what)                       \
    do {                                         \
        if ((call) < 0) {                        \
            h5io_error(err, what);               \
            goto fail;                           \
        }                                        \
    } while (0)

int h5io_attr_str(hid_t obj, const char *name, const char *value, CtError *err);
int h5io_attr_i64(hid_t obj, const char *name, long long value, CtError *err);
int h5io_attr_f64(hid_t obj, const char *name, double value, CtError *err);
// Readers for files that may be damaged: an attribute is taken only when
// it holds exactly one value (H5Aread would write every element of an array
// through the one pointer) of the expected kind; otherwise they fail quietly.
// The variable-length string attribute `name` of obj as a new string (the
// caller frees it), or NULL.
char *h5io_read_attr_str(hid_t obj, const char *name);
// The same into buf (n bytes, truncated): 0, or -1 with buf "".
int h5io_read_attr_text(hid_t obj, const char *name, char *buf, size_t n);
// The numeric attribute `name` of obj converted to mem_type into *v: 0, or -1.
int h5io_read_attr_num(hid_t obj, const char *name, hid_t mem_type, void *v);
// A 1-D dataset of variable-length UTF-8 strings.
int h5io_write_strings(hid_t loc, const char *name, const char *const *s, size_t n, CtError *err);
// A whole dataset of `rank` dims written from memory of type mem, stored as
// file_type (empty datasets are created without a write).
int h5io_write_array(hid_t loc, const char *name, hid_t mem, hid_t file_type, int rank, const hsize_t *dims,
                     const void *data, CtError *err);
// Closes a file written under a temporary name and moves it into place:
// optionally fsync, then rename (atomic against kills). Errors name path.
int h5io_close_and_rename(hid_t file, const char *tmp, const char *path, int durable, CtError *err);
// Creates a float32 dataset of the given dims (chunked by first-dim rows
// when rows_per_chunk > 0).
hid_t h5io_create_f32(hid_t loc, const char *name, const size_t *dims, int ndim, size_t rows_per_chunk,
                      CtError *err);
// Writes rows [row0, row0 + nrows) of a dataset whose rows hold row_elems floats.
int h5io_write_rows_f32(hid_t dset, size_t row0, size_t nrows, size_t row_elems, const float *data, CtError *err);

#endif
