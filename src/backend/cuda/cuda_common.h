/*
 * cuda_common.h — what every file of the CUDA backend shares: errors of
 * CUDA runtime, cuDNN and cuBLAS calls turned into a CtError that names the
 * call and the thing it was for (a layer, a buffer), and device memory
 * allocation that reports "out of GPU memory at <context>" and gives back
 * whatever it had taken.
 *
 * Usable from C and from CUDA C++ (.cu files include it first).
 */
#ifndef CTSWEEP_BACKEND_CUDA_COMMON_H
#define CTSWEEP_BACKEND_CUDA_COMMON_H

#include <stddef.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
// util.h is C11; its _Noreturn means the same as this GNU attribute.
#define _Noreturn __attribute__((noreturn))
extern "C" {
#endif

#include "util/util.h"

// Each sets err to "<what>: <call> failed: <reason>" and returns -1.
int cuda_fail(CtError *err, cudaError_t e, const char *call, const char *what);
int cudnn_fail(CtError *err, int status, const char *call, const char *what);
int cublas_fail(CtError *err, int status, const char *call, const char *what);

// Call-checking macros: the _TRY forms jump to the function's `fail:` label,
// the _RET forms return -1. Both expect a `CtError *err` in scope.
#define CUDA_TRY(call, what)                                                      \
    do {                                                                          \
        cudaError_t ce_ = (call);                                                 \
        if (ce_ != cudaSuccess) {                                                 \
            cuda_fail(err, ce_, #call, (what));                                   \
            goto fail;                                                            \
        }                                                                         \
    } while (0)
#define CUDA_RET(call, what)                                                      \
    do {                                                                          \
        cudaError_t ce_ = (call);                                                 \
        if (ce_ != cudaSuccess) return cuda_fail(err, ce_, #call, (what));        \
    } while (0)
#define CUDNN_TRY(call, what)                                                     \
    do {                                                                          \
        int cs_ = (int)(call);                                                    \
        if (cs_ != 0) {                                                           \
            cudnn_fail(err, cs_, #call, (what));                                  \
            goto fail;                                                            \
        }                                                                         \
    } while (0)
#define CUDNN_RET(call, what)                                                     \
    do {                                                                          \
        int cs_ = (int)(call);                                                    \
        if (cs_ != 0) return cudnn_fail(err, cs_, #call, (what));                 \
    } while (0)
#define CUBLAS_RET(call, what)                                                    \
    do {                                                                          \
        int bs_ = (int)(call);                                                    \
        if (bs_ != 0) return cublas_fail(err, bs_, #call, (what));                \
    } while (0)

// ---- device memory ----

typedef struct {
    void **ptr;        // where the device pointer goes
    size_t bytes;      // 0: nothing is allocated, *ptr = NULL
    const char *what;  // e.g. "activations", "head parameters"
} CudaAllocReq;

// Allocates every request on the current device. On failure, frees the ones
// this call took, sets all their pointers to NULL and reports
// "out of GPU memory at <context>: <what> needs N MiB (F MiB free of T MiB
// on GPU d)"; context is the caller's, e.g. "batch 64".
int cuda_alloc_all(CudaAllocReq *req, size_t n, const char *context, CtError *err);
int cuda_alloc(void **ptr, size_t bytes, const char *what, const char *context, CtError *err);
// cudaFree of a pointer from the above (NULL is fine); errors are ignored
// here because they belong to earlier asynchronous work, already reported.
void cuda_free(void *ptr);

// Bytes rounded up to a multiple of 256 (cuDNN's and cuBLAS's alignment);
// -1 on overflow.
int cuda_align_up(size_t *out, size_t bytes);

#ifdef __cplusplus
}
#undef _Noreturn
#endif

#endif
