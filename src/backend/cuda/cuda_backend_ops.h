/*
 * cuda_backend_ops.h — the CUDA backend's operation table (backend_ops.h),
 * which src/backend/backend.c hands out for BACKEND_CUDA in builds with the
 * CUDA backend.
 */
#ifndef CTSWEEP_BACKEND_CUDA_BACKEND_OPS_H
#define CTSWEEP_BACKEND_CUDA_BACKEND_OPS_H

#include "backend/backend_ops.h"

// The table, once the current device's context is ready (cuda_train_ctx.h);
// NULL with err when no CUDA device is visible or it cannot be used.
const BackendOps *cuda_backend_ops(CtError *err);

#endif
