/*
 * layers_driver.c — every convolution's output of a backbone on the CPU
 * backend, for check_winograd_layers.py, which compares each with
 * torchvision's activation at the same point: the error per layer.
 *
 * For each convolution i, the graph is cut after it (model_prefix: an
 * identity pool appended) and run on all images, so the output is what the
 * whole stack up to and including i computes, post-ops (residual, ReLU)
 * included.
 *
 * usage: layers_driver MODEL WEIGHTS SIZE CONV_ALGO IMAGES.f32 N OUTDIR
 * IMAGES.f32: (N, 3, SIZE, SIZE) float32, preprocessed. Writes OUTDIR/<i>.f32
 * (N, c, h, w) and prints one line per convolution: index, name, k, stride,
 * c, h, w, and `pooled` for the last one (its cut is the whole backbone, so
 * its output is the features, after the final pool).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "nn/models.h"

static void die(const char *what, const CtError *err) {
    fprintf(stderr, "layers_driver: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 8) die("usage: layers_driver MODEL WEIGHTS SIZE CONV_ALGO IMAGES.f32 N OUTDIR", NULL);
    const char *model = argv[1], *weights = argv[2], *outdir = argv[7];
    size_t s = (size_t)atoi(argv[3]), n = (size_t)atoi(argv[6]);
    CtError err = {0};
    BackendOptions opt;
    backend_options_default(&opt);
    if (conv_algo_parse(argv[4], &opt.conv_algo)) die("bad conv algo", NULL);
    float *in = malloc(n * 3 * s * s * sizeof(float));
    FILE *f = fopen(argv[5], "rb");
    if (!in || !f || fread(in, sizeof(float), n * 3 * s * s, f) != n * 3 * s * s) die(argv[5], NULL);
    fclose(f);
    NNGraph full;
    if (model_create(&full, model, weights, 0, &err)) die("model", &err);
    for (size_t i = 0; i < full.n_layers; i++) {
        const NNLayer *l = &full.layers[i];
        if (l->kind != NN_CONV) continue;
        NNGraph g;
        BackendNet *net = NULL;
        if (model_create(&g, model, weights, 0, &err) || model_prefix(&g, i + 1, s, s, &err) ||
            backend_net_create(&net, &g, n, s, s, &opt, &err))
            die(l->name, &err);
        size_t numel = backend_net_output_numel(net);
        float *out = malloc(n * numel * sizeof(float));
        if (!out || backend_net_forward(net, in, n, out, &err)) die(l->name, &err);
        NNShape *shapes = calloc(full.n_layers, sizeof *shapes);
        if (graph_infer_shapes(&full, s, s, shapes, &err)) die(l->name, &err);
        char path[4096];
        snprintf(path, sizeof path, "%s/%zu.f32", outdir, i);
        FILE *o = fopen(path, "wb");
        if (!o || fwrite(out, sizeof(float), n * numel, o) != n * numel || fclose(o)) die(path, NULL);
        // The last convolution's cut is the whole graph: its output is pooled.
        size_t at = i + 2 == full.n_layers ? i + 1 : i;
        printf("%zu %s %zu %zu %zu %zu %zu%s\n", i, l->name, l->k, l->stride, shapes[at].c, shapes[at].h, shapes[at].w,
               at != i ? " pooled" : "");
        fflush(stdout);
        free(shapes);
        free(out);
        backend_net_free(net);
        graph_free(&g);
    }
    graph_free(&full);
    free(in);
    return 0;
}
