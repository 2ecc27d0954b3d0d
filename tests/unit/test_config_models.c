/*
 * test_config_models.c — the configuration takes its models from the
 * registry (nn/models.c). For every registered model: its weights key exists
 * and writes its slot of SweepConfig.weights (the key table keeps one row per
 * model, so a model added without its row fails here), a grid naming it is
 * accepted with its weights file, --help-config lists it, and the default
 * head is the registry's. The notes built from the registry read exactly as
 * the hand-written ones did for the three shipped models.
 *
 * usage: test_config_models SCRATCH_DIR SHARED_DATA_DIR
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_models.h"
#include "config/config_table.h"
#include "nn/models.h"
#include "train/head.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "check.h"

static const ConfigKey *key_find(const char *path) {
    for (size_t i = 0; i < config_n_keys; i++)
        if (strcmp(config_keys[i].path, path) == 0) return &config_keys[i];
    return NULL;
}

// Not inlined: GCC otherwise mistakes the returned stream buffer for a local.
__attribute__((noinline)) static char *help_text(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f);
    fclose(f);
    return buf;
}

// ---- weights keys ----

// Each model has weights.NAME at its registry index; each weights.* key is a model.
static void test_weights_keys(void) {
    CHECK(model_count() > 0 && model_count() <= CONFIG_MAX_MODELS, "%zu models, capacity %d", model_count(),
          CONFIG_MAX_MODELS);
    for (size_t i = 0; i < model_count(); i++) {
        const char *name = model_at(i)->name;
        char path[96];
        snprintf(path, sizeof path, "weights.%s", name);
        const ConfigKey *k = key_find(path);
        CHECK(k != NULL, "model %s has no key %s in config_table.c (add WEIGHTS(\"%s\", %zu))", name, path, name, i);
        if (!k) continue;
        size_t want = offsetof(SweepConfig, weights) + i * sizeof(((SweepConfig *)0)->weights[0]);
        CHECK(k->type == CK_PATH && k->off == want, "%s: writes offset %zu, want weights[%zu] at %zu", path, k->off,
              i, want);
        CHECK(config_model_index(name) == (int)i, "config_model_index(%s) = %d, want %zu", name,
              config_model_index(name), i);
    }
    size_t n_weights = 0;
    for (size_t i = 0; i < config_n_keys; i++) {
        const char *p = config_keys[i].path;
        if (strncmp(p, "weights.", 8) != 0) continue;
        n_weights++;
        CHECK(model_is_known(p + 8), "key %s names no registered model", p);
    }
    CHECK(n_weights == model_count(), "%zu weights keys for %zu models", n_weights, model_count());
    CHECK(config_model_index("alexnet") == -1 && config_model_index(NULL) == -1, "unknown model has an index");
    printf("ok   %zu models, each with its weights key\n", model_count());
}

// ---- validation ----

// A grid of one registered model with its weights file (relative to the
// configuration) parses; an unknown
// model is refused naming every registered one.
static void test_accepted(const char *scratch) {
    char weights[PATH_MAX], name[PATH_MAX];
    snprintf(weights, sizeof weights, "%s/w.safetensors", scratch);
    check_write_text(weights, "x");
    snprintf(name, sizeof name, "%s/models.yaml", scratch);
    for (size_t i = 0; i < model_count(); i++) {
        const ModelInfo *m = model_at(i);
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "weights:\n  %s: w.safetensors\ngrid:\n  model: [%s]\n  epochs: [2]\n  batch_size: [16]\n"
                 "  clr:\n    - {mode: triangular, step_size: 4}\n",
                 m->name, m->name);
        SweepConfig cfg;
        CtError err = {{0}};
        int rc = config_parse(&cfg, name, yaml, strlen(yaml), &err);
        CHECK(rc == 0, "grid.model [%s] refused: %s", m->name, err.msg);
        if (rc == 0) {
            CHECK(cfg.n_models == 1 && strcmp(cfg.models[0], m->name) == 0, "%s: grid.model", m->name);
            const char *w = config_weights(&cfg, m->name);
            size_t n = strlen(w);
            CHECK(n > 14 && strcmp(w + n - 14, "/w.safetensors") == 0, "%s: weights %s", m->name, w);
            for (size_t j = 0; j < model_count(); j++)
                if (j != i) CHECK(!config_weights(&cfg, model_at(j)->name)[0], "%s: weights of another model", m->name);
            HeadSpec h;
            config_head_spec(&h, &cfg, m->name, 100);
            CHECK(h.n_hidden == m->head_n_hidden && h.dropout == m->head_dropout && h.in_dim == 100,
                  "%s: default head", m->name);
            for (size_t k = 0; k < h.n_hidden && k < m->head_n_hidden; k++)
                CHECK(h.hidden[k] == m->head_hidden[k], "%s: hidden[%zu] = %zu, want %zu", m->name, k, h.hidden[k],
                      m->head_hidden[k]);
        }
        config_free(&cfg);
    }
    const char *bad = "grid:\n  model: [alexnet]\n  epochs: [2]\n  batch_size: [16]\n"
                      "  clr:\n    - {mode: triangular, step_size: 4}\n";
    SweepConfig cfg;
    CtError err = {{0}};
    char want[400];
    snprintf(want, sizeof want, "unknown model alexnet (known: %s)", model_names());
    CHECK(config_parse(&cfg, name, bad, strlen(bad), &err) == -1 && strstr(err.msg, want),
          "unknown model: got \"%s\", want \"...%s\"", err.msg, want);
    config_free(&cfg);
    // An unknown model gets a linear head.
    HeadSpec h;
    head_spec_default(&h, "alexnet", 7);
    CHECK(h.n_hidden == 0 && h.dropout == 0 && h.in_dim == 7, "alexnet: default head not linear");
    printf("ok   every registered model accepted by grid.model; alexnet refused\n");
}

// ---- help ----

static void test_help(void) {
    char *buf = help_text();
    char want[400];
    // The help wraps at 78 columns: compare its lines joined by one space.
    const char *head = "grid.model: a list of strings, 1 to 32 values, each once; required\n    ";
    const char *at = strstr(buf, head);
    char joined[400] = "";
    if (at) {
        at += strlen(head);
        size_t n = 0;
        while (*at && n + 1 < sizeof joined && !(at[0] == '\n' && strncmp(at + 1, "    ", 4) != 0)) {
            if (at[0] == '\n') {
                joined[n++] = ' ';
                at += 5;
            } else {
                joined[n++] = *at++;
            }
        }
        joined[n] = 0;
    }
    snprintf(want, sizeof want, "Backbones: %s.", model_names());
    CHECK(strcmp(joined, want) == 0, "help: grid.model does not list the registry:\n%s\nbut:\n%s", want, joined);
    for (size_t i = 0; i < model_count(); i++) {
        const char *name = model_at(i)->name;
        snprintf(want, sizeof want, "\nweights.%s: a path to a file", name);
        CHECK(strstr(buf, want) != NULL, "help: no weights.%s", name);
        CHECK(strstr(config_head_hidden_note(), name) && strstr(config_head_dropout_note(), name),
              "head notes do not name %s", name);
    }
    // The shipped registry: the notes read as they were written by hand.
    CHECK(strcmp(model_names(), "vgg16, vgg19, resnet34, resnet18, resnet50, densenet121, densenet169") == 0,
          "registry: %s", model_names());
    CHECK(strcmp(config_models_help(),
                 "Backbones: vgg16, vgg19, resnet34, resnet18, resnet50, densenet121, densenet169.") == 0,
          "grid.model help: %s", config_models_help());
    CHECK(strstr(buf, "head.hidden: a list of integers in [1, 65536], 0 to 7 values; default per model: vgg16, "
                      "vgg19 [512, 256, 128]; resnet34, resnet18, resnet50, densenet121, densenet169 [256, 128]\n") !=
              NULL,
          "help: head.hidden default: %s", config_head_hidden_note());
    CHECK(strstr(buf, "head.dropout: a number in [0, 1); default per model: vgg16, vgg19 0.5; resnet34, resnet18, "
                      "resnet50, densenet121, densenet169 0\n") != NULL,
          "help: head.dropout default: %s", config_head_dropout_note());
    free(buf);
    printf("ok   --help-config lists the registry's %zu models\n", model_count());
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_config_models SCRATCH_DIR SHARED_DATA_DIR\n");
        return 2;
    }
    CtError err = {{0}};
    if (ct_mkdirs(argv[1], &err)) {
        printf("FAIL cannot create %s: %s\n", argv[1], err.msg);
        return 2;
    }
    test_weights_keys();
    test_accepted(argv[1]);
    test_help();
    return check_summary();
}
