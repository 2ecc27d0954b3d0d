/*
 * keep.c — the kept weights on the trainer's side (keep.h).
 */
#include "train/keep.h"

#include <stdlib.h>
#include <string.h>

#include "results/selection.h"
#include "train/trainer.h"


// ---- the snapshot ----

static size_t std_dim(const TrainState *st) {
    if (st->tail) return st->tail->std_mean ? st->tail->feat : 0;
    return st->head.mean ? st->head.spec.in_dim : 0;
}

static size_t param_count(const TrainState *st) { return st->tail ? st->tail->n_params : st->head.n_params; }

size_t train_keep_floats(const TrainState *st) { return param_count(st) + 2 * std_dim(st); }

void train_keep_table(const TrainState *st, KeptWeights *w) {
    memset(w, 0, sizeof *w);
    if (st->tail) {
        for (size_t i = 0; i < st->tail->n_tensors; i++) {
            const TailTensor *t = &st->tail->tensors[i];
            kept_weights_add(w, t->name, t->ndim, t->shape);
        }
    } else {
        const Head *h = &st->head;
        for (size_t l = 0; l < h->n_lin; l++) {
            char name[48];
            snprintf(name, sizeof name, "head.%zu.weight", l);
            kept_weights_add(w, name, 2, (const size_t[2]){h->dim[l + 1], h->dim[l]});
            snprintf(name, sizeof name, "head.%zu.bias", l);
            kept_weights_add(w, name, 1, &h->dim[l + 1]);
        }
    }
    size_t D = std_dim(st);
    if (D) {
        kept_weights_add(w, "head.standardize.mean", 1, &D);
        kept_weights_add(w, "head.standardize.inv_std", 1, &D);
    }
    if (w->n_floats != train_keep_floats(st)) fatal("kept weights: the table holds %zu floats, the state %zu",
                                                    w->n_floats, train_keep_floats(st));
}

// n floats of backend memory into out, a chunk at a time through host memory.
void train_keep_put(const TrainState *st, Buf *out) {
    size_t D = std_dim(st);
    if (st->tail) {
        const Tail *t = st->tail;
        tail_put_host(t, out, t->params, t->n_params);
        if (D) {
            tail_put_host(t, out, t->std_mean, D);
            tail_put_host(t, out, t->std_inv, D);
        }
        return;
    }
    buf_put(out, st->head.params, st->head.n_params * sizeof(float));
    if (D) {
        buf_put(out, st->head.mean, D * sizeof(float));
        buf_put(out, st->head.inv_std, D * sizeof(float));
    }
}

// The current snapshot into dst (train_keep_floats of them).
static void snapshot(const TrainState *st, float *dst) {
    size_t D = std_dim(st), n = param_count(st);
    if (st->tail) {
        const Tail *t = st->tail;
        t->ops->download(dst, t->params, n * sizeof(float));
        if (D) {
            t->ops->download(dst + n, t->std_mean, D * sizeof(float));
            t->ops->download(dst + n + D, t->std_inv, D * sizeof(float));
        }
        return;
    }
    memcpy(dst, st->head.params, n * sizeof(float));
    if (D) {
        memcpy(dst + n, st->head.mean, D * sizeof(float));
        memcpy(dst + n + D, st->head.inv_std, D * sizeof(float));
    }
}

// ---- the selected epoch ----

int train_keep_init(TrainState *st, int keep, CtError *err) {
    st->keep = keep;
    st->sel_epoch = 0;
    st->sel_lost = 0;
    st->sel = NULL;
    st->n_sel = 0;
    if (!(keep & KEEP_SELECTED)) return 0;
    st->n_sel = train_keep_floats(st);
    st->sel = malloc(st->n_sel ? st->n_sel * sizeof(float) : 1);
    if (!st->sel) return ct_errorf(err, "out of memory for a copy of the weights (%zu MiB, train.keep_weights)",
                                   st->n_sel >> 18);
    return 0;
}

void train_keep_free(TrainState *st) {
    free(st->sel);
    st->sel = NULL;
    st->n_sel = 0;
}

void train_keep_epoch(TrainState *st, const EpochRecord *r) {
    if (st->sel_epoch && !selection_better(r->val_auc, r->val_loss, st->sel_auc, st->sel_loss)) return;
    st->sel_epoch = r->epoch;
    st->sel_auc = r->val_auc;
    st->sel_loss = r->val_loss;
    st->sel_lost = 0;
    if (st->sel) snapshot(st, st->sel);
}

#define KEEP_MAGIC 0x5045454bu  // "KEEP"

void train_keep_save(const TrainState *st, Buf *out) {
    buf_put_u64(out, KEEP_MAGIC);
    buf_put_u64(out, st->sel_epoch);
    buf_put_f64(out, st->sel_auc);
    buf_put_f64(out, st->sel_loss);
    buf_put_u64(out, (uint64_t)st->sel_lost);
    int copy = st->sel && st->sel_epoch && !st->sel_lost;
    buf_put_u64(out, copy ? st->n_sel : 0);
    if (copy) buf_put(out, st->sel, st->n_sel * sizeof(float));
}

int train_keep_load(TrainState *st, Rd *r, CtError *err) {
    if (r->off == r->n) {  // a checkpoint from before weights were kept
        st->sel_epoch = 0;
        st->sel_lost = st->epoch > 0;
        return 0;
    }
    if (rd_u64(r) != KEEP_MAGIC) return ct_errorf(err, "checkpoint: unknown section after the training state");
    st->sel_epoch = (size_t)rd_u64(r);
    st->sel_auc = rd_f64(r);
    st->sel_loss = rd_f64(r);
    st->sel_lost = rd_u64(r) != 0;
    uint64_t n = rd_u64(r);
    if (r->bad || (n && n != train_keep_floats(st)) || n > (r->n - r->off) / sizeof(float))
        return ct_errorf(err, "checkpoint: the kept weights hold %llu values, the trial has %zu", (unsigned long long)n,
                         train_keep_floats(st));
    const void *p = rd_view(r, (size_t)n * sizeof(float));
    if (st->sel && n) memcpy(st->sel, p, (size_t)n * sizeof(float));
    // Selected weights wanted now but not saved then (keep_weights was none
    // or final): the epoch is known, its weights are not.
    if (st->sel && !n && st->sel_epoch) st->sel_lost = 1;
    return 0;
}
