/*
 * test_cpu_dense.c — the CPU plan of DenseNet's operations against a naive
 * evaluation of the same graph (plain loops, NCHW, double sums): BatchNorm
 * + ReLU, dense blocks whose concatenations share one buffer, a transition's
 * 2x2 average pool on an odd size, the final BatchNorm + ReLU. Growth 8
 * keeps every channel slice on oneDNN's channel blocks (nChw8c on AVX2,
 * written in place); growth 12 does not, so the block buffer falls back to
 * the plain layout; a concatenation of the image itself (no producer that
 * can write into a slice) is copied in. The torch tests check the real
 * DenseNets against torchvision; this one covers the layouts they never hit.
 *
 * Bound: max |ours - naive| <= 1e-5 * max |naive| + 1e-6 over each output
 * (float32 sums in another order over a few layers).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "nn/graph.h"
#include "util/rng.h"

#include "check.h"

static void fill(float *x, size_t n, uint32_t stream, double lo, double hi) {
    RngStream rs;
    rng_stream_init(&rs, 4321, 77, stream, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rng_uniform(&rs));
}

static void init_layer(NNLayer *l, uint32_t seed) {
    if (l->kind == NN_CONV) {
        double b = sqrt(6.0 / (double)(l->cin * l->k * l->k));
        fill(l->weight, l->cout * l->cin * l->k * l->k, seed, -b, b);
        fill(l->bias, l->cout, seed + 1, -0.2, 0.2);
    } else if (l->kind == NN_BN_RELU) {
        fill(l->weight, l->cout, seed, 0.5, 1.5);
        fill(l->bias, l->cout, seed + 1, -0.3, 0.3);
    }
}

// Stem, two dense blocks of three layers with a transition between them,
// the final BatchNorm + ReLU and the global pool.
static void dense_graph(NNGraph *g, size_t growth) {
    graph_init(g, "dense");
    int t = graph_add_conv(g, "stem", NN_INPUT, 3, 16, 3, 2, 1, 1);
    t = graph_add_maxpool(g, "pool0", t, 3, 2, 1);
    size_t c = 16;
    char name[48];
    for (int B = 0; B < 2; B++) {
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "b%d.l%d.norm1", B, i);
            int x = graph_add_bn_relu(g, name, name, t);
            snprintf(name, sizeof name, "b%d.l%d.conv1", B, i);
            x = graph_add_conv(g, name, x, c, 4 * growth, 1, 1, 0, 1);
            snprintf(name, sizeof name, "b%d.l%d.conv2", B, i);
            x = graph_add_conv(g, name, x, 4 * growth, growth, 3, 1, 1, 0);
            snprintf(name, sizeof name, "b%d.l%d.cat", B, i);
            t = graph_add_concat(g, name, t, x);
            c += growth;
        }
        snprintf(name, sizeof name, "t%d.norm", B);
        t = graph_add_bn_relu(g, name, name, t);
        if (B == 0) {
            t = graph_add_conv(g, "t0.conv", t, c, c / 2, 1, 1, 0, 0);
            t = graph_add_avgpool(g, "t0.pool", t, 2, 2);
            c /= 2;
        }
    }
    graph_add_global_avgpool(g, "avgpool", t);
}

// The image concatenated with a convolution of itself: the image has no
// producer that could write into the block buffer, so it is copied there.
static void input_concat_graph(NNGraph *g) {
    graph_init(g, "input-concat");
    int x = graph_add_conv(g, "conv", NN_INPUT, 3, 13, 3, 1, 1, 1);
    int t = graph_add_concat(g, "cat", NN_INPUT, x);
    t = graph_add_bn_relu(g, "norm", "norm", t);
    graph_add_global_avgpool(g, "avgpool", t);
}

// ---- the naive evaluation, one image ----

static float *naive(const NNGraph *g, const NNShape *sh, const float *img, size_t S) {
    float **act = calloc(g->n_layers, sizeof *act);
    for (size_t i = 0; i < g->n_layers; i++) {
        const NNLayer *l = &g->layers[i];
        NNShape in = l->src == NN_INPUT ? (NNShape){3, S, S} : sh[l->src];
        const float *x = l->src == NN_INPUT ? img : act[l->src];
        NNShape o = sh[i];
        float *y = act[i] = calloc(o.c * o.h * o.w, sizeof(float));
        for (size_t c = 0; c < o.c; c++)
            for (size_t oy = 0; oy < o.h; oy++)
                for (size_t ox = 0; ox < o.w; ox++) {
                    double v = 0;
                    size_t at = (c * o.h + oy) * o.w + ox;
                    switch (l->kind) {
                    case NN_CONV:
                        v = l->bias[c];
                        for (size_t ci = 0; ci < l->cin; ci++)
                            for (size_t ky = 0; ky < l->k; ky++)
                                for (size_t kx = 0; kx < l->k; kx++) {
                                    long iy = (long)(oy * l->stride + ky) - (long)l->pad;
                                    long ix = (long)(ox * l->stride + kx) - (long)l->pad;
                                    if (iy < 0 || ix < 0 || iy >= (long)in.h || ix >= (long)in.w) continue;
                                    v += (double)l->weight[((c * l->cin + ci) * l->k + ky) * l->k + kx] *
                                         x[(ci * in.h + (size_t)iy) * in.w + (size_t)ix];
                                }
                        if (l->relu && v < 0) v = 0;
                        break;
                    case NN_MAXPOOL:
                        v = -INFINITY;
                        for (size_t ky = 0; ky < l->k; ky++)
                            for (size_t kx = 0; kx < l->k; kx++) {
                                long iy = (long)(oy * l->stride + ky) - (long)l->pad;
                                long ix = (long)(ox * l->stride + kx) - (long)l->pad;
                                if (iy < 0 || ix < 0 || iy >= (long)in.h || ix >= (long)in.w) continue;
                                double u = x[(c * in.h + (size_t)iy) * in.w + (size_t)ix];
                                v = u > v ? u : v;
                            }
                        break;
                    case NN_AVGPOOL:
                        for (size_t ky = 0; ky < l->k; ky++)
                            for (size_t kx = 0; kx < l->k; kx++)
                                v += x[(c * in.h + oy * l->stride + ky) * in.w + ox * l->stride + kx];
                        v /= (double)(l->k * l->k);
                        break;
                    case NN_BN_RELU:
                        v = (double)x[at] * l->weight[c] + l->bias[c];
                        if (v < 0) v = 0;
                        break;
                    case NN_CONCAT: {
                        const float *b = act[l->src2];
                        v = c < in.c ? x[at] : b[((c - in.c) * o.h + oy) * o.w + ox];
                        break;
                    }
                    case NN_GLOBAL_AVGPOOL:
                        for (size_t yy = 0; yy < in.h; yy++)
                            for (size_t xx = 0; xx < in.w; xx++) v += x[(c * in.h + yy) * in.w + xx];
                        v /= (double)(in.h * in.w);
                        break;
                    default: fatal("naive: layer %s", l->name);
                    }
                    y[at] = (float)v;
                }
    }
    float *out = act[g->n_layers - 1];
    for (size_t i = 0; i + 1 < g->n_layers; i++) free(act[i]);
    free(act);
    return out;
}

static void check_graph(NNGraph *g, size_t S, size_t batch, const char *what) {
    for (size_t i = 0; i < g->n_layers; i++) init_layer(&g->layers[i], 10 * (uint32_t)i + 1);
    CtError err = {{0}};
    NNShape *sh = calloc(g->n_layers, sizeof *sh);
    CHECK(graph_infer_shapes(g, S, S, sh, &err) == 0, "%s: %s", what, err.msg);
    BackendOptions opt;
    backend_options_default(&opt);
    opt.threads = 2;
    BackendNet *net = NULL;
    if (backend_net_create(&net, g, batch, S, S, &opt, &err)) {
        CHECK(0, "%s: plan: %s", what, err.msg);
        free(sh);
        return;
    }
    size_t per = backend_net_output_numel(net), in = 3 * S * S;
    float *x = malloc(batch * in * sizeof(float)), *y = malloc(batch * per * sizeof(float));
    fill(x, batch * in, 999, -2.0, 2.0);
    CHECK(backend_net_forward(net, x, batch, y, &err) == 0, "%s: forward: %s", what, err.msg);
    double worst = 0, top = 0;
    size_t at = 0;
    for (size_t b = 0; b < batch; b++) {
        float *ref = naive(g, sh, x + b * in, S);
        for (size_t j = 0; j < per; j++) {
            double d = fabs((double)y[b * per + j] - ref[j]);
            if (d > worst) worst = d, at = b * per + j;
            if (fabs(ref[j]) > top) top = fabs(ref[j]);
        }
        free(ref);
    }
    double bound = 1e-5 * top + 1e-6;
    CHECK(worst <= bound, "%s: max |ours - naive| %.3g at %zu, bound %.3g", what, worst, at, bound);
    printf("ok   %s at %zu px, batch %zu: %zu outputs, max |ours - naive| %.3g (bound %.3g)\n", what, S, batch, per,
           worst, bound);
    free(x), free(y), free(sh);
    backend_net_free(net);
}

int main(void) {
    NNGraph g;
    dense_graph(&g, 8);
    check_graph(&g, 41, 3, "dense blocks, growth 8 (blocked buffer)");
    graph_free(&g);
    dense_graph(&g, 12);
    check_graph(&g, 41, 3, "dense blocks, growth 12 (plain buffer)");
    graph_free(&g);
    input_concat_graph(&g);
    check_graph(&g, 9, 2, "the image concatenated (copied into its slice)");
    graph_free(&g);
    return check_summary();
}
