/*
 * saliency_h5.h — DIR/saliency.h5 of `ctsweep predict --saliency DIR`:
 * /cam float32 (n, h, w), the Grad-CAMs at the target layer's resolution
 * before any normalisation, and /paths, the images in the same order (only
 * those that were predicted). Rows are appended a batch at a time (the
 * number of good images is known at the end); the file is written under a
 * temporary name and renamed when complete, so nothing half-written is
 * left behind.
 */
#ifndef CTSWEEP_RESULTS_SALIENCY_H5_H
#define CTSWEEP_RESULTS_SALIENCY_H5_H

#include <hdf5.h>
#include <stddef.h>

#include "util/util.h"

typedef struct {
    hid_t file, cam;
    char *tmp, *path;
    size_t h, w, rows;
} SaliencyH5;

int saliency_h5_create(SaliencyH5 *s, const char *dir, size_t h, size_t w, const char *model, CtError *err);
// Appends n CAMs (n, h, w).
int saliency_h5_append(SaliencyH5 *s, const float *cam, size_t n, CtError *err);
// Writes /paths (one per appended row), closes and renames into place.
int saliency_h5_finish(SaliencyH5 *s, const char *const *paths, size_t n, CtError *err);
// Removes the temporary file (after an error); safe after finish.
void saliency_h5_abort(SaliencyH5 *s);

#endif
