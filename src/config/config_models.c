/*
 * config_models.c — the configuration's view of the model registry: weights
 * index, grid.model help and the per-model head defaults in words. Nothing
 * here names a model; every string is built from nn/models.c's table once.
 */
#include "config/config_models.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/config_table.h"
#include "nn/models.h"

int config_model_index(const char *model) {
    for (size_t i = 0; model && i < model_count(); i++)
        if (strcmp(model_at(i)->name, model) == 0) return (int)i;
    return -1;
}

const char *config_models_help(void) {
    static char buf[300];
    if (!buf[0]) snprintf(buf, sizeof buf, "Backbones: %s.", model_names());
    return buf;
}

// ---- per-model head defaults ----

typedef void (*DescribeHead)(char *out, size_t cap, const ModelInfo *m);

static void describe_hidden(char *out, size_t cap, const ModelInfo *m) {
    size_t off = (size_t)snprintf(out, cap, "[");
    for (size_t i = 0; i < m->head_n_hidden && off < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s%zu", i ? ", " : "", m->head_hidden[i]);
    if (off < cap) snprintf(out + off, cap - off, "]");
}

static void describe_dropout(char *out, size_t cap, const ModelInfo *m) { snprintf(out, cap, "%g", m->head_dropout); }

// "per model: a, b X; c Y": runs of consecutive models whose default is
// described alike share one entry.
static void per_model_note(char *buf, size_t cap, DescribeHead describe) {
    size_t off = (size_t)snprintf(buf, cap, "per model:");
    size_t n = model_count();
    for (size_t i = 0; i < n && off < cap;) {
        char what[128], next[128];
        describe(what, sizeof what, model_at(i));
        size_t j = i;
        off += (size_t)snprintf(buf + off, cap - off, "%s %s", i ? ";" : "", model_at(i)->name);
        while (++j < n) {
            describe(next, sizeof next, model_at(j));
            if (strcmp(next, what) != 0) break;
            if (off < cap) off += (size_t)snprintf(buf + off, cap - off, ", %s", model_at(j)->name);
        }
        if (off < cap) off += (size_t)snprintf(buf + off, cap - off, " %s", what);
        i = j;
    }
}

const char *config_head_hidden_note(void) {
    static char buf[512];
    if (!buf[0]) per_model_note(buf, sizeof buf, describe_hidden);
    return buf;
}

const char *config_head_dropout_note(void) {
    static char buf[512];
    if (!buf[0]) per_model_note(buf, sizeof buf, describe_dropout);
    return buf;
}

// ---- grid.unfreeze ----

int config_check_unfreeze(ConfigCtx *c) {
    const SweepConfig *cfg = c->cfg;
    int line = config_key_line(c, "grid.unfreeze");
    size_t most = 0;
    for (size_t u = 0; u < cfg->n_unfreeze; u++) most = cfg->unfreeze[u] > most ? cfg->unfreeze[u] : most;
    if (most == 0) return 0;
    for (size_t m = 0; m < cfg->n_models; m++) {
        NNGraph g;
        CtError e = {{0}};
        if (model_build(&g, cfg->models[m], &e)) continue;  // grid.model reports it
        size_t stages = g.n_stages;
        char names[NN_MAX_STAGES * 18] = "";
        for (size_t i = 0, off = 0; i < stages && off < sizeof names; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", g.stages[i].name);
        // The trainable tail (train/tail.c) has a backward for convolutions
        // and pools only: DenseNet's BatchNorm + ReLU and concatenations
        // train with no stage unfrozen, the head alone on their features.
        const char *untrainable = NULL;
        size_t cut = 0;
        if (most <= stages && model_cut_layer(&g, (int)most, &cut, &e) == 0)
            for (size_t i = cut; i + 1 < g.n_layers && !untrainable; i++) {
                NNOpKind k = g.layers[i].kind;
                if (k != NN_CONV && k != NN_MAXPOOL) untrainable = g.layers[i].name;
            }
        char bad[48];
        snprintf(bad, sizeof bad, "%s", untrainable ? untrainable : "");
        graph_free(&g);
        if (most > stages)
            return config_fail(c, line, "grid.unfreeze", "%zu stages, but %s has %zu (%s)", most, cfg->models[m],
                               stages, names);
        if (untrainable)
            return config_fail(c, line, "grid.unfreeze",
                               "%s cannot unfreeze stages: the trainable tail has no backward for its layer %s "
                               "(BatchNorm + ReLU, concatenation, average pool); sweep %s with grid.unfreeze [0] (the head alone)",
                               cfg->models[m], bad, cfg->models[m]);
    }
    return 0;
}
