/*
 * clr.c — the schedules of clr.h. The cyclical modes follow PyTorch's
 * CyclicLR.get_lr() step for step, in double precision, so that the
 * sequences agree to rounding:
 *   cycle = floor(1 + it / total_size)
 *   x = 1 + it / total_size - cycle
 *   scale = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
 *   lr = base_lr + (max_lr - base_lr) * scale * scale_fn(cycle or it)
 */
#include "train/clr.h"

#include <math.h>
#include <string.h>

static const char *NAMES[] = {"triangular", "triangular2", "exp_range", "constant", "cosine", "step"};

int clr_mode_parse(const char *s, ClrMode *out) {
    for (int i = 0; i < (int)(sizeof NAMES / sizeof NAMES[0]); i++)
        if (strcmp(s, NAMES[i]) == 0) {
            *out = (ClrMode)i;
            return 0;
        }
    return -1;
}

const char *clr_mode_name(ClrMode m) { return (unsigned)m < sizeof NAMES / sizeof NAMES[0] ? NAMES[m] : "?"; }

int clr_depends_on_length(ClrMode m) { return m == CLR_COSINE; }

int clr_resolve(ClrSpec *s, size_t iters_per_epoch, CtError *err) {
    if (!(s->base_lr > 0) || !isfinite(s->base_lr)) return ct_errorf(err, "base_lr = %g must be positive", s->base_lr);
    if (s->mode != CLR_CONSTANT && (!(s->max_lr >= s->base_lr) || !isfinite(s->max_lr)))
        return ct_errorf(err, "max_lr = %g must be at least base_lr = %g", s->max_lr, s->base_lr);
    if (s->step_size <= 0 && s->step_size_epochs > 0) s->step_size = s->step_size_epochs * (double)iters_per_epoch;
    int needs_step = s->mode == CLR_TRIANGULAR || s->mode == CLR_TRIANGULAR2 || s->mode == CLR_EXP_RANGE ||
                     s->mode == CLR_STEP;
    if (needs_step && !(s->step_size >= 1))
        return ct_errorf(err, "step_size = %g must be at least 1 iteration (or set step_size_epochs)", s->step_size);
    if (s->step_size_down < 0) return ct_errorf(err, "step_size_down = %g must not be negative", s->step_size_down);
    if ((s->mode == CLR_EXP_RANGE || s->mode == CLR_STEP) && !(s->gamma > 0 && s->gamma <= 1))
        return ct_errorf(err, "gamma = %g must be in (0, 1]", s->gamma);
    return 0;
}

double clr_lr_at(const ClrSpec *s, size_t it, size_t total) {
    double t = (double)it;
    switch (s->mode) {
    case CLR_CONSTANT: return s->base_lr;
    case CLR_COSINE: {
        // CosineAnnealingLR(T_max=total, eta_min=base_lr) from max_lr, closed form.
        double T = total > 0 ? (double)total : 1.0;
        return s->base_lr + (s->max_lr - s->base_lr) * (1.0 + cos(M_PI * t / T)) / 2.0;
    }
    case CLR_STEP: return s->max_lr * pow(s->gamma, floor(t / floor(s->step_size)));
    default: break;
    }
    // CyclicLR stores step sizes as floats; PyTorch converts them with float().
    double up = s->step_size;
    double down = s->step_size_down > 0 ? s->step_size_down : up;
    double total_size = up + down;
    double step_ratio = up / total_size;
    double cycle = floor(1.0 + t / total_size);
    double x = 1.0 + t / total_size - cycle;
    double scale = x <= step_ratio ? x / step_ratio : (x - 1.0) / (step_ratio - 1.0);
    double base_height = (s->max_lr - s->base_lr) * scale;
    switch (s->mode) {
    case CLR_TRIANGULAR: return s->base_lr + base_height * 1.0;
    case CLR_TRIANGULAR2: return s->base_lr + base_height * (1.0 / pow(2.0, cycle - 1.0));
    case CLR_EXP_RANGE: return s->base_lr + base_height * pow(s->gamma, t);
    default: return s->base_lr;
    }
}
