/*
 * test_models.c — the model registry: rows and lookups, the named stages of
 * every model (contiguous, in order, VGG's ending at its max pools, every
 * input from outside a stage being the tensor at its start), the cut layer
 * for each unfreeze value, output shapes and multiply-adds from the graph,
 * a trainable tail refused where a cut would split a residual block, and its
 * parameter gradients unchanged when the cut input's gradient is skipped.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "nn/models.h"
#include "train/tail.h"

#include "check.h"

static void check_stages(const NNGraph *g, const char *const *names, size_t n) {
    CHECK(g->n_stages == n, "%s: %zu stages, want %zu", g->model, g->n_stages, n);
    size_t next = 0;
    for (size_t s = 0; s < g->n_stages && s < n; s++) {
        const NNStage *st = &g->stages[s];
        CHECK(strcmp(st->name, names[s]) == 0, "%s: stage %zu is %s, want %s", g->model, s, st->name, names[s]);
        CHECK(st->first == next && st->end > st->first, "%s: stage %s is [%zu, %zu), want it to start at %zu",
              g->model, st->name, st->first, st->end, next);
        next = st->end;
        CHECK(model_stage_find(g, names[s]) == (int)s, "%s: model_stage_find(%s)", g->model, names[s]);
        // A cut before the stage is one tensor: its layers read only each other and the tensor before it.
        for (size_t i = st->first; i < st->end; i++) {
            const NNLayer *l = &g->layers[i];
            int ins[3] = {l->src, l->residual, l->src2};
            for (int k = 0; k < 3; k++) {
                if (ins[k] == NN_NONE) continue;
                int ok = ins[k] == (int)st->first - 1 || (ins[k] >= (int)st->first && ins[k] < (int)i);
                if (st->first == 0) ok |= ins[k] == NN_INPUT;
                CHECK(ok, "%s: layer %s in stage %s reads tensor %d from outside the stage", g->model, l->name,
                      st->name, ins[k]);
            }
        }
        if (strncmp(g->model, "vgg", 3) == 0)
            CHECK(g->layers[st->end - 1].kind == NN_MAXPOOL, "%s: stage %s does not end at a max pool", g->model,
                  st->name);
    }
    CHECK(next == g->n_layers - 1, "%s: stages end at layer %zu, want %zu (all but the final pool)", g->model, next,
          g->n_layers - 1);
}

static void check_cuts(const NNGraph *g) {
    CtError err = {{0}};
    size_t cut = 0;
    CHECK(model_cut_layer(g, 0, &cut, &err) == 0 && cut == g->n_layers - 1, "%s: unfreeze 0 cuts at %zu",
          g->model, cut);
    for (size_t k = 1; k <= g->n_stages; k++) {
        int rc = model_cut_layer(g, (int)k, &cut, &err);
        CHECK(rc == 0 && cut == g->stages[g->n_stages - k].first, "%s: unfreeze %zu cuts at %zu, want %zu", g->model,
              k, cut, g->stages[g->n_stages - k].first);
    }
    CHECK(model_cut_layer(g, (int)g->n_stages + 1, &cut, &err) < 0 && strstr(err.msg, "stages"),
          "%s: unfreeze past the stage count accepted (%s)", g->model, err.msg);
    CHECK(model_cut_layer(g, -1, &cut, &err) < 0, "%s: unfreeze -1 accepted", g->model);
}

// What torchvision says of each model: the features' size, and the GMACs its
// documentation lists at 224 px (convolutions and classifier; ours count the
// convolutions alone, hence the 5% tolerance).
typedef struct {
    const char *name;
    size_t numel, c;
    double gmacs;
} ModelFacts;

static const ModelFacts FACTS[] = {
    {"vgg16", 25088, 512, 15.47},   {"vgg19", 25088, 512, 19.63},   {"resnet34", 512, 512, 3.66},
    {"resnet18", 512, 512, 1.81},   {"resnet50", 2048, 2048, 4.09}, {"densenet121", 1024, 1024, 2.83},
    {"densenet169", 1664, 1664, 3.36},
};

int main(void) {
    static const char *const vgg[] = {"block1", "block2", "block3", "block4", "block5"};
    static const char *const resnet[] = {"stem", "layer1", "layer2", "layer3", "layer4"};
    static const char *const densenet[] = {"stem", "denseblock1", "denseblock2", "denseblock3", "denseblock4"};
    CHECK(model_count() == sizeof FACTS / sizeof FACTS[0], "%zu models", model_count());
    CHECK(strcmp(model_names(), "vgg16, vgg19, resnet34, resnet18, resnet50, densenet121, densenet169") == 0,
          "names: %s", model_names());
    CHECK(model_find("resnet34") == model_at(2) && model_find("resnet50") == model_at(4) && !model_find("resnet101") &&
              !model_at(model_count()),
          "lookups");
    CHECK(model_is_known("vgg19") && !model_is_known("VGG19") && !model_is_known(""), "model_is_known");
    CtError err = {{0}};
    NNGraph g;
    CHECK(model_build(&g, "alexnet", &err) < 0 && strstr(err.msg, "vgg16, vgg19, resnet34"),
          "unknown model message: %s", err.msg);
    for (size_t m = 0; m < model_count(); m++) {
        const ModelInfo *info = model_at(m);
        const ModelFacts *f = &FACTS[m];
        CHECK(strcmp(info->name, f->name) == 0, "row %zu is %s, want %s", m, info->name, f->name);
        CHECK(model_build(&g, info->name, &err) == 0, "%s: %s", info->name, err.msg);
        int is_vgg = strncmp(info->name, "vgg", 3) == 0;
        check_stages(&g, is_vgg ? vgg : strncmp(info->name, "densenet", 8) == 0 ? densenet : resnet, 5);
        check_cuts(&g);
        ModelShape sh;
        CHECK(model_shape(info->name, 224, 224, &sh, &err) == 0, "%s shape: %s", info->name, err.msg);
        CHECK(sh.numel == f->numel && sh.c == f->c, "%s: output %zu x %zu x %zu = %zu", info->name, sh.c, sh.h, sh.w,
              sh.numel);
        CHECK(sh.macs == graph_macs(&g, 224, 224) && fabs(sh.macs / 1e9 - f->gmacs) <= 0.05 * f->gmacs,
              "%s: %.3g multiply-adds, torchvision says %.2f G", info->name, sh.macs, f->gmacs);
        CHECK(info->head_n_hidden == (is_vgg ? 3u : 2u) && info->head_dropout == (is_vgg ? 0.5 : 0.0),
              "%s: default head", info->name);
        printf("ok   %s: %zu layers, stages", info->name, g.n_layers);
        for (size_t s = 0; s < g.n_stages; s++)
            printf(" %s[%zu,%zu)", g.stages[s].name, g.stages[s].first, g.stages[s].end);
        printf(", %.2f GMACs at 224 px\n", sh.macs / 1e9);
        graph_free(&g);
    }
    // The output map and a too-small input.
    ModelShape v;
    CHECK(model_shape("vgg16", 224, 224, &v, &err) == 0 && v.h == 7 && v.w == 7, "vgg16 shape");
    CHECK(model_shape("vgg16", 16, 16, &v, &err) < 0, "vgg16 at 16 px accepted");

    // The tail refuses a cut inside a residual block, and counts torchvision's parameters.
    const BackendOps *ops = backend_ops_get(BACKEND_CPU, &err);
    CHECK(ops != NULL, "cpu ops: %s", err.msg);
    HeadSpec hs = {0};
    hs.hidden[0] = 16;
    hs.n_hidden = 1;
    Tail t;
    CHECK(model_build(&g, "resnet34", &err) == 0, "resnet34");
    size_t cut;
    model_cut_layer(&g, 1, &cut, &err);
    CHECK(tail_init(&t, ops, &g, cut + 2, &hs, 2, 64, 64, CONV_ALGO_DIRECT, &err) < 0 && strstr(err.msg, "cut between stages"),
          "a cut inside layer4.0 accepted: %s", err.msg);
    CHECK(tail_init(&t, ops, &g, cut, &hs, 2, 64, 64, CONV_ALGO_DIRECT, &err) == 0, "resnet34 layer4 tail: %s", err.msg);
    // layer4: 3 blocks of 2 convs 3x3 (512 wide, the first from 256) with BN, and a 1x1 downsample.
    size_t want = 9 * (256 * 512 + 5 * 512 * 512) + 256 * 512 + 7 * 2 * 512;
    CHECK(t.n_tail_params == want, "resnet34 layer4: %zu parameters, want %zu", t.n_tail_params, want);
    CHECK(tail_find_tensor(&t, "layer4.0.downsample.1.weight") && tail_find_tensor(&t, "head.1.bias") &&
              !tail_find_tensor(&t, "layer3.5.conv2.weight"),
          "tensor names");
    // Skipping the cut input's gradient changes no parameter gradient.
    tail_init_random(&t, &g, 3);
    size_t rows = 2, nin = rows * t.in_numel;
    float *x = malloc(nin * sizeof *x), *g1 = malloc(t.n_params * sizeof *g1);
    for (size_t i = 0; i < nin; i++) x[i] = (float)((i * 7919) % 101) / 50.0f;
    uint8_t y[2] = {0, 1};
    double l1 = -1, l2 = -2;
    for (int pass = 0; pass < 2; pass++) {
        t.input_grad = pass == 0;
        tail_zero_grads(&t);
        CHECK(tail_forward(&t, x, rows, 1, 5, 0, &err) != NULL, "tail forward: %s", err.msg);
        double l = tail_backward(&t, y, rows, NULL, &err);
        if (pass == 0) memcpy(g1, t.grads, t.n_params * sizeof *g1), l1 = l;
        else l2 = l;
    }
    CHECK(l1 == l2 && l1 > 0 && memcmp(g1, t.grads, t.n_params * sizeof *g1) == 0,
          "parameter gradients change when the cut input's gradient is skipped");
    free(x), free(g1);
    tail_free(&t);
    graph_free(&g);
    CHECK(model_build(&g, "vgg16", &err) == 0, "vgg16");
    CHECK(tail_init(&t, ops, &g, 0, &hs, 0, 64, 64, CONV_ALGO_DIRECT, &err) < 0, "batch 0 accepted");
    graph_free(&g);
    return check_summary();
}
