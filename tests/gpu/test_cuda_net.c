/*
 * test_cuda_net.c — the CUDA backbone plan against the CPU backend (the
 * reference) layer by layer: every distinct convolution of VGG16, VGG19,
 * ResNet-34, ResNet-50 and DenseNet-121 at 64 px, a residual block (shortcut
 * added before the ReLU), small dense blocks (BatchNorm + ReLU, concatenation
 * buffers, the 2x2 average pool; on the CPU both channel-blocked and plain
 * block buffers),
 * max pooling (VGG's 2x2 and ResNet's padded 3x3 on odd and even sizes),
 * the adaptive average pool (shrinking and overlapping windows) and the
 * global one, each in every precision, with a partial batch; the
 * deterministic mode (bit-identical across plans) and conv-algo direct;
 * conv-algo winograd (runs and matches, or is refused in one line naming
 * the layer); a fused convolution without a shortcut whose output buffer
 * held infinities from an earlier layer (the zero-scaled residual must not
 * read them); and a batch whose tensors pass 2^31 elements (run in pieces,
 * never a cuDNN error).
 *
 * A backend plan reads 3-channel images, so a layer under test gets a 1x1
 * convolution from 3 channels in front of it and an identity adaptive pool
 * behind it (which also puts its output in NCHW order).
 *
 * Bounds (normalised error vs CPU fp32): fp32 1e-5, tf32 2e-3, fp16 5e-3,
 * bf16 2e-2; pooling alone is exact in fp32 (1e-6 allowed for the averages,
 * summed in double on both sides).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "nn/models.h"

#include "gpu_test.h"

static const Precision PRECISIONS[] = {PRECISION_FP32, PRECISION_TF32, PRECISION_FP16, PRECISION_BF16};
static const double LAYER_BOUND[] = {1e-5, 2e-3, 5e-3, 2e-2};

static void init_conv(NNGraph *g, int t, uint32_t stream) {
    NNLayer *l = &g->layers[t];
    size_t nw = l->cout * l->cin * l->k * l->k;
    float b = (float)sqrt(6.0 / (double)(l->cin * l->k * l->k));
    gpu_fill_uniform(l->weight, nw, stream, -b, b);
    gpu_fill_uniform(l->bias, l->cout, stream + 1000, -0.2f, 0.2f);
}

// Runs g on both backends with opt (kind set here) and compares.
static void compare(const NNGraph *g, size_t batch, size_t S, const BackendOptions *base, double bound,
                    const char *what) {
    CtError err = {{0}};
    BackendOptions cpu = *base, gpu = *base;
    cpu.kind = BACKEND_CPU;
    cpu.precision = PRECISION_FP32;
    cpu.conv_algo = CONV_ALGO_DIRECT;
    cpu.threads = 0;
    gpu.kind = BACKEND_CUDA;
    BackendNet *nc = NULL, *ng = NULL;
    if (backend_net_create(&nc, g, batch, S, S, &cpu, &err)) {
        CHECK(0, "%s: CPU plan: %s", what, err.msg);
        return;
    }
    if (backend_net_create(&ng, g, batch, S, S, &gpu, &err)) {
        CHECK(0, "%s: CUDA plan (%s): %s", what, precision_name(gpu.precision), err.msg);
        backend_net_free(nc);
        return;
    }
    size_t in_n = batch * 3 * S * S, per = backend_net_output_numel(nc);
    CHECK(per == backend_net_output_numel(ng), "%s: output sizes %zu vs %zu", what, per,
          backend_net_output_numel(ng));
    float *x = ct_malloc_array(in_n, sizeof(float));
    float *yc = ct_malloc_array(batch * per, sizeof(float)), *yg = ct_malloc_array(batch * per, sizeof(float));
    gpu_fill_normal(x, in_n, 7, 1.0f);
    if (backend_net_forward(nc, x, batch, yc, &err) || backend_net_forward(ng, x, batch, yg, &err)) {
        CHECK(0, "%s: forward: %s", what, err.msg);
    } else {
        GPU_EXPECT_CLOSE(yg, yc, batch * per, bound, "%s %s batch %zu", what, precision_name(gpu.precision), batch);
        // A partial batch: the first rows of another input, alone.
        gpu_fill_normal(x, in_n, 8, 1.0f);
        size_t n = batch - 1 ? batch - 1 : 1;
        if (backend_net_forward(nc, x, n, yc, &err) || backend_net_forward(ng, x, n, yg, &err))
            CHECK(0, "%s: partial forward: %s", what, err.msg);
        else
            GPU_EXPECT_CLOSE(yg, yc, n * per, bound, "%s %s partial batch %zu of %zu", what,
                             precision_name(gpu.precision), n, batch);
    }
    free(x), free(yc), free(yg);
    backend_net_free(nc);
    backend_net_free(ng);
}

static void compare_all_precisions(const NNGraph *g, size_t batch, size_t S, const char *what) {
    BackendOptions opt;
    backend_options_default(&opt);
    for (size_t p = 0; p < 4; p++) {
        opt.precision = PRECISIONS[p];
        compare(g, batch, S, &opt, LAYER_BOUND[p], what);
    }
}

// A graph: 1x1 conv 3 -> cin (ReLU), the conv under test, identity pool.
static void one_conv_graph(NNGraph *g, size_t cin, size_t cout, size_t k, size_t stride, size_t pad, int relu,
                           size_t oh, size_t ow, uint32_t seed) {
    graph_init(g, "one-conv");
    int a = graph_add_conv(g, "lift", NN_INPUT, 3, cin, 1, 1, 0, 1);
    init_conv(g, a, seed);
    int b = graph_add_conv(g, "under_test", a, cin, cout, k, stride, pad, relu);
    init_conv(g, b, seed + 1);
    graph_add_adaptive_avgpool(g, "identity", b, oh, ow);
}

typedef struct {
    size_t cin, cout, k, stride, pad, ih, relu;
    char name[96];
} ConvShape;

// The distinct convolutions of the three models for S x S inputs.
static size_t model_conv_shapes(ConvShape *out, size_t cap, size_t S) {
    const char *models[] = {"vgg16", "vgg19", "resnet34", "resnet50", "densenet121"};
    size_t n = 0;
    for (size_t m = 0; m < sizeof models / sizeof *models; m++) {
        NNGraph g;
        CtError err = {{0}};
        if (model_build(&g, models[m], &err)) continue;
        NNShape *shapes = ct_calloc(g.n_layers, sizeof *shapes);
        if (graph_infer_shapes(&g, S, S, shapes, &err) == 0) {
            for (size_t i = 0; i < g.n_layers; i++) {
                const NNLayer *l = &g.layers[i];
                if (l->kind != NN_CONV) continue;
                size_t ih = l->src == NN_INPUT ? S : shapes[l->src].h;
                ConvShape s = {l->cin, l->cout, l->k, l->stride, l->pad, ih, (size_t)l->relu, ""};
                int seen = 0;
                for (size_t j = 0; j < n && !seen; j++)
                    seen = out[j].cin == s.cin && out[j].cout == s.cout && out[j].k == s.k &&
                           out[j].stride == s.stride && out[j].pad == s.pad && out[j].ih == s.ih &&
                           out[j].relu == s.relu;
                if (seen || n == cap) continue;
                snprintf(s.name, sizeof s.name, "%s %s (%zu->%zu %zux%zu s%zu p%zu at %zux%zu)", models[m], l->name,
                         s.cin, s.cout, s.k, s.k, s.stride, s.pad, ih, ih);
                out[n++] = s;
            }
        }
        free(shapes);
        graph_free(&g);
    }
    return n;
}

static void test_conv_shapes(void) {
    ConvShape shapes[160];
    const size_t S = 64;
    size_t n = model_conv_shapes(shapes, 160, S);
    printf("%zu distinct convolutions in vgg16, vgg19, resnet34, resnet50, densenet121 at %zu px\n", n, S);
    CHECK(n >= 15, "only %zu distinct convolutions found", n);
    for (size_t i = 0; i < n; i++) {
        const ConvShape *s = &shapes[i];
        size_t o = (s->ih + 2 * s->pad - s->k) / s->stride + 1;
        NNGraph g;
        one_conv_graph(&g, s->cin, s->cout, s->k, s->stride, s->pad, (int)s->relu, o, o, 100 + 10 * (uint32_t)i);
        // The lift conv runs at the input size; the image is the layer's input size.
        compare_all_precisions(&g, 3, s->ih, s->name);
        graph_free(&g);
    }
}

static void test_residual(void) {
    NNGraph g;
    graph_init(&g, "residual");
    int a = graph_add_conv(&g, "shortcut", NN_INPUT, 3, 64, 1, 1, 0, 1);
    init_conv(&g, a, 500);
    int b = graph_add_conv(&g, "conv1", a, 64, 64, 3, 1, 1, 1);
    init_conv(&g, b, 510);
    int c = graph_add_conv(&g, "conv2", b, 64, 64, 3, 1, 1, 1);
    init_conv(&g, c, 520);
    g.layers[c].residual = a;
    // A downsampling block too: 1x1 stride-2 shortcut without ReLU.
    int d = graph_add_conv(&g, "down", c, 64, 128, 1, 2, 0, 0);
    init_conv(&g, d, 530);
    int e = graph_add_conv(&g, "conv3", c, 64, 128, 3, 2, 1, 1);
    init_conv(&g, e, 540);
    int f = graph_add_conv(&g, "conv4", e, 128, 128, 3, 1, 1, 1);
    init_conv(&g, f, 550);
    g.layers[f].residual = d;
    graph_add_global_avgpool(&g, "avgpool", f);
    compare_all_precisions(&g, 3, 17, "residual blocks");
    graph_free(&g);
}

// A small DenseNet: stem, dense blocks (BatchNorm + ReLU, 1x1 conv + ReLU,
// 3x3 conv, concatenation), a transition with its 2x2 average pool (odd
// input: the last row and column are dropped) and the final BatchNorm +
// ReLU. Growth 8 keeps every slice on the CPU's channel blocks; growth 12
// does not, so the CPU plan falls back to a plain-layout block buffer.
static void dense_graph(NNGraph *g, size_t growth, uint32_t seed) {
    graph_init(g, "dense");
    int t = graph_add_conv(g, "stem", NN_INPUT, 3, 16, 3, 2, 1, 1);
    init_conv(g, t, seed);
    t = graph_add_maxpool(g, "pool0", t, 3, 2, 1);
    size_t c = 16;
    char name[48];
    for (int B = 0; B < 2; B++) {
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "b%d.l%d.norm1", B, i);
            int x = graph_add_bn_relu(g, name, name, t);
            snprintf(name, sizeof name, "b%d.l%d.conv1", B, i);
            x = graph_add_conv(g, name, x, c, 4 * growth, 1, 1, 0, 1);
            init_conv(g, x, seed + 10 * (uint32_t)(B * 3 + i) + 1);
            snprintf(name, sizeof name, "b%d.l%d.conv2", B, i);
            x = graph_add_conv(g, name, x, 4 * growth, growth, 3, 1, 1, 0);
            init_conv(g, x, seed + 10 * (uint32_t)(B * 3 + i) + 2);
            snprintf(name, sizeof name, "b%d.l%d.cat", B, i);
            t = graph_add_concat(g, name, t, x);
            c += growth;
        }
        snprintf(name, sizeof name, "t%d.norm", B);
        int x = graph_add_bn_relu(g, name, name, t);
        if (B == 0) {
            x = graph_add_conv(g, "t0.conv", x, c, c / 2, 1, 1, 0, 0);
            init_conv(g, x, seed + 99);
            t = graph_add_avgpool(g, "t0.pool", x, 2, 2);
            c /= 2;
        } else {
            t = x;
        }
    }
    graph_add_global_avgpool(g, "avgpool", t);
    for (size_t i = 0; i < g->n_layers; i++) {
        NNLayer *l = &g->layers[i];
        if (l->kind != NN_BN_RELU) continue;
        gpu_fill_uniform(l->weight, l->cout, seed + 300 + (uint32_t)i, 0.5f, 1.5f);
        gpu_fill_uniform(l->bias, l->cout, seed + 600 + (uint32_t)i, -0.3f, 0.3f);
    }
}

static void test_dense(void) {
    const size_t growths[2] = {8, 12};
    for (size_t k = 0; k < 2; k++) {
        NNGraph g;
        dense_graph(&g, growths[k], 700 + 1000 * (uint32_t)k);
        char what[64];
        snprintf(what, sizeof what, "dense blocks, growth %zu, 41 px", growths[k]);
        compare_all_precisions(&g, 3, 41, what);
        graph_free(&g);
    }
}

static void test_pools(void) {
    const struct {
        const char *what;
        size_t S;
        int kind;  // 0 max 2x2 s2, 1 max 3x3 s2 p1, 2 adaptive 7x7, 3 global
    } cases[] = {
        {"max-pool 2x2 s2 (odd size)", 15, 0}, {"max-pool 2x2 s2", 16, 0},
        {"max-pool 3x3 s2 p1 (odd size)", 15, 1}, {"max-pool 3x3 s2 p1", 16, 1},
        {"adaptive avg-pool 10x10 -> 7x7", 10, 2}, {"adaptive avg-pool 3x3 -> 7x7", 3, 2},
        {"adaptive avg-pool 14x14 -> 7x7", 14, 2}, {"global avg-pool 9x9", 9, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        NNGraph g;
        graph_init(&g, "pool");
        int a = graph_add_conv(&g, "lift", NN_INPUT, 3, 24, 1, 1, 0, 0);
        init_conv(&g, a, 600 + (uint32_t)i);
        int t = a;
        size_t S = cases[i].S, o = S;
        if (cases[i].kind == 0) t = graph_add_maxpool(&g, "pool", a, 2, 2, 0), o = (S - 2) / 2 + 1;
        if (cases[i].kind == 1) t = graph_add_maxpool(&g, "pool", a, 3, 2, 1), o = (S + 2 - 3) / 2 + 1;
        if (cases[i].kind <= 1) graph_add_adaptive_avgpool(&g, "identity", t, o, o);
        if (cases[i].kind == 2) graph_add_adaptive_avgpool(&g, "pool", a, 7, 7);
        if (cases[i].kind == 3) graph_add_global_avgpool(&g, "pool", a);
        BackendOptions opt;
        backend_options_default(&opt);
        compare(&g, 3, S, &opt, 1e-6, cases[i].what);
        opt.precision = PRECISION_BF16;
        compare(&g, 3, S, &opt, LAYER_BOUND[3], cases[i].what);
        graph_free(&g);
    }
}

static void test_deterministic(void) {
    NNGraph g;
    CtError err = {{0}};
    if (model_build(&g, "resnet34", &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    model_init_random(&g, 3);
    const size_t B = 4, S = 64;
    BackendOptions opt;
    backend_options_default(&opt);
    opt.kind = BACKEND_CUDA;
    opt.deterministic = 1;
    size_t in_n = B * 3 * S * S;
    float *x = ct_malloc_array(in_n, sizeof(float));
    gpu_fill_normal(x, in_n, 9, 1.0f);
    float *y[2] = {NULL, NULL};
    size_t per = 0;
    for (int r = 0; r < 2; r++) {
        BackendNet *net = NULL;
        if (backend_net_create(&net, &g, B, S, S, &opt, &err)) {
            CHECK(0, "deterministic plan: %s", err.msg);
            break;
        }
        per = backend_net_output_numel(net);
        y[r] = ct_malloc_array(B * per, sizeof(float));
        if (backend_net_forward(net, x, B, y[r], &err)) CHECK(0, "deterministic forward: %s", err.msg);
        backend_net_free(net);
    }
    if (y[0] && y[1]) {
        int same = memcmp(y[0], y[1], B * per * sizeof(float)) == 0;
        CHECK(same, "deterministic mode: two plans of resnet34 give different bits");
        if (same) printf("ok   deterministic mode: two plans of resnet34 give bit-identical features\n");
    }
    free(y[0]), free(y[1]), free(x);
    // conv-algo direct (implicit GEMM only) still matches the CPU.
    opt.deterministic = 0;
    opt.conv_algo = CONV_ALGO_DIRECT;
    compare(&g, 2, S, &opt, 1e-4, "resnet34 conv-algo direct");
    graph_free(&g);
}

// conv-algo winograd on 3x3 stride-1 layers: either cuDNN offers Winograd
// and the result matches the CPU, or the plan is refused with one line.
static void test_winograd(void) {
    NNGraph g;
    one_conv_graph(&g, 64, 64, 3, 1, 1, 1, 16, 16, 700);
    BackendOptions opt;
    backend_options_default(&opt);
    opt.kind = BACKEND_CUDA;
    opt.conv_algo = CONV_ALGO_WINOGRAD;
    CtError err = {{0}};
    BackendNet *net = NULL;
    if (backend_net_create(&net, &g, 2, 16, 16, &opt, &err) == 0) {
        backend_net_free(net);
        printf("ok   conv-algo winograd: cuDNN offers Winograd for 3x3 stride 1 here\n");
        compare(&g, 2, 16, &opt, 1e-4, "conv-algo winograd");
    } else {
        int one_line = strchr(err.msg, '\n') == NULL;
        CHECK(one_line && strstr(err.msg, "under_test") && strstr(err.msg, "conv_algo: winograd") &&
                  !strstr(err.msg, "CUDNN_STATUS"),
              "conv-algo winograd refused unclearly: %s", err.msg);
        if (one_line) printf("ok   conv-algo winograd refused: %s\n", err.msg);
    }
    graph_free(&g);
}

// lift (1x1, ReLU) -> max-pool 1x1 stride 2 -> conv 3x3 (ReLU, no shortcut)
// -> identity pool. The input is 3e38 at every pixel with an odd row or
// column, so the lift's output there is +inf; the stride-2 pool keeps only
// finite pixels, and the conv's output reuses the lift's buffer, infinities
// and all. A fused call that scaled that stale output by zero as its
// residual would turn it into NaN.
static void test_stale_fused(void) {
    const size_t B = 3, S = 16;
    NNGraph g;
    graph_init(&g, "stale");
    int a = graph_add_conv(&g, "lift", NN_INPUT, 3, 16, 1, 1, 0, 1);
    NNLayer *la = &g.layers[a];
    gpu_fill_uniform(la->weight, 16 * 3, 800, 0.5f, 1.0f);
    gpu_fill_uniform(la->bias, 16, 801, 0.0f, 0.1f);
    int p = graph_add_maxpool(&g, "subsample", a, 1, 2, 0);
    int c = graph_add_conv(&g, "conv", p, 16, 32, 3, 1, 1, 1);
    init_conv(&g, c, 802);
    graph_add_adaptive_avgpool(&g, "identity", c, S / 2, S / 2);
    BackendOptions opt;
    backend_options_default(&opt);
    CtError err = {{0}};
    BackendNet *nc = NULL, *ng = NULL;
    BackendOptions cpu = opt, gpu = opt;
    cpu.conv_algo = CONV_ALGO_DIRECT;
    gpu.kind = BACKEND_CUDA;
    if (backend_net_create(&nc, &g, B, S, S, &cpu, &err) || backend_net_create(&ng, &g, B, S, S, &gpu, &err)) {
        CHECK(0, "stale-output graph: %s", err.msg);
    } else {
        size_t in_n = B * 3 * S * S, per = backend_net_output_numel(nc);
        float *x = ct_malloc_array(in_n, sizeof(float));
        float *yc = ct_malloc_array(B * per, sizeof(float)), *yg = ct_malloc_array(B * per, sizeof(float));
        gpu_fill_normal(x, in_n, 803, 1.0f);
        for (size_t i = 0; i < in_n; i++) {
            size_t r = (i / S) % S, col = i % S;
            if ((r | col) & 1) x[i] = 3e38f;
        }
        if (backend_net_forward(nc, x, B, yc, &err) || backend_net_forward(ng, x, B, yg, &err)) {
            CHECK(0, "stale-output forward: %s", err.msg);
        } else {
            size_t bad_cpu = 0, bad_gpu = 0;
            for (size_t i = 0; i < B * per; i++) bad_cpu += !isfinite(yc[i]), bad_gpu += !isfinite(yg[i]);
            CHECK(bad_cpu == 0 && bad_gpu == 0, "stale-output graph: %zu non-finite CPU and %zu non-finite GPU outputs",
                  bad_cpu, bad_gpu);
            GPU_EXPECT_CLOSE(yg, yc, B * per, LAYER_BOUND[0], "fused conv over a stale output buffer holding inf");
        }
        free(x), free(yc), free(yg);
    }
    backend_net_free(nc);
    backend_net_free(ng);
    graph_free(&g);
}

// 1x1 conv 3 -> 256 at 1024 x 1024: 2^28 elements an image, so a batch of 9
// holds 2.4e9 > 2^31 - 1 in one tensor; the plan runs it in pieces of 7.
static void test_large_batch(void) {
    NNGraph g;
    graph_init(&g, "large");
    int a = graph_add_conv(&g, "wide", NN_INPUT, 3, 256, 1, 1, 0, 1);
    init_conv(&g, a, 900);
    graph_add_global_avgpool(&g, "avgpool", a);
    BackendOptions opt;
    backend_options_default(&opt);
    compare(&g, 9, 1024, &opt, LAYER_BOUND[0], "batch 9 of 256 x 1024 x 1024 (past 2^31 elements)");
    graph_free(&g);
}

int main(void) {
    int skip = gpu_require(1);
    if (skip) return skip;
    test_stale_fused();
    test_winograd();
    test_large_batch();
    test_pools();
    test_residual();
    test_dense();
    test_conv_shapes();
    test_deterministic();
    return check_summary();
}
