/*
 * adam.c — Adam/AdamW state (moments, step count) for the head; the update's
 * arithmetic, as PyTorch does it, is the backend's (backend/cpu/cpu_adam.c).
 */
#include "train/adam.h"

#include <string.h>

#include "backend/cpu/cpu_adam.h"
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
    BackendAdamStep st = {.lr = lr, .beta1 = s->beta1, .beta2 = s->beta2, .eps = s->eps,
                          .weight_decay = s->weight_decay, .adamw = s->kind == OPT_ADAMW, .step = a->step};
    cpu_adam_step(&st, params, grads, a->m, a->v, a->n);
}
