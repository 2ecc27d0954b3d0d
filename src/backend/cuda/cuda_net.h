/*
 * cuda_net.h — the CUDA backend's backbone plan: cuDNN convolutions on NHWC
 * activations (float32, or float16/bfloat16 storage with float32
 * accumulation), algorithms chosen once per shape, one shared workspace,
 * bias + residual + ReLU fused into the convolution where cuDNN can (checked
 * against the unfused result at planning), pooling kernels of our own, and
 * the output in the CPU backend's NCHW-flattened order.
 *
 * A batch whose tensors would pass 2^31 elements (the legacy cuDNN API's
 * limit) is planned and run in pieces that fit; an input too large for one
 * image is refused in one line naming the tensor.
 *
 * The plan runs on the device current when it is created. The environment
 * variable CTSWEEP_CUDA_FUSE=0 turns the fused form off.
 */
#ifndef CTSWEEP_BACKEND_CUDA_NET_H
#define CTSWEEP_BACKEND_CUDA_NET_H

#include "backend/backend.h"

typedef struct CudaNet CudaNet;

int cuda_net_create(CudaNet **out, const NNGraph *g, size_t max_batch, size_t h, size_t w,
                    const BackendOptions *opt, CtError *err);
// in: (n, 3, h, w) float32 host memory; out: (n, output_numel) float32 host memory.
int cuda_net_forward(CudaNet *net, const float *in, size_t n, float *out, CtError *err);
size_t cuda_net_output_numel(const CudaNet *net);
size_t cuda_net_bytes(const CudaNet *net);  // device memory held
void cuda_net_free(CudaNet *net);

#endif
