/*
 * cuda_backend_ops.c — the CUDA backend's operation table (backend_ops.h),
 * so the trainable tail trains on the GPU: cuDNN convolutions and our max
 * pool (cuda_train_conv.c), the head's cuBLAS linear layers, dropout, loss
 * and Adam kernels (cuda_ops.cu), the remaining small kernels
 * (cuda_train_kernels.cu), device memory, and the NCCL allreduce
 * (cuda_nccl.c).
 *
 * Every member enqueues on the current device's one stream (cuda_train_ctx.h),
 * so they run in call order. Memory members wait for their copy, as the
 * table's contract has it (the host may reuse or read its buffer when they
 * return); softmax_xent waits too, because it returns the loss to the host.
 * Members that return no error keep their first failure pending for the
 * next member that can report it, and for check: a device fault surfaces
 * as an error that names the CUDA call, which the sweep counts as a device
 * error, not as a crash.
 *
 * Against the CPU table: dropout masks, average pools, ReLU, add, the
 * BatchNorm fold and Adam are the same bits given the same inputs;
 * convolutions and GEMMs sum in other orders (tests/gpu/test_gpu_backend_ops.c
 * states the bounds).
 */
#include "backend/cuda/cuda_backend_ops.h"

#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_nccl.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_train_conv.h"
#include "backend/cuda/cuda_train_ctx.h"
#include "backend/cuda/cuda_train_kernels.h"

// ---- pending failures of members without an error return ----

static CudaTrainCtx *ctx_or_defer(void) {
    CtError e = {{0}};
    CudaTrainCtx *c = cuda_train_ctx(&e);
    if (!c) cuda_train_defer(&e);
    return c;
}

static void defer_cuda(cudaError_t ce, const char *call, const char *what) {
    CtError e = {{0}};
    cuda_fail(&e, ce, call, what);
    cuda_train_defer(&e);
}

static void defer_launch(int ce, const char *what) {
    if (ce == 0) return;
    CtError e = {{0}};
    ct_errorf(&e, "%s: CUDA kernel launch failed: %s", what, cudaGetErrorString((cudaError_t)ce));
    cuda_train_defer(&e);
}

// For the cuda_ops.h calls, which report into a CtError.
static void defer_if(int rc, const CtError *e) {
    if (rc) cuda_train_defer(e);
}

#define DEFER_CUDA(call, what)                                       \
    do {                                                             \
        cudaError_t ce_ = (call);                                    \
        if (ce_ != cudaSuccess) defer_cuda(ce_, #call, (what));      \
    } while (0)

// ---- memory ----

static void *dev_alloc(size_t bytes) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // out of memory is not sticky; clear it
        if (e != cudaErrorMemoryAllocation) defer_cuda(e, "cudaMalloc", "the trainable tail's memory");
        return NULL;
    }
    e = cudaMemsetAsync(p, 0, bytes, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        defer_cuda(e, "cudaMemsetAsync", "the trainable tail's memory");
        (void)cudaFree(p);
        return NULL;
    }
    return p;
}

static void dev_free(void *p) {
    if (!p) return;
    CudaTrainCtx *c = ctx_or_defer();
    if (c) DEFER_CUDA(cudaStreamSynchronize(c->stream), "freeing device memory");
    DEFER_CUDA(cudaFree(p), "freeing device memory");
}

static void upload(void *dst, const void *host, size_t bytes) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c || bytes == 0) return;
    DEFER_CUDA(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, c->stream), "copy to the GPU");
    DEFER_CUDA(cudaStreamSynchronize(c->stream), "copy to the GPU");
}

static void download(void *host, const void *src, size_t bytes) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c || bytes == 0) return;
    DEFER_CUDA(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, c->stream), "copy from the GPU");
    DEFER_CUDA(cudaStreamSynchronize(c->stream), "copy from the GPU");
}

static void dev_copy(void *dst, const void *src, size_t bytes) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c || bytes == 0 || dst == src) return;
    DEFER_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy on the GPU");
}

static void dev_zero(void *p, size_t bytes) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c || bytes == 0) return;
    DEFER_CUDA(cudaMemsetAsync(p, 0, bytes, c->stream), "clearing GPU memory");
}

// ---- average pools ----

static void adaptive_avgpool_forward(float *y, const float *x, size_t n, size_t ch, size_t h, size_t w, size_t oh,
                                     size_t ow) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_avgpool_forward(y, x, n * ch, h, w, oh, ow, c->stream), "adaptive average pool");
}

static void adaptive_avgpool_backward(float *dx, const float *dy, size_t n, size_t ch, size_t h, size_t w, size_t oh,
                                      size_t ow) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c)
        defer_launch(cuda_t_avgpool_backward(dx, dy, n * ch, h, w, oh, ow, c->stream),
                     "adaptive average pool backward");
}

static void global_avgpool_forward(float *y, const float *x, size_t n, size_t ch, size_t h, size_t w) {
    adaptive_avgpool_forward(y, x, n, ch, h, w, 1, 1);
}

static void global_avgpool_backward(float *dx, const float *dy, size_t n, size_t ch, size_t h, size_t w) {
    adaptive_avgpool_backward(dx, dy, n, ch, h, w, 1, 1);
}

// ---- elementwise ----

static void add(float *y, const float *a, const float *b, size_t count) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_add(y, a, b, count, c->stream), "add");
}

static void relu_forward(float *y, const float *x, size_t count) {
    CudaTrainCtx *c = ctx_or_defer();
    CtError e = {{0}};
    if (c) defer_if(cuda_relu_forward(c->head, y, x, count, &e), &e);
}

static void relu_backward(float *dx, const float *dy, const float *y, size_t count) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_relu_backward(dx, dy, y, count, c->stream), "ReLU backward");
}

// The head's dropout kernel (the CPU's masks bit for bit) scales y in place.
static void dropout_forward(float *y, float *mask, const float *x, size_t rows, size_t width, size_t row0,
                            uint64_t seed, uint64_t iteration, uint32_t layer, double p) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c) return;
    CtError e = {{0}};
    if (y != x && rows * width != 0)
        DEFER_CUDA(cudaMemcpyAsync(y, x, rows * width * sizeof(float), cudaMemcpyDeviceToDevice, c->stream),
                   "dropout");
    defer_if(cuda_dropout_forward(c->head, y, mask, rows, width, row0, seed, iteration, layer, p, &e), &e);
}

static void dropout_backward(float *dx, const float *dy, const float *mask, size_t count) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_mul(dx, dy, mask, count, c->stream), "dropout backward");
}

static void standardize_forward(float *y, const float *x, const float *mean, const float *inv_std, size_t rows,
                                size_t width) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_standardize_forward(y, x, mean, inv_std, rows, width, c->stream), "standardize");
}

static void standardize_backward(float *dx, const float *dy, const float *inv_std, size_t rows, size_t width) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_standardize_backward(dx, dy, inv_std, rows, width, c->stream), "standardize backward");
}

// ---- linear (cuBLAS) ----

static void linear_forward(float *y, const float *x, const float *w, const float *b, size_t B, size_t I, size_t O) {
    CudaTrainCtx *c = ctx_or_defer();
    CtError e = {{0}};
    if (c) defer_if(cuda_linear_forward(c->head, y, x, w, b, B, I, O, &e), &e);
}

static void linear_backward_params(float *dw, float *db, const float *dy, const float *x, size_t B, size_t I,
                                   size_t O) {
    CudaTrainCtx *c = ctx_or_defer();
    CtError e = {{0}};
    if (c) defer_if(cuda_linear_backward_params(c->head, dw, db, dy, x, B, I, O, &e), &e);
}

static void linear_backward_input(float *dx, const float *dy, const float *w, size_t B, size_t I, size_t O) {
    CudaTrainCtx *c = ctx_or_defer();
    CtError e = {{0}};
    if (c) defer_if(cuda_linear_backward_input(c->head, dx, dy, w, B, I, O, &e), &e);
}

// ---- loss ----

// The head's kernel per row, CUDA_XENT_CHUNK rows at a time through the
// context's staging; the rows' losses summed here in double in row order,
// as the CPU sums them. NaN (the failure pending) when a call fails.
static double softmax_xent(float *dlogits, size_t *correct, const float *logits, const uint8_t *labels, size_t n,
                           size_t batch_rows) {
    if (correct) *correct = 0;
    CudaTrainCtx *c = ctx_or_defer();
    if (!c) return NAN;
    double loss = 0.0;
    size_t ok = 0;
    for (size_t r0 = 0; r0 < n; r0 += CUDA_XENT_CHUNK) {
        size_t m = n - r0 < CUDA_XENT_CHUNK ? n - r0 : CUDA_XENT_CHUNK;
        CtError e = {{0}};
        memcpy(c->h_labels, labels + r0, m);
        cudaError_t ce = cudaMemcpyAsync(c->d_labels, c->h_labels, m, cudaMemcpyHostToDevice, c->stream);
        if (ce != cudaSuccess) {
            defer_cuda(ce, "cudaMemcpyAsync", "softmax cross-entropy labels");
            return NAN;
        }
        if (cuda_softmax_xent(c->head, dlogits + 2 * r0, c->d_loss, c->d_correct, logits + 2 * r0, c->d_labels, m, 2,
                              batch_rows, &e)) {
            cuda_train_defer(&e);
            return NAN;
        }
        ce = cudaMemcpyAsync(c->h_loss, c->d_loss, m * sizeof(float), cudaMemcpyDeviceToHost, c->stream);
        if (ce == cudaSuccess) ce = cudaMemcpyAsync(c->h_correct, c->d_correct, m, cudaMemcpyDeviceToHost, c->stream);
        if (ce == cudaSuccess) ce = cudaStreamSynchronize(c->stream);
        if (ce != cudaSuccess) {
            defer_cuda(ce, "cudaStreamSynchronize", "softmax cross-entropy");
            return NAN;
        }
        for (size_t r = 0; r < m; r++) {
            loss += (double)c->h_loss[r];
            ok += c->h_correct[r] != 0;
        }
    }
    if (correct) *correct = ok;
    return loss;
}

// ---- BatchNorm folding ----

static void bn_fold(float *wf, float *bf, const float *w, const float *gamma, const float *beta, const float *mean,
                    const float *var, size_t cout, size_t per, double eps) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c) defer_launch(cuda_t_bn_fold(wf, bf, w, gamma, beta, mean, var, cout, per, eps, c->stream), "BatchNorm fold");
}

static void bn_unfold_grads(float *gw, float *ggamma, float *gbeta, const float *gwf, const float *gbf, const float *w,
                            const float *gamma, const float *mean, const float *var, size_t cout, size_t per,
                            double eps) {
    CudaTrainCtx *c = ctx_or_defer();
    if (c)
        defer_launch(cuda_t_bn_unfold_grads(gw, ggamma, gbeta, gwf, gbf, w, gamma, mean, var, cout, per, eps,
                                            c->stream),
                     "BatchNorm gradient unfold");
}

// ---- optimiser ----

static void adam_step(const BackendAdamStep *s, float *params, const float *grads, float *m, float *v, size_t n) {
    CudaTrainCtx *c = ctx_or_defer();
    if (!c) return;
    CudaAdamSpec spec = {.adamw = s->adamw, .beta1 = s->beta1, .beta2 = s->beta2, .eps = s->eps,
                         .weight_decay = s->weight_decay};
    CtError e = {{0}};
    defer_if(cuda_adam_step(c->head, params, grads, m, v, n, &spec, s->step, s->lr, &e), &e);
}

// ---- collectives ----

// comm is the group's CudaNccl * (cuda_nccl.h). NCCL runs on the
// communicator's own stream, so the gradients are waited for first; the
// call returns with the sums in buf.
static int allreduce_sum(void *comm, float *buf, size_t n, CtError *err) {
    CudaTrainCtx *c = cuda_train_ctx(err);
    if (!c || cuda_train_take_deferred(err)) return -1;
    if (n == 0) return 0;
    if (!comm) return ct_errorf(err, "NCCL allreduce of %zu gradients: no communicator", n);
    CUDA_RET(cudaStreamSynchronize(c->stream), "gradients before the NCCL allreduce");
    CudaNcclBuf b = {buf, n, 0};
    return cuda_nccl_allreduce((CudaNccl *)comm, &b, 1, err);
}

// ---- errors ----

// The pending failure, else whatever the stream's work has raised so far
// (without waiting for it).
static int check(CtError *err) {
    CudaTrainCtx *c = cuda_train_ctx(err);
    if (!c || cuda_train_take_deferred(err)) return -1;
    cudaError_t e = cudaStreamQuery(c->stream);
    if (e != cudaSuccess && e != cudaErrorNotReady) return cuda_fail(err, e, "cudaStreamQuery", "the GPU's training work");
    return 0;
}

// ---- the table ----

static const BackendOps CUDA_OPS = {
    .name = "cuda",
    .alloc = dev_alloc,
    .free = dev_free,
    .upload = upload,
    .download = download,
    .copy = dev_copy,
    .zero = dev_zero,
    .conv_create = cuda_train_conv_create,
    .conv_free = cuda_train_conv_free,
    .conv_forward = cuda_train_conv_forward,
    .conv_backward_data = cuda_train_conv_backward_data,
    .conv_backward_weights = cuda_train_conv_backward_weights,
    .maxpool_create = cuda_train_maxpool_create,
    .maxpool_free = cuda_train_maxpool_free,
    .maxpool_forward = cuda_train_maxpool_forward,
    .maxpool_backward = cuda_train_maxpool_backward,
    .adaptive_avgpool_forward = adaptive_avgpool_forward,
    .adaptive_avgpool_backward = adaptive_avgpool_backward,
    .global_avgpool_forward = global_avgpool_forward,
    .global_avgpool_backward = global_avgpool_backward,
    .add = add,
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
    .standardize_forward = standardize_forward,
    .standardize_backward = standardize_backward,
    .linear_forward = linear_forward,
    .linear_backward_params = linear_backward_params,
    .linear_backward_input = linear_backward_input,
    .softmax_xent = softmax_xent,
    .bn_fold = bn_fold,
    .bn_unfold_grads = bn_unfold_grads,
    .adam_step = adam_step,
    .allreduce_sum = allreduce_sum,
    .check = check,
};

const BackendOps *cuda_backend_ops(CtError *err) {
    char why[256];
    if (cuda_device_count(why, sizeof why) == 0) {
        ct_errorf(err, "backend 'cuda': no CUDA device visible (%s)", why);
        return NULL;
    }
    if (!cuda_train_ctx(err)) return NULL;
    return &CUDA_OPS;
}
