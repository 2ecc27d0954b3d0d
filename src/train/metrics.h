/*
 * metrics.h — the per-epoch measures: ROC AUC with ties scored one half
 * (equal to sklearn.metrics.roc_auc_score), and a mean-of-batches
 * accumulator for loss and accuracy.
 */
#ifndef CTSWEEP_TRAIN_METRICS_H
#define CTSWEEP_TRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

// AUC of scores p (n) against 0/1 labels; NaN when a class is absent.
double metrics_auc(const float *p, const uint8_t *labels, size_t n);
// The threshold that maximises Youden's J = sensitivity + specificity - 1
// over every distinct score, the highest on ties (positive iff p >= it):
// analysis/metrics.py youden_threshold's rule and arithmetic, so the value
// is the same. NaN when a class is absent.
double metrics_youden_threshold(const float *p, const uint8_t *labels, size_t n);

#endif
