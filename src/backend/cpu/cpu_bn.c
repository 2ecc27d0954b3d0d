/*
 * cpu_bn.c — BatchNorm folding and the unfolding of its gradients on the
 * CPU (see cpu_bn.h): the scale in double as model_fold_bn computes it at
 * load time, per output channel in channel order, so the result is the same
 * bits whatever the thread count. The CUDA table's kernels
 * (cuda_train_kernels.cu) repeat these operations one for one.
 */
#include "backend/cpu/cpu_bn.h"

#include <math.h>

// wf = w * s, bf = beta - mean * s with s = gamma / sqrt(var + eps) per
// output channel.
void cpu_bn_fold(float *wf, float *bf, const float *w, const float *gamma, const float *beta, const float *mean,
                 const float *var, size_t cout, size_t per, double eps) {
    for (size_t o = 0; o < cout; o++) {
        double s = gamma[o] / sqrt((double)var[o] + eps);
        const float *wo = w + o * per;
        float *wfo = wf + o * per;
        for (size_t i = 0; i < per; i++) wfo[i] = (float)(wo[i] * s);
        bf[o] = (float)((0.0f - mean[o]) * s + beta[o]);
    }
}

// dw += dwf * s; dgamma += (sum dwf * w - dbf * mean) / sqrt(var + eps);
// dbeta += dbf.
void cpu_bn_unfold_grads(float *gw, float *ggamma, float *gbeta, const float *gwf, const float *gbf, const float *w,
                         const float *gamma, const float *mean, const float *var, size_t cout, size_t per,
                         double eps) {
    for (size_t o = 0; o < cout; o++) {
        double r = 1.0 / sqrt((double)var[o] + eps), s = gamma[o] * r;
        const float *g = gwf + o * per, *wo = w + o * per;
        float *dw = gw + o * per;
        double dot = 0.0;
        for (size_t i = 0; i < per; i++) {
            dot += (double)g[i] * wo[i];
            dw[i] += (float)(g[i] * s);
        }
        ggamma[o] += (float)((dot - (double)gbf[o] * mean[o]) * r);
        gbeta[o] += gbf[o];
    }
}
