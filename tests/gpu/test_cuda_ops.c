/*
 * test_cuda_ops.c — the GPU training ops against their CPU counterparts on
 * random inputs: linear forward and both backward products (cpu_linear.c),
 * ReLU and its backward through dropout, dropout masks (head.c's, which
 * must match bit for bit), softmax cross-entropy and probabilities (head.c),
 * the Adam/AdamW step (adam.c), and the out-of-memory report.
 *
 * Bounds (normalised error, max |gpu - cpu| / max |cpu|): fp32 GEMMs 2e-5
 * (cuBLAS and oneDNN sum in different orders over up to 25088 terms), TF32
 * GEMMs 2e-3; losses and their gradients 1e-6 (CUDA's expf/logf are within
 * 2 ulp of glibc's); masks, ReLU and column sums exact; Adam 1e-6 and
 * expected exact (exact unless the CPU build contracts into FMAs, as
 * -march=native may).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cpu/cpu_linear.h"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_ops.h"
#include "train/adam.h"
#include "train/head.h"

#include "gpu_test.h"

static CtError g_err;

#define MUST(call)                                                        \
    do {                                                                  \
        if ((call) != 0) {                                                \
            printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, g_err.msg); \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

static float *dev_alloc(size_t n) {
    void *p = NULL;
    MUST(cuda_alloc(&p, n ? n * sizeof(float) : 4, "test buffer", "test", &g_err));
    return p;
}

static float *dev_copy(CudaOps *ops, const float *h, size_t n) {
    float *d = dev_alloc(n);
    MUST(cuda_ops_upload(ops, d, h, n * sizeof(float), &g_err));
    return d;
}

static float *host_copy(CudaOps *ops, const float *d, size_t n) {
    float *h = ct_malloc_array(n ? n : 1, sizeof(float));
    MUST(cuda_ops_download(ops, h, d, n * sizeof(float), &g_err));
    return h;
}

// ---- linear ----

static void test_linear(CudaOps *ops, size_t B, size_t I, size_t O, double bound, const char *mode) {
    float *x = ct_malloc_array(B * I, sizeof(float)), *w = ct_malloc_array(O * I, sizeof(float));
    float *b = ct_malloc_array(O, sizeof(float)), *y = ct_malloc_array(B * O, sizeof(float));
    float *dy = ct_malloc_array(B * O, sizeof(float)), *dx = ct_malloc_array(B * I, sizeof(float));
    float *dw = ct_malloc_array(O * I, sizeof(float)), *db = ct_malloc_array(O, sizeof(float));
    float bound_w = (float)(1.0 / sqrt((double)I));
    gpu_fill_normal(x, B * I, 1, 1.0f);
    gpu_fill_uniform(w, O * I, 2, -bound_w, bound_w);
    gpu_fill_uniform(b, O, 3, -bound_w, bound_w);
    gpu_fill_normal(dy, B * O, 4, 0.1f);
    gpu_fill_normal(dw, O * I, 5, 0.01f);  // parameter gradients accumulate: start non-zero
    gpu_fill_normal(db, O, 6, 0.01f);
    float *gx = dev_copy(ops, x, B * I), *gw = dev_copy(ops, w, O * I), *gb = dev_copy(ops, b, O);
    float *gdy = dev_copy(ops, dy, B * O), *gdw = dev_copy(ops, dw, O * I), *gdb = dev_copy(ops, db, O);
    float *gy = dev_alloc(B * O), *gdx = dev_alloc(B * I);

    cpu_linear_forward(y, x, w, b, B, I, O);
    MUST(cuda_linear_forward(ops, gy, gx, gw, gb, B, I, O, &g_err));
    float *hy = host_copy(ops, gy, B * O);
    GPU_EXPECT_CLOSE(hy, y, B * O, bound, "linear forward %s B=%zu I=%zu O=%zu", mode, B, I, O);

    cpu_linear_backward_params(dw, db, dy, x, B, I, O);
    MUST(cuda_linear_backward_params(ops, gdw, gdb, gdy, gx, B, I, O, &g_err));
    float *hdw = host_copy(ops, gdw, O * I), *hdb = host_copy(ops, gdb, O);
    GPU_EXPECT_CLOSE(hdw, dw, O * I, bound, "linear backward dW %s B=%zu I=%zu O=%zu", mode, B, I, O);
    // Column sums in row order, then one add: the same operations as the CPU.
    GpuCmp cb = gpu_compare(hdb, db, O);
    CHECK(cb.mismatches == 0, "linear backward db B=%zu O=%zu: %zu elements differ (worst %.9g vs %.9g)", B, O,
          cb.mismatches, cb.got, cb.want);
    if (cb.mismatches == 0) printf("ok   linear backward db %s B=%zu O=%zu: bit-identical\n", mode, B, O);

    cpu_linear_backward_input(dx, dy, w, B, I, O);
    MUST(cuda_linear_backward_input(ops, gdx, gdy, gw, B, I, O, &g_err));
    float *hdx = host_copy(ops, gdx, B * I);
    GPU_EXPECT_CLOSE(hdx, dx, B * I, bound, "linear backward dX %s B=%zu I=%zu O=%zu", mode, B, I, O);

    float *h[] = {x, w, b, y, dy, dx, dw, db, hy, hdw, hdb, hdx};
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) free(h[i]);
    float *d[] = {gx, gw, gb, gdy, gdw, gdb, gy, gdx};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) cuda_free(d[i]);
}

// ---- ReLU and dropout ----

static void test_relu(CudaOps *ops) {
    size_t n = 100003;
    float *x = ct_malloc_array(n, sizeof(float)), *ref = ct_malloc_array(n, sizeof(float));
    float *mask = ct_malloc_array(n, sizeof(float)), *dx = ct_malloc_array(n, sizeof(float));
    gpu_fill_normal(x, n, 10, 1.0f);
    x[0] = 0.0f;
    x[1] = -0.0f;
    for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0.0f ? x[i] : 0.0f;
    float *gx = dev_copy(ops, x, n), *gy = dev_alloc(n);
    MUST(cuda_relu_forward(ops, gy, gx, n, &g_err));
    float *hy = host_copy(ops, gy, n);
    CHECK(memcmp(hy, ref, n * sizeof(float)) == 0, "ReLU forward differs from the CPU's");
    // Backward through ReLU and a dropout mask, as head.c does.
    for (size_t i = 0; i < n; i++) mask[i] = i % 3 ? 2.0f : 0.0f;
    gpu_fill_normal(dx, n, 11, 1.0f);
    float *gm = dev_copy(ops, mask, n), *gdx = dev_copy(ops, dx, n);
    for (size_t i = 0; i < n; i++) dx[i] = ref[i] > 0.0f ? dx[i] * mask[i] : 0.0f;
    MUST(cuda_relu_dropout_backward(ops, gdx, gy, gm, n, &g_err));
    float *hdx = host_copy(ops, gdx, n);
    CHECK(memcmp(hdx, dx, n * sizeof(float)) == 0, "ReLU/dropout backward differs from the CPU's");
    if (!memcmp(hy, ref, n * sizeof(float)) && !memcmp(hdx, dx, n * sizeof(float)))
        printf("ok   ReLU forward and ReLU/dropout backward: bit-identical (%zu elements)\n", n);
    free(x), free(ref), free(mask), free(dx), free(hy), free(hdx);
    cuda_free(gx), cuda_free(gy), cuda_free(gm), cuda_free(gdx);
}

static void test_dropout(CudaOps *ops) {
    struct {
        uint64_t seed, iteration;
        uint32_t layer;
        size_t rows, width, row0;
        double p;
    } cases[] = {
        {0, 0, 1, 32, 512, 0, 0.5},
        {42, 7, 2, 7, 129, 3, 0.5},                               // row0 * width not a multiple of 4
        {0xDEADBEEF12345678ull, (1ull << 33) + 5, 3, 5, 255, 11, 0.3},  // high seed and iteration bits
        {9, 1, 1, 3, 2, 1, 0.9},
        {9, 1, 1, 4, 64, 0, 0.0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        size_t n = cases[k].rows * cases[k].width;
        float *y = ct_malloc_array(n, sizeof(float)), *want_y = ct_malloc_array(n, sizeof(float));
        float *want_mask = ct_malloc_array(n, sizeof(float));
        gpu_fill_normal(y, n, 20 + (uint32_t)k, 1.0f);
        for (size_t i = 0; i < n; i++) {
            want_mask[i] = head_dropout_scale(cases[k].seed, cases[k].iteration, cases[k].layer,
                                              cases[k].row0 * cases[k].width + i, cases[k].p);
            want_y[i] = y[i] * want_mask[i];
        }
        float *gy = dev_copy(ops, y, n), *gm = dev_alloc(n);
        MUST(cuda_dropout_forward(ops, gy, gm, cases[k].rows, cases[k].width, cases[k].row0, cases[k].seed,
                                  cases[k].iteration, cases[k].layer, cases[k].p, &g_err));
        float *hm = host_copy(ops, gm, n), *hy = host_copy(ops, gy, n);
        GpuCmp cm = gpu_compare(hm, want_mask, n), cy = gpu_compare(hy, want_y, n);
        CHECK(cm.mismatches == 0, "dropout case %zu: %zu of %zu mask elements differ (first worst %zu: %g vs %g)", k,
              cm.mismatches, n, cm.worst, cm.got, cm.want);
        CHECK(cy.mismatches == 0, "dropout case %zu: %zu of %zu outputs differ", k, cy.mismatches, n);
        if (cm.mismatches == 0 && cy.mismatches == 0)
            printf("ok   dropout masks seed %llu iteration %llu layer %u rows %zu+%zu x %zu p %.1f: bit-identical\n",
                   (unsigned long long)cases[k].seed, (unsigned long long)cases[k].iteration, cases[k].layer,
                   cases[k].row0, cases[k].rows, cases[k].width, cases[k].p);
        free(y), free(want_y), free(want_mask), free(hm), free(hy);
        cuda_free(gy), cuda_free(gm);
    }
}

// ---- loss ----

static void test_loss(CudaOps *ops) {
    const size_t n = 301, batch_rows = 512;
    Head h;
    HeadSpec spec;
    memset(&spec, 0, sizeof spec);
    spec.in_dim = 2;  // no hidden layer: h.h[1] is the logits buffer
    MUST(head_init(&h, &spec, n, &g_err));
    float *logits = h.h[h.n_lin];
    gpu_fill_normal(logits, 2 * n, 30, 3.0f);
    logits[0] = logits[1] = 0.25f;  // a tie: class 0, as torch.argmax
    logits[2] = 80.0f, logits[3] = -80.0f;
    uint8_t *labels = malloc(n);
    for (size_t r = 0; r < n; r++) labels[r] = (uint8_t)((r * 7) % 3 == 0 ? 1 : (r % 5 == 0) ? 2 : 0);
    size_t correct = 0;
    double loss = head_loss_backward_shard(&h, labels, n, batch_rows, &correct, 0);
    float *gl = dev_copy(ops, logits, 2 * n), *gd = dev_alloc(2 * n), *grow = dev_alloc(n), *gp = dev_alloc(n);
    uint8_t *glab = NULL, *gok = NULL;
    MUST(cuda_alloc((void **)&glab, n, "labels", "test", &g_err));
    MUST(cuda_alloc((void **)&gok, n, "flags", "test", &g_err));
    MUST(cuda_ops_upload(ops, glab, labels, n, &g_err));
    MUST(cuda_softmax_xent(ops, gd, grow, gok, gl, glab, n, 2, batch_rows, &g_err));
    double gloss = 0;
    size_t gcorrect = 0;
    MUST(cuda_softmax_xent_sum(ops, grow, gok, n, &gloss, &gcorrect, &g_err));
    double rel = fabs(gloss - loss) / fabs(loss);
    CHECK(rel <= 1e-6, "softmax cross-entropy loss sum %.12g vs CPU %.12g (relative %.3g)", gloss, loss, rel);
    CHECK(gcorrect == correct, "softmax cross-entropy: %zu correct vs CPU %zu", gcorrect, correct);
    if (rel <= 1e-6 && gcorrect == correct)
        printf("ok   softmax cross-entropy: loss sum relative error %.3g <= 1e-6, %zu correct as on the CPU\n", rel,
               correct);
    float *hd = host_copy(ops, gd, 2 * n);
    GPU_EXPECT_CLOSE(hd, h.dh[0], 2 * n, 1e-6, "softmax cross-entropy gradient (batch of %zu rows)", batch_rows);
    float *p = ct_malloc_array(n, sizeof(float));
    head_probs(&h, n, p);
    MUST(cuda_softmax_prob1(ops, gp, gl, n, &g_err));
    float *hp = host_copy(ops, gp, n);
    GPU_EXPECT_CLOSE(hp, p, n, 1e-6, "softmax probabilities");
    head_free(&h);
    free(labels), free(hd), free(p), free(hp);
    cuda_free(gl), cuda_free(gd), cuda_free(grow), cuda_free(gp), cuda_free(glab), cuda_free(gok);
}

// ---- Adam ----

static void test_adam(CudaOps *ops, OptimizerKind kind, double wd) {
    const size_t n = 70001;
    AdamSpec spec;
    adam_spec_default(&spec);
    spec.kind = kind;
    spec.weight_decay = wd;
    AdamState st;
    MUST(adam_init(&st, &spec, n) == 0 ? 0 : ct_errorf(&g_err, "adam_init"));
    float *params = ct_malloc_array(n, sizeof(float)), *grads = ct_malloc_array(n, sizeof(float));
    gpu_fill_normal(params, n, 40, 0.05f);
    float *gp = dev_copy(ops, params, n), *gg = dev_alloc(n), *gm = dev_alloc(n), *gv = dev_alloc(n);
    float *zeros = calloc(n, sizeof(float));
    MUST(cuda_ops_upload(ops, gm, zeros, n * sizeof(float), &g_err));
    MUST(cuda_ops_upload(ops, gv, zeros, n * sizeof(float), &g_err));
    CudaAdamSpec cs = {kind == OPT_ADAMW, spec.beta1, spec.beta2, spec.eps, spec.weight_decay};
    const double lrs[] = {1e-3, 3e-4, 2e-3, 1e-4, 5e-4, 1e-3};
    for (size_t s = 0; s < sizeof lrs / sizeof *lrs; s++) {
        gpu_fill_normal(grads, n, 41 + (uint32_t)s, 0.01f);
        grads[s] = 0.0f;
        MUST(cuda_ops_upload(ops, gg, grads, n * sizeof(float), &g_err));
        adam_step(&st, params, grads, lrs[s]);
        MUST(cuda_adam_step(ops, gp, gg, gm, gv, n, &cs, st.step, lrs[s], &g_err));
    }
    float *hp = host_copy(ops, gp, n), *hm = host_copy(ops, gm, n), *hv = host_copy(ops, gv, n);
    const char *name = kind == OPT_ADAMW ? "AdamW" : "Adam";
    GPU_EXPECT_CLOSE(hp, params, n, 1e-6, "%s (weight decay %g) parameters after 6 steps", name, wd);
    GPU_EXPECT_CLOSE(hm, st.m, n, 1e-6, "%s (weight decay %g) first moments", name, wd);
    GPU_EXPECT_CLOSE(hv, st.v, n, 1e-6, "%s (weight decay %g) second moments", name, wd);
    adam_free(&st);
    free(params), free(grads), free(zeros), free(hp), free(hm), free(hv);
    cuda_free(gp), cuda_free(gg), cuda_free(gm), cuda_free(gv);
}

// ---- out of memory ----

static void test_oom(void) {
    size_t free0 = 0, total = 0, free1 = 0;
    cudaMemGetInfo(&free0, &total);
    void *small = NULL, *huge = NULL;
    CudaAllocReq req[2] = {{&small, (size_t)64 << 20, "the small block"}, {&huge, (size_t)1 << 52, "the huge block"}};
    CtError err = {{0}};
    int rc = cuda_alloc_all(req, 2, "batch 7", &err);
    cudaMemGetInfo(&free1, &total);
    CHECK(rc == -1, "an impossible allocation succeeded");
    CHECK(strstr(err.msg, "out of GPU memory at batch 7") != NULL, "message: %s", err.msg);
    CHECK(small == NULL && huge == NULL, "pointers not reset after a failed allocation");
    // The small block was given back (allow for other processes on the device).
    CHECK(free1 + ((size_t)32 << 20) >= free0, "free memory fell from %zu to %zu MiB", free0 >> 20, free1 >> 20);
    CHECK(cudaGetLastError() == cudaSuccess, "the failed allocation left a CUDA error behind");
    printf("ok   out of memory: \"%s\"\n", err.msg);
}

int main(void) {
    int skip = gpu_require(1);
    if (skip) return skip;
    CudaOps *ops = NULL, *ops_tf32 = NULL;
    MUST(cuda_ops_create(&ops, 1024, 0, &g_err));
    MUST(cuda_ops_create(&ops_tf32, 1024, 1, &g_err));
    // The reference heads' shapes: VGG 25088 -> 512 -> 256 -> 128 -> 2, ResNet 512 -> 256 -> 128 -> 2.
    const size_t shapes[][3] = {{32, 25088, 512}, {32, 512, 256}, {7, 256, 128}, {5, 128, 2}, {1, 3, 1}, {33, 512, 256}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        test_linear(ops, shapes[i][0], shapes[i][1], shapes[i][2], 2e-5, "fp32");
    test_linear(ops_tf32, 32, 25088, 512, 2e-3, "tf32");
    test_linear(ops_tf32, 32, 512, 256, 2e-3, "tf32");
    test_relu(ops);
    test_dropout(ops);
    test_loss(ops);
    test_adam(ops, OPT_ADAM, 0.0);
    test_adam(ops, OPT_ADAM, 1e-2);
    test_adam(ops, OPT_ADAMW, 1e-2);
    test_oom();
    cuda_ops_free(ops);
    cuda_ops_free(ops_tf32);
    return check_summary();
}
