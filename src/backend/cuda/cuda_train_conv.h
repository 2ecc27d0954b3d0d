/*
 * cuda_train_conv.h — the CUDA table's planned operations: convolution
 * (forward with bias, shortcut and ReLU; backward data; backward weights)
 * through cuDNN with deterministic algorithms, and max pool (forward
 * keeping its argmax; backward) through our kernels. Signatures and
 * conventions are those of BackendOps (backend_ops.h); pointers are device
 * memory.
 */
#ifndef CTSWEEP_BACKEND_CUDA_TRAIN_CONV_H
#define CTSWEEP_BACKEND_CUDA_TRAIN_CONV_H

#include "backend/backend_ops.h"

int cuda_train_conv_create(BackendConv **out, const BackendConvDesc *d, CtError *err);
void cuda_train_conv_free(BackendConv *c);
int cuda_train_conv_forward(BackendConv *c, float *y, const float *x, const float *w, const float *b,
                            const float *res, size_t n, CtError *err);
int cuda_train_conv_backward_data(BackendConv *c, float *dx, const float *dy, const float *w, size_t n,
                                  CtError *err);
int cuda_train_conv_backward_weights(BackendConv *c, float *dw, float *db, const float *dy, const float *x, size_t n,
                                     CtError *err);

int cuda_train_maxpool_create(BackendPool **out, const BackendPoolDesc *d, CtError *err);
void cuda_train_maxpool_free(BackendPool *p);
int cuda_train_maxpool_forward(BackendPool *p, float *y, const float *x, size_t n, CtError *err);
int cuda_train_maxpool_backward(BackendPool *p, float *dx, const float *dy, size_t n, CtError *err);

#endif
