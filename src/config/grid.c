/*
 * grid.c — grid expansion, trial ids and runs.
 */
#include "config/grid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "nn/models.h"
#include "train/head.h"
#include "util/sha256.h"
#include "util/util.h"

// Everything every trial shares that changes results. Any change here gives
// every trial a new id, so a resumed sweep never reuses a stale result.
// Without weights files the bytes are format 1's (GRID_V1_WEIGHT_SLOTS empty
// paths at the end); with them, the text says v2 and each trial hashes its
// own model's weights (trial_weights).
static void shared_hash(char out[65], const Grid *g, const SweepConfig *c, const char *fingerprint) {
    Sha256 h;
    sha256_init(&h);
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "ctsweep-trial-v%d|data=%s|size=%zu|norm=%d|aug=",
                     g->weights_named ? GRID_ID_FORMAT : GRID_ID_FORMAT_PATHS, fingerprint, c->image_size,
                     (int)c->normalize);
    sha256_update(&h, buf, (size_t)n);
    augment_spec_hash(&h, &c->augment, 1);
    n = snprintf(buf, sizeof buf, "|aug_seed=%llu|head_hidden_set=%d|head_dropout_set=%d|hidden=",
                 (unsigned long long)c->augment_seed, c->head_hidden_set, c->head_dropout_set);
    sha256_update(&h, buf, (size_t)n);
    for (size_t i = 0; i < c->head.n_hidden; i++) {
        n = snprintf(buf, sizeof buf, "%zu,", c->head.hidden[i]);
        sha256_update(&h, buf, (size_t)n);
    }
    n = snprintf(buf, sizeof buf, "|dropout=%.17g|standardize=%d|opt=%d,%.17g,%.17g,%.17g,%.17g|store=%d|prec=%d|bseed=%llu|",
                 c->head.dropout, c->head.standardize, (int)c->adam.kind, c->adam.weight_decay, c->adam.beta1,
                 c->adam.beta2, c->adam.eps, (int)c->feature_store, (int)c->backend.precision,
                 (unsigned long long)c->backbone_seed);
    sha256_update(&h, buf, (size_t)n);
    if (c->backend.conv_algo != CONV_ALGO_AUTO) {  // auto keeps the ids it always had
        n = snprintf(buf, sizeof buf, "algo=%d|", (int)c->backend.conv_algo);
        sha256_update(&h, buf, (size_t)n);
    }
    if (!g->weights_named)
        for (size_t m = 0; m < GRID_V1_WEIGHT_SLOTS; m++) sha256_update(&h, "", 1);
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_hex(d, 32, out);
}

// ---- weights ----

// The content digest of each grid model's weights file, once per grid.
static int grid_weights(Grid *g, const SweepConfig *c, CtError *err) {
    for (size_t m = 0; m < CONFIG_MAX_MODELS; m++) g->weights_named |= c->weights[m][0] != '\0';
    g->n_models = c->n_models;
    for (size_t m = 0; m < c->n_models; m++) {
        snprintf(g->weights_model[m], sizeof g->weights_model[m], "%s", c->models[m]);
        const char *path = config_weights(c, c->models[m]);
        if (path[0] && weights_digest(path, g->weights_sha256[m], err))
            return ct_error_prefix(err, "%s: weights.%s", c->path, c->models[m]);
    }
    return 0;
}

// Format 2: the trial's own model's weights join its canonical text.
static void trial_weights(GridTrial *tr, const Grid *g) {
    if (!g->weights_named) return;
    const char *d = grid_weights_sha256(g, tr->model);
    size_t used = strlen(tr->canonical);
    snprintf(tr->canonical + used, sizeof tr->canonical - used, "|weights=%s", d[0] ? d : "random");
}

const char *grid_weights_sha256(const Grid *g, const char *model) {
    for (size_t m = 0; m < g->n_models; m++)
        if (strcmp(g->weights_model[m], model) == 0) return g->weights_sha256[m];
    return "";
}

static double expected_cost(const ModelShape *m, size_t epochs, size_t batch, double tail_macs) {
    // Head work per epoch is about proportional to the feature size; the
    // backbone pass is shared through the cache, so it does not count here.
    // An unfrozen tail's forward and backward (three times its forward) in
    // the same units (a head does about 512 multiply-adds per feature).
    return (double)m->numel * (double)epochs * (1.0 + 8.0 / (double)batch) + 3.0 * tail_macs * (double)epochs / 512.0;
}

// Multiply-adds of the tail of each (model, unfreeze) of the grid, and the
// values per image its cache entries hold.
static int grid_tail_costs(double *macs, size_t *cut_numel, const SweepConfig *c, CtError *err) {
    for (size_t m = 0; m < c->n_models; m++)
        for (size_t u = 0; u < c->n_unfreeze; u++) {
            size_t k = m * c->n_unfreeze + u;
            if (model_tail_cost(c->models[m], (int)c->unfreeze[u], c->image_size, c->image_size, &macs[k],
                                &cut_numel[k], err))
                return ct_error_prefix(err, "grid: model %s, unfreeze %zu", c->models[m], c->unfreeze[u]);
            if (c->unfreeze[u] == 0) macs[k] = 0.0;  // the final pool alone: nothing to speak of
        }
    return 0;
}

// The output shape and multiply-adds of each grid model at the configured
// image size, from the registry's graphs, once per grid.
static int grid_shapes(ModelShape *shapes, const SweepConfig *c, CtError *err) {
    for (size_t m = 0; m < c->n_models; m++)
        if (model_shape(c->models[m], c->image_size, c->image_size, &shapes[m], err)) {
            ct_error_prefix(err, "grid: model %s at %zu px", c->models[m], c->image_size);
            return -1;
        }
    return 0;
}

static const ModelShape *shape_of(const ModelShape *shapes, const SweepConfig *c, const char *model) {
    for (size_t m = 0; m < c->n_models; m++)
        if (strcmp(c->models[m], model) == 0) return &shapes[m];
    fatal("grid: run model %s is not in grid.model", model);
}

// For slicing, where each slice computes the features of every model it
// holds: multiply-adds of the run's head training plus an even share of its
// model's backbone passes (train views, val and test, taken as half the
// training set), the backbone's counted from its graph at the image size.
static void slice_costs(Grid *g, const SweepConfig *c, const ModelShape *shapes, size_t n_train) {
    // (an unfrozen tail's forward and backward are in run->tail_macs)
    double views = c->augment.aug_views > 1 ? (double)c->augment.aug_views : 1.0;
    for (size_t r = 0; r < g->n_runs; r++) {
        GridRun *run = &g->runs[r];
        const ModelShape *m = shape_of(shapes, c, run->model);
        // The grid is a product: every model has n_runs / n_models runs.
        double backbone = m->macs * (double)n_train * (views + 0.5) * (double)c->n_models / (double)g->n_runs;
        HeadSpec h = c->head;
        if (!c->head_hidden_set) head_spec_default(&h, run->model, 0);
        double in = (double)m->numel, macs = 0.0;
        for (size_t k = 0; k < h.n_hidden; k++) {
            macs += in * (double)h.hidden[k];
            in = (double)h.hidden[k];
        }
        macs += in * 2.0;
        run->slice_cost = backbone + 3.0 * (macs + run->tail_macs) * (double)n_train * (double)run->epochs;
    }
}

int grid_build(Grid *g, const SweepConfig *c, const char *fingerprint, size_t n_train, CtError *err) {
    memset(g, 0, sizeof *g);
    if (grid_weights(g, c, err)) return -1;
    shared_hash(g->shared_hash, g, c, fingerprint);
    size_t n_folds = c->data.kfold ? c->data.kfold : 1;
    size_t n = c->n_models * c->n_unfreeze * c->n_batch_sizes * c->n_clr * c->n_seeds * n_folds * c->n_epochs;
    if (n == 0) return ct_errorf(err, "grid: empty");
    ModelShape shapes[CONFIG_MAX_LIST];
    if (grid_shapes(shapes, c, err)) return -1;
    double *tail_macs = ct_calloc(c->n_models * c->n_unfreeze, sizeof *tail_macs);
    size_t *cut_numel = ct_calloc(c->n_models * c->n_unfreeze, sizeof *cut_numel);
    if (grid_tail_costs(tail_macs, cut_numel, c, err)) {
        free(tail_macs);
        free(cut_numel);
        return -1;
    }
    size_t store_bytes = c->feature_store == FSTORE_FP32 ? 4 : 2;
    g->trials = ct_calloc(n, sizeof *g->trials);
    g->runs = ct_calloc(n, sizeof *g->runs);
    size_t t = 0;
    for (size_t mu = 0; mu < c->n_models * c->n_unfreeze; mu++)  // model, then unfreeze
        for (size_t bi = 0; bi < c->n_batch_sizes; bi++)
            for (size_t ci = 0; ci < c->n_clr; ci++)
                for (size_t sf = 0; sf < c->n_seeds * n_folds; sf++) {  // seed, then fold
                    size_t si = sf / n_folds, fi = sf % n_folds, mi = mu / c->n_unfreeze;
                    int unfreeze = (int)c->unfreeze[mu % c->n_unfreeze];
                    int fold = c->data.kfold ? (int)fi : -1;
                    // Budgets ascending; a length-dependent schedule gets a run per budget.
                    size_t order[CONFIG_MAX_LIST];
                    for (size_t e = 0; e < c->n_epochs; e++) order[e] = e;
                    for (size_t a = 1; a < c->n_epochs; a++)
                        for (size_t b = a; b > 0 && c->epochs[order[b]] < c->epochs[order[b - 1]]; b--) {
                            size_t tmp = order[b];
                            order[b] = order[b - 1];
                            order[b - 1] = tmp;
                        }
                    int split = clr_depends_on_length(c->clr[ci].mode);
                    GridRun *run = NULL;
                    for (size_t k = 0; k < c->n_epochs; k++) {
                        if (!run || split) {
                            run = &g->runs[g->n_runs];
                            run->index = g->n_runs++;
                            snprintf(run->model, sizeof run->model, "%s", c->models[mi]);
                            run->batch_size = c->batch_sizes[bi];
                            run->clr = c->clr[ci];
                            run->seed = c->seeds[si];
                            run->fold = fold;
                            run->unfreeze = unfreeze;
                            run->tail_macs = tail_macs[mu];
                        }
                        GridTrial *tr = &g->trials[t];
                        tr->index = t;
                        tr->run = run->index;
                        snprintf(tr->model, sizeof tr->model, "%s", c->models[mi]);
                        tr->batch_size = c->batch_sizes[bi];
                        tr->epochs = c->epochs[order[k]];
                        tr->clr_index = ci;
                        tr->clr = c->clr[ci];
                        tr->seed = c->seeds[si];
                        tr->fold = fold;
                        tr->unfreeze = unfreeze;
                        tr->backbone_lr_scale = c->backbone_lr_scale;
                        tr->cache_bytes_per_image = cut_numel[mu] * store_bytes;
                        const ClrSpec *s = &tr->clr;
                        snprintf(tr->canonical, sizeof tr->canonical,
                                 "model=%s|batch=%zu|epochs=%zu|clr=%s,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g|seed=%llu",
                                 tr->model, tr->batch_size, tr->epochs, clr_mode_name(s->mode), s->base_lr, s->max_lr,
                                 s->step_size, s->step_size_down, s->step_size_epochs, s->gamma,
                                 (unsigned long long)tr->seed);
                        if (fold >= 0) {
                            size_t used = strlen(tr->canonical);
                            snprintf(tr->canonical + used, sizeof tr->canonical - used, "|fold=%d", fold);
                        }
                        if (unfreeze > 0) {
                            size_t used = strlen(tr->canonical);
                            snprintf(tr->canonical + used, sizeof tr->canonical - used,
                                     "|unfreeze=%d|backbone_lr_scale=%.17g", unfreeze, c->backbone_lr_scale);
                        }
                        trial_weights(tr, g);
                        Sha256 h;
                        sha256_init(&h);
                        sha256_update(&h, g->shared_hash, 64);
                        sha256_update(&h, tr->canonical, strlen(tr->canonical));
                        uint8_t d[32];
                        sha256_final(&h, d);
                        sha256_hex(d, TRIAL_ID_HEX / 2, tr->id);
                        run->trials[run->n_trials++] = t;
                        run->epochs = tr->epochs;
                        run->cost = expected_cost(shape_of(shapes, c, run->model), run->epochs, run->batch_size,
                                                  run->tail_macs);
                        t++;
                    }
                }
    g->n_trials = t;
    free(tail_macs);
    free(cut_numel);
    slice_costs(g, c, shapes, n_train);
    for (size_t i = 0; i < t; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(g->trials[i].id, g->trials[j].id) == 0)
                return ct_errorf(err, "grid: trials %zu and %zu have the same id %s", j, i, g->trials[i].id);
    return 0;
}

void grid_free(Grid *g) {
    free(g->trials);
    free(g->runs);
    memset(g, 0, sizeof *g);
}

void grid_slice(Grid *g, size_t i, size_t n) {
    size_t *run_map = ct_calloc(g->n_runs ? g->n_runs : 1, sizeof *run_map);
    size_t *trial_map = ct_calloc(g->n_trials ? g->n_trials : 1, sizeof *trial_map);
    size_t nr = 0, nt = 0;
    // Each run goes to the slice that holds the middle of its share of the
    // work: every slice's stretch is as close to total/n as whole runs allow.
    double total = 0.0, before = 0.0;
    for (size_t r = 0; r < g->n_runs; r++) total += g->runs[r].slice_cost;
    for (size_t r = 0; r < g->n_runs; r++) {
        size_t k = total > 0.0 ? (size_t)((before + 0.5 * g->runs[r].slice_cost) / total * (double)n) : 0;
        before += g->runs[r].slice_cost;
        run_map[r] = (k < n ? k : n - 1) == i ? nr++ : SIZE_MAX;
    }
    for (size_t t = 0; t < g->n_trials; t++) {
        GridTrial tr = g->trials[t];
        if (run_map[tr.run] == SIZE_MAX) continue;
        trial_map[t] = nt;
        tr.index = nt;
        tr.run = run_map[tr.run];
        g->trials[nt++] = tr;
    }
    for (size_t r = 0; r < g->n_runs; r++) {
        if (run_map[r] == SIZE_MAX) continue;
        GridRun run = g->runs[r];
        run.index = run_map[r];
        for (size_t k = 0; k < run.n_trials; k++) run.trials[k] = trial_map[run.trials[k]];
        g->runs[run.index] = run;
    }
    g->n_runs = nr;
    g->n_trials = nt;
    g->slice = i;
    g->n_slices = n;
    free(run_map);
    free(trial_map);
}

void grid_slice_label(const Grid *g, char *buf, size_t cap) {
    if (g->n_slices) snprintf(buf, cap, "%zu/%zu", g->slice, g->n_slices);
    else if (cap) buf[0] = '\0';
}

int grid_slice_parse(const char *s, size_t *i, size_t *n) {
    unsigned long long a, b;
    int used = 0;
    if (!s || s[0] < '0' || s[0] > '9' || sscanf(s, "%llu/%llu%n", &a, &b, &used) != 2 || s[used] != '\0' || b == 0 ||
        a >= b || b > GRID_MAX_SLICES)
        return -1;
    *i = (size_t)a;
    *n = (size_t)b;
    return 0;
}

long grid_find(const Grid *g, const char *id) {
    for (size_t i = 0; i < g->n_trials; i++)
        if (strcmp(g->trials[i].id, id) == 0) return (long)i;
    return -1;
}

void grid_print(FILE *f, const Grid *g) {
    int folds = g->n_trials && g->trials[0].fold >= 0, tails = 0;
    for (size_t i = 0; i < g->n_trials; i++) tails |= g->trials[i].unfreeze > 0;
    fprintf(f, "%-16s  %-8s %s%5s %6s  %-11s %9s %9s %7s  %4s  %s%s\n", "trial", "model", tails ? "unfreeze " : "",
            "batch", "epochs", "schedule", "base_lr", "max_lr", "step", "seed", folds ? "fold  " : "", "run");
    for (size_t i = 0; i < g->n_trials; i++) {
        const GridTrial *t = &g->trials[i];
        double step = t->clr.step_size > 0 ? t->clr.step_size : t->clr.step_size_epochs;
        char fold[16] = "", unfreeze[16] = "";
        if (folds) snprintf(fold, sizeof fold, "%4d  ", t->fold);
        if (tails) snprintf(unfreeze, sizeof unfreeze, "%8d ", t->unfreeze);
        fprintf(f, "%-16s  %-8s %s%5zu %6zu  %-11s %9.3g %9.3g %6.4g%s  %4llu  %s%zu\n", t->id, t->model, unfreeze,
                t->batch_size, t->epochs, clr_mode_name(t->clr.mode), t->clr.base_lr, t->clr.max_lr, step,
                t->clr.step_size > 0 ? "i" : "e", (unsigned long long)t->seed, fold, t->run);
    }
    fprintf(f, "%zu trials in %zu runs\n", g->n_trials, g->n_runs);
}
