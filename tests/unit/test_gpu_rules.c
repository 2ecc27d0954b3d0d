/*
 * test_gpu_rules.c — the CUDA backend's arithmetic planning rules, without
 * a GPU: the batch pieces that keep every tensor under the legacy cuDNN
 * API's 2^31 elements (VGG16 at 224 px, whose first two convolutions hold
 * 64 x 224 x 224 values per image, fits 668 images and not 669), the
 * workspace the search and the run get, the algorithm choice and its
 * refusals (conv_algo winograd where cuDNN offers no Winograd algorithm),
 * and the NCCL group's timeouts (teardown never waits as long as set-up).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/gpu_rules.h"
#include "nn/models.h"

#include "check.h"

// ---- element limit ----

static size_t model_elems(const char *model, size_t S, const char **layer) {
    NNGraph g;
    CtError err = {{0}};
    if (model_build(&g, model, &err)) {
        CHECK(0, "%s: %s", model, err.msg);
        return 0;
    }
    NNShape *shapes = ct_calloc(g.n_layers, sizeof *shapes);
    size_t e = 0;
    static char name[64];
    if (graph_infer_shapes(&g, S, S, shapes, &err) == 0) {
        const char *l = NULL;
        e = gpu_graph_image_elems(&g, shapes, S, S, &l);
        snprintf(name, sizeof name, "%s", l ? l : "?");
        *layer = name;
    } else {
        CHECK(0, "%s: %s", model, err.msg);
    }
    free(shapes);
    graph_free(&g);
    return e;
}

static void test_element_limit(void) {
    const char *layer = "";
    size_t vgg = model_elems("vgg16", 224, &layer);
    CHECK(vgg == (size_t)64 * 224 * 224, "vgg16 at 224: %zu elements per image in %s, expected 64*224*224", vgg, layer);
    CHECK(strcmp(layer, "features.0") == 0, "vgg16's largest tensor is %s, expected features.0", layer);
    // Against the definition: n images fit when n * per <= 2^31 - 1.
    size_t piece = gpu_batch_piece(65536, vgg, GPU_LEGACY_MAX_ELEMS);
    CHECK(piece == 668, "vgg16 at 224: piece %zu, expected 668", piece);
    CHECK(piece * vgg <= (size_t)2147483647 && (piece + 1) * vgg > (size_t)2147483647,
          "vgg16: %zu images hold %zu elements", piece, piece * vgg);
    CHECK(gpu_batch_piece(650, vgg, GPU_LEGACY_MAX_ELEMS) == 650, "batch 650 of vgg16 at 224 must run whole");
    CHECK(gpu_batch_piece(700, vgg, GPU_LEGACY_MAX_ELEMS) == 668,
          "batch 700 of vgg16 at 224 must run in pieces of 668");
    size_t res = model_elems("resnet34", 224, &layer);
    CHECK(res == (size_t)64 * 112 * 112, "resnet34 at 224: %zu elements per image in %s", res, layer);
    CHECK(gpu_batch_piece(4096, res, GPU_LEGACY_MAX_ELEMS) == 2674, "resnet34 at 224: piece %zu, expected 2674",
          gpu_batch_piece(4096, res, GPU_LEGACY_MAX_ELEMS));
    // One image above the limit: no piece can run it.
    size_t huge = model_elems("vgg16", 8192, &layer);
    CHECK(huge == (size_t)64 * 8192 * 8192, "vgg16 at 8192: %zu", huge);
    CHECK(gpu_batch_piece(1, huge, GPU_LEGACY_MAX_ELEMS) == 0, "vgg16 at 8192 px must not fit one image");
    printf("ok   element limit: vgg16 at 224 runs %zu images a piece, resnet34 %zu\n", piece,
           gpu_batch_piece(4096, res, GPU_LEGACY_MAX_ELEMS));
}

// ---- workspace ----

static void test_workspace(void) {
    const size_t MiB = (size_t)1 << 20, GiB = (size_t)1 << 30;
    CHECK(gpu_search_workspace(4 * GiB) == GiB, "search workspace for 4 GiB free: %zu", gpu_search_workspace(4 * GiB));
    CHECK(gpu_search_workspace(80 * GiB) == 2 * GiB, "search workspace is capped at 2 GiB");
    CHECK(gpu_search_workspace(0) == 0, "no free memory, no workspace");
    size_t needs[] = {0, 3 * MiB, 96 * MiB, 12 * MiB};
    CHECK(gpu_run_workspace(needs, 4) == 96 * MiB, "run workspace %zu, expected the largest need",
          gpu_run_workspace(needs, 4));
    CHECK(gpu_run_workspace(needs, 0) == 0, "no convolution, no workspace");
}

// ---- algorithm choice ----

static GpuConvCandidate cand(GpuAlgoClass cls, int ok, int fma, int det, size_t ws) {
    GpuConvCandidate c = {cls, ok, fma, det, ws};
    return c;
}

static void test_pick(void) {
    const size_t MiB = (size_t)1 << 20;
    int forced;
    GpuPickResult why;
    size_t min_ws;
    // What cuDNN 9 reports for an NHWC 3x3 convolution: no Winograd.
    GpuConvCandidate nhwc[] = {
        cand(GPU_ALGO_IMPLICIT_GEMM, 1, 1, 1, 0),
        cand(GPU_ALGO_OTHER, 1, 1, 0, 40 * MiB),
        cand(GPU_ALGO_WINOGRAD, 0, 1, 1, 0),  // listed, status NOT_SUPPORTED
    };
    GpuConvWant w = {CONV_ALGO_WINOGRAD, 0, 1, 1, 1024 * MiB};
    CHECK(gpu_conv_pick(nhwc, 3, &w, &forced, &why, &min_ws) == -1 && why == GPU_PICK_NO_WINOGRAD,
          "winograd where cuDNN offers none must be refused (why %d)", (int)why);
    // Not a 3x3 stride-1 layer: winograd does not apply, the fastest runs.
    w.winograd_layer = 0;
    CHECK(gpu_conv_pick(nhwc, 3, &w, &forced, &why, &min_ws) == 0, "winograd on a 1x1 layer takes any algorithm");
    // Offered: taken, even when slower than others.
    GpuConvCandidate nchw[] = {
        cand(GPU_ALGO_OTHER, 1, 1, 1, 0),
        cand(GPU_ALGO_WINOGRAD, 1, 1, 1, 8 * MiB),
    };
    w.winograd_layer = 1;
    CHECK(gpu_conv_pick(nchw, 2, &w, &forced, &why, &min_ws) == 1 && !forced, "the offered Winograd must be taken");
    // Offered but too large for the workspace.
    w.ws_cap = 4 * MiB;
    CHECK(gpu_conv_pick(nchw, 2, &w, &forced, &why, &min_ws) == -1 && why == GPU_PICK_WINOGRAD_WORKSPACE &&
              min_ws == 8 * MiB,
          "winograd over the workspace: why %d, min_ws %zu", (int)why, min_ws);
    // Offered, but only non-deterministic, in deterministic mode.
    GpuConvCandidate nondet[] = {cand(GPU_ALGO_WINOGRAD, 1, 1, 0, 0), cand(GPU_ALGO_IMPLICIT_GEMM, 1, 1, 1, 0)};
    GpuConvWant wd = {CONV_ALGO_WINOGRAD, 1, 1, 1, 1024 * MiB};
    CHECK(gpu_conv_pick(nondet, 2, &wd, &forced, &why, &min_ws) == -1 && why == GPU_PICK_WINOGRAD_NONDET,
          "deterministic winograd: why %d", (int)why);
    // fp32 never takes a TF32-labelled candidate while an FMA one fits...
    GpuConvCandidate mixed[] = {cand(GPU_ALGO_OTHER, 1, 0, 1, 0), cand(GPU_ALGO_IMPLICIT_GEMM, 1, 1, 1, 0)};
    GpuConvWant fp32 = {CONV_ALGO_AUTO, 0, 1, 1, 1024 * MiB};
    CHECK(gpu_conv_pick(mixed, 2, &fp32, &forced, &why, &min_ws) == 1 && !forced, "fp32 must skip a non-FMA candidate");
    // ... and forces FMA on the best one when none is labelled FMA.
    GpuConvCandidate tf32only[] = {cand(GPU_ALGO_OTHER, 1, 0, 1, 0)};
    CHECK(gpu_conv_pick(tf32only, 1, &fp32, &forced, &why, &min_ws) == 0 && forced, "fp32 must force FMA math");
    GpuConvWant tf32 = {CONV_ALGO_AUTO, 0, 0, 1, 1024 * MiB};
    CHECK(gpu_conv_pick(mixed, 2, &tf32, &forced, &why, &min_ws) == 0 && !forced, "tf32 takes the fastest");
    // direct: implicit GEMM only.
    GpuConvWant direct = {CONV_ALGO_DIRECT, 0, 1, 1, 1024 * MiB};
    GpuConvCandidate nogemm[] = {cand(GPU_ALGO_OTHER, 1, 1, 1, 0)};
    CHECK(gpu_conv_pick(nogemm, 1, &direct, &forced, &why, &min_ws) == -1 && why == GPU_PICK_NO_IMPLICIT_GEMM,
          "direct without implicit GEMM: why %d", (int)why);
    // Nothing fits.
    GpuConvCandidate big[] = {cand(GPU_ALGO_OTHER, 1, 1, 1, 64 * MiB)};
    fp32.ws_cap = MiB;
    CHECK(gpu_conv_pick(big, 1, &fp32, &forced, &why, &min_ws) == -1 && why == GPU_PICK_NONE, "why %d", (int)why);
}

// ---- group timeouts ----

static void test_timeouts(void) {
    GpuGroupTimeouts d;
    gpu_group_timeouts_default(&d);
    CHECK(gpu_group_timeout(&d, GPU_GROUP_SETUP, 0) == 900, "default set-up %g",
          gpu_group_timeout(&d, GPU_GROUP_SETUP, 0));
    double down = gpu_group_timeout(&d, GPU_GROUP_TEARDOWN, 0);
    CHECK(down > 0 && down <= 30, "teardown must be short, not the set-up's 900 s: %g", down);
    CHECK(gpu_group_timeout(&d, GPU_GROUP_TEARDOWN, 1) == 0, "teardown after a failed peer must not wait");
    // The test's timeouts: long set-up, short collectives; teardown follows the collectives.
    GpuGroupTimeouts t = {120, 5, 20};
    CHECK(gpu_group_timeout(&t, GPU_GROUP_SETUP, 0) == 120, "set-up %g", gpu_group_timeout(&t, GPU_GROUP_SETUP, 0));
    CHECK(gpu_group_timeout(&t, GPU_GROUP_COLLECTIVE, 0) == 5, "collective");
    CHECK(gpu_group_timeout(&t, GPU_GROUP_TEARDOWN, 0) == 5, "teardown %g, expected min(20, 5)",
          gpu_group_timeout(&t, GPU_GROUP_TEARDOWN, 0));
    GpuGroupTimeouts unset = {0, -1, 0};
    CHECK(gpu_group_timeout(&unset, GPU_GROUP_COLLECTIVE, 0) == 900 &&
              gpu_group_timeout(NULL, GPU_GROUP_SETUP, 0) == 900,
          "unset timeouts take the defaults");
}

int main(void) {
    test_element_limit();
    test_workspace();
    test_pick();
    test_timeouts();
    return check_summary();
}
