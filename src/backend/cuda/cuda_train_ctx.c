/*
 * cuda_train_ctx.c — the CUDA operation table's per-device context and its
 * pending failure (see cuda_train_ctx.h).
 */
#include "backend/cuda/cuda_train_ctx.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.h"

#define MAX_DEVICES 64

static CudaTrainCtx *g_ctx[MAX_DEVICES];
static pthread_mutex_t g_ctx_mu = PTHREAD_MUTEX_INITIALIZER;

static CtError g_deferred;
static int g_has_deferred;
static pthread_mutex_t g_deferred_mu = PTHREAD_MUTEX_INITIALIZER;

// ---- pending failure ----

void cuda_train_defer(const CtError *e) {
    pthread_mutex_lock(&g_deferred_mu);
    if (!g_has_deferred) {
        g_deferred = *e;
        g_has_deferred = 1;
    }
    pthread_mutex_unlock(&g_deferred_mu);
}

int cuda_train_take_deferred(CtError *err) {
    int rc = 0;
    pthread_mutex_lock(&g_deferred_mu);
    if (g_has_deferred) {
        if (err) *err = g_deferred;
        g_has_deferred = 0;
        rc = -1;
    }
    pthread_mutex_unlock(&g_deferred_mu);
    return rc;
}

// ---- the context ----

static void ctx_free(CudaTrainCtx *c) {
    if (!c) return;
    if (c->stream) (void)cudaStreamSynchronize(c->stream);
    cuda_free(c->ws);
    cuda_free(c->d_labels);
    cuda_free(c->d_correct);
    cuda_free(c->d_loss);
    if (c->h_labels) (void)cudaFreeHost(c->h_labels);
    if (c->h_correct) (void)cudaFreeHost(c->h_correct);
    if (c->h_loss) (void)cudaFreeHost(c->h_loss);
    if (c->cudnn) cudnnDestroy(c->cudnn);
    cuda_ops_free(c->head);  // destroys the stream
    free(c);
}

static CudaTrainCtx *ctx_create(int device, CtError *err) {
    const char *what = "the CUDA operation table";
    struct cudaDeviceProp prop;
    CudaTrainCtx *c = ct_calloc(1, sizeof *c);
    c->device = device;
    CUDA_TRY(cudaGetDeviceProperties(&prop, device), what);
    // The kernels are built for compute capability 8.0 and later (sm_80, sm_90).
    if (prop.major < 8) {
        ct_errorf(err, "backend 'cuda': GPU %d (%s) has compute capability %d.%d; this build needs 8.0 or later",
                  device, prop.name, prop.major, prop.minor);
        goto fail;
    }
    // Plain float32 GEMMs (no TF32): the table is compared with the CPU's.
    if (cuda_ops_create(&c->head, 1, 0, err)) goto fail;
    c->stream = (cudaStream_t)cuda_ops_stream(c->head);
    CUDNN_TRY(cudnnCreate(&c->cudnn), what);
    CUDNN_TRY(cudnnSetStream(c->cudnn, c->stream), what);
    {
        CudaAllocReq req[3] = {{(void **)&c->d_labels, CUDA_XENT_CHUNK, "loss staging"},
                               {(void **)&c->d_correct, CUDA_XENT_CHUNK, "loss staging"},
                               {(void **)&c->d_loss, CUDA_XENT_CHUNK * sizeof(float), "loss staging"}};
        if (cuda_alloc_all(req, 3, what, err)) goto fail;
    }
    CUDA_TRY(cudaMallocHost((void **)&c->h_labels, CUDA_XENT_CHUNK), "pinned loss staging");
    CUDA_TRY(cudaMallocHost((void **)&c->h_correct, CUDA_XENT_CHUNK), "pinned loss staging");
    CUDA_TRY(cudaMallocHost((void **)&c->h_loss, CUDA_XENT_CHUNK * sizeof(float)), "pinned loss staging");
    return c;
fail:
    ctx_free(c);
    return NULL;
}

CudaTrainCtx *cuda_train_ctx(CtError *err) {
    int device = -1;
    cudaError_t e = cudaGetDevice(&device);
    if (e != cudaSuccess) {
        cuda_fail(err, e, "cudaGetDevice", "the CUDA operation table");
        return NULL;
    }
    if (device < 0 || device >= MAX_DEVICES) {
        ct_errorf(err, "the CUDA operation table: device %d is past the %d it keeps contexts for", device,
                  MAX_DEVICES);
        return NULL;
    }
    pthread_mutex_lock(&g_ctx_mu);
    if (!g_ctx[device]) g_ctx[device] = ctx_create(device, err);
    CudaTrainCtx *c = g_ctx[device];
    pthread_mutex_unlock(&g_ctx_mu);
    return c;
}

int cuda_train_ctx_workspace(CudaTrainCtx *c, size_t bytes, CtError *err) {
    if (bytes <= c->ws_bytes) return 0;
    size_t aligned;
    if (cuda_align_up(&aligned, bytes)) return ct_errorf(err, "convolution workspace of %zu bytes overflows", bytes);
    CUDA_RET(cudaStreamSynchronize(c->stream), "growing the convolution workspace");
    cuda_free(c->ws);
    c->ws = NULL;
    c->ws_bytes = 0;
    if (cuda_alloc(&c->ws, aligned, "the convolution workspace", "the trainable tail", err)) return -1;
    c->ws_bytes = aligned;
    return 0;
}
