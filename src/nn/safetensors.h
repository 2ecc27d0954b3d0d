/*
 * safetensors.h — a strict reader for the safetensors weight format
 * (8-byte little-endian header length, a JSON header mapping tensor names to
 * {dtype, shape, data_offsets}, then the raw data).
 *
 * Files come from the internet, so every length, offset and shape is checked
 * against the file size before it is used, and products of dimensions are
 * overflow-checked. F32, F16 and BF16 tensors convert to float32; other
 * dtypes (I64, U8, ...) may be present in a file and are listed, but are not
 * converted.
 */
#ifndef CTSWEEP_NN_SAFETENSORS_H
#define CTSWEEP_NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

#define ST_MAX_DIMS 8

typedef enum { ST_F32 = 0, ST_F16, ST_BF16, ST_OTHER } StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    char dtype_name[16];  // as written in the file, e.g. "F32", "I64"
    size_t ndim;
    size_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;  // byte offsets into the data section
} StTensor;

typedef struct {
    char *path;
    uint8_t *file;  // the whole file
    size_t file_len;
    const uint8_t *data;  // start of the data section
    size_t data_len;
    StTensor *tensors;  // sorted by name
    size_t n_tensors;
    char **meta_keys;  // "__metadata__" entries, sorted by key
    char **meta_values;
    size_t n_meta;
} SafeTensors;

// Reads and validates path. Returns 0, or -1 with err naming the file.
int st_open(SafeTensors *st, const char *path, CtError *err);
void st_close(SafeTensors *st);
const StTensor *st_find(const SafeTensors *st, const char *name);
// The value of "__metadata__" key `key`, or NULL when absent.
const char *st_metadata_get(const SafeTensors *st, const char *key);

// Writes one line per tensor ("name dtype [shape]"), in name order.
void st_print(const SafeTensors *st, FILE *f);

// Counts the names in required[0..n_required) that the file lacks and stores
// up to max_missing of them in missing (which may be NULL).
size_t st_find_missing(const SafeTensors *st, const char *const *required, size_t n_required,
                       const char **missing, size_t max_missing);
// Returns 0 when every required tensor is present, else -1 with err naming
// the file, how many are missing and the first few names.
int st_require(const SafeTensors *st, const char *const *required, size_t n_required, CtError *err);

// Copies tensor `name` into dst as float32 after checking that its shape is
// exactly shape[0..ndim). Errors name the file, the tensor and both shapes
// ("<file>: tensor 'features.0.weight' has shape [64,3,3,3], expected
// [64,3,5,5]") or say the tensor is missing or of an unsupported dtype.
int st_read_f32(const SafeTensors *st, const char *name, const size_t *shape, size_t ndim, float *dst,
                CtError *err);

// Formats a shape as "[a,b,c]" into buf.
void st_format_shape(char *buf, size_t bufsize, const size_t *shape, size_t ndim);

#endif
