/*
 * test_backend_ops.c — the CPU operation table op by op: each backward is
 * the adjoint of its forward (<f(x), dy> = <x, f'(dy)> in double, 1e-5
 * relative), convolution forward against a direct loop, the weight gradient
 * the same bits on 1 and 2 threads, max pool routing each gradient to its
 * window's maximum, dropout masks equal to the head's, the Adam op equal to
 * adam_step bit for bit, the loss against its formula in double, the
 * BatchNorm fold equal to the load-time fold (model_fold_bn) bit for bit and
 * its gradient unfolding against the chain rule in double.
 * (Against PyTorch: tests/torch/check_tail.py.)
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "nn/models.h"
#include "train/adam.h"
#include "train/head.h"
#include "util/rng.h"

#include "check.h"

static float *randv(size_t n, uint32_t tag, float lo, float hi) {
    float *v = malloc(n * sizeof *v);
    RngStream rs;
    rng_stream_init(&rs, 99, 1, tag, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng_uniform_f(&rs);
    return v;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(fabs(a), fabs(b)); }

static void test_conv(const BackendOps *ops) {
    CtError err = {{0}};
    const size_t N = 5, CI = 5, CO = 7, K = 3, S = 2, P = 1, H = 9, W = 11, OH = 5, OW = 6;
    BackendConvDesc d = {.cin = CI, .cout = CO, .k = K, .stride = S, .pad = P, .in_h = H, .in_w = W, .out_h = OH,
                         .out_w = OW, .max_batch = N};
    size_t nx = N * CI * H * W, ny = N * CO * OH * OW, nw = CO * CI * K * K;
    float *x = randv(nx, 1, -1, 1), *w = randv(nw, 2, -1, 1), *b = randv(CO, 3, -1, 1), *dy = randv(ny, 4, -1, 1);
    float *y = calloc(ny, 4), *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(CO, 4);
    BackendConv *c = NULL;
    CHECK(ops->conv_create(&c, &d, &err) == 0, "conv_create: %s", err.msg);
    if (!c) return;
    CHECK(ops->conv_forward(c, y, x, w, b, NULL, N, &err) == 0, "conv_forward: %s", err.msg);
    // Against a direct loop in double.
    double worst = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < CO; o++)
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t ox = 0; ox < OW; ox++) {
                    double s = b[o];
                    for (size_t i = 0; i < CI; i++)
                        for (size_t ky = 0; ky < K; ky++)
                            for (size_t kx = 0; kx < K; kx++) {
                                long iy = (long)(oy * S + ky) - (long)P, ix = (long)(ox * S + kx) - (long)P;
                                if (iy < 0 || ix < 0 || iy >= (long)H || ix >= (long)W) continue;
                                s += (double)x[((n * CI + i) * H + (size_t)iy) * W + (size_t)ix] *
                                     w[((o * CI + i) * K + ky) * K + kx];
                            }
                    double e = fabs(s - y[((n * CO + o) * OH + oy) * OW + ox]);
                    worst = e > worst ? e : worst;
                }
    CHECK(worst <= 1e-5, "conv forward vs direct loop: max |diff| %.2e", worst);
    // Adjoints: <conv(x) - b, dy> = <x, dx> = <w, dw>; db = sum of dy.
    CHECK(ops->conv_backward_data(c, dx, dy, w, N, &err) == 0, "backward data: %s", err.msg);
    CHECK(ops->conv_backward_weights(c, dw, db, dy, x, N, &err) == 0, "backward weights: %s", err.msg);
    double lhs = dot(y, dy, ny), bsum = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < CO; o++)
            for (size_t p = 0; p < OH * OW; p++) bsum += (double)b[o] * dy[(n * CO + o) * OH * OW + p];
    lhs -= bsum;
    CHECK(close_rel(lhs, dot(x, dx, nx), 1e-5), "conv backward data adjoint: %.8g vs %.8g", lhs, dot(x, dx, nx));
    CHECK(close_rel(lhs, dot(w, dw, nw), 1e-5), "conv backward weights adjoint: %.8g vs %.8g", lhs, dot(w, dw, nw));
    double worst_b = 0;
    for (size_t o = 0; o < CO; o++) {
        double s = 0;
        for (size_t n = 0; n < N; n++)
            for (size_t p = 0; p < OH * OW; p++) s += dy[(n * CO + o) * OH * OW + p];
        worst_b = fmax(worst_b, fabs(s - db[o]));
    }
    CHECK(worst_b <= 1e-4, "conv bias gradient: max |diff| %.2e", worst_b);
    // Accumulation: a second call adds the same again.
    float *dw2 = malloc(nw * 4);
    memcpy(dw2, dw, nw * 4);
    ops->conv_backward_weights(c, dw2, db, dy, x, N, &err);
    int doubled = 1;
    for (size_t i = 0; i < nw; i++) doubled &= fabsf(dw2[i] - 2 * dw[i]) <= 1e-5f * fabsf(dw[i]) + 1e-6f;
    CHECK(doubled, "conv weight gradients do not accumulate");
    ops->conv_free(c);
    printf("ok   convolution %zu->%zu %zux%zu stride %zu: forward within %.1e of a direct loop, backward adjoints "
           "%.8g\n", CI, CO, K, K, S, worst, lhs);

    // The weight gradient on 1 and 2 threads, plans made under each: the same bits.
    float *g1 = calloc(nw + CO, 4), *g2 = calloc(nw + CO, 4), *dx1 = calloc(nx, 4), *dx2 = calloc(nx, 4);
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        BackendConv *ct = NULL;
        CHECK(ops->conv_create(&ct, &d, &err) == 0, "conv_create on %d threads: %s", t, err.msg);
        float *g = t == 1 ? g1 : g2;
        ops->conv_backward_weights(ct, g, g + nw, dy, x, N, &err);
        ops->conv_backward_data(ct, t == 1 ? dx1 : dx2, dy, w, N, &err);
        ops->conv_free(ct);
    }
    omp_set_num_threads(saved);
    CHECK(memcmp(g1, g2, (nw + CO) * 4) == 0 && memcmp(dx1, dx2, nx * 4) == 0,
          "convolution gradients differ between 1 and 2 threads");
    printf("ok   convolution gradients bit-identical on 1 and 2 threads (batch %zu)\n", N);

    // Weight gradients in chunks of 8 images, a partial chunk padded with zero
    // images: a plan that has just padded a chunk of 4 (batch 12) gives a
    // batch of 10 (a chunk of 2) the bits a fresh plan gives it.
    {
        BackendConvDesc d12 = d;
        d12.max_batch = 12;
        size_t px = 12 * CI * H * W, py = 12 * CO * OH * OW;
        float *x12 = randv(px, 6, -1, 1), *dy12 = randv(py, 7, -1, 1);
        float *ga = calloc(nw + CO, 4), *gb = calloc(nw + CO, 4), *scratch = calloc(nw + CO, 4);
        BackendConv *used = NULL, *fresh = NULL;
        CHECK(ops->conv_create(&used, &d12, &err) == 0 && ops->conv_create(&fresh, &d12, &err) == 0,
              "conv_create for batch 12: %s", err.msg);
        if (used && fresh) {
            ops->conv_backward_weights(used, scratch, scratch + nw, dy12, x12, 12, &err);
            ops->conv_backward_weights(used, ga, ga + nw, dy12, x12, 10, &err);
            ops->conv_backward_weights(fresh, gb, gb + nw, dy12, x12, 10, &err);
            CHECK(memcmp(ga, gb, (nw + CO) * 4) == 0,
                  "a partial weight-gradient chunk depends on the plan's previous partial chunk");
            printf("ok   weight gradients of a partial chunk independent of the one before (batches 12, 10)\n");
        }
        ops->conv_free(used);
        ops->conv_free(fresh);
        free(x12), free(dy12), free(ga), free(gb), free(scratch);
    }

    // Fused shortcut and ReLU: relu(conv + b + res).
    d.relu = 1;
    d.residual = 1;
    float *res = randv(ny, 5, -1, 1), *yf = calloc(ny, 4);
    CHECK(ops->conv_create(&c, &d, &err) == 0, "fused conv_create: %s", err.msg);
    ops->conv_forward(c, yf, x, w, b, res, N, &err);
    double wf = 0;
    for (size_t i = 0; i < ny; i++) {
        float r = y[i] + res[i];
        wf = fmax(wf, fabs((r > 0 ? r : 0) - yf[i]));
    }
    CHECK(wf <= 1e-6, "fused shortcut + ReLU: max |diff| %.2e", wf);
    ops->conv_free(c);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(dw2), free(g1), free(g2);
    free(dx1), free(dx2), free(res), free(yf);
}

static void test_pools(const BackendOps *ops) {
    CtError err = {{0}};
    // ResNet's stem pool: 3x3, stride 2, padding 1, on distinct values.
    const size_t N = 3, C = 4, H = 9, W = 8, OH = 5, OW = 4;
    BackendPoolDesc d = {.c = C, .k = 3, .stride = 2, .pad = 1, .in_h = H, .in_w = W, .out_h = OH, .out_w = OW,
                         .max_batch = N};
    size_t nx = N * C * H * W, ny = N * C * OH * OW;
    float *x = randv(nx, 6, -1, 1), *y = calloc(ny, 4), *dy = randv(ny, 7, 0.5f, 1), *dx = calloc(nx, 4);
    float *want = calloc(nx, 4);
    BackendPool *p = NULL;
    CHECK(ops->maxpool_create(&p, &d, &err) == 0, "maxpool_create: %s", err.msg);
    if (!p) return;
    ops->maxpool_forward(p, y, x, N, &err);
    ops->maxpool_backward(p, dx, dy, N, &err);
    int fwd_ok = 1;
    for (size_t m = 0; m < N * C; m++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                float best = -INFINITY;
                size_t arg = 0;
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++) {
                        long iy = (long)(oy * 2 + ky) - 1, ix = (long)(ox * 2 + kx) - 1;
                        if (iy < 0 || ix < 0 || iy >= (long)H || ix >= (long)W) continue;
                        size_t i = m * H * W + (size_t)iy * W + (size_t)ix;
                        if (x[i] > best) best = x[i], arg = i;
                    }
                fwd_ok &= y[m * OH * OW + oy * OW + ox] == best;
                want[arg] += dy[m * OH * OW + oy * OW + ox];
            }
    double worst = 0;
    for (size_t i = 0; i < nx; i++) worst = fmax(worst, fabs(want[i] - dx[i]));
    CHECK(fwd_ok, "max pool forward differs from the window maxima");
    CHECK(worst <= 1e-6, "max pool backward: gradient not routed to each window's maximum (max |diff| %.2e)", worst);
    ops->maxpool_free(p);
    printf("ok   max pool 3x3 stride 2 padding 1: forward exact, backward routes to the maxima\n");
    free(x), free(y), free(dy), free(dx), free(want);

    // Adaptive average pool, windows overlapping (5 -> 3) and repeated (2 -> 7).
    const size_t shapes[2][4] = {{5, 6, 3, 4}, {2, 3, 7, 7}};
    for (int s = 0; s < 2; s++) {
        size_t h = shapes[s][0], w = shapes[s][1], oh = shapes[s][2], ow = shapes[s][3];
        size_t ax = N * C * h * w, ay = N * C * oh * ow;
        float *ax_ = randv(ax, 8, -1, 1), *ay_ = calloc(ay, 4), *ady = randv(ay, 9, -1, 1), *adx = calloc(ax, 4);
        ops->adaptive_avgpool_forward(ay_, ax_, N, C, h, w, oh, ow);
        ops->adaptive_avgpool_backward(adx, ady, N, C, h, w, oh, ow);
        double l = dot(ay_, ady, ay), r = dot(ax_, adx, ax);
        CHECK(close_rel(l, r, 1e-5), "adaptive avgpool %zux%zu->%zux%zu adjoint: %.8g vs %.8g", h, w, oh, ow, l, r);
        free(ax_), free(ay_), free(ady), free(adx);
    }
    float gx[2 * 6] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}, gy[2], gdy[2] = {6, 12}, gdx[12];
    ops->global_avgpool_forward(gy, gx, 1, 2, 2, 3);
    ops->global_avgpool_backward(gdx, gdy, 1, 2, 2, 3);
    CHECK(gy[0] == 3.5f && gy[1] == -3.5f && gdx[0] == 1.0f && gdx[11] == 2.0f, "global average pool");
    printf("ok   average pools: adaptive adjoints (overlapping and repeated windows), global mean\n");
}

static void test_small_ops(const BackendOps *ops) {
    // Dropout masks: the head's, element for element, for a shard at row 3.
    const size_t rows = 5, width = 37, row0 = 3;
    float mask[5 * 37], x[5 * 37], y[5 * 37];
    for (size_t i = 0; i < rows * width; i++) x[i] = (float)i + 1;
    ops->dropout_forward(y, mask, x, rows, width, row0, 1234, 17, 2, 0.4);
    int same = 1, applied = 1;
    for (size_t i = 0; i < rows * width; i++) {
        same &= mask[i] == head_dropout_scale(1234, 17, 2, row0 * width + i, 0.4);
        applied &= y[i] == x[i] * mask[i];
    }
    CHECK(same && applied, "dropout masks differ from the head's");
    // Loss against the formula in double.
    float logits[6] = {0.3f, -1.2f, 2.0f, 2.0f, -0.5f, 4.0f}, d[6];
    uint8_t labels[3] = {0, 1, 1};
    size_t correct = 0;
    double loss = ops->softmax_xent(d, &correct, logits, labels, 3, 4), want = 0;
    double dworst = 0;
    for (int r = 0; r < 3; r++) {
        double l0 = logits[2 * r], l1 = logits[2 * r + 1], lse = log(exp(l0) + exp(l1));
        want += lse - (labels[r] ? l1 : l0);
        dworst = fmax(dworst, fabs((exp(l1 - lse) - labels[r]) / 4 - d[2 * r + 1]));
        dworst = fmax(dworst, fabs((exp(l0 - lse) - !labels[r]) / 4 - d[2 * r]));
    }
    CHECK(fabs(loss - want) <= 1e-6 && dworst <= 1e-7 && correct == 2,
          "softmax cross-entropy: %.8f vs %.8f, gradient %.1e, %zu correct (a tie is class 0)", loss, want, dworst,
          correct);
    // The Adam op is adam_step's arithmetic, bit for bit.
    for (int adamw = 0; adamw < 2; adamw++) {
        const size_t n = 1000;
        float *p1 = randv(n, 10, -1, 1), *p2 = randv(n, 10, -1, 1), *m = calloc(n, 4), *v = calloc(n, 4);
        AdamSpec spec;
        adam_spec_default(&spec);
        spec.kind = adamw ? OPT_ADAMW : OPT_ADAM;
        spec.weight_decay = 0.01;
        AdamState a;
        adam_init(&a, &spec, n);
        for (uint64_t s = 1; s <= 5; s++) {
            float *g = randv(n, 20 + (uint32_t)s, -1e-3f, 1e-3f);
            adam_step(&a, p1, g, 1e-3 * (double)s);
            BackendAdamStep st = {.lr = 1e-3 * (double)s, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                  .weight_decay = 0.01, .adamw = adamw, .step = s};
            ops->adam_step(&st, p2, g, m, v, n);
            free(g);
        }
        CHECK(memcmp(p1, p2, n * 4) == 0, "%s op differs from adam_step", adamw ? "AdamW" : "Adam");
        adam_free(&a);
        free(p1), free(p2), free(m), free(v);
    }
    float a[4] = {1, -2, 3, 0}, b[4] = {1, 1, 1, 1}, r[4], dr[4];
    ops->add(r, a, b, 4);
    ops->relu_forward(r, r, 4);
    ops->relu_backward(dr, b, r, 4);
    CHECK(r[0] == 2 && r[1] == 0 && r[3] == 1 && dr[0] == 1 && dr[1] == 0, "add, ReLU");
    printf("ok   dropout masks as the head's, softmax cross-entropy, Adam/AdamW bit for bit, add, ReLU\n");
}

static void test_bn(const BackendOps *ops) {
    enum { C = 6, P = 27 };
    float *w = randv(C * P, 30, -1, 1), *gamma = randv(C, 31, 0.5f, 1.5f), *beta = randv(C, 32, -1, 1);
    float *mean = randv(C, 33, -1, 1), *var = randv(C, 34, 0.1f, 2), *gwf = randv(C * P, 35, -1, 1);
    float *gbf = randv(C, 36, -1, 1);
    float wf[C * P], bf[C], wl[C * P], bl[C] = {0}, bn[4 * C], gw[C * P] = {0}, gg[C] = {0}, gb[C] = {0};
    ops->bn_fold(wf, bf, w, gamma, beta, mean, var, C, P, MODEL_BN_EPS);
    // The load-time fold of the same BatchNorm after a convolution without bias.
    memcpy(wl, w, sizeof wl);
    memcpy(bn, gamma, C * 4), memcpy(bn + C, beta, C * 4), memcpy(bn + 2 * C, mean, C * 4);
    memcpy(bn + 3 * C, var, C * 4);
    model_fold_bn(wl, bl, bn, C, P);
    CHECK(memcmp(wf, wl, sizeof wf) == 0 && memcmp(bf, bl, sizeof bf) == 0, "bn_fold differs from model_fold_bn");
    // wf = w * s and bf = beta - mean * s with s = gamma / sqrt(var + eps):
    // dw = dwf * s, dgamma = (sum dwf * w - dbf * mean) / sqrt(var + eps), dbeta = dbf.
    ops->bn_unfold_grads(gw, gg, gb, gwf, gbf, w, gamma, mean, var, C, P, MODEL_BN_EPS);
    double worst = 0;
    int beta_ok = 1;
    for (size_t o = 0; o < C; o++) {
        double r = 1.0 / sqrt((double)var[o] + MODEL_BN_EPS), s = gamma[o] * r, dot = 0;
        for (size_t i = 0; i < P; i++) {
            worst = fmax(worst, fabs(gw[o * P + i] - gwf[o * P + i] * s) / fabs(gwf[o * P + i] * s));
            dot += (double)gwf[o * P + i] * w[o * P + i];
        }
        double want = (dot - (double)gbf[o] * mean[o]) * r;
        worst = fmax(worst, fabs(gg[o] - want) / fabs(want));
        beta_ok &= gb[o] == gbf[o];
    }
    CHECK(worst <= 1e-6 && beta_ok, "bn_unfold_grads against the chain rule: relative error %.2e", worst);
    printf("ok   BatchNorm fold as model_fold_bn bit for bit; gradient unfolding within %.1e of the chain rule\n",
           worst);
    free(w), free(gamma), free(beta), free(mean), free(var), free(gwf), free(gbf);
}

int main(void) {
    CtError err = {{0}};
    const BackendOps *ops = backend_ops_get(BACKEND_CPU, &err);
    CHECK(ops && strcmp(ops->name, "cpu") == 0, "cpu table: %s", err.msg);
    // The CUDA table where this build has one and a device is visible, else
    // a message that names the backend (tests/gpu/test_gpu_backend_ops.c
    // compares the two tables).
    const BackendOps *cu = backend_ops_get(BACKEND_CUDA, &err);
    CHECK(cu ? strcmp(cu->name, "cuda") == 0 : strstr(err.msg, "cuda") != NULL, "cuda table: %s",
          cu ? cu->name : err.msg);
    if (!ops) return check_summary();
    test_conv(ops);
    test_pools(ops);
    test_small_ops(ops);
    test_bn(ops);
    return check_summary();
}
