/*
 * records.c — the in-memory trial records of the master.
 */
#include "results/records.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "results/selection.h"
#include "train/metrics.h"
#include "util/util.h"

static const char *STATUS[] = {"pending", "running", "done", "failed"};

const char *trial_status_name(TrialStatus s) { return (unsigned)s < 4 ? STATUS[s] : "?"; }

int trial_status_parse(const char *s, TrialStatus *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, STATUS[i]) == 0) {
            *out = (TrialStatus)i;
            return 0;
        }
    return -1;
}

void trial_record_init(TrialRecord *r, size_t budget, size_t n_val, size_t n_test) {
    memset(r, 0, sizeof *r);
    r->budget = budget;
    r->n_val = n_val;
    r->n_test = n_test;
    r->epochs = ct_calloc(budget, sizeof *r->epochs);
    r->val_prob = ct_calloc(budget * (n_val ? n_val : 1), sizeof *r->val_prob);
    r->test_prob = ct_calloc(budget * (n_test ? n_test : 1), sizeof *r->test_prob);
    r->best_val_acc = -1;
    r->test_acc = r->test_auc = -1;
    r->rank = -1;
}

void trial_record_free(TrialRecord *r) {
    free(r->epochs);
    free(r->lr_trace);
    free(r->val_prob);
    free(r->test_prob);
    for (int k = 0; k < 2; k++)
        if (r->kept[k]) {
            kept_weights_free(r->kept[k]);
            free(r->kept[k]);
        }
    memset(r, 0, sizeof *r);
}

void trial_record_truncate(TrialRecord *r, size_t keep) {
    if (keep >= r->epochs_done) return;
    r->epochs_done = keep;
    r->selected_epoch = 0;
    r->best_epoch = 0;
    r->best_val_acc = -1;
    for (size_t e = 0; e < keep; e++)
        if (r->epochs[e].val_acc > r->best_val_acc) {
            r->best_val_acc = r->epochs[e].val_acc;
            r->best_epoch = e + 1;
        }
}

void trial_record_epoch(TrialRecord *r, const EpochRecord *e, const double *lr, size_t n_iters, const float *val_prob,
                        const float *test_prob) {
    if (e->epoch == 0 || e->epoch > r->budget || e->epoch != r->epochs_done + 1) return;
    size_t k = e->epoch - 1;
    if (!r->lr_trace || r->iters_per_epoch != n_iters) {
        free(r->lr_trace);
        r->iters_per_epoch = n_iters;
        r->lr_trace = ct_calloc(r->budget * (n_iters ? n_iters : 1), sizeof *r->lr_trace);
    }
    r->epochs[k] = *e;
    memcpy(r->lr_trace + k * n_iters, lr, n_iters * sizeof *lr);
    memcpy(r->val_prob + k * r->n_val, val_prob, r->n_val * sizeof *val_prob);
    memcpy(r->test_prob + k * r->n_test, test_prob, r->n_test * sizeof *test_prob);
    r->epochs_done = e->epoch;
    if (e->val_acc > r->best_val_acc) {
        r->best_val_acc = e->val_acc;
        r->best_epoch = e->epoch;
    }
}

void trial_record_select(TrialRecord *r, const uint8_t *test_labels) {
    r->selected_epoch = selection_epoch(r->epochs, r->epochs_done);
    size_t nt = r->n_test, correct = 0;
    if (!r->selected_epoch || !nt) {
        r->test_acc = r->test_auc = NAN;
        return;
    }
    const float *tp = r->test_prob + (r->selected_epoch - 1) * nt;
    for (size_t i = 0; i < nt; i++) correct += (tp[i] > 0.5f) == (test_labels[i] != 0);
    r->test_acc = (double)correct / (double)nt;
    r->test_auc = metrics_auc(tp, test_labels, nt);
}
