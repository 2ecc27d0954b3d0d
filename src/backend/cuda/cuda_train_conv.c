/*
 * cuda_train_conv.c — the CUDA table's convolution and max pool (see
 * cuda_train_conv.h), on the plain NCHW / OIHW float32 tensors of the
 * table's contract.
 *
 * Convolutions are cuDNN's legacy API (as cuda_net.c's) with float32 FMA
 * math (never TF32) and deterministic algorithms only, chosen from cuDNN's
 * heuristics without timing, so a run repeats itself bit for bit. Among
 * them the GEMM-like algorithms come first: FFT and Winograd transforms
 * round differently (about 1e-4 relative) and are taken only when nothing
 * else fits, with a warning. Bias, shortcut and ReLU follow the convolution
 * in our kernel in the CPU's order ((conv + bias) + shortcut, then ReLU);
 * the weight gradient accumulates through cuDNN's beta = 1, the bias
 * gradient through our deterministic per-channel sum.
 *
 * A plan is made for max_batch; a smaller batch (an epoch's last, an
 * evaluation's) resets the tensor descriptors and gets its own algorithm
 * choice, kept beside the full batch's, so a trainer alternating between
 * the two chooses once for each. All plans share the context's workspace.
 */
#include "backend/cuda/cuda_train_conv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_train_ctx.h"
#include "backend/cuda/cuda_train_kernels.h"
#include "backend/gpu_rules.h"

enum { DIR_FWD, DIR_DATA, DIR_FILTER, N_DIRS };
static const char *const DIR_NAME[N_DIRS] = {"forward", "backward data", "backward weights"};

#define MAX_CANDS 32

typedef struct {
    size_t n;           // the batch these are for; 0: none chosen
    int algo[N_DIRS];   // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
    size_t ws[N_DIRS];  // their workspace needs
} ConvAlgos;

struct BackendConv {
    BackendConvDesc d;
    CudaTrainCtx *ctx;
    cudnnTensorDescriptor_t xd, yd;  // (desc_n, cin, in_h, in_w), (desc_n, cout, out_h, out_w)
    cudnnFilterDescriptor_t wd;      // (cout, cin, k, k)
    cudnnConvolutionDescriptor_t cd;
    size_t desc_n;
    ConvAlgos full, part;  // for max_batch; for the last other batch size
    char name[96];         // for messages
};

struct BackendPool {
    BackendPoolDesc d;
    CudaTrainCtx *ctx;
    int32_t *arg;  // (max_batch, c, out_h, out_w): argmax positions of the last forward
};

// ---- convolution: algorithm choice ----

static int set_batch(BackendConv *c, size_t n, CtError *err) {
    if (c->desc_n == n) return 0;
    const BackendConvDesc *d = &c->d;
    CUDNN_RET(cudnnSetTensor4dDescriptor(c->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)n, (int)d->cin,
                                         (int)d->in_h, (int)d->in_w),
              c->name);
    CUDNN_RET(cudnnSetTensor4dDescriptor(c->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)n, (int)d->cout,
                                         (int)d->out_h, (int)d->out_w),
              c->name);
    c->desc_n = n;
    return 0;
}

static int accurate(int dir, int algo) {
    switch (dir) {
    case DIR_FWD:
        return algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT && algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
               algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD && algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    case DIR_DATA:
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    default:
        return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
               algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
    }
}

static void add_cand(int *list, int *n, int algo) {
    for (int i = 0; i < *n; i++)
        if (list[i] == algo) return;
    if (*n < MAX_CANDS) list[(*n)++] = algo;
}

// cuDNN's heuristic ranking, kept where it says supported and deterministic,
// then the deterministic GEMM algorithms in case the heuristics name none.
static int candidates(BackendConv *c, int dir, int *list) {
    cudnnHandle_t h = c->ctx->cudnn;
    int got = 0, n = 0;
    switch (dir) {
    case DIR_FWD: {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_CANDS];
        if (cudnnGetConvolutionForwardAlgorithm_v7(h, c->xd, c->wd, c->cd, c->yd, MAX_CANDS, &got, perf) != CUDNN_STATUS_SUCCESS) got = 0;
        for (int i = 0; i < got; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC)
                add_cand(list, &n, (int)perf[i].algo);
        add_cand(list, &n, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
        add_cand(list, &n, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
        break;
    }
    case DIR_DATA: {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_CANDS];
        if (cudnnGetConvolutionBackwardDataAlgorithm_v7(h, c->wd, c->yd, c->cd, c->xd, MAX_CANDS, &got, perf) != CUDNN_STATUS_SUCCESS)
            got = 0;
        for (int i = 0; i < got; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC)
                add_cand(list, &n, (int)perf[i].algo);
        add_cand(list, &n, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
        break;
    }
    default: {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_CANDS];
        if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, c->xd, c->yd, c->cd, c->wd, MAX_CANDS, &got, perf) != CUDNN_STATUS_SUCCESS)
            got = 0;
        for (int i = 0; i < got; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC)
                add_cand(list, &n, (int)perf[i].algo);
        add_cand(list, &n, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
        break;
    }
    }
    return n;
}

// The workspace algo needs with the descriptors as they are (FMA math);
// a status other than success means it cannot run them.
static cudnnStatus_t ws_need(BackendConv *c, int dir, int algo, size_t *bytes) {
    cudnnHandle_t h = c->ctx->cudnn;
    switch (dir) {
    case DIR_FWD:
        return cudnnGetConvolutionForwardWorkspaceSize(h, c->xd, c->wd, c->cd, c->yd, (cudnnConvolutionFwdAlgo_t)algo,
                                                       bytes);
    case DIR_DATA:
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, c->wd, c->yd, c->cd, c->xd,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
    default:
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, c->xd, c->yd, c->cd, c->wd,
                                                              (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
    }
}

// Algorithms for batch n (the descriptors set to it) into out, and the
// shared workspace grown to their needs.
static int choose(BackendConv *c, size_t n, ConvAlgos *out, CtError *err) {
    size_t free_b = 0, total_b = 0;
    CUDA_RET(cudaMemGetInfo(&free_b, &total_b), c->name);
    size_t cap = gpu_search_workspace(free_b), most = 0;
    if (cap < c->ctx->ws_bytes) cap = c->ctx->ws_bytes;
    for (int dir = 0; dir < N_DIRS; dir++) {
        int list[MAX_CANDS], nc = candidates(c, dir, list), found = 0;
        for (int pass = 0; pass < 2 && !found; pass++)
            for (int i = 0; i < nc && !found; i++) {
                size_t need = 0;
                if (accurate(dir, list[i]) != (pass == 0)) continue;
                if (ws_need(c, dir, list[i], &need) != CUDNN_STATUS_SUCCESS || need > cap) continue;
                out->algo[dir] = list[i];
                out->ws[dir] = need;
                found = 1;
                if (pass == 1)
                    ct_warn("%s: cuDNN offers only an FFT or Winograd algorithm (%d) for the %s pass "
                            "deterministically; it rounds about 1e-4 relative", c->name, list[i], DIR_NAME[dir]);
            }
        if (!found)
            return ct_errorf(err, "%s, batch %zu: cuDNN has no deterministic float32 %s algorithm within %.0f MiB "
                             "of workspace", c->name, n, DIR_NAME[dir], cap / 1048576.0);
        if (out->ws[dir] > most) most = out->ws[dir];
    }
    if (cuda_train_ctx_workspace(c->ctx, most, err)) return -1;
    out->n = n;  // only once the workspace fits them
    return 0;
}

// The descriptors set to batch n and that batch's algorithms.
static const ConvAlgos *algos_for(BackendConv *c, size_t n, CtError *err) {
    if (set_batch(c, n, err)) return NULL;
    if (c->full.n == n) return &c->full;
    if (c->part.n != n) {
        c->part.n = 0;
        if (choose(c, n, &c->part, err)) return NULL;
    }
    return &c->part;
}

// ---- convolution ----

int cuda_train_conv_create(BackendConv **out, const BackendConvDesc *d, CtError *err) {
    *out = NULL;
    BackendConv *c = ct_calloc(1, sizeof *c);
    c->d = *d;
    snprintf(c->name, sizeof c->name, "convolution %zu->%zu %zux%zu stride %zu at %zux%zu", d->cin, d->cout, d->k,
             d->k, d->stride, d->in_h, d->in_w);
    size_t in_e = d->cin * d->in_h * d->in_w, out_e = d->cout * d->out_h * d->out_w;
    size_t per = in_e > out_e ? in_e : out_e;
    if (d->max_batch == 0 || d->stride == 0 || d->k == 0 || per == 0) {
        ct_errorf(err, "%s: empty plan (batch %zu)", c->name, d->max_batch);
        goto fail;
    }
    // cuDNN's legacy API takes ints and tensors under 2^31 elements.
    if (d->cin > INT_MAX || d->cout > INT_MAX || d->k > INT_MAX || d->in_h > INT_MAX || d->in_w > INT_MAX ||
        d->pad > INT_MAX || d->stride > INT_MAX || per > GPU_LEGACY_MAX_ELEMS / d->max_batch) {
        ct_errorf(err, "%s: batch %zu holds more than cuDNN's 2^31 - 1 elements a tensor; use a smaller batch",
                  c->name, d->max_batch);
        goto fail;
    }
    c->ctx = cuda_train_ctx(err);
    if (!c->ctx || cuda_train_take_deferred(err)) goto fail;
    CUDNN_TRY(cudnnCreateTensorDescriptor(&c->xd), c->name);
    CUDNN_TRY(cudnnCreateTensorDescriptor(&c->yd), c->name);
    CUDNN_TRY(cudnnCreateFilterDescriptor(&c->wd), c->name);
    CUDNN_TRY(cudnnCreateConvolutionDescriptor(&c->cd), c->name);
    CUDNN_TRY(cudnnSetFilter4dDescriptor(c->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)d->cout, (int)d->cin,
                                         (int)d->k, (int)d->k),
              c->name);
    // PyTorch's convolution is a cross-correlation; float32 FMA math, no TF32.
    CUDNN_TRY(cudnnSetConvolution2dDescriptor(c->cd, (int)d->pad, (int)d->pad, (int)d->stride, (int)d->stride, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              c->name);
    CUDNN_TRY(cudnnSetConvolutionMathType(c->cd, CUDNN_FMA_MATH), c->name);
    if (set_batch(c, d->max_batch, err)) goto fail;
    int on, oc, oh, ow;
    CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(c->cd, c->xd, c->wd, &on, &oc, &oh, &ow), c->name);
    if ((size_t)on != d->max_batch || (size_t)oc != d->cout || (size_t)oh != d->out_h || (size_t)ow != d->out_w) {
        ct_errorf(err, "%s: cuDNN's output %dx%dx%dx%d differs from the plan's %zux%zux%zux%zu", c->name, on, oc, oh,
                  ow, d->max_batch, d->cout, d->out_h, d->out_w);
        goto fail;
    }
    if (choose(c, d->max_batch, &c->full, err)) goto fail;
    *out = c;
    return 0;
fail:
    cuda_train_conv_free(c);
    return -1;
}

void cuda_train_conv_free(BackendConv *c) {
    if (!c) return;
    if (c->xd) cudnnDestroyTensorDescriptor(c->xd);
    if (c->yd) cudnnDestroyTensorDescriptor(c->yd);
    if (c->wd) cudnnDestroyFilterDescriptor(c->wd);
    if (c->cd) cudnnDestroyConvolutionDescriptor(c->cd);
    free(c);
}

// What every call checks first: the batch, and a failure left pending by
// a member that could not report it.
static int conv_begin(BackendConv *c, size_t n, CtError *err) {
    if (n > c->d.max_batch) return ct_errorf(err, "%s: batch %zu over the plan's %zu", c->name, n, c->d.max_batch);
    return cuda_train_take_deferred(err);
}

static int launched(int e, const char *what, const char *layer, CtError *err) {
    if (e == 0) return 0;
    return ct_errorf(err, "%s: CUDA %s kernel launch failed: %s", layer, what, cudaGetErrorString((cudaError_t)e));
}

int cuda_train_conv_forward(BackendConv *c, float *y, const float *x, const float *w, const float *b,
                            const float *res, size_t n, CtError *err) {
    if ((res != NULL) != (c->d.residual != 0)) fatal("cuda_train_conv_forward: residual given to a plan without one");
    if (conv_begin(c, n, err)) return -1;
    if (n == 0) return 0;
    const ConvAlgos *a = algos_for(c, n, err);
    if (!a) return -1;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_RET(cudnnConvolutionForward(c->ctx->cudnn, &one, c->xd, x, c->wd, w, c->cd,
                                      (cudnnConvolutionFwdAlgo_t)a->algo[DIR_FWD], c->ctx->ws, c->ctx->ws_bytes, &zero,
                                      c->yd, y),
              c->name);
    return launched(cuda_t_bias_act(y, res, b, n, c->d.cout, c->d.out_h * c->d.out_w, c->d.relu, c->ctx->stream),
                    "bias/shortcut/ReLU", c->name, err);
}

int cuda_train_conv_backward_data(BackendConv *c, float *dx, const float *dy, const float *w, size_t n,
                                  CtError *err) {
    if (conv_begin(c, n, err)) return -1;
    if (n == 0) return 0;
    const ConvAlgos *a = algos_for(c, n, err);
    if (!a) return -1;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_RET(cudnnConvolutionBackwardData(c->ctx->cudnn, &one, c->wd, w, c->yd, dy, c->cd,
                                           (cudnnConvolutionBwdDataAlgo_t)a->algo[DIR_DATA], c->ctx->ws,
                                           c->ctx->ws_bytes, &zero, c->xd, dx),
              c->name);
    return 0;
}

int cuda_train_conv_backward_weights(BackendConv *c, float *dw, float *db, const float *dy, const float *x, size_t n,
                                     CtError *err) {
    if (conv_begin(c, n, err)) return -1;
    if (n == 0) return 0;
    const ConvAlgos *a = algos_for(c, n, err);
    if (!a) return -1;
    const float one = 1.0f;
    // beta = 1: dw += the gradient, as the contract accumulates.
    CUDNN_RET(cudnnConvolutionBackwardFilter(c->ctx->cudnn, &one, c->xd, x, c->yd, dy, c->cd,
                                             (cudnnConvolutionBwdFilterAlgo_t)a->algo[DIR_FILTER], c->ctx->ws,
                                             c->ctx->ws_bytes, &one, c->wd, dw),
              c->name);
    if (!db) return 0;
    return launched(cuda_t_bias_grad(db, dy, n, c->d.cout, c->d.out_h * c->d.out_w, c->ctx->stream), "bias gradient",
                    c->name, err);
}

// ---- max pool ----

int cuda_train_maxpool_create(BackendPool **out, const BackendPoolDesc *d, CtError *err) {
    *out = NULL;
    size_t dims[4] = {d->max_batch, d->c, d->out_h, d->out_w}, count;
    if (d->max_batch == 0 || d->stride == 0 || d->k == 0 || ct_mul_sizes(&count, dims, 4) ||
        count > SIZE_MAX / sizeof(int32_t) || d->in_h * d->in_w > INT32_MAX)
        return ct_errorf(err, "max pool %zux%zu stride %zu at %zux%zu: bad plan for batch %zu", d->k, d->k, d->stride,
                         d->in_h, d->in_w, d->max_batch);
    BackendPool *p = ct_calloc(1, sizeof *p);
    p->d = *d;
    p->ctx = cuda_train_ctx(err);
    if (!p->ctx || cuda_alloc((void **)&p->arg, count * sizeof(int32_t), "the max pool's argmax positions",
                              "the trainable tail", err)) {
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void cuda_train_maxpool_free(BackendPool *p) {
    if (!p) return;
    // A pending backward may still read the positions.
    (void)cudaStreamSynchronize(p->ctx->stream);
    cuda_free(p->arg);
    free(p);
}

int cuda_train_maxpool_forward(BackendPool *p, float *y, const float *x, size_t n, CtError *err) {
    const BackendPoolDesc *d = &p->d;
    if (n > d->max_batch) return ct_errorf(err, "max pool: batch %zu over the plan's %zu", n, d->max_batch);
    if (cuda_train_take_deferred(err)) return -1;
    return launched(cuda_t_maxpool_forward(y, p->arg, x, n * d->c, d->in_h, d->in_w, d->out_h, d->out_w, d->k,
                                           d->stride, d->pad, p->ctx->stream),
                    "forward", "max pool", err);
}

int cuda_train_maxpool_backward(BackendPool *p, float *dx, const float *dy, size_t n, CtError *err) {
    const BackendPoolDesc *d = &p->d;
    if (n > d->max_batch) return ct_errorf(err, "max pool: batch %zu over the plan's %zu", n, d->max_batch);
    if (cuda_train_take_deferred(err)) return -1;
    return launched(cuda_t_maxpool_backward(dx, dy, p->arg, n * d->c, d->in_h, d->in_w, d->out_h, d->out_w, d->k,
                                            d->stride, d->pad, p->ctx->stream),
                    "backward", "max pool", err);
}
