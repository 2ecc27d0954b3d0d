/*
 * backend_ops.c — which operation table serves a backend kind. The CUDA
 * table is the next slot to fill (its kernels, cuDNN and NCCL calls live in
 * src/backend/cuda); until then a CUDA trainable tail is refused here, in
 * one place, with a message that says so.
 */
#include "backend/backend_ops.h"

#include "backend/cpu/cpu_ops.h"

const BackendOps *backend_ops_get(BackendKind kind, CtError *err) {
    switch (kind) {
    case BACKEND_CPU: return cpu_ops();
    case BACKEND_CUDA:
        ct_errorf(err, "backend cuda: the trainable tail has no CUDA operation table yet (use backend: cpu)");
        return NULL;
    }
    ct_errorf(err, "backend kind %d is unknown", (int)kind);
    return NULL;
}
