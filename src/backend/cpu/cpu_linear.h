/*
 * cpu_linear.h — the dense layers of the classifier head on the CPU:
 * forward, the weight gradient and the input gradient, through oneDNN's
 * sgemm.
 *
 * Results are bit-identical whatever the thread count: the work is split
 * into fixed column blocks, each a single-threaded sgemm call, so every
 * output element is summed in the same order on 1 thread or 64.
 *
 * Conventions: row-major; W is (out, in) as torch.nn.Linear stores it;
 * parameter gradients accumulate (+=), activation gradients overwrite.
 */
#ifndef CTSWEEP_BACKEND_CPU_LINEAR_H
#define CTSWEEP_BACKEND_CPU_LINEAR_H

#include <stddef.h>

// y = x W^T + b
void cpu_linear_forward(float *y,        // (B, O)
                        const float *x,  // (B, I)
                        const float *w,  // (O, I)
                        const float *b,  // (O) or NULL
                        size_t B, size_t I, size_t O);
// dw += dy^T x; db += sum over rows of dy
void cpu_linear_backward_params(float *dw,       // (O, I)
                                float *db,       // (O) or NULL
                                const float *dy, // (B, O)
                                const float *x,  // (B, I)
                                size_t B, size_t I, size_t O);
// dx = dy W
void cpu_linear_backward_input(float *dx,        // (B, I)
                               const float *dy,  // (B, O)
                               const float *w,   // (O, I)
                               size_t B, size_t I, size_t O);

#endif
