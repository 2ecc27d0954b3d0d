/*
 * cuda_ops.h — the training operations of the classifier head on the GPU,
 * each the same computation as its CPU counterpart so the two can be
 * compared op by op and a head can move to the GPU unchanged in meaning:
 *
 *   linear forward / backward   cpu_linear.c (cuBLAS; row-major, W (out, in))
 *   ReLU, dropout, standardise   head.c (dropout masks bit-identical: the same
 *                                Philox4x32-10 counters, keys and word order)
 *   softmax cross-entropy        head.c (per-row losses summed on the host in
 *                                double, in row order)
 *   Adam / AdamW step            adam.c (same float32 operations in the same
 *                                order, no fused multiply-adds)
 *
 * All pointers but the host arguments of the sum helpers are device memory.
 * Calls are asynchronous on the ops' stream; errors (a failed launch, a
 * cuBLAS failure) come back as -1 with err naming the op. Gradient
 * conventions as on the CPU: parameter gradients accumulate (+=), activation
 * gradients overwrite.
 */
#ifndef CTSWEEP_BACKEND_CUDA_OPS_H
#define CTSWEEP_BACKEND_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CudaOps CudaOps;

// A cuBLAS handle on a new stream of the current device, with pinned host
// room for max_rows per-row results. allow_tf32: GEMMs may use TF32 tensor
// cores (otherwise plain float32, as the CPU).
int cuda_ops_create(CudaOps **out, size_t max_rows, int allow_tf32, CtError *err);
void cuda_ops_free(CudaOps *ops);
void *cuda_ops_stream(CudaOps *ops);  // the cudaStream_t the ops run on
// Waits for everything enqueued; what names the step for an error.
int cuda_ops_sync(CudaOps *ops, const char *what, CtError *err);
int cuda_ops_upload(CudaOps *ops, void *dst, const void *src, size_t bytes, CtError *err);
int cuda_ops_download(CudaOps *ops, void *dst, const void *src, size_t bytes, CtError *err);  // waits

// ---- linear layers ----
// y = x W^T + b
int cuda_linear_forward(CudaOps *ops, float *y,  // (B, O)
                        const float *x,          // (B, I)
                        const float *w,          // (O, I)
                        const float *b,          // (O) or NULL
                        size_t B, size_t I, size_t O, CtError *err);
// dw += dy^T x; db += column sums of dy (each summed in row order)
int cuda_linear_backward_params(CudaOps *ops, float *dw,  // (O, I)
                                float *db,                // (O) or NULL
                                const float *dy,          // (B, O)
                                const float *x,           // (B, I)
                                size_t B, size_t I, size_t O, CtError *err);
// dx = dy W
int cuda_linear_backward_input(CudaOps *ops, float *dx,  // (B, I)
                               const float *dy,          // (B, O)
                               const float *w,           // (O, I)
                               size_t B, size_t I, size_t O, CtError *err);

// ---- elementwise ----
// y = x > 0 ? x : 0 (y may be x)
int cuda_relu_forward(CudaOps *ops, float *y, const float *x, size_t n, CtError *err);
// dx = act > 0 ? dx * mask : 0, in place; mask NULL means 1 (no dropout)
int cuda_relu_dropout_backward(CudaOps *ops, float *dx, const float *act, const float *mask, size_t n,
                               CtError *err);
// Dropout masks for rows [row0, row0 + rows) of a (batch, width) activation,
// keyed by (seed, iteration, layer) exactly as head.c keys them: mask (rows,
// width) gets 0 or 1/(1-p), and y (rows, width), when not NULL, is
// multiplied by it.
int cuda_dropout_forward(CudaOps *ops, float *y, float *mask, size_t rows, size_t width, size_t row0, uint64_t seed,
                         uint64_t iteration, uint32_t layer, double p, CtError *err);
// z = (x - mean) * inv_std per column
int cuda_standardize(CudaOps *ops, float *z,  // (n, D)
                     const float *x,          // (n, D)
                     const float *mean, const float *inv_std,  // (D)
                     size_t n, size_t D, CtError *err);

// ---- loss ----
// Softmax cross-entropy over C classes for n rows of a batch of batch_rows:
// dlogits = (softmax - onehot) / batch_rows, row_loss = logsumexp - logit of
// the label, row_correct = (argmax == label, ties to the lower class). With
// C = 2 any non-zero label is class 1, as head.c reads them.
int cuda_softmax_xent(CudaOps *ops, float *dlogits,  // (n, C)
                      float *row_loss,               // (n)
                      uint8_t *row_correct,          // (n)
                      const float *logits,           // (n, C)
                      const uint8_t *labels,         // (n)
                      size_t n, size_t C, size_t batch_rows, CtError *err);
// Copies the per-row results of cuda_softmax_xent back (n <= max_rows) and
// returns their sum in double, in row order, and the count correct. Waits.
int cuda_softmax_xent_sum(CudaOps *ops, const float *row_loss, const uint8_t *row_correct, size_t n,
                          double *loss_sum, size_t *correct, CtError *err);
// p[r] = softmax(logits[r])[1] for 2 classes
int cuda_softmax_prob1(CudaOps *ops, float *p, const float *logits, size_t n, CtError *err);

// ---- optimiser ----
typedef struct {
    int adamw;  // decoupled weight decay (AdamW); otherwise L2 added to the gradient
    double beta1, beta2, eps, weight_decay;
} CudaAdamSpec;

// One update, number `step` (1 for the first), of params (n) from grads (n)
// with moments m, v (n) at learning rate lr; adam.c's arithmetic exactly.
int cuda_adam_step(CudaOps *ops, float *params, const float *grads, float *m, float *v, size_t n,
                   const CudaAdamSpec *spec, uint64_t step, double lr, CtError *err);

#ifdef __cplusplus
}
#endif

#endif
