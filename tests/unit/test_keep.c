/*
 * test_keep.c — the weights a trial keeps (train/keep.h), on a small head
 * trained on synthetic features: at the budget the kept copy is the
 * parameters (and standardisation statistics) of the epoch that
 * selection_epoch picks from the epoch records, bit for bit; a run stopped
 * mid-epoch and resumed from its saved state keeps the same copy and ends
 * with the same parameters; a saved state without the keep section (an
 * older checkpoint) loads, its selected weights marked lost.
 */
#include <stdlib.h>
#include <string.h>

#include "results/selection.h"
#include "train/keep.h"
#include "train/trainer.h"
#include "util/rng.h"
#include "check.h"

#define D 6
#define NTR 40
#define NVA 20
#define NTE 10
#define EPOCHS 8

static float xtr[NTR * D], xva[NVA * D], xte[NTE * D];
static uint8_t ytr[NTR], yva[NVA], yte[NTE];

static const float *view(void *ctx, uint32_t v, CtError *err) {
    (void)ctx, (void)v, (void)err;
    return xtr;
}

static void make_split(float *x, uint8_t *y, size_t n, uint32_t purpose) {
    RngStream rs;
    rng_stream_init(&rs, 7, purpose, 0, 0, 0);
    for (size_t i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % 2);
        for (size_t j = 0; j < D; j++) x[i * D + j] = (float)(rng_normal(&rs) + (y[i] ? 0.6 : 0.0) * (j < 3));
    }
}

typedef struct {
    EpochRecord rec[EPOCHS];
    Buf snap[EPOCHS];  // the parameters after each epoch (train_keep_put)
    size_t n;
    TrainState *st;
    long stop_at;      // should_stop answers yes at this poll (-1 never)
    long polls;
    int budget_ok;
} Ctx;

static int on_epoch(void *c, const EpochRecord *r, const double *lr, size_t n_iters, const float *vp, const float *tp,
                    CtError *err) {
    (void)lr, (void)n_iters, (void)vp, (void)tp, (void)err;
    Ctx *x = c;
    x->rec[r->epoch - 1] = *r;
    buf_reset(&x->snap[r->epoch - 1]);
    train_keep_put(x->st, &x->snap[r->epoch - 1]);
    x->n = r->epoch;
    return 0;
}

static int on_budget(void *c, size_t budget, const float *tp, size_t best, double acc, CtError *err) {
    (void)tp, (void)best, (void)acc, (void)err;
    Ctx *x = c;
    size_t sel = selection_epoch(x->rec, budget);
    x->budget_ok = x->st->sel_epoch == sel && x->st->sel && !x->st->sel_lost &&
                   x->snap[sel - 1].n == x->st->n_sel * sizeof(float) &&
                   memcmp(x->snap[sel - 1].p, x->st->sel, x->snap[sel - 1].n) == 0;
    return 0;
}

static int should_stop(void *c) {
    Ctx *x = c;
    return x->stop_at >= 0 && x->polls++ == x->stop_at;
}

static void setup(TrainState *st, TrainSpec *spec, TrainData *data, Ctx *ctx, TrainHooks *hooks) {
    memset(spec, 0, sizeof *spec);
    spec->head = (HeadSpec){.in_dim = D, .hidden = {5}, .n_hidden = 1, .dropout = 0.0, .standardize = 1};
    adam_spec_default(&spec->adam);
    spec->clr = (ClrSpec){.mode = CLR_CONSTANT, .base_lr = 0.08, .max_lr = 0.08, .step_size = 5};
    spec->batch_size = 8;
    spec->budgets[0] = EPOCHS;
    spec->n_budgets = 1;
    spec->seed = 3;
    spec->keep_weights = KEEP_BOTH;
    *data = (TrainData){.dim = D, .n_train = NTR, .n_val = NVA, .n_test = NTE, .y_train = ytr, .y_val = yva,
                        .y_test = yte, .val = xva, .test = xte, .aug_views = 1, .train_view = view};
    CtError err = {{0}};
    CHECK(train_state_init(st, spec, data, &err) == 0, "train_state_init: %s", err.msg);
    head_fit_standardize(&st->head, xtr, NTR);
    memset(ctx, 0, sizeof *ctx);
    ctx->st = st;
    ctx->stop_at = -1;
    *hooks = (TrainHooks){.on_epoch = on_epoch, .on_budget = on_budget, .should_stop = should_stop, .ctx = ctx};
}

static void ctx_free(Ctx *c) {
    for (int e = 0; e < EPOCHS; e++) buf_free(&c->snap[e]);
}

int main(void) {
    make_split(xtr, ytr, NTR, 101);
    make_split(xva, yva, NVA, 102);
    make_split(xte, yte, NTE, 103);
    // Uninterrupted.
    TrainState a;
    TrainSpec spec;
    TrainData data;
    Ctx ca;
    TrainHooks ha;
    setup(&a, &spec, &data, &ca, &ha);
    CtError err = {{0}};
    CHECK(train_run(&a, &spec, &data, &ha, &err) == 0, "train_run: %s", err.msg);
    CHECK(ca.budget_ok, "the kept copy is not the selected epoch's parameters (kept epoch %zu, the rule's %zu)",
          a.sel_epoch, selection_epoch(ca.rec, EPOCHS));
    printf("selected epoch %zu of %d\n", a.sel_epoch, EPOCHS);
    KeptWeights table;
    train_keep_table(&a, &table);
    CHECK(table.n_tensors == 6 && strcmp(table.tensors[0].name, "head.0.weight") == 0 &&
              table.tensors[0].shape[0] == 5 && table.tensors[0].shape[1] == D &&
              strcmp(table.tensors[5].name, "head.standardize.inv_std") == 0 && table.n_floats == a.n_sel,
          "the tensor table: %zu tensors, %zu values", table.n_tensors, table.n_floats);
    kept_weights_free(&table);
    // Stopped mid-run (in epoch 3, and in epoch 7: after the selected epoch,
    // whose copy then comes through the saved state), saved, resumed in a new state.
    TrainState b, c;
    Ctx cb, cc;
    TrainHooks hb, hc;
    Buf saved = {0};
    const long stops[2] = {2 * 5 + 3, 6 * 5 + 2};  // 5 batches an epoch
    for (int k = 0; k < 2; k++) {
        if (k) {
            train_state_free(&b);
            train_state_free(&c);
            ctx_free(&cb);
            ctx_free(&cc);
        }
        setup(&b, &spec, &data, &cb, &hb);
        cb.stop_at = stops[k];
        CHECK(train_run(&b, &spec, &data, &hb, &err) == 1, "the run did not stop");
        buf_reset(&saved);
        train_state_save(&b, &saved);
        setup(&c, &spec, &data, &cc, &hc);
        memcpy(cc.rec, cb.rec, sizeof cb.rec);  // the records the master holds
        CHECK(train_state_load(&c, saved.p, saved.n, &err) == 0, "train_state_load: %s", err.msg);
        CHECK(c.sel_epoch == b.sel_epoch && c.sel_epoch > 0 && memcmp(c.sel, b.sel, c.n_sel * sizeof(float)) == 0,
              "the kept copy after the load differs");
        CHECK(train_run(&c, &spec, &data, &hc, &err) == 0, "resumed train_run: %s", err.msg);
        // (the second run's own snapshots begin after the stop: its copy is
        // checked against the uninterrupted run's, checked above)
        CHECK((k == 1 || cc.budget_ok) && c.sel_epoch == a.sel_epoch && memcmp(c.sel, a.sel, a.n_sel * sizeof(float)) == 0 &&
                  memcmp(c.head.params, a.head.params, a.head.n_params * sizeof(float)) == 0,
              "resumed from epoch %zu: kept epoch %zu (uninterrupted %zu), bits differ", b.epoch + 1, c.sel_epoch,
              a.sel_epoch);
        printf("stopped in epoch %zu (kept epoch then %zu), resumed: kept epoch %zu\n", b.epoch + 1, b.sel_epoch,
               c.sel_epoch);
    }
    // A state saved before weights were kept: the keep section cut off.
    TrainState d;
    Ctx cd;
    TrainHooks hd;
    setup(&d, &spec, &data, &cd, &hd);
    size_t section = 6 * sizeof(uint64_t) + b.n_sel * sizeof(float);
    CHECK(train_state_load(&d, saved.p, saved.n - section, &err) == 0 && d.sel_lost && d.sel_epoch == 0,
          "an older state: %s, lost %d", err.msg, d.sel_lost);
    CHECK(train_state_load(&d, saved.p, saved.n - 3, &err) != 0, "a truncated keep section accepted");
    buf_free(&saved);
    train_state_free(&a);
    train_state_free(&b);
    train_state_free(&c);
    train_state_free(&d);
    ctx_free(&ca);
    ctx_free(&cb);
    ctx_free(&cc);
    ctx_free(&cd);
    return check_summary();
}
