/*
 * cpu_conv.h — the CPU table's planned operations: convolution (forward
 * with bias, shortcut and ReLU fused; backward data; backward weights) and
 * max pool (forward keeping its argmax; backward), through oneDNN, bit-
 * identical whatever the thread count (see cpu_conv.c). Signatures and
 * conventions are those of BackendOps (backend_ops.h).
 */
#ifndef CTSWEEP_BACKEND_CPU_CONV_H
#define CTSWEEP_BACKEND_CPU_CONV_H

#include "backend/backend_ops.h"

int cpu_conv_create(BackendConv **out, const BackendConvDesc *d, CtError *err);
void cpu_conv_free(BackendConv *c);
int cpu_conv_forward(BackendConv *c, float *y, const float *x, const float *w, const float *b, const float *res,
                     size_t n, CtError *err);
int cpu_conv_backward_data(BackendConv *c, float *dx, const float *dy, const float *w, size_t n, CtError *err);
int cpu_conv_backward_weights(BackendConv *c, float *dw, float *db, const float *dy, const float *x, size_t n,
                              CtError *err);

int cpu_maxpool_create(BackendPool **out, const BackendPoolDesc *d, CtError *err);
void cpu_maxpool_free(BackendPool *p);
int cpu_maxpool_forward(BackendPool *p, float *y, const float *x, size_t n, CtError *err);
int cpu_maxpool_backward(BackendPool *p, float *dx, const float *dy, size_t n, CtError *err);

#endif
