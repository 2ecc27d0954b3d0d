/*
 * clr.h — learning-rate schedules stepped once per iteration: the cyclical
 * modes of Smith (2017) exactly as torch.optim.lr_scheduler.CyclicLR
 * computes them (cycle_momentum=False), plus `constant`, `cosine`
 * (CosineAnnealingLR over the whole run) and `step` (StepLR) as baselines.
 */
#ifndef CTSWEEP_TRAIN_CLR_H
#define CTSWEEP_TRAIN_CLR_H

#include <stddef.h>

#include "util/util.h"

typedef enum {
    CLR_TRIANGULAR = 0,
    CLR_TRIANGULAR2,
    CLR_EXP_RANGE,
    CLR_CONSTANT,
    CLR_COSINE,
    CLR_STEP,
} ClrMode;

typedef struct {
    ClrMode mode;
    double base_lr;
    double max_lr;
    // Half-cycle length in iterations (CyclicLR's step_size_up; step_size_down
    // equals it unless step_size_down > 0). For `step`, iterations between
    // decays. 0 with step_size_epochs > 0: derived from iterations per epoch.
    double step_size;
    double step_size_down;
    double step_size_epochs;
    double gamma;  // exp_range: lr scale gamma^iteration; step: decay factor
} ClrSpec;

int clr_mode_parse(const char *s, ClrMode *out);
const char *clr_mode_name(ClrMode m);
// True when the schedule depends on the run's total length (cosine), so
// epoch budgets cannot share one run.
int clr_depends_on_length(ClrMode m);
// Fills step_size from step_size_epochs for a run with iters_per_epoch
// iterations per epoch and checks the values (errors name the field).
int clr_resolve(ClrSpec *s, size_t iters_per_epoch, CtError *err);
// Learning rate used by iteration `it` (0-based) of a run of `total` iterations.
double clr_lr_at(const ClrSpec *s, size_t it, size_t total);

#endif
