/*
 * cuda_conv.h — choosing cuDNN's forward algorithm for one convolution
 * shape, once per process: measured with cudnnFindConvolutionForwardAlgorithmEx
 * (fastest), or, in deterministic mode, taken from cuDNN's heuristics
 * (cudnnGetConvolutionForwardAlgorithm_v7) so the choice does not depend on
 * timing noise, among deterministic algorithms only. The choice respects
 * the precision (fp32 never takes a TF32 kernel), the workspace available
 * and the ConvAlgo option, and is cached by shape for every later plan.
 */
#ifndef CTSWEEP_BACKEND_CUDA_CONV_H
#define CTSWEEP_BACKEND_CUDA_CONV_H

#include <stddef.h>

#include <cudnn.h>

#include "backend/backend.h"

typedef struct {
    int device;
    int n, c, h, w;        // input (NHWC in memory)
    int k, r, stride, pad; // output channels, square kernel, stride, padding
    int dtype;             // cudnnDataType_t of x, w, y
    int precision;         // Precision
    int deterministic;
    int conv_algo;         // ConvAlgo
} CudaConvKey;

typedef struct {
    cudnnConvolutionFwdAlgo_t algo;
    cudnnMathType_t math;  // to set on the convolution descriptor before running
    size_t ws_bytes;
    float ms;              // measured time (Find), -1 from heuristics
} CudaConvChoice;

// The math type a convolution descriptor starts with for a precision:
// fp32 FMA only (no TF32), tf32 cuDNN's default (TF32 allowed on Ampere and
// later), fp16/bf16 tensor cores.
cudnnMathType_t cuda_conv_math_for(Precision p);
const char *cuda_conv_algo_name(cudnnConvolutionFwdAlgo_t a);

// Chooses an algorithm for the convolution described by (xd, wd, cd, yd),
// whose buffers x, w, y are real device memory (Find runs the candidates and
// overwrites y), with at most ws_cap bytes of workspace at ws. *cached says
// whether an earlier plan had already chosen for this key. Sets cd's math
// type to the choice's. Returns 0, or -1 with err naming the layer.
int cuda_conv_choose(cudnnHandle_t h, const CudaConvKey *key, cudnnTensorDescriptor_t xd, const void *x,
                     cudnnFilterDescriptor_t wd, const void *w, cudnnConvolutionDescriptor_t cd,
                     cudnnTensorDescriptor_t yd, void *y, void *ws, size_t ws_cap, CudaConvChoice *out,
                     int *cached, const char *layer, CtError *err);

#endif
