/*
 * cuda_train_ctx.h — what the CUDA operation table's members share on one
 * device: one stream that every member enqueues on (so they run in call
 * order without events), the cuBLAS handle and head kernels of cuda_ops.h
 * and a cuDNN handle on that stream, one convolution workspace for every
 * plan, the softmax cross-entropy's staging buffers, and the first failure
 * of a member that returns no error, kept until someone reports it.
 *
 * One context per device, made on first use and kept for the process's
 * life (the table is a static struct of function pointers: its members
 * find their context through the current device). Members are meant to be
 * called from one thread at a time per device, as a worker trains.
 */
#ifndef CTSWEEP_BACKEND_CUDA_TRAIN_CTX_H
#define CTSWEEP_BACKEND_CUDA_TRAIN_CTX_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "backend/cuda/cuda_ops.h"
#include "util/util.h"

// Rows of softmax cross-entropy staged at a time.
#define CUDA_XENT_CHUNK 4096

typedef struct {
    int device;
    cudaStream_t stream;
    CudaOps *head;        // cuBLAS (plain float32 GEMMs, no TF32) and the head's kernels, on stream
    cudnnHandle_t cudnn;  // on stream
    void *ws;             // the convolution workspace every plan shares (one stream: one call at a time)
    size_t ws_bytes;
    uint8_t *d_labels, *d_correct;  // (CUDA_XENT_CHUNK) device
    float *d_loss;                  // (CUDA_XENT_CHUNK) device
    uint8_t *h_labels, *h_correct;  // (CUDA_XENT_CHUNK) pinned host
    float *h_loss;                  // (CUDA_XENT_CHUNK) pinned host
} CudaTrainCtx;

// The current device's context, made on first use; NULL with err (no
// device, a device older than compute capability 8.0, out of memory).
CudaTrainCtx *cuda_train_ctx(CtError *err);
// Grows the shared workspace to at least bytes (waits for the stream first:
// a running convolution may be using it). Only plans call it, when created
// or when a new batch size needs more.
int cuda_train_ctx_workspace(CudaTrainCtx *c, size_t bytes, CtError *err);

// Keeps e as the pending failure unless one is pending already.
void cuda_train_defer(const CtError *e);
// The pending failure: -1 with it in err (and none pending after), else 0.
int cuda_train_take_deferred(CtError *err);

#endif
