/*
 * adam.c — the Adam/AdamW update, operation for operation as PyTorch's
 * single-tensor implementation: moments updated in float32, bias
 * corrections and step size in double (Python floats), then
 * param += -step_size * m / (sqrt(v) / sqrt(bc2) + eps), with PyTorch's
 * association order (addcmul_ and addcdiv_ multiply by the scalar first).
 */
#include "train/adam.h"

#include <math.h>
#include <string.h>

#include "util/util.h"

void adam_spec_default(AdamSpec *s) {
    s->kind = OPT_ADAM;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->weight_decay = 0.0;
}

int optimizer_parse(const char *s, OptimizerKind *out) {
    if (strcmp(s, "adam") == 0) *out = OPT_ADAM;
    else if (strcmp(s, "adamw") == 0) *out = OPT_ADAMW;
    else return -1;
    return 0;
}

int adam_init(AdamState *a, const AdamSpec *spec, size_t n) {
    memset(a, 0, sizeof *a);
    a->spec = *spec;
    a->n = n;
    a->m = ct_try_aligned_alloc(n ? n : 1, sizeof(float));
    a->v = ct_try_aligned_alloc(n ? n : 1, sizeof(float));
    if (!a->m || !a->v) {
        adam_free(a);
        return -1;
    }
    adam_reset(a);
    return 0;
}

void adam_reset(AdamState *a) {
    memset(a->m, 0, a->n * sizeof(float));
    memset(a->v, 0, a->n * sizeof(float));
    a->step = 0;
}

void adam_free(AdamState *a) {
    ct_aligned_free(a->m);
    ct_aligned_free(a->v);
    memset(a, 0, sizeof *a);
}

void adam_step(AdamState *a, float *params, const float *grads, double lr) {
    const AdamSpec *s = &a->spec;
    a->step++;
    double bc1 = 1.0 - pow(s->beta1, (double)a->step);
    double bc2 = 1.0 - pow(s->beta2, (double)a->step);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = (float)s->beta1, b2 = (float)s->beta2, omb1 = (float)(1.0 - s->beta1), omb2 = (float)(1.0 - s->beta2);
    float eps = (float)s->eps, wd = (float)s->weight_decay;
    float decay = (float)(1.0 - lr * s->weight_decay);
    int adamw = s->kind == OPT_ADAMW, l2 = s->kind == OPT_ADAM && s->weight_decay != 0.0;
    float *m = a->m, *v = a->v;
    size_t n = a->n;
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
