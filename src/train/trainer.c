/*
 * trainer.c — the epoch loop of trainer.h.
 */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/metrics.h"
#include "util/rng.h"

int train_state_init(TrainState *st, const TrainSpec *spec, const TrainData *data, CtError *err) {
    memset(st, 0, sizeof *st);
    if (spec->batch_size == 0) return ct_errorf(err, "batch_size must be at least 1");
    if (spec->n_budgets == 0) return ct_errorf(err, "epochs: no epoch budget given");
    for (size_t i = 0; i < spec->n_budgets; i++)
        if (spec->budgets[i] == 0 || (i > 0 && spec->budgets[i] <= spec->budgets[i - 1]))
            return ct_errorf(err, "epochs must be positive and ascending");
    if (clr_depends_on_length(spec->clr.mode) && spec->n_budgets > 1)
        return ct_errorf(err, "clr mode %s depends on the run length: each epoch budget needs its own run",
                         clr_mode_name(spec->clr.mode));
    if (data->n_train == 0 || data->n_val == 0) return ct_errorf(err, "the training and val splits must not be empty");
    if (data->aug_views == 0) return ct_errorf(err, "aug_views must be at least 1");
    if (data->n_train > UINT32_MAX) return ct_errorf(err, "too many training images");
    HeadSpec hs = spec->head;
    hs.in_dim = data->dim;
    st->iters_per_epoch = (data->n_train + spec->batch_size - 1) / spec->batch_size;
    size_t epochs = spec->budgets[spec->n_budgets - 1];
    if (ct_mul_size(&st->total_iters, st->iters_per_epoch, epochs)) return ct_errorf(err, "epochs: too many iterations");
    ClrSpec clr = spec->clr;
    if (clr_resolve(&clr, st->iters_per_epoch, err)) return ct_error_prefix(err, "clr");
    size_t eval_rows = spec->batch_size;
    if (head_init(&st->head, &hs, eval_rows, err)) return -1;
    if (adam_init(&st->adam, &spec->adam, st->head.n_params)) {
        head_free(&st->head);
        return ct_errorf(err, "out of memory for the optimiser state");
    }
    st->lr_trace = calloc(st->iters_per_epoch, sizeof *st->lr_trace);
    st->val_prob = calloc(data->n_val, sizeof *st->val_prob);
    st->test_prob = calloc(data->n_test ? data->n_test : 1, sizeof *st->test_prob);
    st->perm = calloc(data->n_train, sizeof *st->perm);
    if (!st->lr_trace || !st->val_prob || !st->test_prob || !st->perm) {
        train_state_free(st);
        return ct_errorf(err, "out of memory for the trainer");
    }
    head_reset_params(&st->head, spec->seed);
    st->best_val_acc = -1.0;
    st->initialised = 1;
    return 0;
}

void train_state_free(TrainState *st) {
    head_free(&st->head);
    adam_free(&st->adam);
    free(st->lr_trace);
    free(st->val_prob);
    free(st->test_prob);
    free(st->perm);
    memset(st, 0, sizeof *st);
}

// The epoch's order: a Fisher–Yates shuffle keyed by (seed, epoch).
static void epoch_order(uint32_t *perm, size_t n, uint64_t seed, size_t epoch) {
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    RngStream rs;
    rng_stream_init(&rs, seed, RNG_SHUFFLE, (uint32_t)epoch, (uint32_t)((uint64_t)epoch >> 32), 0);
    for (size_t i = n; i > 1; i--) {
        uint32_t j = rng_below(&rs, (uint32_t)i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

// Loss, accuracy and probabilities of the head over a whole split (eval mode).
static double evaluate(Head *h, const float *x, const uint8_t *y, size_t n, size_t dim, float *prob, double *acc) {
    double loss_sum = 0;
    size_t correct_sum = 0;
    for (size_t r0 = 0; r0 < n; r0 += h->max_batch) {
        size_t m = n - r0 < h->max_batch ? n - r0 : h->max_batch;
        head_forward(h, x + r0 * dim, m, 0, 0, 0);
        size_t correct;
        loss_sum += head_loss_backward(h, y + r0, m, &correct, 0) * (double)m;
        correct_sum += correct;
        head_probs(h, m, prob + r0);
    }
    *acc = (double)correct_sum / (double)n;
    return loss_sum / (double)n;
}

static int params_finite(const Head *h) {
    for (size_t i = 0; i < h->n_params; i++)
        if (!isfinite(h->params[i])) return 0;
    return 1;
}

int train_run(TrainState *st, const TrainSpec *spec, const TrainData *data, const TrainHooks *hooks, CtError *err) {
    ClrSpec clr = spec->clr;
    if (clr_resolve(&clr, st->iters_per_epoch, err)) return ct_error_prefix(err, "clr");
    const size_t B = spec->batch_size, D = data->dim, ipe = st->iters_per_epoch;
    const size_t epochs = spec->budgets[spec->n_budgets - 1];
    Head *h = &st->head;
    int dp = hooks && hooks->dp_size > 1 ? hooks->dp_size : 1, dp_rank = dp > 1 ? hooks->dp_rank : 0;
    if (dp > 1 && (!hooks->allreduce_f32 || !hooks->allreduce_f64 || dp_rank < 0 || dp_rank >= dp))
        return ct_errorf(err, "data-parallel training without a valid group");
    // Gathered rows of one batch live in the head's input buffer h[0] is
    // overwritten by forward, so a separate gather buffer is used.
    float *xb = ct_try_aligned_alloc(B * D, sizeof(float));
    uint8_t *yb = malloc(B);
    if (!xb || !yb) {
        ct_aligned_free(xb);
        free(yb);
        return ct_errorf(err, "out of memory for a batch");
    }
    int rc = 0;
    while (st->epoch < epochs) {
        size_t e = st->epoch;  // 0-based epoch in progress
        double t0 = ct_now() - st->epoch_t0_offset;
        const float *xtr = data->train_view(data->ctx, (uint32_t)(e % data->aug_views), err);
        if (!xtr) {
            rc = -1;
            break;
        }
        epoch_order(st->perm, data->n_train, spec->seed, e);
        size_t it_in_epoch = st->iter - e * ipe;
        for (; it_in_epoch < ipe; it_in_epoch++) {
            double stop = hooks && hooks->should_stop && hooks->should_stop(hooks->ctx) ? 1.0 : 0.0;
            if (dp > 1) hooks->allreduce_f64(hooks->ctx, &stop, 1);  // the whole group stops together
            if (stop > 0) {
                st->epoch_t0_offset = ct_now() - t0;
                rc = 1;
                goto out;
            }
            size_t r0 = it_in_epoch * B, m = data->n_train - r0 < B ? data->n_train - r0 : B;
            size_t lo = m * (size_t)dp_rank / (size_t)dp, hi = m * (size_t)(dp_rank + 1) / (size_t)dp;
            for (size_t k = lo; k < hi; k++) {
                uint32_t src = st->perm[r0 + k];
                memcpy(xb + (k - lo) * D, xtr + (size_t)src * D, D * sizeof(float));
                yb[k - lo] = data->y_train[src];
            }
            double lr = clr_lr_at(&clr, st->iter, st->total_iters);
            st->lr_trace[it_in_epoch] = lr;
            head_zero_grads(h);
            double sums[2] = {0, 0};  // loss sum, correct
            if (hi > lo) {
                head_forward_rows(h, xb, hi - lo, lo, 1, spec->seed, st->iter);
                size_t c;
                sums[0] = head_loss_backward_shard(h, yb, hi - lo, m, &c, 1);
                sums[1] = (double)c;
            }
            if (dp > 1) {
                hooks->allreduce_f32(hooks->ctx, h->grads, h->n_params);
                hooks->allreduce_f64(hooks->ctx, sums, 2);
            }
            double loss = sums[0] / (double)m;
            size_t correct = (size_t)sums[1];
            if (!isfinite(loss)) {
                rc = ct_errorf(err, "non-finite training loss at epoch %zu, iteration %zu (lr %.3g)", e + 1,
                               it_in_epoch + 1, lr);
                goto out;
            }
            adam_step(&st->adam, h->params, h->grads, lr);
            st->run_loss_sum += loss * (double)m;
            st->run_correct += correct;
            st->run_seen += m;
            st->iter++;
        }
        if (!params_finite(h)) {
            rc = ct_errorf(err, "non-finite weights after epoch %zu", e + 1);
            break;
        }
        EpochRecord r = {0};
        r.epoch = e + 1;
        r.lr = st->lr_trace[ipe - 1];
        r.train_loss = st->run_loss_sum / (double)st->run_seen;
        r.train_acc = (double)st->run_correct / (double)st->run_seen;
        r.val_loss = evaluate(h, data->val, data->y_val, data->n_val, D, st->val_prob, &r.val_acc);
        r.val_auc = metrics_auc(st->val_prob, data->y_val, data->n_val);
        if (!isfinite(r.val_loss)) {
            rc = ct_errorf(err, "non-finite val loss after epoch %zu", e + 1);
            break;
        }
        if (r.val_acc > st->best_val_acc) {
            st->best_val_acc = r.val_acc;
            st->best_epoch = e + 1;
        }
        r.seconds = ct_now() - t0;
        st->epoch = e + 1;
        st->run_loss_sum = 0;
        st->run_correct = st->run_seen = 0;
        st->epoch_t0_offset = 0;
        double test_acc;
        if (data->n_test) evaluate(h, data->test, data->y_test, data->n_test, D, st->test_prob, &test_acc);
        if (hooks && hooks->on_epoch &&
            hooks->on_epoch(hooks->ctx, &r, st->lr_trace, ipe, st->val_prob, st->test_prob, err)) {
            rc = -1;
            break;
        }
        for (size_t b = 0; b < spec->n_budgets; b++) {
            if (spec->budgets[b] != st->epoch) continue;
            if (hooks && hooks->on_budget &&
                hooks->on_budget(hooks->ctx, st->epoch, st->test_prob, st->best_epoch, st->best_val_acc, err)) {
                rc = -1;
                goto out;
            }
        }
        if (hooks && hooks->epoch_reported) hooks->epoch_reported(hooks->ctx, st->epoch);
    }
out:
    ct_aligned_free(xb);
    free(yb);
    return rc;
}

// ---- checkpoints ----

#define STATE_MAGIC 0x31545343u  // "CST1"

void train_state_save(const TrainState *st, Buf *out) {
    buf_put_u64(out, STATE_MAGIC);
    buf_put_u64(out, st->head.n_params);
    buf_put_u64(out, st->epoch);
    buf_put_u64(out, st->iter);
    buf_put_f64(out, st->run_loss_sum);
    buf_put_u64(out, st->run_correct);
    buf_put_u64(out, st->run_seen);
    buf_put_f64(out, st->epoch_t0_offset);
    buf_put_u64(out, st->best_epoch);
    buf_put_f64(out, st->best_val_acc);
    buf_put_u64(out, st->adam.step);
    buf_put(out, st->lr_trace, st->iters_per_epoch * sizeof *st->lr_trace);
    buf_put(out, st->head.params, st->head.n_params * sizeof(float));
    buf_put(out, st->adam.m, st->head.n_params * sizeof(float));
    buf_put(out, st->adam.v, st->head.n_params * sizeof(float));
}

int train_state_load(TrainState *st, const void *blob, size_t len, CtError *err) {
    Rd r;
    rd_init(&r, blob, len);
    if (rd_u64(&r) != STATE_MAGIC) return ct_errorf(err, "checkpoint: not a training state");
    uint64_t n = rd_u64(&r);
    if (n != st->head.n_params)
        return ct_errorf(err, "checkpoint: %llu parameters, the head has %zu", (unsigned long long)n, st->head.n_params);
    size_t epoch = (size_t)rd_u64(&r), iter = (size_t)rd_u64(&r);
    if (iter < epoch * st->iters_per_epoch || iter > st->total_iters || (iter - epoch * st->iters_per_epoch) > st->iters_per_epoch)
        return ct_errorf(err, "checkpoint: position epoch %zu, iteration %zu does not fit this trial", epoch, iter);
    st->epoch = epoch;
    st->iter = iter;
    st->run_loss_sum = rd_f64(&r);
    st->run_correct = (size_t)rd_u64(&r);
    st->run_seen = (size_t)rd_u64(&r);
    st->epoch_t0_offset = rd_f64(&r);
    st->best_epoch = (size_t)rd_u64(&r);
    st->best_val_acc = rd_f64(&r);
    st->adam.step = rd_u64(&r);
    rd_get(&r, st->lr_trace, st->iters_per_epoch * sizeof *st->lr_trace);
    rd_get(&r, st->head.params, n * sizeof(float));
    rd_get(&r, st->adam.m, n * sizeof(float));
    rd_get(&r, st->adam.v, n * sizeof(float));
    if (r.bad || r.off != r.n) return ct_errorf(err, "checkpoint: truncated or oversized training state");
    return 0;
}
