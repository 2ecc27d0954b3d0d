/*
 * cpu_ops.h — the CPU backend's operation table, and the plain-C operations
 * other CPU code shares (the dropout masks and the adaptive average pool).
 */
#ifndef CTSWEEP_BACKEND_CPU_OPS_H
#define CTSWEEP_BACKEND_CPU_OPS_H

#include "backend/backend_ops.h"

const BackendOps *cpu_ops(void);

// Dropout scales (0 or 1/(1-p)) for rows [row0, row0 + rows) of a
// (batch, width) activation, from (seed, iteration, layer).
void cpu_dropout_masks(float *mask, size_t rows, size_t width, size_t row0, uint64_t seed, uint64_t iteration,
                       uint32_t layer, double p);
// Softmax cross-entropy over 2 logits per row, summed in double in row
// order (the caller takes the mean); d = the gradient of the mean, divided
// by batch_rows; correct = rows whose argmax is the label. The head and the
// operation table both use it.
double cpu_softmax_xent(float *d, size_t *correct, const float *logits, const uint8_t *labels, size_t n,
                        size_t batch_rows);
void cpu_adaptive_avgpool_forward(float *y, const float *x, size_t n, size_t c, size_t h, size_t w, size_t oh,
                                  size_t ow);
void cpu_adaptive_avgpool_backward(float *dx, const float *dy, size_t n, size_t c, size_t h, size_t w, size_t oh,
                                   size_t ow);

#endif
