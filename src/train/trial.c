/*
 * trial.c — wiring the feature cache to the trainer for one trial.
 */
#include "train/trial.h"

#include <stdlib.h>
#include <string.h>

#include "data/folds.h"

// Copies the pool rows of the images of `split` in the trial's fold.
static void gather(const TrialInputs *in, int split, const float *pool, size_t dim, float *out) {
    size_t k = 0;
    for (size_t i = 0; i < in->ds->n; i++)
        if (folds_split_of(&in->ds->items[i], in->fold) == split)
            memcpy(out + k++ * dim, pool + in->pool_pos[i] * dim, dim * sizeof *out);
}

static const float *train_view_cb(void *ctx, uint32_t view, CtError *err) {
    TrialInputs *in = ctx;
    const float *x;
    size_t n, dim;
    if (in->fold < 0) {
        if (fcache_get(in->cache, in->features, in->ds, in->images, SPLIT_TRAIN, view, &x, &n, &dim, err)) return NULL;
        return x;
    }
    uint32_t v = augment_view_of_epoch(&in->features->aug, view);  // the view as the cache keys it
    if (in->train_rows_view == (long)v) return in->train_rows;
    if (fcache_get_pool(in->cache, in->features, in->ds, in->images, 1, v, &x, &n, &dim, err)) return NULL;
    gather(in, SPLIT_TRAIN, x, dim, in->train_rows);
    in->train_rows_view = (long)v;
    return in->train_rows;
}

// The fold's val rows from the clean pool, and room for its training rows.
static int prepare_fold(TrialInputs *in, CtError *err) {
    const DataSet *ds = in->ds;
    TrainData *d = &in->data;
    in->pool_pos = ct_calloc(ds->n ? ds->n : 1, sizeof *in->pool_pos);
    size_t p = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->items[i].split != SPLIT_TEST) in->pool_pos[i] = p++;
    const float *x;
    size_t n, dim;
    if (fcache_get_pool(in->cache, in->features, ds, in->images, 0, 0, &x, &n, &dim, err)) return -1;
    size_t nv, nt;
    if (ct_mul_size(&nv, d->n_val, dim) || ct_mul_size(&nt, d->n_train, dim))
        return ct_errorf(err, "feature size overflows");
    in->val_rows = ct_try_aligned_alloc(nv ? nv : 1, sizeof(float));
    in->train_rows = ct_try_aligned_alloc(nt ? nt : 1, sizeof(float));
    if (!in->val_rows || !in->train_rows)
        return ct_errorf(err, "out of memory for %zu MiB of fold %d features", (nv + nt) * 4 >> 20, in->fold);
    gather(in, SPLIT_VAL, x, dim, in->val_rows);
    in->train_rows_view = -1;
    d->val = in->val_rows;
    d->dim = dim;
    return 0;
}

int trial_prepare(TrialInputs *in, CtError *err) {
    const DataSet *ds = in->ds;
    if (!ds->kfold) in->fold = -1;  // (callers without folds may leave it 0)
    if (in->fold >= 0 && (size_t)in->fold >= ds->kfold)
        return ct_errorf(err, "fold %d, but the data set has %zu folds", in->fold, ds->kfold);
    size_t count[DATA_SPLITS] = {0};
    for (size_t i = 0; i < ds->n; i++) count[folds_split_of(&ds->items[i], in->fold)]++;
    for (int s = 0; s < DATA_SPLITS; s++) {
        in->labels[s] = ct_calloc(count[s] ? count[s] : 1, 1);
        in->index[s] = ct_calloc(count[s] ? count[s] : 1, sizeof(size_t));
    }
    size_t k[DATA_SPLITS] = {0};
    for (size_t i = 0; i < ds->n; i++) {
        int s = folds_split_of(&ds->items[i], in->fold);
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
    if (in->fold >= 0) {
        if (prepare_fold(in, err)) return -1;
    } else {
        if (fcache_get(in->cache, in->features, ds, in->images, SPLIT_VAL, 0, &d->val, &n, &dim, err)) return -1;
        d->dim = dim;
    }
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
    ct_aligned_free(in->val_rows);
    ct_aligned_free(in->train_rows);
    free(in->pool_pos);
    in->val_rows = in->train_rows = NULL;
    in->pool_pos = NULL;
}

int trial_resume(TrialInputs *in, TrainState *st, const TrainSpec *spec, const TrainHooks *hooks, const void *blob,
                 size_t blob_len, CtError *err) {
    if (trial_prepare(in, err)) return -1;
    if (train_state_init(st, spec, &in->data, err)) return -1;
    // Standardisation statistics come from the training features of view 0.
    // (With unfrozen stages: of the head's input under the initial tail.)
    if (st->head.mean || (st->tail && st->tail->std_mean)) {
        const float *x = in->data.train_view(in, 0, err);
        if (!x) return -1;
        if (st->tail) {
            if (tail_fit_standardize(st->tail, x, in->data.n_train, err)) return -1;
        } else {
            head_fit_standardize(&st->head, x, in->data.n_train);
        }
    }
    if (blob && train_state_load(st, blob, blob_len, err)) return -1;
    return train_run(st, spec, &in->data, hooks, err);
}

int trial_train(TrialInputs *in, TrainState *st, const TrainSpec *spec, const TrainHooks *hooks, CtError *err) {
    return trial_resume(in, st, spec, hooks, NULL, 0, err);
}
