/*
 * cpu_adam.c — the Adam/AdamW update, operation for operation as PyTorch's
 * single-tensor implementation: moments updated in float32, bias
 * corrections and step size in double (Python floats), then
 * param += -step_size * m / (sqrt(v) / sqrt(bc2) + eps), with PyTorch's
 * association order (addcmul_ and addcdiv_ multiply by the scalar first).
 * Element-wise, so the thread count changes nothing.
 */
#include "backend/cpu/cpu_adam.h"

#include <math.h>

void cpu_adam_step(const BackendAdamStep *s, float *params, const float *grads, float *m, float *v, size_t n) {
    double lr = s->lr;
    double bc1 = 1.0 - pow(s->beta1, (double)s->step);
    double bc2 = 1.0 - pow(s->beta2, (double)s->step);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = (float)s->beta1, b2 = (float)s->beta2, omb1 = (float)(1.0 - s->beta1), omb2 = (float)(1.0 - s->beta2);
    float eps = (float)s->eps, wd = (float)s->weight_decay;
    float decay = (float)(1.0 - lr * s->weight_decay);
    int adamw = s->adamw, l2 = !s->adamw && s->weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (n > ((size_t)1 << 20))
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        if (adamw) params[i] *= decay;
        if (l2) g = g + wd * params[i];
        m[i] = m[i] * b1 + g * omb1;
        v[i] = v[i] * b2 + omb2 * g * g;  // addcmul_: value * t1 * t2
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        params[i] = params[i] + (-step_size) * m[i] / denom;  // addcdiv_: value * t1 / t2
    }
}
