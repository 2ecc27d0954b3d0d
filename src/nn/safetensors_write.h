/*
 * safetensors_write.h — writing float32 tensors as a safetensors file: an
 * 8-byte little-endian header length, a JSON header (an optional
 * "__metadata__" object of strings, then per tensor its dtype "F32", shape
 * and data_offsets), padded with spaces to a multiple of 8 so the data is
 * aligned, then the data in header order. The reader (safetensors.c) reads
 * what this writes; so do the Python safetensors package and PyTorch.
 *
 * The file is written under a temporary name in the destination's folder,
 * flushed to disk and renamed over the destination, so a failure or a kill
 * leaves either nothing or the whole file.
 */
#ifndef CTSWEEP_NN_SAFETENSORS_WRITE_H
#define CTSWEEP_NN_SAFETENSORS_WRITE_H

#include <stddef.h>

#include "nn/safetensors.h"
#include "util/util.h"

typedef struct {
    char name[96];
    size_t ndim, shape[ST_MAX_DIMS];
    const float *data;  // (product of shape), host memory
} StWriteTensor;

typedef struct {
    const char *key, *value;
} StMeta;

// Writes tensors t[0..n) (names must be distinct) and metadata m[0..n_meta)
// to path. Errors name the file.
int st_write_f32(const char *path, const StWriteTensor *t, size_t n, const StMeta *m, size_t n_meta, CtError *err);

#endif
