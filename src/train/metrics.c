/*
 * metrics.c — ROC AUC by the rank statistic (Mann–Whitney U): sort scores,
 * give tied scores their average rank, AUC = (R_pos - n_pos (n_pos + 1) / 2)
 * / (n_pos n_neg). This equals the trapezoidal area under sklearn's ROC
 * curve, ties included.
 */
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
