/*
 * cpu_adam.h — the Adam/AdamW update on float32 arrays, operation for
 * operation as PyTorch's single-tensor implementation (PyTorch 1.13,
 * amsgrad off). src/train/adam.c and the CPU operation table both use it.
 */
#ifndef CTSWEEP_BACKEND_CPU_ADAM_H
#define CTSWEEP_BACKEND_CPU_ADAM_H

#include "backend/backend_ops.h"

void cpu_adam_step(const BackendAdamStep *s, float *params, const float *grads, float *m, float *v, size_t n);

#endif
