/*
 * trainer.c — the epoch loop of trainer.h.
 */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/models.h"
#include "train/keep.h"
#include "train/metrics.h"
#include "util/rng.h"

// ---- the trainable tail ----

// Plans the tail for batches of up to `rows` rows on the spec's backend,
// its stages from the backbone's weights (or seeded random backbone), its
// head from spec->seed.
static int tail_create(TrainState *st, const TrainSpec *spec, const TrainData *data, size_t rows, CtError *err) {
    const TailSpec *ts = &spec->tail;
    const BackendOps *ops = backend_ops_get(ts->backend, err);
    if (!ops) return -1;
    // The topology only: the tail reads its own stages' weights (the frozen
    // prefix's were read, and any warning given, where the cache was filled).
    NNGraph g;
    if (model_build(&g, ts->model, err)) return -1;
    size_t cut = 0;
    int rc = model_cut_layer(&g, ts->unfreeze, &cut, err);
    st->tail = ct_calloc(1, sizeof *st->tail);
    if (rc == 0) rc = tail_init(st->tail, ops, &g, cut, &spec->head, rows, ts->image_size, ts->image_size,
                                ts->conv_algo, err);
    if (rc == 0 && st->tail->in_numel != data->dim) {
        rc = ct_errorf(err, "%s unfreeze %d: the cut holds %zu values per image, the cached activations %zu",
                       ts->model, ts->unfreeze, st->tail->in_numel, data->dim);
    }
    if (rc == 0) {
        if (ts->weights && ts->weights[0]) rc = tail_load_safetensors(st->tail, &g, ts->weights, err);
        else tail_init_random(st->tail, &g, ts->backbone_seed);
    }
    graph_free(&g);
    if (rc) {
        tail_free(st->tail);  // safe on a tail that failed to plan (it cleans up after itself)
        free(st->tail);
        st->tail = NULL;
        return -1;
    }
    st->tail->input_grad = 0;  // training from cached activations: no gradient at the cut
    tail_reset_head(st->tail, spec->seed);
    return 0;
}

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
    if (spec->tail.unfreeze > 0) {
        if (tail_create(st, spec, data, eval_rows, err)) return -1;
    } else {
        if (head_init(&st->head, &hs, eval_rows, err)) return -1;
        if (adam_init(&st->adam, &spec->adam, st->head.n_params)) {
            head_free(&st->head);
            return ct_errorf(err, "out of memory for the optimiser state");
        }
    }
    st->lr_trace = calloc(st->iters_per_epoch, sizeof *st->lr_trace);
    st->val_prob = calloc(data->n_val, sizeof *st->val_prob);
    st->test_prob = calloc(data->n_test ? data->n_test : 1, sizeof *st->test_prob);
    st->perm = calloc(data->n_train, sizeof *st->perm);
    if (!st->lr_trace || !st->val_prob || !st->test_prob || !st->perm) {
        train_state_free(st);
        return ct_errorf(err, "out of memory for the trainer");
    }
    if (!st->tail) head_reset_params(&st->head, spec->seed);
    if (train_keep_init(st, spec->keep_weights, err)) {
        train_state_free(st);
        return -1;
    }
    st->best_val_acc = -1.0;
    st->initialised = 1;
    return 0;
}

void train_state_free(TrainState *st) {
    if (st->tail) {
        tail_free(st->tail);
        free(st->tail);
    }
    head_free(&st->head);
    adam_free(&st->adam);
    free(st->lr_trace);
    free(st->val_prob);
    free(st->test_prob);
    free(st->perm);
    train_keep_free(st);
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

// ---- the activations at the cut in backend memory (train.gpu_cache_mb) ----

typedef struct {
    const BackendOps *ops;  // NULL: everything is sent from host memory a batch at a time
    size_t budget, used;
    float *val, *test, *train;  // backend copies, or NULL where they did not fit
    size_t train_floats;
    long train_view;  // the view `train` holds, -1 none
} DeviceCache;

static float *dc_keep(DeviceCache *dc, const float *host, size_t floats) {
    size_t bytes;
    if (!dc->ops || floats == 0 || ct_mul_size(&bytes, floats, sizeof(float)) || bytes > dc->budget - dc->used)
        return NULL;
    float *p = dc->ops->alloc(bytes);
    if (!p) return NULL;  // the device is full: spill to host memory
    dc->ops->upload(p, host, bytes);
    dc->used += bytes;
    return p;
}

static void dc_drop(DeviceCache *dc, float **p, size_t floats) {
    if (!*p) return;
    dc->ops->free(*p);
    dc->used -= floats * sizeof(float);
    *p = NULL;
}

// Val and test first (read every epoch), then room for a training view.
static void dc_init(DeviceCache *dc, const TrainState *st, const TrainSpec *spec, const TrainData *data) {
    memset(dc, 0, sizeof *dc);
    dc->train_view = -1;
    if (!st->tail || (st->tail->ops->host_memory && !spec->tail.device_cache_always)) return;
    dc->ops = st->tail->ops;
    dc->budget = spec->tail.device_cache_bytes;
    dc->val = dc_keep(dc, data->val, data->n_val * data->dim);
    if (data->n_test) dc->test = dc_keep(dc, data->test, data->n_test * data->dim);
}

// The epoch's training rows: kept when they fit (in the previous view's room).
static void dc_train_view(DeviceCache *dc, const float *xtr, uint32_t view, size_t floats) {
    if (!dc->ops || (dc->train && dc->train_view == (long)view)) return;
    dc_drop(dc, &dc->train, dc->train_floats);
    dc->train = dc_keep(dc, xtr, floats);
    dc->train_floats = floats;
    dc->train_view = dc->train ? (long)view : -1;
}

static void dc_free(DeviceCache *dc, const TrainData *data) {
    if (!dc->ops) return;
    dc_drop(dc, &dc->val, data->n_val * data->dim);
    dc_drop(dc, &dc->test, data->n_test * data->dim);
    dc_drop(dc, &dc->train, dc->train_floats);
}

// The same through the trainable tail, in batches of its plan's rows, from
// the split's backend copy (dev) or from host memory (x).
static double evaluate_tail(Tail *t, const float *x, const float *dev, const uint8_t *y, size_t n, size_t dim,
                            float *prob, double *acc, CtError *err) {
    double loss_sum = 0;
    size_t correct_sum = 0;
    for (size_t r0 = 0; r0 < n; r0 += t->max_batch) {
        size_t m = n - r0 < t->max_batch ? n - r0 : t->max_batch;
        const float *logits = dev ? tail_forward_rows(t, dev + r0 * dim, m, 0, 0, 0, 0, err)
                                  : tail_forward_host(t, x + r0 * dim, m, 0, 0, 0, 0, err);
        if (!logits) return NAN;
        size_t correct;
        loss_sum += tail_evaluate_rows(t, y + r0, m, &correct, prob + r0);
        correct_sum += correct;
    }
    *acc = (double)correct_sum / (double)n;
    return loss_sum / (double)n;
}

static int params_finite(const TrainState *st) {
    if (st->tail) return tail_params_finite(st->tail);
    const Head *h = &st->head;
    for (size_t i = 0; i < h->n_params; i++)
        if (!isfinite(h->params[i])) return 0;
    return 1;
}

static double evaluate_split(TrainState *st, const float *x, const float *dev, const uint8_t *y, size_t n, size_t dim,
                             float *prob, double *acc, CtError *err) {
    if (st->tail) return evaluate_tail(st->tail, x, dev, y, n, dim, prob, acc, err);
    return evaluate(&st->head, x, y, n, dim, prob, acc);
}

// One training step's forward and backward over this rank's rows
// [lo, hi) of a batch of m: sums[0] the loss sum, sums[1] the correct count.
// The rows are xb (gathered in host memory), or with a backend copy of the
// training view, rows[lo..hi) of dev gathered there.
static int shard_step(TrainState *st, const float *xb, const float *dev, const uint32_t *rows, size_t dim,
                      const uint8_t *yb, size_t lo, size_t hi, size_t m, uint64_t seed, double sums[2],
                      CtError *err) {
    if (st->tail) {
        Tail *t = st->tail;
        tail_zero_grads(t);
        if (hi == lo) return 0;
        const float *logits;
        if (dev) {
            for (size_t k = lo; k < hi; k++)
                t->ops->copy(t->xin + (k - lo) * dim, dev + (size_t)rows[k] * dim, dim * sizeof(float));
            logits = tail_forward_rows(t, t->xin, hi - lo, lo, 1, seed, st->iter, err);
        } else {
            logits = tail_forward_host(t, xb, hi - lo, lo, 1, seed, st->iter, err);
        }
        if (!logits) return -1;
        size_t c;
        sums[0] = tail_backward(st->tail, yb, m, &c, err);
        sums[1] = (double)c;
        return sums[0] < 0 ? -1 : 0;
    }
    Head *h = &st->head;
    head_zero_grads(h);
    if (hi > lo) {
        head_forward_rows(h, xb, hi - lo, lo, 1, seed, st->iter);
        size_t c;
        sums[0] = head_loss_backward_shard(h, yb, hi - lo, m, &c, 1);
        sums[1] = (double)c;
    }
    return 0;
}

// Sums the gradients over the data-parallel group.
static int reduce_grads(TrainState *st, const TrainHooks *hooks, CtError *err) {
    if (!st->tail) {
        hooks->allreduce_f32(hooks->ctx, st->head.grads, st->head.n_params);
        return 0;
    }
    Tail *t = st->tail;
    if (hooks->dp_comm) return t->ops->allreduce_sum(hooks->dp_comm, t->grads, t->n_params, err);
    float *h = ct_try_aligned_alloc(t->n_params ? t->n_params : 1, sizeof *h);
    if (!h) return ct_errorf(err, "out of memory for %zu MiB of gradients", t->n_params * 4 >> 20);
    t->ops->download(h, t->grads, t->n_params * sizeof *h);
    hooks->allreduce_f32(hooks->ctx, h, t->n_params);
    t->ops->upload(t->grads, h, t->n_params * sizeof *h);
    ct_aligned_free(h);
    return 0;
}

static void optimiser_step(TrainState *st, const TrainSpec *spec, double lr) {
    if (st->tail) tail_adam_step(st->tail, &spec->adam, lr * spec->tail.backbone_lr_scale, lr);
    else adam_step(&st->adam, st->head.params, st->head.grads, lr);
}

int train_run(TrainState *st, const TrainSpec *spec, const TrainData *data, const TrainHooks *hooks, CtError *err) {
    ClrSpec clr = spec->clr;
    if (clr_resolve(&clr, st->iters_per_epoch, err)) return ct_error_prefix(err, "clr");
    const size_t B = spec->batch_size, D = data->dim, ipe = st->iters_per_epoch;
    const size_t epochs = spec->budgets[spec->n_budgets - 1];
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
    DeviceCache dc;
    dc_init(&dc, st, spec, data);
    int rc = 0;
    while (st->epoch < epochs) {
        size_t e = st->epoch;  // 0-based epoch in progress
        double t0 = ct_now() - st->epoch_t0_offset;
        const float *xtr = data->train_view(data->ctx, (uint32_t)(e % data->aug_views), err);
        if (!xtr) {
            rc = -1;
            break;
        }
        dc_train_view(&dc, xtr, (uint32_t)(e % data->aug_views), data->n_train * D);
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
                if (!dc.train) memcpy(xb + (k - lo) * D, xtr + (size_t)src * D, D * sizeof(float));
                yb[k - lo] = data->y_train[src];
            }
            double lr = clr_lr_at(&clr, st->iter, st->total_iters);
            st->lr_trace[it_in_epoch] = lr;
            double sums[2] = {0, 0};  // loss sum, correct
            if (shard_step(st, xb, dc.train, st->perm + r0, D, yb, lo, hi, m, spec->seed, sums, err)) {
                rc = ct_error_prefix(err, "epoch %zu, iteration %zu", e + 1, it_in_epoch + 1);
                goto out;
            }
            if (dp > 1) {
                if (reduce_grads(st, hooks, err)) {
                    rc = ct_error_prefix(err, "gradient allreduce");
                    goto out;
                }
                hooks->allreduce_f64(hooks->ctx, sums, 2);
            }
            double loss = sums[0] / (double)m;
            size_t correct = (size_t)sums[1];
            if (!isfinite(loss)) {
                rc = ct_errorf(err, "non-finite training loss at epoch %zu, iteration %zu (lr %.3g)", e + 1,
                               it_in_epoch + 1, lr);
                goto out;
            }
            optimiser_step(st, spec, lr);
            st->run_loss_sum += loss * (double)m;
            st->run_correct += correct;
            st->run_seen += m;
            st->iter++;
        }
        if (!params_finite(st)) {
            rc = ct_errorf(err, "non-finite weights after epoch %zu", e + 1);
            break;
        }
        EpochRecord r = {0};
        r.epoch = e + 1;
        r.lr = st->lr_trace[ipe - 1];
        r.train_loss = st->run_loss_sum / (double)st->run_seen;
        r.train_acc = (double)st->run_correct / (double)st->run_seen;
        r.val_loss = evaluate_split(st, data->val, dc.val, data->y_val, data->n_val, D, st->val_prob, &r.val_acc, err);
        if (isnan(r.val_loss) && err->msg[0]) {
            rc = -1;
            break;
        }
        r.val_auc = metrics_auc(st->val_prob, data->y_val, data->n_val);
        if (!isfinite(r.val_loss)) {
            rc = ct_errorf(err, "non-finite val loss after epoch %zu", e + 1);
            break;
        }
        train_keep_epoch(st, &r);
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
        if (data->n_test &&
            isnan(evaluate_split(st, data->test, dc.test, data->y_test, data->n_test, D, st->test_prob, &test_acc, err)) &&
            err->msg[0]) {
            rc = -1;
            break;
        }
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
    dc_free(&dc, data);
    ct_aligned_free(xb);
    free(yb);
    return rc;
}

// ---- checkpoints ----

#define STATE_MAGIC 0x31545343u       // "CST1": a head
#define STATE_MAGIC_TAIL 0x32545343u  // "CST2": a trainable tail and its head

void train_state_save(const TrainState *st, Buf *out) {
    buf_put_u64(out, st->tail ? STATE_MAGIC_TAIL : STATE_MAGIC);
    buf_put_u64(out, st->tail ? st->tail->n_params : st->head.n_params);
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
    if (st->tail) {
        tail_state_save(st->tail, out);
    } else {
        buf_put(out, st->head.params, st->head.n_params * sizeof(float));
        buf_put(out, st->adam.m, st->head.n_params * sizeof(float));
        buf_put(out, st->adam.v, st->head.n_params * sizeof(float));
    }
    train_keep_save(st, out);
}

int train_state_load(TrainState *st, const void *blob, size_t len, CtError *err) {
    Rd r;
    rd_init(&r, blob, len);
    uint64_t magic = rd_u64(&r);
    if (magic != STATE_MAGIC && magic != STATE_MAGIC_TAIL) return ct_errorf(err, "checkpoint: not a training state");
    if ((magic == STATE_MAGIC_TAIL) != (st->tail != NULL))
        return ct_errorf(err, "checkpoint: the state of %s, this trial trains %s",
                         magic == STATE_MAGIC_TAIL ? "unfrozen stages" : "a head alone",
                         st->tail ? "unfrozen stages" : "a head alone");
    uint64_t n = rd_u64(&r);
    size_t have = st->tail ? st->tail->n_params : st->head.n_params;
    if (n != have)
        return ct_errorf(err, "checkpoint: %llu parameters, the trial has %zu", (unsigned long long)n, have);
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
    if (st->tail) {
        if (tail_state_load(st->tail, &r, err)) return -1;
    } else {
        rd_get(&r, st->head.params, n * sizeof(float));
        rd_get(&r, st->adam.m, n * sizeof(float));
        rd_get(&r, st->adam.v, n * sizeof(float));
    }
    if (r.bad) return ct_errorf(err, "checkpoint: truncated training state");
    if (train_keep_load(st, &r, err)) return -1;
    if (r.bad || r.off != r.n) return ct_errorf(err, "checkpoint: truncated or oversized training state");
    return 0;
}
