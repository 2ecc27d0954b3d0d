/*
 * metrics.c — ROC AUC by the rank statistic (Mann–Whitney U): sort scores,
 * give tied scores their average rank, AUC = (R_pos - n_pos (n_pos + 1) / 2)
 * / (n_pos n_neg). This equals the trapezoidal area under sklearn's ROC
 * curve, ties included.
 */
#define _GNU_SOURCE
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "util/util.h"

typedef struct {
    float p;
    uint8_t y;
} Scored;

static int cmp_scored(const void *a, const void *b) {
    float x = ((const Scored *)a)->p, y = ((const Scored *)b)->p;
    return (x > y) - (x < y);
}

double metrics_auc(const float *p, const uint8_t *labels, size_t n) {
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) npos += labels[i] != 0;
    size_t nneg = n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    Scored *s = ct_malloc_array(n, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].p = p[i];
        s[i].y = labels[i] != 0;
    }
    qsort(s, n, sizeof *s, cmp_scored);
    double rank_sum = 0.0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].p == s[i].p) j++;
        double avg = 0.5 * (double)(i + 1 + j);  // mean of ranks i+1 .. j
        for (size_t k = i; k < j; k++)
            if (s[k].y) rank_sum += avg;
        i = j;
    }
    free(s);
    return (rank_sum - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
}

// ---- Youden's threshold ----

// Descending score (the order within equal scores does not change the
// counts at the end of their run).
static int by_score_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    float x = p[*(const size_t *)a], y = p[*(const size_t *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

double metrics_youden_threshold(const float *p, const uint8_t *labels, size_t n) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) pos += labels[i] != 0;
    if (pos == 0 || pos == n) return NAN;
    size_t *order = ct_malloc_array(n, sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, by_score_desc, (void *)p);
    // At each distinct score (the last of its run in descending order):
    // tpr = tps / P, fpr = fps / N in double, J = tpr - fpr; the first
    // maximum is the highest threshold.
    double best_j = -INFINITY, thr = NAN, tps = 0, fps = 0;
    for (size_t k = 0; k < n; k++) {
        if (labels[order[k]]) tps += 1;
        else fps += 1;
        if (k + 1 < n && p[order[k + 1]] == p[order[k]]) continue;
        double j = tps / (double)pos - fps / (double)(n - pos);
        if (j > best_j) {
            best_j = j;
            thr = (double)p[order[k]];
        }
    }
    free(order);
    return thr;
}
