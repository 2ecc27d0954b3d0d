/*
 * adam.h — Adam and AdamW updates exactly as torch.optim.Adam / AdamW
 * (PyTorch 1.13, amsgrad off) compute them on float32 tensors: L2 weight
 * decay added to the gradient for Adam, decoupled decay for AdamW.
 */
#ifndef CTSWEEP_TRAIN_ADAM_H
#define CTSWEEP_TRAIN_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OPT_ADAM = 0, OPT_ADAMW = 1 } OptimizerKind;

typedef struct {
    OptimizerKind kind;
    double beta1, beta2, eps, weight_decay;
} AdamSpec;

void adam_spec_default(AdamSpec *s);  // Adam, betas (0.9, 0.999), eps 1e-8, no decay
int optimizer_parse(const char *s, OptimizerKind *out);

typedef struct {
    AdamSpec spec;
    size_t n;
    float *m, *v;   // (n) first and second moments
    uint64_t step;  // updates done
} AdamState;

int adam_init(AdamState *a, const AdamSpec *spec, size_t n);  // -1 when out of memory
void adam_reset(AdamState *a);
void adam_free(AdamState *a);
// One update of params (n) with grads (n) at learning rate lr.
void adam_step(AdamState *a, float *params, const float *grads, double lr);

#endif
