/*
 * backend_ops.h — the operations a backend offers for training, as one
 * table of function pointers per backend (the idea of ggml's
 * ggml_backend_i): the trainable tail (src/train/tail.c) plans and runs its
 * layers through this table alone, so the same executor trains on the CPU
 * (oneDNN, src/backend/cpu/cpu_ops.c) and on the GPU (cuDNN, cuBLAS, our
 * kernels, NCCL: src/backend/cuda/cuda_backend_ops.c), without a
 * `kind == ...` test or an #ifdef in any layer.
 *
 * Conventions, for every implementation:
 *  - Tensors are float32 in the backend's memory (alloc/upload/download),
 *    activations NCHW row-major, convolution weights OIHW, linear weights
 *    (out, in) as torch.nn.Linear stores them. Only the host pointers a
 *    member names as such (upload's and download's `host`, softmax_xent's
 *    labels, loss and count) are host memory.
 *  - Memory calls are synchronous for the host: once upload returns the
 *    host buffer may be reused, once download returns it holds the data.
 *    Everything else may run asynchronously, in call order.
 *  - Errors: members that return an int report their failure in err; the
 *    others cannot fail on the CPU, and on the GPU keep their first failure
 *    for the next member that reports errors, or for `check`, which a
 *    caller calls at the end of a pass (softmax_xent returns NaN then).
 *  - Parameter gradients accumulate (+=): zero them before a step.
 *    Activation gradients overwrite (=).
 *  - Results are bit-identical whatever the thread count (CPU) and whatever
 *    the batch an image is in: per-image work runs single-threaded
 *    primitives created while the library sees one thread, spread over
 *    threads an image at a time; sums over the batch (weight and bias
 *    gradients) add the per-image parts in image order; linear layers split
 *    their work into fixed column blocks (cpu_linear.c). On the GPU a run
 *    repeats itself bit for bit (deterministic cuDNN algorithms, no
 *    atomics) for a given batch size; its sums run in other orders than the
 *    CPU's (tests/gpu/test_gpu_backend_ops.c states by how much).
 *  - Dropout masks come from the counter RNG keyed by (seed, iteration,
 *    layer, element of the whole batch), the same bits on every backend and
 *    rank count.
 *  - BatchNorm (frozen statistics, inference mode) is folded into the
 *    convolution weights by the caller through bn_fold, and its gradients
 *    unfolded through bn_unfold_grads: the convolutions know no BatchNorm.
 */
#ifndef CTSWEEP_BACKEND_OPS_H
#define CTSWEEP_BACKEND_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "util/util.h"

// A planned convolution for inputs of (n <= max_batch, cin, in_h, in_w).
typedef struct {
    size_t cin, cout, k, stride, pad;  // square kernel, symmetric padding
    size_t in_h, in_w, out_h, out_w;   // out = floor((in + 2 pad - k) / stride) + 1
    int relu;                          // forward applies ReLU last
    int residual;                      // forward adds a shortcut before the ReLU
    size_t max_batch;
    // Allow a Winograd kernel where the backend has one for this shape
    // (CPU: 3x3, stride 1, pad 1, channels multiples of 8, an AVX2 CPU):
    // forward and backward data then differ from a direct convolution by
    // Winograd's rounding (~1e-6 relative). 0: direct only.
    int winograd;
} BackendConvDesc;

// A planned max pool (padding ignored, as -inf), same shape rules.
typedef struct {
    size_t c, k, stride, pad;
    size_t in_h, in_w, out_h, out_w;
    size_t max_batch;
} BackendPoolDesc;

typedef struct BackendConv BackendConv;
typedef struct BackendPool BackendPool;

// One Adam/AdamW update, exactly as torch.optim.Adam / AdamW (src/train/adam.h).
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int adamw;      // decoupled decay (AdamW) instead of L2 added to the gradient
    uint64_t step;  // 1 for the first update
} BackendAdamStep;

typedef struct BackendOps {
    const char *name;
    int host_memory;  // alloc gives host memory (the CPU): nothing to upload, nothing to keep resident

    // ---- memory ----
    void *(*alloc)(size_t bytes);  // NULL when out of memory; zeroed
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host, size_t bytes);
    void (*download)(void *host, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);

    // ---- convolution (+ bias, + residual, + ReLU fused in the forward) ----
    int (*conv_create)(BackendConv **out, const BackendConvDesc *d, CtError *err);
    void (*conv_free)(BackendConv *c);
    // y = relu?(conv(x, w) + b + res?)            y, res: (n, cout, out_h, out_w)
    int (*conv_forward)(BackendConv *c, float *y, const float *x /* (n, cin, in_h, in_w) */,
                        const float *w /* (cout, cin, k, k) */, const float *b /* (cout) */, const float *res,
                        size_t n, CtError *err);
    // dx = conv_transpose(dy, w): the gradient of the input; dy is the
    // gradient of the convolution's output before the ReLU (relu_backward).
    int (*conv_backward_data)(BackendConv *c, float *dx, const float *dy, const float *w, size_t n, CtError *err);
    // dw += sum over images of dy (x) x; db += sum of dy over images and pixels
    int (*conv_backward_weights)(BackendConv *c, float *dw, float *db, const float *dy, const float *x, size_t n,
                                 CtError *err);

    // ---- max pool ----
    int (*maxpool_create)(BackendPool **out, const BackendPoolDesc *d, CtError *err);
    void (*maxpool_free)(BackendPool *p);
    // Keeps the argmax positions of the last forward inside the plan.
    int (*maxpool_forward)(BackendPool *p, float *y, const float *x, size_t n, CtError *err);
    int (*maxpool_backward)(BackendPool *p, float *dx, const float *dy, size_t n, CtError *err);

    // ---- average pools (PyTorch's adaptive windows) ----
    void (*adaptive_avgpool_forward)(float *y /* (n, c, oh, ow) */, const float *x /* (n, c, h, w) */, size_t n,
                                     size_t c, size_t h, size_t w, size_t oh, size_t ow);
    void (*adaptive_avgpool_backward)(float *dx, const float *dy, size_t n, size_t c, size_t h, size_t w, size_t oh,
                                      size_t ow);
    // (n, c, h, w) -> (n, c): the mean over each map
    void (*global_avgpool_forward)(float *y, const float *x, size_t n, size_t c, size_t h, size_t w);
    void (*global_avgpool_backward)(float *dx, const float *dy, size_t n, size_t c, size_t h, size_t w);

    // ---- elementwise ----
    void (*add)(float *y, const float *a, const float *b, size_t count);  // residual add (y may alias a or b)
    void (*relu_forward)(float *y, const float *x, size_t count);         // y may alias x
    // dx = dy where y > 0, else 0 (y the ReLU's output); dx may alias dy
    void (*relu_backward)(float *dx, const float *dy, const float *y, size_t count);
    // Rows [row0, row0 + rows) of a (batch, width) activation: mask = 0 or
    // 1/(1-p) from the counter RNG, y = x * mask. y may alias x.
    void (*dropout_forward)(float *y, float *mask, const float *x, size_t rows, size_t width, size_t row0,
                            uint64_t seed, uint64_t iteration, uint32_t layer, double p);
    void (*dropout_backward)(float *dx, const float *dy, const float *mask, size_t count);
    // Per column of a (rows, width) activation: y = (x - mean) * inv_std
    // (the head's fixed standardisation); its backward dx = dy * inv_std.
    // y may alias x, dx may alias dy.
    void (*standardize_forward)(float *y, const float *x, const float *mean, const float *inv_std, size_t rows,
                                size_t width);
    void (*standardize_backward)(float *dx, const float *dy, const float *inv_std, size_t rows, size_t width);

    // ---- linear (y = x W^T + b) ----
    void (*linear_forward)(float *y, const float *x, const float *w, const float *b, size_t B, size_t I, size_t O);
    void (*linear_backward_params)(float *dw, float *db, const float *dy, const float *x, size_t B, size_t I,
                                   size_t O);
    void (*linear_backward_input)(float *dx, const float *dy, const float *w, size_t B, size_t I, size_t O);

    // ---- loss ----
    // Softmax cross-entropy over 2 logits for n rows of a batch of batch_rows:
    // dlogits = d(sum of losses / batch_rows); returns the sum of losses and
    // the count of rows whose argmax is the label (ties pick class 0).
    double (*softmax_xent)(float *dlogits /* (n, 2) */, size_t *correct, const float *logits /* (n, 2) */,
                           const uint8_t *labels, size_t n, size_t batch_rows);

    // ---- BatchNorm folding (per output channel, scale in double) ----
    // wf = w * s, bf = beta - mean * s with s = gamma / sqrt(var + eps).
    void (*bn_fold)(float *wf /* (cout, per) */, float *bf /* (cout) */, const float *w /* (cout, per) */,
                    const float *gamma, const float *beta, const float *mean, const float *var /* (cout) each */,
                    size_t cout, size_t per, double eps);
    // From the folded weights' gradients gwf (cout, per) and gbf (cout) to
    // those of w, gamma and beta, accumulated: gw += gwf * s;
    // ggamma += (sum over the channel of gwf * w - gbf * mean) / sqrt(var + eps);
    // gbeta += gbf.
    void (*bn_unfold_grads)(float *gw /* (cout, per) */, float *ggamma, float *gbeta /* (cout) */,
                            const float *gwf, const float *gbf, const float *w, const float *gamma, const float *mean,
                            const float *var, size_t cout, size_t per, double eps);

    // ---- optimiser ----
    void (*adam_step)(const BackendAdamStep *s, float *params, const float *grads, float *m, float *v, size_t n);

    // ---- collectives ----
    // Sums buf over the ranks of comm in place, the result on every rank when
    // it returns. comm is an MPI_Comm * on the CPU; on the GPU it is the
    // CudaNccl * that cuda_nccl_create returned (src/backend/cuda/cuda_nccl.h),
    // itself, not a pointer to it.
    int (*allreduce_sum)(void *comm, float *buf, size_t n, CtError *err);

    // ---- errors ----
    // 0, or -1 with the first failure since the last check of a member that
    // returns no error (a GPU reports a kernel's fault at a later call).
    int (*check)(CtError *err);
} BackendOps;

// The table of a backend (defined in src/backend/backend.c, the one file
// that knows which backends this build has); NULL with err when this build
// has none for the kind, or, for cuda, no usable device is visible. The
// CUDA table works on the device current when each call is made.
const BackendOps *backend_ops_get(BackendKind kind, CtError *err);

#endif
