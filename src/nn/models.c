/*
 * models.c — VGG16, VGG19 and ResNet-34 topologies with torchvision's tensor
 * names, weight loading with BatchNorm folding, and random initialisation.
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

static void build_vgg(NNGraph *g, const int *cfg) {
    int t = NN_INPUT;
    size_t c = 3;
    int idx = 0;  // index in torchvision's nn.Sequential `features`
    char name[48];
    for (const int *p = cfg; *p >= 0; p++) {
        if (*p == 0) {
            snprintf(name, sizeof name, "features.%d", idx);
            t = graph_add_maxpool(g, name, t, 2, 2, 0);
            idx += 1;
        } else {
            snprintf(name, sizeof name, "features.%d", idx);
            t = graph_add_conv(g, name, t, c, (size_t)*p, 3, 1, 1, 1);
            c = (size_t)*p;
            idx += 2;  // conv, ReLU
        }
    }
    graph_add_adaptive_avgpool(g, "avgpool", t, 7, 7);
}

static int add_conv_bn(NNGraph *g, const char *conv, const char *bn, int src, size_t cin, size_t cout,
                       size_t k, size_t stride, size_t pad, int relu) {
    int t = graph_add_conv(g, conv, src, cin, cout, k, stride, pad, relu);
    snprintf(g->layers[t].bn_name, sizeof g->layers[t].bn_name, "%s", bn);
    return t;
}

static void build_resnet34(NNGraph *g) {
    static const int blocks[4] = {3, 4, 6, 3};
    static const size_t widths[4] = {64, 128, 256, 512};
    int t = add_conv_bn(g, "conv1", "bn1", NN_INPUT, 3, 64, 7, 2, 3, 1);
    t = graph_add_maxpool(g, "maxpool", t, 3, 2, 1);
    size_t c = 64;
    char a[48], b[48];
    for (int L = 0; L < 4; L++) {
        for (int B = 0; B < blocks[L]; B++) {
            size_t stride = (L > 0 && B == 0) ? 2 : 1;
            size_t w = widths[L];
            int shortcut = t;
            if (stride != 1 || c != w) {
                snprintf(a, sizeof a, "layer%d.%d.downsample.0", L + 1, B);
                snprintf(b, sizeof b, "layer%d.%d.downsample.1", L + 1, B);
                shortcut = add_conv_bn(g, a, b, t, c, w, 1, stride, 0, 0);
            }
            snprintf(a, sizeof a, "layer%d.%d.conv1", L + 1, B);
            snprintf(b, sizeof b, "layer%d.%d.bn1", L + 1, B);
            int y = add_conv_bn(g, a, b, t, c, w, 3, stride, 1, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv2", L + 1, B);
            snprintf(b, sizeof b, "layer%d.%d.bn2", L + 1, B);
            t = add_conv_bn(g, a, b, y, w, w, 3, 1, 1, 1);
            g->layers[t].residual = shortcut;  // out = relu(bn2(conv2(y)) + shortcut)
            c = w;
        }
    }
    graph_add_global_avgpool(g, "avgpool", t);
}

int model_is_known(const char *name) {
    return strcmp(name, "vgg16") == 0 || strcmp(name, "vgg19") == 0 || strcmp(name, "resnet34") == 0;
}

int model_build(NNGraph *g, const char *name, CtError *err) {
    if (!model_is_known(name))
        return ct_errorf(err, "unknown model '%s' (known: vgg16, vgg19, resnet34)", name);
    graph_init(g, name);
    if (strcmp(name, "vgg16") == 0)
        build_vgg(g, VGG16_CFG);
    else if (strcmp(name, "vgg19") == 0)
        build_vgg(g, VGG19_CFG);
    else
        build_resnet34(g);
    return 0;
}

// ---- weights ----

static int load_conv(NNLayer *l, const SafeTensors *st, CtError *err) {
    char tname[96];
    size_t wshape[4] = {l->cout, l->cin, l->k, l->k};
    snprintf(tname, sizeof tname, "%s.weight", l->name);
    if (st_read_f32(st, tname, wshape, 4, l->weight, err)) return -1;
    size_t cshape[1] = {l->cout};
    snprintf(tname, sizeof tname, "%s.bias", l->name);
    int has_bias = st_find(st, tname) != NULL;
    if (!l->bn_name[0] || has_bias) {
        // VGG convolutions have a bias; a ResNet conv bias is accepted if present.
        if (st_read_f32(st, tname, cshape, 1, l->bias, err)) return -1;
    } else {
        memset(l->bias, 0, l->cout * sizeof(float));
    }
    if (!l->bn_name[0]) return 0;

    // Fold eval-mode BatchNorm: y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta.
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    float *bn[4];
    for (int i = 0; i < 4; i++) bn[i] = ct_malloc_array(l->cout, sizeof(float));
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        snprintf(tname, sizeof tname, "%s.%s", l->bn_name, parts[i]);
        rc = st_read_f32(st, tname, cshape, 1, bn[i], err);
    }
    if (rc == 0) {
        size_t per = l->cin * l->k * l->k;
        for (size_t o = 0; o < l->cout; o++) {
            double var = bn[3][o];
            if (!(var >= 0) || !isfinite(bn[0][o]) || !isfinite(bn[1][o]) || !isfinite(bn[2][o])) {
                rc = ct_errorf(err, "tensor '%s.running_var' (or its BatchNorm siblings) has an invalid "
                               "value at channel %zu", l->bn_name, o);
                break;
            }
            double scale = bn[0][o] / sqrt(var + MODEL_BN_EPS);
            float *w = l->weight + o * per;
            for (size_t i = 0; i < per; i++) w[i] = (float)(w[i] * scale);
            l->bias[o] = (float)((l->bias[o] - bn[2][o]) * scale + bn[1][o]);
        }
    }
    for (int i = 0; i < 4; i++) free(bn[i]);
    return rc;
}

int model_load_safetensors(NNGraph *g, const char *path, CtError *err) {
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    int rc = 0;
    for (size_t i = 0; i < g->n_layers && rc == 0; i++) {
        NNLayer *l = &g->layers[i];
        if (l->kind != NN_CONV) continue;
        rc = load_conv(l, &st, err);
    }
    st_close(&st);
    if (rc) ct_error_prefix(err, "model %s", g->model);
    return rc;
}

void model_init_random(NNGraph *g, uint64_t seed) {
    for (size_t i = 0; i < g->n_layers; i++) {
        NNLayer *l = &g->layers[i];
        if (l->kind != NN_CONV) continue;
        // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out).
        double std = sqrt(2.0 / (double)(l->cout * l->k * l->k));
        // Identity BatchNorm (gamma 1, beta 0, mean 0, var 1) folded in.
        double fold = l->bn_name[0] ? 1.0 / sqrt(1.0 + MODEL_BN_EPS) : 1.0;
        RngStream rs;
        rng_stream_init(&rs, seed, RNG_INIT_BACKBONE, (uint32_t)i, 0, 0);
        size_t n = l->cout * l->cin * l->k * l->k;
        for (size_t j = 0; j < n; j++) l->weight[j] = (float)(rng_normal(&rs) * std * fold);
        memset(l->bias, 0, l->cout * sizeof(float));
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
