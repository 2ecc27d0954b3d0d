/*
 * phantom.h — synthetic axial lung CT slices, the embedded default data set.
 *
 * A slice is a body ellipse with soft tissue, two dark lungs with vessels, a
 * spine and table, and noise; positives (label 1) add ground-glass-like
 * blobs inside the lungs. Every pixel is a pure function of (seed, index),
 * so a set is reproducible whatever order it is generated in.
 */
#ifndef CTSWEEP_DATA_PHANTOM_H
#define CTSWEEP_DATA_PHANTOM_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

// Renders one slice into gray (size, size). positive: 1 adds the blobs.
void phantom_render(uint8_t *gray, size_t size, uint64_t seed, uint64_t index, int positive);

// Writes n slices (half positive, rounded down) as PNGs into
// dir/CT_COVID/phantom_NNNNN.png and dir/CT_NonCOVID/phantom_NNNNN.png.
int phantom_write_set(const char *dir, size_t n, uint64_t seed, size_t size, CtError *err);

#endif
