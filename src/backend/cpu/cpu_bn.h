/*
 * cpu_bn.h — BatchNorm folding for the trainable tail on the CPU: the
 * frozen-statistics BatchNorm folded into its convolution before a forward,
 * and the folded weights' gradients unfolded into the torchvision
 * parameters' after a backward. Signatures and conventions are those of
 * BackendOps (backend_ops.h).
 */
#ifndef CTSWEEP_BACKEND_CPU_BN_H
#define CTSWEEP_BACKEND_CPU_BN_H

#include <stddef.h>

void cpu_bn_fold(float *wf, float *bf, const float *w, const float *gamma, const float *beta, const float *mean,
                 const float *var, size_t cout, size_t per, double eps);
void cpu_bn_unfold_grads(float *gw, float *ggamma, float *gbeta, const float *gwf, const float *gbf, const float *w,
                         const float *gamma, const float *mean, const float *var, size_t cout, size_t per,
                         double eps);

#endif
