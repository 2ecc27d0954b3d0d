/*
 * selection.c — the epoch selection rule (selection.h).
 */
#include "results/selection.h"

#include <math.h>

int selection_better(double auc_a, double loss_a, double auc_b, double loss_b) {
    auc_a = isnan(auc_a) ? -INFINITY : auc_a, auc_b = isnan(auc_b) ? -INFINITY : auc_b;
    if (auc_a != auc_b) return auc_a > auc_b;
    loss_a = isnan(loss_a) ? INFINITY : loss_a, loss_b = isnan(loss_b) ? INFINITY : loss_b;
    return loss_a < loss_b;
}

static int better(const EpochRecord *a, const EpochRecord *b) {
    return selection_better(a->val_auc, a->val_loss, b->val_auc, b->val_loss);
}

size_t selection_epoch(const EpochRecord *epochs, size_t n) {
    if (n == 0) return 0;
    size_t best = 0;
    for (size_t e = 1; e < n; e++)
        if (better(&epochs[e], &epochs[best])) best = e;
    return best + 1;
}
