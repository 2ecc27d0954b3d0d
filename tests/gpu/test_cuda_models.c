/*
 * test_cuda_models.c — whole-backbone features of every registry model
 * (seeded random weights, as the sweeps without pretrained weights use;
 * DenseNet's unfolded BatchNorms given random scales and shifts so they are
 * not near the identity) on the CUDA backend against the CPU backend, at
 * small and odd sizes and every precision, and the throughput of both for
 * the record. DenseNet's run exercises the concatenation buffers, the
 * channel-slice copies, BatchNorm + ReLU on a strided prefix and the 2x2
 * average pool.
 *
 * Bounds (normalised error vs CPU fp32, errors compound over 16-36
 * layers): fp32 1e-4, tf32 1e-2, fp16 2e-2, bf16 6e-2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "nn/models.h"

#include "gpu_test.h"

static const Precision PRECISIONS[] = {PRECISION_FP32, PRECISION_TF32, PRECISION_FP16, PRECISION_BF16};
static const double MODEL_BOUND[] = {1e-4, 1e-2, 2e-2, 6e-2};

static int forward_timed(BackendNet *net, const float *x, size_t B, float *y, double *sec, CtError *err) {
    if (backend_net_forward(net, x, B, y, err)) return -1;  // warm-up
    double t = ct_now();
    if (backend_net_forward(net, x, B, y, err)) return -1;
    *sec = ct_now() - t;
    return 0;
}

static void test_model(const char *model, size_t S, size_t B) {
    NNGraph g;
    CtError err = {{0}};
    if (model_build(&g, model, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    model_init_random(&g, 7);
    for (size_t i = 0; i < g.n_layers; i++) {
        NNLayer *l = &g.layers[i];
        if (l->kind != NN_BN_RELU) continue;
        gpu_fill_normal(l->weight, l->cout, 100 + i, 0.3f);
        gpu_fill_normal(l->bias, l->cout, 200 + i, 0.2f);
        for (size_t c = 0; c < l->cout; c++) l->weight[c] += 1.0f;
    }
    size_t in_n = B * 3 * S * S;
    float *x = ct_malloc_array(in_n, sizeof(float));
    gpu_fill_normal(x, in_n, 5, 1.0f);
    BackendOptions opt;
    backend_options_default(&opt);
    opt.conv_algo = CONV_ALGO_DIRECT;
    BackendNet *cpu = NULL;
    if (backend_net_create(&cpu, &g, B, S, S, &opt, &err)) {
        CHECK(0, "%s CPU plan: %s", model, err.msg);
        goto done;
    }
    size_t per = backend_net_output_numel(cpu);
    float *ref = ct_malloc_array(B * per, sizeof(float)), *y = ct_malloc_array(B * per, sizeof(float));
    double t_cpu = 0;
    if (forward_timed(cpu, x, B, ref, &t_cpu, &err)) {
        CHECK(0, "%s CPU forward: %s", model, err.msg);
    } else {
        for (size_t p = 0; p < 4; p++) {
            BackendOptions go;
            backend_options_default(&go);
            go.kind = BACKEND_CUDA;
            go.precision = PRECISIONS[p];
            go.verbose = p == 0;  // the plan once per model, for the log
            BackendNet *gpu = NULL;
            double t_gpu = 0;
            if (backend_net_create(&gpu, &g, B, S, S, &go, &err) || forward_timed(gpu, x, B, y, &t_gpu, &err)) {
                CHECK(0, "%s %s: %s", model, precision_name(go.precision), err.msg);
            } else {
                GPU_EXPECT_CLOSE(y, ref, B * per, MODEL_BOUND[p], "%s features at %zu px, batch %zu, %s", model, S,
                                 B, precision_name(go.precision));
                printf("     %s %s: %.1f img/s on the GPU, %.1f img/s on the CPU\n", model,
                       precision_name(go.precision), B / t_gpu, B / t_cpu);
            }
            backend_net_free(gpu);
        }
    }
    free(ref), free(y);
done:
    backend_net_free(cpu);
    free(x);
    graph_free(&g);
}

int main(void) {
    int skip = gpu_require(1);
    if (skip) return skip;
    test_model("vgg16", 64, 4);
    test_model("vgg19", 96, 2);
    test_model("resnet34", 96, 4);
    test_model("resnet34", 64, 3);
    test_model("resnet18", 97, 3);
    test_model("resnet50", 64, 2);
    test_model("densenet121", 64, 3);
    test_model("densenet169", 97, 2);
    return check_summary();
}
