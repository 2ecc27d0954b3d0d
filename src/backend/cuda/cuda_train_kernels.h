/*
 * cuda_train_kernels.h — the CUDA operation table's own kernels, for the
 * trainable tail's layers around cuDNN and cuBLAS: convolution bias,
 * shortcut and ReLU; the convolution bias gradient; max pool forward (with
 * its argmax) and backward; adaptive average pool forward and backward;
 * residual add, ReLU backward, dropout backward; BatchNorm folding and the
 * unfolding of its gradients.
 *
 * Tensors are float32 NCHW as the table's contract has them (backend_ops.h).
 * Each launcher enqueues on `stream` and returns the launch's cudaError_t
 * (cudaSuccess = 0). Where the CPU's result is exact given its inputs
 * (pools, folding, elementwise ops) the kernels repeat its operations in
 * its order with explicitly rounded intrinsics, so the two agree bit for
 * bit (cuda_train_kernels.cu says where they cannot).
 */
#ifndef CTSWEEP_BACKEND_CUDA_TRAIN_KERNELS_H
#define CTSWEEP_BACKEND_CUDA_TRAIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

// y (n, c, hw) <- relu?((y + bias[ch]) + res), res (n, c, hw) or NULL
int cuda_t_bias_act(float *y, const float *res, const float *bias, size_t n, size_t c, size_t hw, int relu,
                    cudaStream_t stream);
// db (c) += sum over images and pixels of dy (n, c, hw), one block per
// channel in a fixed order (deterministic)
int cuda_t_bias_grad(float *db, const float *dy, size_t n, size_t c, size_t hw, cudaStream_t stream);
// Max pool of planes (n * c) x (ih, iw) -> (oh, ow); arg (planes, oh, ow)
// keeps each maximum's index in its input plane: the first in row-major
// window order among equals, padding never (as oneDNN's)
int cuda_t_maxpool_forward(float *y, int32_t *arg, const float *x, size_t planes, size_t ih, size_t iw, size_t oh,
                           size_t ow, size_t k, size_t stride, size_t pad, cudaStream_t stream);
// dx (planes, ih, iw) = the sum of dy over the windows whose argmax each
// element is, in window order
int cuda_t_maxpool_backward(float *dx, const float *dy, const int32_t *arg, size_t planes, size_t ih, size_t iw,
                            size_t oh, size_t ow, size_t k, size_t stride, size_t pad, cudaStream_t stream);
// PyTorch's adaptive average pool of planes (h, w) -> (oh, ow) and its
// backward, as cpu_ops.c computes them
int cuda_t_avgpool_forward(float *y, const float *x, size_t planes, size_t h, size_t w, size_t oh, size_t ow,
                           cudaStream_t stream);
int cuda_t_avgpool_backward(float *dx, const float *dy, size_t planes, size_t h, size_t w, size_t oh, size_t ow,
                            cudaStream_t stream);
// y = a + b (y may alias a or b)
int cuda_t_add(float *y, const float *a, const float *b, size_t count, cudaStream_t stream);
// dx = y > 0 ? dy : 0 (dx may alias dy)
int cuda_t_relu_backward(float *dx, const float *dy, const float *y, size_t count, cudaStream_t stream);
// dx = dy * mask (dx may alias dy)
int cuda_t_mul(float *dx, const float *dy, const float *mask, size_t count, cudaStream_t stream);
// y = (x - mean) * inv_std per column of (rows, width); dx = dy * inv_std
int cuda_t_standardize_forward(float *y, const float *x, const float *mean, const float *inv_std, size_t rows,
                               size_t width, cudaStream_t stream);
int cuda_t_standardize_backward(float *dx, const float *dy, const float *inv_std, size_t rows, size_t width,
                                cudaStream_t stream);
// BatchNorm folding and gradient unfolding as cpu_bn.c, bit for bit
int cuda_t_bn_fold(float *wf, float *bf, const float *w, const float *gamma, const float *beta, const float *mean,
                   const float *var, size_t cout, size_t per, double eps, cudaStream_t stream);
int cuda_t_bn_unfold_grads(float *gw, float *ggamma, float *gbeta, const float *gwf, const float *gbf,
                           const float *w, const float *gamma, const float *mean, const float *var, size_t cout,
                           size_t per, double eps, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
