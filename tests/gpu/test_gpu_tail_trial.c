/*
 * test_gpu_tail_trial.c — one whole fine-tuning run on the GPU's operation
 * table against the same run on the CPU's: VGG16 with block5 unfrozen and
 * ResNet-34 with layer4 unfrozen, at 64 px, the default head (dropout on),
 * random initialisation (tail_init_random, the same seed on both), 20 Adam
 * steps of tail_forward_host / tail_backward / tail_adam_step over the
 * same batches of random cut activations and labels, the tail at a tenth
 * of the head's learning rate as the trainer runs it.
 *
 * Bounds:
 *  - the first step's gradients, per tensor: normalised error (max |gpu -
 *    cpu| / max |cpu|) 1e-3. The ops agree within 2e-5 each (see
 *    test_gpu_backend_ops.c); a chain of convolutions, pools and the head
 *    adds those up, and a ReLU or max pool whose input sits within rounding
 *    of its kink passes a gradient on one backend and not the other.
 *  - every step's loss: relative 1e-4 (the loss is smooth in the
 *    parameters, which stay close).
 *  - the parameters after 20 steps, per tensor: the training's movement
 *    (final - initial) on the GPU against the CPU's, relative L2 error
 *    ||d_gpu - d_cpu|| / ||d_cpu|| <= 2e-2. Not an elementwise bound: Adam's
 *    first step moves every element by lr * sign(gradient), so an element
 *    whose gradient is within rounding of zero may move either way (2 lr
 *    apart); such elements are a few in a million and weigh nothing in the
 *    L2 norm, while a wrong op moves whole tensors. The largest elementwise
 *    difference is printed, in units of the learning rate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "nn/models.h"
#include "train/adam.h"
#include "train/head.h"
#include "train/tail.h"

#include "gpu_test.h"

#define STEPS 20
#define BATCH 16
#define ROWS 48
#define PX 64

static const BackendOps *CPU, *GPU;

static float *download_all(const Tail *t, const float *src, size_t n) {
    float *h = ct_calloc(n ? n : 1, sizeof(float));
    t->ops->download(h, src, n * sizeof(float));
    return h;
}

static void run_model(const char *model, const char *stage, int unfreeze) {
    CtError err = {{0}};
    NNGraph g;
    size_t cut = 0;
    if (model_build(&g, model, &err) || model_cut_layer(&g, unfreeze, &cut, &err)) {
        CHECK(0, "%s: %s", model, err.msg);
        return;
    }
    HeadSpec hs;
    head_spec_default(&hs, model, 0);
    Tail tc, tg;
    int okc = tail_init(&tc, CPU, &g, cut, &hs, BATCH, PX, PX, CONV_ALGO_DIRECT, &err) == 0;
    CHECK(okc, "%s: CPU tail: %s", model, err.msg);
    int okg = okc && tail_init(&tg, GPU, &g, cut, &hs, BATCH, PX, PX, CONV_ALGO_DIRECT, &err) == 0;
    CHECK(okg, "%s: GPU tail: %s", model, err.msg);
    if (!okg) {
        if (okc) tail_free(&tc);
        graph_free(&g);
        return;
    }
    printf("%s, %s unfrozen at %d px: %zu tail layers, %zu parameters (%zu in the tail), cut input (%zu, %zu, %zu), "
           "head dropout %.2f\n", model, stage, PX, tc.n_layers, tc.n_params, tc.n_tail_params, tc.in_shape.c,
           tc.in_shape.h, tc.in_shape.w, hs.dropout);
    // The trainer trains from cached activations: no gradient at the cut.
    tc.input_grad = tg.input_grad = 0;
    const uint64_t seed = 7;
    tail_init_random(&tc, &g, seed);
    tail_init_random(&tg, &g, seed);
    CHECK(GPU->check(&err) == 0, "%s: GPU init: %s", model, err.msg);

    // The same parameters to start with.
    float *p0 = download_all(&tc, tc.params, tc.n_params), *p0g = download_all(&tg, tg.params, tg.n_params);
    GPU_EXPECT_SAME(p0g, p0, tc.n_params, "%s: parameters after tail_init_random", model);

    // Cut activations as a ReLU leaves them, and labels.
    size_t in = tc.in_numel;
    float *x = ct_malloc_array(ROWS * in, sizeof(float)), *xb = ct_malloc_array(BATCH * in, sizeof(float));
    uint8_t y[ROWS], yb[BATCH];
    gpu_fill_normal(x, ROWS * in, 3, 1.0f);
    for (size_t i = 0; i < ROWS * in; i++) x[i] = x[i] > 0 ? x[i] : 0.0f;
    for (size_t r = 0; r < ROWS; r++) y[r] = (uint8_t)((r * 5 + 1) % 3 == 0);

    AdamSpec as;
    adam_spec_default(&as);
    const double lr_head = 1e-3, lr_tail = 1e-4;
    double worst_loss = 0;
    int losses_ok = 1;
    for (size_t s = 0; s < STEPS; s++) {
        for (size_t k = 0; k < BATCH; k++) {
            size_t r = (s * BATCH + k * 7) % ROWS;
            memcpy(xb + k * in, x + r * in, in * sizeof(float));
            yb[k] = y[r];
        }
        double loss[2];
        size_t correct[2];
        Tail *ts[2] = {&tc, &tg};
        for (int b = 0; b < 2; b++) {
            tail_zero_grads(ts[b]);
            loss[b] = -1;
            if (tail_forward_host(ts[b], xb, BATCH, 0, 1, seed, s, &err))
                loss[b] = tail_backward(ts[b], yb, BATCH, &correct[b], &err);
            CHECK(loss[b] >= 0, "%s step %zu on the %s: %s", model, s, b ? "GPU" : "CPU", err.msg);
            if (loss[b] < 0) goto done;
            loss[b] /= BATCH;
        }
        double rel = fabs(loss[1] - loss[0]) / fabs(loss[0]);
        if (rel > worst_loss) worst_loss = rel;
        if (!(rel <= 1e-4)) {
            losses_ok = 0;
            printf("FAIL %s step %zu: loss %.9g on the GPU, %.9g on the CPU (relative %.3g > 1e-4)\n", model, s,
                   loss[1], loss[0], rel);
        }
        if (s == 0) {
            // The first step's gradients, tensor by tensor.
            float *gc = download_all(&tc, tc.grads, tc.n_params), *gg = download_all(&tg, tg.grads, tg.n_params);
            for (size_t i = 0; i < tc.n_tensors; i++) {
                const TailTensor *a = &tc.tensors[i];
                size_t off = (size_t)(a->grad - tc.grads);
                GPU_EXPECT_CLOSE(gg + off, gc + off, a->numel, 1e-3, "%s step 0: gradient of %s", model, a->name);
            }
            free(gc), free(gg);
        }
        tail_adam_step(&tc, &as, lr_tail, lr_head);
        tail_adam_step(&tg, &as, lr_tail, lr_head);
    }
    CHECK(losses_ok, "%s: losses of %d steps within 1e-4 (worst %.3g)", model, STEPS, worst_loss);
    if (losses_ok) printf("ok   %s: %d steps' losses within %.3g relative (bound 1e-4)\n", model, STEPS, worst_loss);
    CHECK(GPU->check(&err) == 0, "%s: GPU steps: %s", model, err.msg);
    CHECK(tail_params_finite(&tg), "%s: GPU parameters not finite after %d steps", model, STEPS);

    // The parameters' movement over the run, tensor by tensor.
    float *pc = download_all(&tc, tc.params, tc.n_params), *pg = download_all(&tg, tg.params, tg.n_params);
    for (size_t i = 0; i < tc.n_tensors; i++) {
        const TailTensor *a = &tc.tensors[i];
        size_t off = (size_t)(a->param - tc.params);
        double lr = off < tc.n_tail_params ? lr_tail : lr_head, dd = 0, dn = 0, worst = 0;
        for (size_t k = off; k < off + a->numel; k++) {
            double mc = (double)pc[k] - p0[k], mg = (double)pg[k] - p0[k];
            dd += (mg - mc) * (mg - mc);
            dn += mc * mc;
            if (fabs(mg - mc) > worst || isnan(mg)) worst = isnan(mg) ? INFINITY : fabs(mg - mc);
        }
        double rel = dn > 0 ? sqrt(dd / dn) : sqrt(dd);
        CHECK(rel <= 2e-2, "%s: %s after %d steps: relative L2 error of the movement %.3g > 2e-2 (largest "
              "difference %.3g lr)", model, a->name, STEPS, rel, worst / lr);
        if (rel <= 2e-2)
            printf("ok   %s: %s after %d steps: movement within %.3g (L2, bound 2e-2), largest difference %.3g lr\n",
                   model, a->name, STEPS, rel, worst / lr);
    }
    free(pc), free(pg);
done:
    free(p0), free(p0g), free(x), free(xb);
    tail_free(&tc);
    tail_free(&tg);
    graph_free(&g);
}

int main(void) {
    int skip = gpu_require(1);
    if (skip) return skip;
    CtError err = {{0}};
    CPU = backend_ops_get(BACKEND_CPU, &err);
    GPU = backend_ops_get(BACKEND_CUDA, &err);
    CHECK(CPU && GPU, "operation tables: %s", err.msg);
    if (!CPU || !GPU) return check_summary();
    run_model("vgg16", "block5", 1);
    run_model("resnet34", "layer4", 1);
    return check_summary();
}
