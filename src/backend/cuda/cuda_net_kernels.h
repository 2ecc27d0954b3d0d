/*
 * cuda_net_kernels.h — the small kernels around cuDNN's convolutions in the
 * backbone plan: layout and type conversion, bias + residual + ReLU, max
 * and average pooling, DenseNet's BatchNorm + ReLU and channel-slice copies,
 * the final average pooling (to NCHW float32, the CPU backend's
 * order), and two planning helpers (pseudo-random fill, max difference).
 *
 * Activations are NHWC in one of three storage types; every kernel computes
 * in float32. Each launcher enqueues on `stream` and returns the launch's
 * cudaError_t (cudaSuccess = 0).
 */
#ifndef CTSWEEP_BACKEND_CUDA_NET_KERNELS_H
#define CTSWEEP_BACKEND_CUDA_NET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CUDA_DT_F32 = 0, CUDA_DT_F16 = 1, CUDA_DT_BF16 = 2 } CudaDType;

size_t cuda_dtype_size(CudaDType t);

// dst (n, h, w, c) of type t <- src (n, c, h, w) float32
int cuda_k_nchw_to_nhwc(void *dst, CudaDType t, const float *src, size_t n, size_t c, size_t h, size_t w,
                        cudaStream_t stream);
// dst (count) of type t <- src (count) float32, round to nearest even
int cuda_k_convert(void *dst, CudaDType t, const float *src, size_t count, cudaStream_t stream);
// y (count = rows * c, NHWC) <- act(y + bias[ch] + res), res may be NULL
int cuda_k_bias_act(void *y, const void *res, const float *bias, CudaDType t, size_t count, size_t c, int relu,
                    cudaStream_t stream);
// y (n, oh, ow, c) <- max over the k x k window of x (n, ih, iw, c); padding
// never wins (PyTorch's -inf padding)
int cuda_k_maxpool(void *y, const void *x, CudaDType t, size_t n, size_t c, size_t ih, size_t iw, size_t oh,
                   size_t ow, size_t k, size_t stride, size_t pad, cudaStream_t stream);
// y (n, oh, ow, c) <- mean over the k x k window of x (n, ih, iw, c), no padding
int cuda_k_avgpool(void *y, const void *x, CudaDType t, size_t n, size_t c, size_t ih, size_t iw, size_t oh,
                   size_t ow, size_t k, size_t stride, cudaStream_t stream);
// y (rows, c) <- max(x * scale[ch] + shift[ch], 0), x (rows, c) with row
// stride x_ld >= c elements (a channel slice of a concatenation buffer)
int cuda_k_bn_relu(void *y, const void *x, CudaDType t, size_t rows, size_t c, size_t x_ld, const float *scale,
                   const float *shift, cudaStream_t stream);
// dst (rows, c) with row stride dst_ld <- src (rows, c) with row stride
// src_ld: places c channels into their slice of a concatenation buffer
int cuda_k_copy_channels(void *dst, size_t dst_ld, const void *src, size_t src_ld, CudaDType t, size_t rows,
                         size_t c, cudaStream_t stream);
// y (n, c, oh, ow) float32 <- PyTorch's adaptive average pool of x (n, ih, iw, c);
// oh = ow = 1 is the global average pool
int cuda_k_avgpool_to_nchw(float *y, const void *x, CudaDType t, size_t n, size_t c, size_t ih, size_t iw,
                           size_t oh, size_t ow, cudaStream_t stream);
// x (count) <- uniform values in [-1, 1) from a hash of (seed, index)
int cuda_k_fill_random(void *x, CudaDType t, size_t count, uint32_t seed, cudaStream_t stream);
// out[0] = max |a - b|, out[1] = max |b| over count elements; out must hold
// two zeros beforehand (non-negative floats are compared as integers)
int cuda_k_max_diff(float *out, const void *a, const void *b, CudaDType t, size_t count, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
