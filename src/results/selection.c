/*
 * selection.c — the epoch selection rule (selection.h).
 */
#include "results/selection.h"

#include <math.h>

// Whether epoch a beats epoch b (a later than b: a tie keeps b).
static int better(const EpochRecord *a, const EpochRecord *b) {
    double auc_a = isnan(a->val_auc) ? -INFINITY : a->val_auc, auc_b = isnan(b->val_auc) ? -INFINITY : b->val_auc;
    if (auc_a != auc_b) return auc_a > auc_b;
    double loss_a = isnan(a->val_loss) ? INFINITY : a->val_loss, loss_b = isnan(b->val_loss) ? INFINITY : b->val_loss;
    return loss_a < loss_b;
}

size_t selection_epoch(const EpochRecord *epochs, size_t n) {
    if (n == 0) return 0;
    size_t best = 0;
    for (size_t e = 1; e < n; e++)
        if (better(&epochs[e], &epochs[best])) best = e;
    return best + 1;
}
