/*
 * models.c — the model registry (one row per model: graph builder, named
 * stages, default head), VGG16, VGG19, ResNet-18/34/50 and DenseNet-121/169 topologies with
 * torchvision's tensor names, weight loading with BatchNorm folding, and
 * random initialisation.
 */
#include "nn/models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"
#include "util/rng.h"

// ---- topologies ----

// torchvision's VGG configurations: channel counts, 0 = max-pool.
static const int VGG16_CFG[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0, -1};
static const int VGG19_CFG[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                                512, 512, 512, 512, 0,   512, 512, 512, 512, 0,   -1};

// Opens a stage at the next layer; the previous one ends there.
static void stage_begin(NNGraph *g, const char *name) {
    if (g->n_stages == NN_MAX_STAGES) fatal("graph %s: more than %d stages", g->model, NN_MAX_STAGES);
    if (g->n_stages) g->stages[g->n_stages - 1].end = g->n_layers;
    NNStage *s = &g->stages[g->n_stages++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->first = g->n_layers;
    s->end = g->n_layers;
}

static void stage_end(NNGraph *g) {
    if (g->n_stages) g->stages[g->n_stages - 1].end = g->n_layers;
}

// VGG's stages end at each max pool (torchvision's block boundaries).
static void build_vgg(NNGraph *g, const int *cfg) {
    int t = NN_INPUT;
    size_t c = 3;
    int idx = 0;  // index in torchvision's nn.Sequential `features`
    int block = 1;
    char name[48];
    stage_begin(g, "block1");
    for (const int *p = cfg; *p >= 0; p++) {
        if (*p == 0) {
            snprintf(name, sizeof name, "features.%d", idx);
            t = graph_add_maxpool(g, name, t, 2, 2, 0);
            idx += 1;
            if (p[1] > 0) {
                char stage[16];
                snprintf(stage, sizeof stage, "block%d", ++block);
                stage_begin(g, stage);
            }
        } else {
            snprintf(name, sizeof name, "features.%d", idx);
            t = graph_add_conv(g, name, t, c, (size_t)*p, 3, 1, 1, 1);
            c = (size_t)*p;
            idx += 2;  // conv, ReLU
        }
    }
    stage_end(g);
    graph_add_adaptive_avgpool(g, "avgpool", t, 7, 7);
}

static int add_conv_bn(NNGraph *g, const char *conv, const char *bn, int src, size_t cin, size_t cout,
                       size_t k, size_t stride, size_t pad, int relu) {
    int t = graph_add_conv(g, conv, src, cin, cout, k, stride, pad, relu);
    snprintf(g->layers[t].bn_name, sizeof g->layers[t].bn_name, "%s", bn);
    return t;
}

// torchvision's ResNet: a 7x7 stem and four stages of basic blocks (two 3x3
// convolutions) or bottleneck blocks (1x1, 3x3, 1x1 widening by 4). The
// stride of a bottleneck sits on its 3x3 convolution (torchvision's "v1.5"),
// and a block whose shape changes gets a 1x1 downsample on its shortcut.
static void build_resnet(NNGraph *g, const int blocks[4], int bottleneck) {
    static const size_t widths[4] = {64, 128, 256, 512};
    const size_t expansion = bottleneck ? 4 : 1;
    stage_begin(g, "stem");
    int t = add_conv_bn(g, "conv1", "bn1", NN_INPUT, 3, 64, 7, 2, 3, 1);
    t = graph_add_maxpool(g, "maxpool", t, 3, 2, 1);
    size_t c = 64;
    char a[48], b[48];
    for (int L = 0; L < 4; L++) {
        char stage[16];
        snprintf(stage, sizeof stage, "layer%d", L + 1);
        stage_begin(g, stage);
        for (int B = 0; B < blocks[L]; B++) {
            size_t stride = (L > 0 && B == 0) ? 2 : 1;
            size_t w = widths[L], out = w * expansion;
            int shortcut = t;
            if (stride != 1 || c != out) {
                snprintf(a, sizeof a, "layer%d.%d.downsample.0", L + 1, B);
                snprintf(b, sizeof b, "layer%d.%d.downsample.1", L + 1, B);
                shortcut = add_conv_bn(g, a, b, t, c, out, 1, stride, 0, 0);
            }
            int y = t;
            size_t yc = c;
            if (bottleneck) {
                snprintf(a, sizeof a, "layer%d.%d.conv1", L + 1, B);
                snprintf(b, sizeof b, "layer%d.%d.bn1", L + 1, B);
                y = add_conv_bn(g, a, b, y, yc, w, 1, 1, 0, 1);
                yc = w;
            }
            snprintf(a, sizeof a, "layer%d.%d.conv%d", L + 1, B, bottleneck ? 2 : 1);
            snprintf(b, sizeof b, "layer%d.%d.bn%d", L + 1, B, bottleneck ? 2 : 1);
            y = add_conv_bn(g, a, b, y, yc, w, 3, stride, 1, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv%d", L + 1, B, bottleneck ? 3 : 2);
            snprintf(b, sizeof b, "layer%d.%d.bn%d", L + 1, B, bottleneck ? 3 : 2);
            t = add_conv_bn(g, a, b, y, w, out, bottleneck ? 1 : 3, 1, bottleneck ? 0 : 1, 1);
            g->layers[t].residual = shortcut;  // out = relu(bn(conv(y)) + shortcut)
            c = out;
        }
    }
    stage_end(g);
    graph_add_global_avgpool(g, "avgpool", t);
}

static void build_resnet18(NNGraph *g) { build_resnet(g, (const int[4]){2, 2, 2, 2}, 0); }
static void build_resnet34(NNGraph *g) { build_resnet(g, (const int[4]){3, 4, 6, 3}, 0); }
static void build_resnet50(NNGraph *g) { build_resnet(g, (const int[4]){3, 4, 6, 3}, 1); }

// torchvision's DenseNet-BC (growth 32, bottleneck 4 x 32, compression 0.5):
// a 7x7 stem, four dense blocks whose layers each read the concatenation of
// everything before them in the block (BatchNorm, ReLU, 1x1 conv, BatchNorm,
// ReLU, 3x3 conv -> 32 new channels), transitions (BatchNorm, ReLU, 1x1 conv
// halving the channels, 2x2 average pool), and the final BatchNorm + ReLU
// (`features.norm5` and forward()'s ReLU). The BatchNorm after each 1x1
// convolution folds into it; those in front of a ReLU and a convolution
// stay as layers. A stage is a dense block with the transition after it
// (the last one with norm5).
static void build_densenet(NNGraph *g, const int blocks[4]) {
    const size_t growth = 32, bottleneck = 4 * 32;
    stage_begin(g, "stem");
    int t = add_conv_bn(g, "features.conv0", "features.norm0", NN_INPUT, 3, 64, 7, 2, 3, 1);
    t = graph_add_maxpool(g, "features.pool0", t, 3, 2, 1);
    size_t c = 64;
    char a[48], b[48];
    for (int B = 1; B <= 4; B++) {
        char stage[16];
        snprintf(stage, sizeof stage, "denseblock%d", B);
        stage_begin(g, stage);
        for (int i = 1; i <= blocks[B - 1]; i++) {
#define DENSE_NAME(buf, part) snprintf(buf, sizeof buf, "features.denseblock%d.denselayer%d." part, B, i)
            DENSE_NAME(a, "norm1");
            int x = graph_add_bn_relu(g, a, a, t);
            DENSE_NAME(a, "conv1");
            DENSE_NAME(b, "norm2");
            x = add_conv_bn(g, a, b, x, c, bottleneck, 1, 1, 0, 1);
            DENSE_NAME(a, "conv2");
            x = graph_add_conv(g, a, x, bottleneck, growth, 3, 1, 1, 0);
            g->layers[x].bias_free = 1;
            DENSE_NAME(a, "cat");
#undef DENSE_NAME
            t = graph_add_concat(g, a, t, x);
            c += growth;
        }
        if (B < 4) {
            snprintf(a, sizeof a, "features.transition%d.norm", B);
            int x = graph_add_bn_relu(g, a, a, t);
            snprintf(a, sizeof a, "features.transition%d.conv", B);
            x = graph_add_conv(g, a, x, c, c / 2, 1, 1, 0, 0);
            g->layers[x].bias_free = 1;
            snprintf(a, sizeof a, "features.transition%d.pool", B);
            t = graph_add_avgpool(g, a, x, 2, 2);
            c /= 2;
        } else {
            t = graph_add_bn_relu(g, "features.norm5", "features.norm5", t);
        }
    }
    stage_end(g);
    graph_add_global_avgpool(g, "avgpool", t);
}

static void build_densenet121(NNGraph *g) { build_densenet(g, (const int[4]){6, 12, 24, 16}); }
static void build_densenet169(NNGraph *g) { build_densenet(g, (const int[4]){6, 12, 32, 32}); }

static void build_vgg16(NNGraph *g) { build_vgg(g, VGG16_CFG); }
static void build_vgg19(NNGraph *g) { build_vgg(g, VGG19_CFG); }

// ---- the registry ----

// The reference workflow's heads: VGG 25088 -> 512 -> 256 -> 128 -> 2 with
// dropout 0.5; ResNet 512 -> 256 -> 128 -> 2 without dropout (ResNet-50's
// 2048 features and DenseNet's 1024 / 1664 into the same 256 -> 128 -> 2).
// Rows sit at their MODEL_NAMES slot; test_config_models checks each row's
// name against its generated weights key.
static const ModelInfo MODELS[] = {
    [MODEL_INDEX_vgg16] = {"vgg16", build_vgg16, {512, 256, 128}, 3, 0.5,
                           "(512, 7, 7) after the adaptive average pool"},
    [MODEL_INDEX_vgg19] = {"vgg19", build_vgg19, {512, 256, 128}, 3, 0.5,
                           "(512, 7, 7) after the adaptive average pool"},
    [MODEL_INDEX_resnet34] = {"resnet34", build_resnet34, {256, 128}, 2, 0.0, "(512) after the global average pool"},
    [MODEL_INDEX_resnet18] = {"resnet18", build_resnet18, {256, 128}, 2, 0.0, "(512) after the global average pool"},
    [MODEL_INDEX_resnet50] = {"resnet50", build_resnet50, {256, 128}, 2, 0.0,
                              "(2048) after the global average pool"},
    [MODEL_INDEX_densenet121] = {"densenet121", build_densenet121, {256, 128}, 2, 0.0,
                                 "(1024) after the final BatchNorm + ReLU and global pool"},
    [MODEL_INDEX_densenet169] = {"densenet169", build_densenet169, {256, 128}, 2, 0.0,
                                 "(1664) after the final BatchNorm + ReLU and global pool"},
};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])
_Static_assert(N_MODELS == MODEL_INDEX_COUNT, "a MODEL_NAMES entry without a registry row");

size_t model_count(void) { return N_MODELS; }

const ModelInfo *model_at(size_t i) { return i < N_MODELS ? &MODELS[i] : NULL; }

const ModelInfo *model_find(const char *name) {
    for (size_t i = 0; i < N_MODELS; i++)
        if (name && strcmp(MODELS[i].name, name) == 0) return &MODELS[i];
    return NULL;
}

int model_is_known(const char *name) { return model_find(name) != NULL; }

const char *model_names(void) {
    static char buf[256];
    if (!buf[0]) {
        size_t off = 0;
        for (size_t i = 0; i < N_MODELS && off < sizeof buf; i++)
            off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? ", " : "", MODELS[i].name);
    }
    return buf;
}

int model_build(NNGraph *g, const char *name, CtError *err) {
    const ModelInfo *m = model_find(name);
    if (!m) return ct_errorf(err, "unknown model '%s' (known: %s)", name ? name : "", model_names());
    graph_init(g, name);
    m->build(g);
    return 0;
}

int model_shape(const char *name, size_t h, size_t w, ModelShape *out, CtError *err) {
    NNGraph g;
    if (model_build(&g, name, err)) return -1;
    NNShape *shapes = ct_calloc(g.n_layers, sizeof *shapes);
    int rc = graph_infer_shapes(&g, h, w, shapes, err);
    if (rc == 0) {
        NNShape o = shapes[g.n_layers - 1];
        out->c = o.c;
        out->h = o.h;
        out->w = o.w;
        out->numel = graph_output_numel(&g, h, w);
        out->macs = graph_macs(&g, h, w);
    }
    free(shapes);
    graph_free(&g);
    return rc;
}

int model_stage_find(const NNGraph *g, const char *stage) {
    for (size_t i = 0; i < g->n_stages; i++)
        if (strcmp(g->stages[i].name, stage) == 0) return (int)i;
    return -1;
}

int model_cut_layer(const NNGraph *g, int unfreeze, size_t *cut, CtError *err) {
    if (unfreeze < 0 || (size_t)unfreeze > g->n_stages)
        return ct_errorf(err, "unfreeze = %d: %s has %zu stages (0 trains the head alone)", unfreeze, g->model,
                         g->n_stages);
    *cut = unfreeze == 0 ? g->n_layers - 1 : g->stages[g->n_stages - (size_t)unfreeze].first;
    return 0;
}

int model_prefix(NNGraph *g, size_t cut, size_t h, size_t w, CtError *err) {
    if (cut >= g->n_layers) return ct_errorf(err, "%s: cut at layer %zu of %zu", g->model, cut, g->n_layers);
    if (cut + 1 == g->n_layers) return 0;
    NNShape in = {g->in_channels, h, w};
    if (cut > 0) {
        NNShape *shapes = ct_calloc(g->n_layers, sizeof *shapes);
        int rc = graph_infer_shapes(g, h, w, shapes, err);
        in = shapes[cut - 1];
        free(shapes);
        if (rc) return -1;
    }
    for (size_t i = cut; i < g->n_layers; i++) {
        free(g->layers[i].weight);
        free(g->layers[i].bias);
        g->layers[i].weight = g->layers[i].bias = NULL;
    }
    g->n_layers = cut;
    size_t keep = 0;
    while (keep < g->n_stages && g->stages[keep].end <= cut) keep++;
    g->n_stages = keep;
    graph_add_adaptive_avgpool(g, "cut", cut == 0 ? NN_INPUT : (int)cut - 1, in.h, in.w);
    return 0;
}

int model_tail_cost(const char *name, int unfreeze, size_t h, size_t w, double *macs, size_t *cut_numel,
                    CtError *err) {
    NNGraph g;
    if (model_build(&g, name, err)) return -1;
    size_t cut = 0;
    double all = graph_macs(&g, h, w);
    int rc = model_cut_layer(&g, unfreeze, &cut, err);
    if (rc == 0) rc = model_prefix(&g, cut, h, w, err);
    if (rc == 0) {
        *macs = all - graph_macs(&g, h, w);
        *cut_numel = graph_output_numel(&g, h, w);
        if (*cut_numel == 0) rc = ct_errorf(err, "%s: %zux%zu px is too small", name, h, w);
    }
    graph_free(&g);
    return rc;
}

// ---- weights ----

int model_read_conv_raw(const NNLayer *l, const SafeTensors *st, float *weight, float *bias, float *bn,
                        CtError *err) {
    char tname[96];
    size_t wshape[4] = {l->cout, l->cin, l->k, l->k};
    snprintf(tname, sizeof tname, "%s.weight", l->name);
    if (st_read_f32(st, tname, wshape, 4, weight, err)) return -1;
    size_t cshape[1] = {l->cout};
    snprintf(tname, sizeof tname, "%s.bias", l->name);
    int has_bias = st_find(st, tname) != NULL;
    if ((!l->bn_name[0] && !l->bias_free) || has_bias) {
        // VGG convolutions have a bias; a ResNet or DenseNet conv bias is accepted if present.
        if (st_read_f32(st, tname, cshape, 1, bias, err)) return -1;
    } else {
        memset(bias, 0, l->cout * sizeof(float));
    }
    if (!l->bn_name[0]) return 0;
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(tname, sizeof tname, "%s.%s", l->bn_name, parts[i]);
        if (st_read_f32(st, tname, cshape, 1, bn + (size_t)i * l->cout, err)) return -1;
    }
    for (size_t o = 0; o < l->cout; o++) {
        double var = bn[3 * l->cout + o];
        if (!(var >= 0) || !isfinite(bn[o]) || !isfinite(bn[l->cout + o]) || !isfinite(bn[2 * l->cout + o]))
            return ct_errorf(err, "tensor '%s.running_var' (or its BatchNorm siblings) has an invalid "
                             "value at channel %zu", l->bn_name, o);
    }
    return 0;
}

void model_fold_bn(float *weight, float *bias, const float *bn, size_t cout, size_t per) {
    // Eval-mode BatchNorm: y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta.
    for (size_t o = 0; o < cout; o++) {
        double scale = bn[o] / sqrt((double)bn[3 * cout + o] + MODEL_BN_EPS);
        float *w = weight + o * per;
        for (size_t i = 0; i < per; i++) w[i] = (float)(w[i] * scale);
        bias[o] = (float)((bias[o] - bn[2 * cout + o]) * scale + bn[cout + o]);
    }
}

// BatchNorm (gamma, beta, mean, var) as the scale and shift of y = x * scale + shift (in double).
static void bn_scale_shift(float *scale, float *shift, const float *bn, size_t c) {
    for (size_t o = 0; o < c; o++) {
        double k = bn[o] / sqrt((double)bn[3 * c + o] + MODEL_BN_EPS);
        scale[o] = (float)k;
        shift[o] = (float)(bn[c + o] - bn[2 * c + o] * k);
    }
}

static int load_bn_relu(NNLayer *l, const SafeTensors *st, CtError *err) {
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    float *bn = ct_malloc_array(4 * l->cout, sizeof(float));
    size_t cshape[1] = {l->cout};
    char tname[96];
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        snprintf(tname, sizeof tname, "%s.%s", l->bn_name, parts[i]);
        rc = st_read_f32(st, tname, cshape, 1, bn + (size_t)i * l->cout, err);
    }
    for (size_t o = 0; o < l->cout && rc == 0; o++)
        if (!(bn[3 * l->cout + o] >= 0) || !isfinite(bn[o]) || !isfinite(bn[l->cout + o]) ||
            !isfinite(bn[2 * l->cout + o]))
            rc = ct_errorf(err, "tensor '%s.running_var' (or its BatchNorm siblings) has an invalid value at "
                           "channel %zu", l->bn_name, o);
    if (rc == 0) bn_scale_shift(l->weight, l->bias, bn, l->cout);
    free(bn);
    return rc;
}

static int load_conv(NNLayer *l, const SafeTensors *st, CtError *err) {
    float *bn = l->bn_name[0] ? ct_malloc_array(4 * l->cout, sizeof(float)) : NULL;
    int rc = model_read_conv_raw(l, st, l->weight, l->bias, bn, err);
    if (rc == 0 && bn) model_fold_bn(l->weight, l->bias, bn, l->cout, l->cin * l->k * l->k);
    free(bn);
    return rc;
}

int model_load_safetensors(NNGraph *g, const char *path, CtError *err) {
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    int rc = 0;
    for (size_t i = 0; i < g->n_layers && rc == 0; i++) {
        NNLayer *l = &g->layers[i];
        if (l->kind == NN_CONV) rc = load_conv(l, &st, err);
        else if (l->kind == NN_BN_RELU) rc = load_bn_relu(l, &st, err);
    }
    st_close(&st);
    if (rc) ct_error_prefix(err, "model %s", g->model);
    return rc;
}

void model_init_conv_raw(const NNGraph *g, size_t layer, uint64_t seed, float *weight, float *bias, float *bn) {
    const NNLayer *l = &g->layers[layer];
    // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out).
    double std = sqrt(2.0 / (double)(l->cout * l->k * l->k));
    RngStream rs;
    rng_stream_init(&rs, seed, RNG_INIT_BACKBONE, (uint32_t)layer, 0, 0);
    size_t n = l->cout * l->cin * l->k * l->k;
    for (size_t j = 0; j < n; j++) weight[j] = (float)(rng_normal(&rs) * std);
    memset(bias, 0, l->cout * sizeof(float));
    if (bn && l->bn_name[0])  // identity BatchNorm: gamma 1, beta 0, mean 0, var 1
        for (size_t o = 0; o < l->cout; o++) {
            bn[o] = 1.0f;
            bn[l->cout + o] = 0.0f;
            bn[2 * l->cout + o] = 0.0f;
            bn[3 * l->cout + o] = 1.0f;
        }
}

// The raw tensors of model_init_conv_raw folded exactly as a weights file's
// are (model_fold_bn), so a seeded backbone and the same backbone written to
// safetensors and loaded back (`ctsweep export`, then predict) are the same
// bits.
void model_init_random(NNGraph *g, uint64_t seed) {
    for (size_t i = 0; i < g->n_layers; i++) {
        NNLayer *l = &g->layers[i];
        if (l->kind == NN_BN_RELU)  // identity BatchNorm (gamma 1, beta 0, mean 0, var 1)
            for (size_t o = 0; o < l->cout; o++) {
                l->weight[o] = (float)(1.0 / sqrt(1.0 + MODEL_BN_EPS));
                l->bias[o] = 0.0f;
            }
        if (l->kind != NN_CONV) continue;
        float *bn = l->bn_name[0] ? ct_malloc_array(4 * l->cout, sizeof(float)) : NULL;
        model_init_conv_raw(g, i, seed, l->weight, l->bias, bn);
        if (bn) model_fold_bn(l->weight, l->bias, bn, l->cout, l->cin * l->k * l->k);
        free(bn);
    }
}

int model_create(NNGraph *g, const char *name, const char *weights, uint64_t seed, CtError *err) {
    if (model_build(g, name, err)) return -1;
    if (weights && weights[0]) {
        if (model_load_safetensors(g, weights, err)) {
            graph_free(g);
            return -1;
        }
        return 0;
    }
    ct_warn("*** no weights file for %s: using a seeded RANDOM backbone (seed %llu), not ImageNet "
            "features; see scripts/fetch-weights ***",
            name, (unsigned long long)seed);
    model_init_random(g, seed);
    return 0;
}
