/*
 * graph.c — building backbone graphs and inferring their shapes with
 * PyTorch's arithmetic (floor division for convolution and pooling output
 * sizes, adaptive pooling windows [floor(i*H/o), ceil((i+1)*H/o))).
 */
#include "nn/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void graph_init(NNGraph *g, const char *model) {
    memset(g, 0, sizeof *g);
    snprintf(g->model, sizeof g->model, "%s", model);
    g->in_channels = 3;
}

void graph_free(NNGraph *g) {
    for (size_t i = 0; i < g->n_layers; i++) {
        free(g->layers[i].weight);
        free(g->layers[i].bias);
    }
    free(g->layers);
    memset(g, 0, sizeof *g);
}

static NNLayer *graph_push(NNGraph *g, NNOpKind kind, const char *name, int src) {
    if (src != NN_INPUT && (src < 0 || (size_t)src >= g->n_layers))
        fatal("graph %s: layer %s reads tensor %d that does not exist yet", g->model, name, src);
    if (g->n_layers == g->cap_layers) {
        g->cap_layers = g->cap_layers ? 2 * g->cap_layers : 64;
        g->layers = ct_realloc(g->layers, g->cap_layers * sizeof *g->layers);
    }
    NNLayer *l = &g->layers[g->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->src = src;
    l->residual = NN_NONE;
    l->src2 = NN_NONE;
    size_t c = graph_tensor_channels(g, src);
    l->cin = c;
    l->cout = c;
    return l;
}

size_t graph_tensor_channels(const NNGraph *g, int t) {
    if (t == NN_INPUT) return g->in_channels;
    return g->layers[t].cout;
}

int graph_add_conv(NNGraph *g, const char *name, int src, size_t cin, size_t cout, size_t k,
                   size_t stride, size_t pad, int relu) {
    NNLayer *l = graph_push(g, NN_CONV, name, src);
    if (l->cin != cin) fatal("graph %s: %s expects %zu input channels, got %zu", g->model, name, cin, l->cin);
    l->cout = cout;
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    l->relu = relu;
    size_t nw;
    size_t dims[4] = {cout, cin, k, k};
    if (ct_mul_sizes(&nw, dims, 4)) fatal("graph %s: %s weight size overflows", g->model, name);
    l->weight = ct_calloc(nw, sizeof(float));
    l->bias = ct_calloc(cout, sizeof(float));
    return (int)(g->n_layers - 1);
}

int graph_add_maxpool(NNGraph *g, const char *name, int src, size_t k, size_t stride, size_t pad) {
    NNLayer *l = graph_push(g, NN_MAXPOOL, name, src);
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    return (int)(g->n_layers - 1);
}

int graph_add_adaptive_avgpool(NNGraph *g, const char *name, int src, size_t out_h, size_t out_w) {
    NNLayer *l = graph_push(g, NN_ADAPTIVE_AVGPOOL, name, src);
    l->out_h = out_h;
    l->out_w = out_w;
    return (int)(g->n_layers - 1);
}

int graph_add_global_avgpool(NNGraph *g, const char *name, int src) {
    graph_push(g, NN_GLOBAL_AVGPOOL, name, src);
    return (int)(g->n_layers - 1);
}

int graph_add_avgpool(NNGraph *g, const char *name, int src, size_t k, size_t stride) {
    NNLayer *l = graph_push(g, NN_AVGPOOL, name, src);
    l->k = k;
    l->stride = stride;
    return (int)(g->n_layers - 1);
}

int graph_add_bn_relu(NNGraph *g, const char *name, const char *bn, int src) {
    NNLayer *l = graph_push(g, NN_BN_RELU, name, src);
    snprintf(l->bn_name, sizeof l->bn_name, "%s", bn);
    l->weight = ct_calloc(l->cout, sizeof(float));
    l->bias = ct_calloc(l->cout, sizeof(float));
    for (size_t c = 0; c < l->cout; c++) l->weight[c] = 1.0f;
    return (int)(g->n_layers - 1);
}

int graph_add_concat(NNGraph *g, const char *name, int src, int src2) {
    if (src2 < 0 || (size_t)src2 >= g->n_layers)
        fatal("graph %s: concatenation %s reads tensor %d that does not exist yet", g->model, name, src2);
    NNLayer *l = graph_push(g, NN_CONCAT, name, src);
    l->src2 = src2;
    l->cout = l->cin + graph_tensor_channels(g, src2);
    return (int)(g->n_layers - 1);
}

// Output extent of a window op, or 0 when the input is too small.
static size_t window_out(size_t in, size_t k, size_t stride, size_t pad) {
    size_t padded = in + 2 * pad;
    if (padded < k) return 0;
    return (padded - k) / stride + 1;
}

int graph_infer_shapes(const NNGraph *g, size_t h, size_t w, NNShape *shapes, CtError *err) {
    NNShape in = {g->in_channels, h, w};
    for (size_t i = 0; i < g->n_layers; i++) {
        const NNLayer *l = &g->layers[i];
        NNShape s = l->src == NN_INPUT ? in : shapes[l->src];
        NNShape o = s;
        switch (l->kind) {
        case NN_CONV:
        case NN_MAXPOOL:
        case NN_AVGPOOL:
            o.c = l->cout;
            o.h = window_out(s.h, l->k, l->stride, l->pad);
            o.w = window_out(s.w, l->k, l->stride, l->pad);
            if (o.h == 0 || o.w == 0)
                return ct_errorf(err, "%s: input %zux%zu is too small (layer %s sees %zux%zu)", g->model,
                                 h, w, l->name, s.h, s.w);
            break;
        case NN_ADAPTIVE_AVGPOOL:
            o.h = l->out_h;
            o.w = l->out_w;
            break;
        case NN_GLOBAL_AVGPOOL:
            o.h = 1;
            o.w = 1;
            break;
        case NN_BN_RELU: break;
        case NN_CONCAT: {
            NNShape b = shapes[l->src2];
            if (b.h != s.h || b.w != s.w)
                return ct_errorf(err, "%s: %s concatenates %zux%zu with %zux%zu", g->model, l->name, s.h, s.w,
                                 b.h, b.w);
            o.c = s.c + b.c;
            break;
        }
        }
        if (l->residual != NN_NONE) {
            NNShape r = l->residual == NN_INPUT ? in : shapes[l->residual];
            if (r.c != o.c || r.h != o.h || r.w != o.w)
                return ct_errorf(err, "%s: residual of %s has shape %zux%zux%zu, output %zux%zux%zu",
                                 g->model, l->name, r.c, r.h, r.w, o.c, o.h, o.w);
        }
        shapes[i] = o;
    }
    return 0;
}

double graph_macs(const NNGraph *g, size_t h, size_t w) {
    NNShape *shapes = ct_calloc(g->n_layers, sizeof *shapes);
    double macs = 0;
    if (graph_infer_shapes(g, h, w, shapes, NULL) == 0) {
        for (size_t i = 0; i < g->n_layers; i++) {
            const NNLayer *l = &g->layers[i];
            if (l->kind == NN_CONV)
                macs += (double)shapes[i].h * shapes[i].w * l->cout * l->cin * l->k * l->k;
        }
    }
    free(shapes);
    return macs;
}

size_t graph_output_numel(const NNGraph *g, size_t h, size_t w) {
    if (g->n_layers == 0) return 0;
    NNShape *shapes = ct_calloc(g->n_layers, sizeof *shapes);
    size_t n = 0;
    if (graph_infer_shapes(g, h, w, shapes, NULL) == 0) {
        NNShape o = shapes[g->n_layers - 1];
        n = o.c * o.h * o.w;
    }
    free(shapes);
    return n;
}
