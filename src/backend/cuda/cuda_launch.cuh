/*
 * cuda_launch.cuh — the launch geometry every elementwise kernel shares:
 * 256 threads a block, at most 2^18 blocks, and grid-stride loops that
 * cover whatever the capped grid does not.
 */
#ifndef CTSWEEP_BACKEND_CUDA_CUDA_LAUNCH_CUH
#define CTSWEEP_BACKEND_CUDA_CUDA_LAUNCH_CUH

#include <stddef.h>

namespace {

const int THREADS = 256;

inline unsigned blocks_for(size_t count) {
    size_t b = (count + THREADS - 1) / THREADS;
    const size_t cap = (size_t)1 << 18;  // grid-stride loops cover the rest
    if (b > cap) b = cap;
    return (unsigned)(b ? b : 1);
}

}  // namespace

#define GRID_STRIDE(i, count) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += (size_t)gridDim.x * blockDim.x)

#endif
