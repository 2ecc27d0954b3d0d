/*
 * cuda_common.c — error messages for failed CUDA, cuDNN and cuBLAS calls,
 * and all-or-nothing device memory allocation.
 */
#include "backend/cuda/cuda_common.h"

#include <cublas_v2.h>
#include <cudnn.h>
#include <stdio.h>

int cuda_fail(CtError *err, cudaError_t e, const char *call, const char *what) {
    return ct_errorf(err, "%s: %s failed: %s (%s)", what ? what : "CUDA", call, cudaGetErrorString(e),
                     cudaGetErrorName(e));
}

int cudnn_fail(CtError *err, int status, const char *call, const char *what) {
    // cuDNN 9 keeps a detailed message of the last failure on this thread.
    char detail[512] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    return ct_errorf(err, "%s: %s failed: %s%s%s", what ? what : "cuDNN", call,
                     cudnnGetErrorString((cudnnStatus_t)status), detail[0] ? ": " : "", detail);
}

int cublas_fail(CtError *err, int status, const char *call, const char *what) {
    return ct_errorf(err, "%s: %s failed: %s (%s)", what ? what : "cuBLAS", call,
                     cublasGetStatusString((cublasStatus_t)status), cublasGetStatusName((cublasStatus_t)status));
}

int cuda_align_up(size_t *out, size_t bytes) {
    if (bytes > (size_t)-1 - 255) return -1;
    *out = (bytes + 255) & ~(size_t)255;
    return 0;
}

int cuda_alloc_all(CudaAllocReq *req, size_t n, const char *context, CtError *err) {
    for (size_t i = 0; i < n; i++) *req[i].ptr = NULL;
    for (size_t i = 0; i < n; i++) {
        if (req[i].bytes == 0) continue;
        cudaError_t e = cudaMalloc(req[i].ptr, req[i].bytes);
        if (e == cudaSuccess) continue;
        *req[i].ptr = NULL;
        // cudaErrorMemoryAllocation is not sticky; clear it so later calls
        // do not report it again.
        (void)cudaGetLastError();
        for (size_t j = 0; j < i; j++) {
            cuda_free(*req[j].ptr);
            *req[j].ptr = NULL;
        }
        size_t free_b = 0, total_b = 0;
        int dev = -1;
        (void)cudaGetDevice(&dev);
        (void)cudaMemGetInfo(&free_b, &total_b);
        (void)cudaGetLastError();
        char where[256];
        snprintf(where, sizeof where, "%s%s", context && *context ? " at " : "", context ? context : "");
        if (e == cudaErrorMemoryAllocation)
            return ct_errorf(err, "out of GPU memory%s: %s needs %.1f MiB (%.1f MiB free of %.1f MiB on GPU %d)",
                             where, req[i].what, req[i].bytes / 1048576.0, free_b / 1048576.0,
                             total_b / 1048576.0, dev);
        return ct_errorf(err, "cudaMalloc of %.1f MiB for %s%s failed: %s", req[i].bytes / 1048576.0, req[i].what,
                         where, cudaGetErrorString(e));
    }
    return 0;
}

int cuda_alloc(void **ptr, size_t bytes, const char *what, const char *context, CtError *err) {
    CudaAllocReq r = {ptr, bytes, what};
    return cuda_alloc_all(&r, 1, context, err);
}

void cuda_free(void *ptr) {
    if (ptr) (void)cudaFree(ptr);
}
