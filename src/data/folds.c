/*
 * folds.c — grouped, stratified bins (folds.h).
 */
#include "data/folds.h"

#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

// ---- groups as units ----

typedef struct {
    const char *group;
    size_t item;
} Member;

static int cmp_member(const void *pa, const void *pb) {
    const Member *a = pa, *b = pb;
    int c = strcmp(a->group, b->group);
    return c ? c : (a->item > b->item) - (a->item < b->item);
}

size_t folds_units(const DataSet *ds, const uint8_t *member, size_t *unit_of, size_t (**counts)[2]) {
    Member *m = ct_malloc_array(ds->n ? ds->n : 1, sizeof *m);
    size_t nm = 0;
    for (size_t i = 0; i < ds->n; i++) {
        unit_of[i] = SIZE_MAX;
        if (member && !member[i]) continue;
        m[nm].group = ds->items[i].group ? ds->items[i].group : ds->items[i].rel;
        m[nm++].item = i;
    }
    qsort(m, nm, sizeof *m, cmp_member);
    size_t (*c)[2] = ct_calloc(nm ? nm : 1, sizeof *c);
    size_t nu = 0;
    for (size_t k = 0; k < nm; k++) {
        if (k > 0 && strcmp(m[k].group, m[k - 1].group) != 0) nu++;
        unit_of[m[k].item] = nu;
        c[nu][ds->items[m[k].item].label != 0]++;
    }
    free(m);
    *counts = c;
    return nm ? nu + 1 : 0;
}

// ---- balancing ----

typedef struct {
    size_t size, pos, unit;
} Order;

// Largest first; equal sizes in the seeded order.
static int cmp_order(const void *pa, const void *pb) {
    const Order *a = pa, *b = pb;
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

void folds_balance(const size_t (*counts)[2], size_t n, const double *share, size_t n_bins, uint64_t seed,
                   uint32_t stream, int *bin) {
    size_t *perm = ct_malloc_array(n ? n : 1, sizeof *perm);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    RngStream rs;
    rng_stream_init(&rs, seed, RNG_FOLD, stream, 0, 0);
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(&rs, (uint32_t)i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    Order *o = ct_malloc_array(n ? n : 1, sizeof *o);
    double total[2] = {0, 0};
    for (size_t k = 0; k < n; k++) {
        size_t u = perm[k];
        o[k] = (Order){counts[u][0] + counts[u][1], k, u};
        total[0] += (double)counts[u][0];
        total[1] += (double)counts[u][1];
    }
    qsort(o, n, sizeof *o, cmp_order);
    double (*have)[2] = ct_calloc(n_bins ? n_bins : 1, sizeof *have);
    for (size_t k = 0; k < n; k++) {
        size_t u = o[k].unit;
        long best = -1;
        double best_cost = 0, best_fill = 0;
        for (size_t b = 0; b < n_bins; b++) {
            if (!(share[b] > 0)) continue;
            // How full the bin's share of this group's labels would be; the
            // fullest label counts (a mixed group must fit both).
            double cost = 0;
            for (int l = 0; l < 2; l++)
                if (counts[u][l]) {
                    double c = (have[b][l] + (double)counts[u][l]) / (share[b] * total[l]);
                    if (c > cost) cost = c;
                }
            double fill = (have[b][0] + have[b][1]) / (share[b] * (total[0] + total[1]));
            if (best < 0 || cost < best_cost - 1e-12 || (cost <= best_cost + 1e-12 && fill < best_fill - 1e-12)) {
                best = (long)b;
                best_cost = cost;
                best_fill = fill;
            }
        }
        bin[u] = (int)best;
        have[best][0] += (double)counts[u][0];
        have[best][1] += (double)counts[u][1];
    }
    free(have);
    free(o);
    free(perm);
}

// ---- k-fold ----

int folds_assign(DataSet *ds, const DataSpec *spec, CtError *err) {
    ds->kfold = 0;
    for (size_t i = 0; i < ds->n; i++) ds->items[i].fold = -1;
    if (!spec->kfold) return 0;
    size_t K = spec->kfold;
    if (K < 2 || K > DATA_MAX_FOLDS) return ct_errorf(err, "data.split.kfold: %zu is outside [2, %d]", K, DATA_MAX_FOLDS);
    uint8_t *pooled = ct_calloc(ds->n ? ds->n : 1, 1);
    for (size_t i = 0; i < ds->n; i++) pooled[i] = ds->items[i].split != SPLIT_TEST;
    size_t *unit_of = ct_malloc_array(ds->n ? ds->n : 1, sizeof *unit_of);
    size_t (*counts)[2];
    size_t nu = folds_units(ds, pooled, unit_of, &counts);
    int rc = 0;
    if (nu < K) {
        rc = ct_errorf(err, "%s: data.split.kfold %zu needs at least %zu groups in train+val, found %zu", spec->root, K,
                       K, nu);
    } else {
        double share[DATA_MAX_FOLDS];
        for (size_t b = 0; b < K; b++) share[b] = 1.0 / (double)K;
        int *bin = ct_malloc_array(nu, sizeof *bin);
        folds_balance((const size_t(*)[2])counts, nu, share, K, spec->seed, FOLDS_STREAM_FOLDS, bin);
        size_t have[DATA_MAX_FOLDS][2] = {{0}};
        for (size_t i = 0; i < ds->n; i++)
            if (pooled[i]) {
                ds->items[i].fold = bin[unit_of[i]];
                have[bin[unit_of[i]]][ds->items[i].label != 0]++;
            }
        // A fold whose val set lacks a class cannot rank by val AUC.
        for (size_t b = 0; b < K; b++)
            if (!have[b][0] || !have[b][1])
                ct_warn("%s: fold %zu's val set has no %s images (too few groups of that class for %zu folds): its "
                        "val AUC is undefined", spec->root, b, have[b][0] ? "positive" : "negative", K);
        free(bin);
        ds->kfold = K;
    }
    free(counts);
    free(unit_of);
    free(pooled);
    return rc;
}

int folds_split_of(const DataItem *it, int fold) {
    if (fold < 0 || it->split == SPLIT_TEST) return it->split;
    return it->fold == fold ? SPLIT_VAL : SPLIT_TRAIN;
}

size_t folds_count(const DataSet *ds, int fold, int split) {
    size_t n = 0;
    for (size_t i = 0; i < ds->n; i++) n += folds_split_of(&ds->items[i], fold) == split;
    return n;
}
