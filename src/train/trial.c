/*
 * trial.c — wiring the feature cache to the trainer for one trial.
 */
#include "train/trial.h"

#include <stdlib.h>
#include <string.h>

static const float *train_view_cb(void *ctx, uint32_t view, CtError *err) {
    TrialInputs *in = ctx;
    const float *x;
    size_t n, dim;
    if (fcache_get(in->cache, in->features, in->ds, in->images, SPLIT_TRAIN, view, &x, &n, &dim, err)) return NULL;
    return x;
}

int trial_prepare(TrialInputs *in, CtError *err) {
    const DataSet *ds = in->ds;
    size_t count[DATA_SPLITS] = {0};
    for (size_t i = 0; i < ds->n; i++) count[ds->items[i].split]++;
    for (int s = 0; s < DATA_SPLITS; s++) {
        in->labels[s] = ct_calloc(count[s] ? count[s] : 1, 1);
        in->index[s] = ct_calloc(count[s] ? count[s] : 1, sizeof(size_t));
    }
    size_t k[DATA_SPLITS] = {0};
    for (size_t i = 0; i < ds->n; i++) {
        int s = ds->items[i].split;
        in->labels[s][k[s]] = ds->items[i].label != 0;
        in->index[s][k[s]++] = i;
    }
    TrainData *d = &in->data;
    memset(d, 0, sizeof *d);
    d->n_train = count[SPLIT_TRAIN];
    d->n_val = count[SPLIT_VAL];
    d->n_test = count[SPLIT_TEST];
    d->y_train = in->labels[SPLIT_TRAIN];
    d->y_val = in->labels[SPLIT_VAL];
    d->y_test = in->labels[SPLIT_TEST];
    d->aug_views = augment_view_count(&in->features->aug);
    d->train_view = train_view_cb;
    d->ctx = in;
    size_t n, dim;
    if (fcache_get(in->cache, in->features, ds, in->images, SPLIT_VAL, 0, &d->val, &n, &dim, err)) return -1;
    d->dim = dim;
    if (d->n_test && fcache_get(in->cache, in->features, ds, in->images, SPLIT_TEST, 0, &d->test, &n, &dim, err))
        return -1;
    return 0;
}

void trial_inputs_free(TrialInputs *in) {
    for (int s = 0; s < DATA_SPLITS; s++) {
        free(in->labels[s]);
        free(in->index[s]);
        in->labels[s] = NULL;
        in->index[s] = NULL;
    }
}

int trial_resume(TrialInputs *in, TrainState *st, const TrainSpec *spec, const TrainHooks *hooks, const void *blob,
                 size_t blob_len, CtError *err) {
    if (trial_prepare(in, err)) return -1;
    if (train_state_init(st, spec, &in->data, err)) return -1;
    // Standardisation statistics come from the training features of view 0.
    if (st->head.mean) {
        const float *x;
        size_t n, dim;
        if (fcache_get(in->cache, in->features, in->ds, in->images, SPLIT_TRAIN, 0, &x, &n, &dim, err)) return -1;
        head_fit_standardize(&st->head, x, n);
    }
    if (blob && train_state_load(st, blob, blob_len, err)) return -1;
    return train_run(st, spec, &in->data, hooks, err);
}

int trial_train(TrialInputs *in, TrainState *st, const TrainSpec *spec, const TrainHooks *hooks, CtError *err) {
    return trial_resume(in, st, spec, hooks, NULL, 0, err);
}
