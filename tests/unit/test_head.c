/*
 * test_head.c — dropout masks of the head: a pure function of their key,
 * the kept fraction matching 1 - p over many draws, inverted scaling, no
 * dropout in evaluation; and the head's shapes and defaults.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/head.h"

#include "check.h"

int main(void) {
    const double ps[] = {0.1, 0.5, 0.8};
    for (size_t k = 0; k < 3; k++) {
        double p = ps[k];
        size_t n = 200000, kept = 0;
        int scale_ok = 1;
        for (size_t i = 0; i < n; i++) {
            float s = head_dropout_scale(42, 7, 1, i, p);
            kept += s != 0.0f;
            if (s != 0.0f && fabsf(s - (float)(1.0 / (1.0 - p))) > 0.0f) scale_ok = 0;
        }
        double frac = (double)kept / (double)n, sigma = sqrt(p * (1 - p) / (double)n);
        CHECK(fabs(frac - (1 - p)) < 4 * sigma, "p=%g: kept %.5f, want %.5f +- %.5f", p, frac, 1 - p, 4 * sigma);
        CHECK(scale_ok, "p=%g: kept values are not scaled by 1/(1-p)", p);
        printf("ok   dropout p=%.1f: kept fraction %.5f (expected %.5f, 4 sigma %.5f), scale 1/(1-p)\n", p, frac, 1 - p,
               4 * sigma);
    }
    // A function of the key only: same key, any order, same answer; another key differs.
    int same = 1, diff_iter = 0, diff_layer = 0, diff_seed = 0;
    for (size_t i = 1000; i-- > 0;) {
        float a = head_dropout_scale(1, 3, 2, i, 0.5), b = head_dropout_scale(1, 3, 2, i, 0.5);
        same &= a == b;
        diff_iter += a != head_dropout_scale(1, 4, 2, i, 0.5);
        diff_layer += a != head_dropout_scale(1, 3, 1, i, 0.5);
        diff_seed += a != head_dropout_scale(2, 3, 2, i, 0.5);
    }
    CHECK(same, "mask differs for the same key");
    CHECK(diff_iter > 400 && diff_layer > 400 && diff_seed > 400, "masks of other keys agree too often (%d %d %d)",
          diff_iter, diff_layer, diff_seed);

    // The head: forward in training applies exactly head_dropout_scale's masks.
    HeadSpec hs;
    head_spec_default(&hs, "vgg16", 40);
    CHECK(hs.n_hidden == 3 && hs.hidden[0] == 512 && hs.hidden[2] == 128 && hs.dropout == 0.5, "vgg default head");
    head_spec_default(&hs, "resnet34", 512);
    CHECK(hs.n_hidden == 2 && hs.hidden[0] == 256 && hs.hidden[1] == 128 && hs.dropout == 0.0, "resnet default head");
    hs.in_dim = 6;
    hs.n_hidden = 1;
    hs.hidden[0] = 5;
    hs.dropout = 0.5;
    Head h;
    CtError err;
    CHECK(head_init(&h, &hs, 4, &err) == 0, "head_init: %s", err.msg);
    head_reset_params(&h, 9);
    CHECK(h.n_params == 6 * 5 + 5 + 5 * 2 + 2, "parameter count %zu", h.n_params);
    float bound = 1.0f / sqrtf(6.0f);
    int in_bounds = 1;
    for (size_t i = 0; i < 35; i++) in_bounds &= fabsf(h.params[i]) <= bound;
    CHECK(in_bounds, "first layer init outside +-1/sqrt(fan_in)");
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)(i % 7) - 2.5f;
    head_forward(&h, x, 4, 1, 77, 12);
    int masks_ok = 1, zeros = 0;
    for (size_t i = 0; i < 20; i++) {
        masks_ok &= h.mask[1][i] == head_dropout_scale(77, 12, 1, i, 0.5);
        zeros += h.h[1][i] == 0.0f;
    }
    CHECK(masks_ok, "forward's masks differ from head_dropout_scale");
    head_forward(&h, x, 4, 0, 77, 12);
    int eval_ok = 1;
    for (size_t i = 0; i < 20; i++) eval_ok &= h.mask[1][i] == 1.0f;
    CHECK(eval_ok, "evaluation applied dropout");
    float p[4];
    head_probs(&h, 4, p);
    int probs_ok = 1;
    for (int i = 0; i < 4; i++) probs_ok &= p[i] > 0 && p[i] < 1;
    CHECK(probs_ok, "probabilities outside (0, 1)");
    head_free(&h);
    hs.dropout = 1.0;
    CHECK(head_spec_check(&hs, &err) != 0 && strstr(err.msg, "head.dropout"), "dropout 1 accepted");
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
