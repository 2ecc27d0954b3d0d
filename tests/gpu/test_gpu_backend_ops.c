/*
 * test_gpu_backend_ops.c — the CUDA operation table against the CPU's, op
 * by op, on the same random inputs (backend_ops.h): memory, convolution
 * forward (+ bias, + shortcut, + ReLU) and both backward passes, max pool
 * (ties included: the gradient must reach the same element), average
 * pools, the elementwise ops, dropout, linear layers, softmax
 * cross-entropy, BatchNorm folding, Adam/AdamW, the allreduce, and the
 * deferred errors of members that return none.
 *
 * Bounds, as normalised errors (max |gpu - cpu| / max |cpu|):
 *  - convolution forward and backward data 1e-5, weight and bias gradients
 *    2e-5: cuDNN's deterministic GEMM-like algorithms and oneDNN's direct
 *    convolution add the same float32 products in different orders (up to
 *    cin * k * k of them per output, batch * pixels per weight gradient),
 *    which moves the sums by about 1e-6 of the largest magnitude. The GPU
 *    results must also repeat bit for bit (a full batch, a smaller one, the
 *    full one again): the algorithms are deterministic.
 *  - linear layers 2e-5 (cuBLAS against oneDNN's sgemm over up to 2048
 *    terms), their bias gradient bit-identical (the same column sums).
 *  - softmax cross-entropy 1e-6 (loss relative, gradient normalised):
 *    CUDA's expf/logf are within 2 ulp of glibc's.
 *  - Adam/AdamW 1e-6 and expected exact (the same float32 operations;
 *    exact unless the CPU build contracts into FMAs, as -march=native may).
 *  - bit-identical: max pool forward, its backward where windows do not
 *    overlap (1e-6 where they do: oneDNN adds overlapping windows in its
 *    own order), average pools, add, ReLU, dropout masks and outputs,
 *    BatchNorm folding and unfolding, memory copies, the allreduce of one
 *    rank.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "backend/cuda/cuda_nccl.h"
#include "nn/models.h"

#include "gpu_test.h"

static const BackendOps *CPU, *GPU;
static CtError g_err;

// A GPU member without an error return failed: nothing after it can be trusted.
static void gpu_ok(const char *what) {
    if (GPU->check(&g_err)) {
        printf("FAIL %s: %s\n", what, g_err.msg);
        exit(1);
    }
}

static float *dput(const float *h, size_t n) {
    float *d = GPU->alloc(n * sizeof(float));
    if (!d) {
        printf("FAIL out of GPU memory for %zu floats\n", n);
        exit(1);
    }
    GPU->upload(d, h, n * sizeof(float));
    return d;
}

static float *dget(const float *d, size_t n) {
    float *h = ct_calloc(n ? n : 1, sizeof(float));
    GPU->download(h, d, n * sizeof(float));
    gpu_ok("download");
    return h;
}

static float *hnew(size_t n) { return ct_calloc(n ? n : 1, sizeof(float)); }

static float *hcopy(const float *src, size_t n) {
    float *h = hnew(n);
    memcpy(h, src, n * sizeof(float));
    return h;
}

static float *normal(size_t n, uint32_t stream, float scale) {
    float *h = hnew(n);
    gpu_fill_normal(h, n, stream, scale);
    return h;
}

// ---- memory ----

static void test_memory(void) {
    const size_t n = 100003;
    float *a = normal(n, 1, 1.0f), *zeros = hnew(n);
    float *d = GPU->alloc(n * sizeof(float)), *e = GPU->alloc(n * sizeof(float));
    CHECK(d && e, "alloc of %zu floats failed", n);
    if (!d || !e) return;
    float *h = dget(d, n);
    GPU_EXPECT_SAME(h, zeros, n, "alloc gives zeroed memory");
    free(h);
    GPU->upload(d, a, n * sizeof(float));
    GPU->copy(e, d, n * sizeof(float));
    h = dget(e, n);
    GPU_EXPECT_SAME(h, a, n, "upload, device copy, download");
    free(h);
    GPU->zero(e, n * sizeof(float));
    h = dget(e, n);
    GPU_EXPECT_SAME(h, zeros, n, "zero");
    free(h);
    GPU->free(d);
    GPU->free(e);
    gpu_ok("free");
    free(a);
    free(zeros);
}

// ---- convolution ----

typedef struct {
    size_t n, cin, cout, k, stride, pad, h, w;
    int relu, residual;
} ConvCase;

static void test_conv(const ConvCase *cc) {
    size_t oh = (cc->h + 2 * cc->pad - cc->k) / cc->stride + 1, ow = (cc->w + 2 * cc->pad - cc->k) / cc->stride + 1;
    BackendConvDesc d = {.cin = cc->cin, .cout = cc->cout, .k = cc->k, .stride = cc->stride, .pad = cc->pad,
                         .in_h = cc->h, .in_w = cc->w, .out_h = oh, .out_w = ow, .relu = cc->relu,
                         .residual = cc->residual, .max_batch = cc->n};
    char what[160];
    snprintf(what, sizeof what, "conv %zu->%zu %zux%zu s%zu p%zu %zux%zu%s%s", cc->cin, cc->cout, cc->k, cc->k,
             cc->stride, cc->pad, cc->h, cc->w, cc->relu ? " +relu" : "", cc->residual ? " +shortcut" : "");
    size_t xi = cc->cin * cc->h * cc->w, yi = cc->cout * oh * ow, nw = cc->cout * cc->cin * cc->k * cc->k;
    size_t nx = cc->n * xi, ny = cc->n * yi;
    float fan = (float)(1.0 / sqrt((double)(cc->cin * cc->k * cc->k)));
    float *x = normal(nx, 10, 1.0f), *w = normal(nw, 11, fan), *b = normal(cc->cout, 12, 0.1f);
    float *res = normal(ny, 13, 1.0f), *dy = normal(ny, 14, 0.1f);
    float *dw0 = normal(nw, 15, 0.01f), *db0 = normal(cc->cout, 16, 0.01f);
    BackendConv *pc = NULL, *pg = NULL;
    CHECK(CPU->conv_create(&pc, &d, &g_err) == 0, "%s: CPU plan: %s", what, g_err.msg);
    CHECK(GPU->conv_create(&pg, &d, &g_err) == 0, "%s: GPU plan: %s", what, g_err.msg);
    if (!pc || !pg) return;
    float *gx = dput(x, nx), *gw = dput(w, nw), *gb = dput(b, cc->cout), *gres = dput(res, ny), *gdy = dput(dy, ny);
    float *gy = dput(res, ny), *gdx = dput(x, nx), *gdw = dput(dw0, nw), *gdb = dput(db0, cc->cout);
    float *first[4] = {NULL, NULL, NULL, NULL};  // the full batch's GPU results, to repeat
    // The full batch, a smaller one on the same plan, the full one again.
    size_t batches[3] = {cc->n, cc->n > 1 ? cc->n - 1 : 1, cc->n};
    for (int pass = 0; pass < 3; pass++) {
        size_t m = batches[pass], mx = m * xi, my = m * yi;
        float *y = hnew(ny), *dx = hnew(nx), *dw = hcopy(dw0, nw), *db = hcopy(db0, cc->cout);
        const float *r = cc->residual ? res : NULL;
        int ok = CPU->conv_forward(pc, y, x, w, b, r, m, &g_err) == 0 &&
                 CPU->conv_backward_data(pc, dx, dy, w, m, &g_err) == 0 &&
                 CPU->conv_backward_weights(pc, dw, db, dy, x, m, &g_err) == 0;
        CHECK(ok, "%s: CPU: %s", what, g_err.msg);
        GPU->upload(gdw, dw0, nw * sizeof(float));
        GPU->upload(gdb, db0, cc->cout * sizeof(float));
        ok = GPU->conv_forward(pg, gy, gx, gw, gb, cc->residual ? gres : NULL, m, &g_err) == 0 &&
             GPU->conv_backward_data(pg, gdx, gdy, gw, m, &g_err) == 0 &&
             GPU->conv_backward_weights(pg, gdw, gdb, gdy, gx, m, &g_err) == 0;
        CHECK(ok, "%s, batch %zu: GPU: %s", what, m, g_err.msg);
        float *hy = dget(gy, my), *hdx = dget(gdx, mx), *hdw = dget(gdw, nw), *hdb = dget(gdb, cc->cout);
        GPU_EXPECT_CLOSE(hy, y, my, 1e-5, "%s batch %zu: forward", what, m);
        GPU_EXPECT_CLOSE(hdx, dx, mx, 1e-5, "%s batch %zu: backward data", what, m);
        GPU_EXPECT_CLOSE(hdw, dw, nw, 2e-5, "%s batch %zu: weight gradient (accumulated)", what, m);
        GPU_EXPECT_CLOSE(hdb, db, cc->cout, 2e-5, "%s batch %zu: bias gradient (accumulated)", what, m);
        if (pass == 0) {
            first[0] = hy, first[1] = hdx, first[2] = hdw, first[3] = hdb;
        } else {
            if (pass == 2) {
                size_t counts[4] = {my, mx, nw, cc->cout};
                float *again[4] = {hy, hdx, hdw, hdb};
                int same = 1;
                for (int i = 0; i < 4; i++) same &= memcmp(first[i], again[i], counts[i] * sizeof(float)) == 0;
                CHECK(same, "%s: the GPU's results differ between two runs of the same batch", what);
                if (same) printf("ok   %s: GPU results repeat bit for bit after a smaller batch\n", what);
            }
            free(hy), free(hdx), free(hdw), free(hdb);
        }
        free(y), free(dx), free(dw), free(db);
    }
    for (int i = 0; i < 4; i++) free(first[i]);
    CHECK(GPU->conv_forward(pg, gy, gx, gw, gb, cc->residual ? gres : NULL, cc->n + 1, &g_err) != 0 &&
              strstr(g_err.msg, "batch"),
          "%s: a batch over the plan's is refused (%s)", what, g_err.msg);
    CPU->conv_free(pc);
    GPU->conv_free(pg);
    float *dev[] = {gx, gw, gb, gres, gdy, gy, gdx, gdw, gdb};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) GPU->free(dev[i]);
    free(x), free(w), free(b), free(res), free(dy), free(dw0), free(db0);
}

// ---- pools ----

static void test_maxpool(size_t n, size_t c, size_t h, size_t w, size_t k, size_t s, size_t p, int ties) {
    size_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
    BackendPoolDesc d = {.c = c, .k = k, .stride = s, .pad = p, .in_h = h, .in_w = w, .out_h = oh, .out_w = ow,
                         .max_batch = n};
    char what[128];
    snprintf(what, sizeof what, "max pool %zux%zu s%zu p%zu %zux%zu%s", k, k, s, p, h, w,
             ties ? " (ReLU'd, quantised: ties)" : "");
    size_t nx = n * c * h * w, ny = n * c * oh * ow;
    float *x = normal(nx, 20, 1.0f), *dy = normal(ny, 21, 1.0f), *y = hnew(ny), *dx = hnew(nx);
    // After a ReLU most windows of VGG's pools hold equal zeros: the gradient
    // must go to the same one of them as on the CPU (the first in row order).
    if (ties)
        for (size_t i = 0; i < nx; i++) x[i] = x[i] > 0 ? roundf(x[i] * 4.0f) / 4.0f : 0.0f;
    BackendPool *pc = NULL, *pg = NULL;
    CHECK(CPU->maxpool_create(&pc, &d, &g_err) == 0, "%s: CPU plan: %s", what, g_err.msg);
    CHECK(GPU->maxpool_create(&pg, &d, &g_err) == 0, "%s: GPU plan: %s", what, g_err.msg);
    if (!pc || !pg) return;
    float *gx = dput(x, nx), *gdy = dput(dy, ny), *gy = dput(y, ny), *gdx = dput(dx, nx);
    CHECK(CPU->maxpool_forward(pc, y, x, n, &g_err) == 0 && CPU->maxpool_backward(pc, dx, dy, n, &g_err) == 0,
          "%s: CPU: %s", what, g_err.msg);
    CHECK(GPU->maxpool_forward(pg, gy, gx, n, &g_err) == 0 && GPU->maxpool_backward(pg, gdx, gdy, n, &g_err) == 0,
          "%s: GPU: %s", what, g_err.msg);
    float *hy = dget(gy, ny), *hdx = dget(gdx, nx);
    GPU_EXPECT_SAME(hy, y, ny, "%s: forward", what);
    if (k <= s) GPU_EXPECT_SAME(hdx, dx, nx, "%s: backward (windows apart)", what);
    else GPU_EXPECT_CLOSE(hdx, dx, nx, 1e-6, "%s: backward (windows overlap)", what);
    CPU->maxpool_free(pc);
    GPU->maxpool_free(pg);
    GPU->free(gx), GPU->free(gdy), GPU->free(gy), GPU->free(gdx);
    free(x), free(dy), free(y), free(dx), free(hy), free(hdx);
}

static void test_avgpool(size_t n, size_t c, size_t h, size_t w, size_t oh, size_t ow) {
    size_t nx = n * c * h * w, ny = n * c * oh * ow;
    float *x = normal(nx, 30, 1.0f), *dy = normal(ny, 31, 1.0f), *y = hnew(ny), *dx = hnew(nx);
    float *gx = dput(x, nx), *gdy = dput(dy, ny), *gy = dput(y, ny), *gdx = dput(dx, nx);
    int global = oh == 1 && ow == 1;
    if (global) {
        CPU->global_avgpool_forward(y, x, n, c, h, w);
        CPU->global_avgpool_backward(dx, dy, n, c, h, w);
        GPU->global_avgpool_forward(gy, gx, n, c, h, w);
        GPU->global_avgpool_backward(gdx, gdy, n, c, h, w);
    } else {
        CPU->adaptive_avgpool_forward(y, x, n, c, h, w, oh, ow);
        CPU->adaptive_avgpool_backward(dx, dy, n, c, h, w, oh, ow);
        GPU->adaptive_avgpool_forward(gy, gx, n, c, h, w, oh, ow);
        GPU->adaptive_avgpool_backward(gdx, gdy, n, c, h, w, oh, ow);
    }
    gpu_ok("average pool");
    float *hy = dget(gy, ny), *hdx = dget(gdx, nx);
    const char *kind = global ? "global" : "adaptive";
    GPU_EXPECT_SAME(hy, y, ny, "%s average pool %zux%zu -> %zux%zu: forward", kind, h, w, oh, ow);
    GPU_EXPECT_SAME(hdx, dx, nx, "%s average pool %zux%zu -> %zux%zu: backward", kind, h, w, oh, ow);
    GPU->free(gx), GPU->free(gdy), GPU->free(gy), GPU->free(gdx);
    free(x), free(dy), free(y), free(dx), free(hy), free(hdx);
}

// ---- elementwise and dropout ----

static void test_elementwise(void) {
    const size_t n = 100003;
    float *a = normal(n, 40, 1.0f), *b = normal(n, 41, 1.0f), *y = hnew(n), *dx = hnew(n);
    a[0] = 0.0f, a[1] = -0.0f;
    float *ga = dput(a, n), *gb = dput(b, n), *gy = dput(y, n), *gdx = dput(dx, n);
    CPU->add(y, a, b, n);
    GPU->add(gy, ga, gb, n);
    float *h = dget(gy, n);
    GPU_EXPECT_SAME(h, y, n, "add");
    free(h);
    CPU->relu_forward(y, a, n);
    GPU->relu_forward(gy, ga, n);
    h = dget(gy, n);
    GPU_EXPECT_SAME(h, y, n, "ReLU forward");
    free(h);
    CPU->relu_backward(dx, b, y, n);
    GPU->relu_backward(gdx, gb, gy, n);
    h = dget(gdx, n);
    GPU_EXPECT_SAME(h, dx, n, "ReLU backward");
    free(h);
    // In place, as the tail runs them.
    CPU->relu_forward(a, a, n);
    GPU->relu_forward(ga, ga, n);
    CPU->relu_backward(b, b, a, n);
    GPU->relu_backward(gb, gb, ga, n);
    h = dget(gb, n);
    GPU_EXPECT_SAME(h, b, n, "ReLU forward and backward in place");
    free(h);
    GPU->free(ga), GPU->free(gb), GPU->free(gy), GPU->free(gdx);
    free(a), free(b), free(y), free(dx);
}

// The head's fixed standardisation (head.standardize with unfrozen stages).
static void test_standardize(size_t rows, size_t width) {
    size_t n = rows * width;
    float *x = normal(n, 60, 3.0f), *dy = normal(n, 61, 1.0f), *mean = normal(width, 62, 1.0f);
    float *inv = normal(width, 63, 1.0f), *y = hnew(n), *dx = hnew(n);
    inv[0] = 0.0f;  // a constant feature
    float *gx = dput(x, n), *gdy = dput(dy, n), *gm = dput(mean, width), *gi = dput(inv, width);
    float *gy = dput(y, n), *gdx = dput(dx, n);
    CPU->standardize_forward(y, x, mean, inv, rows, width);
    GPU->standardize_forward(gy, gx, gm, gi, rows, width);
    CPU->standardize_backward(dx, dy, inv, rows, width);
    GPU->standardize_backward(gdx, gdy, gi, rows, width);
    float *hy = dget(gy, n), *hdx = dget(gdx, n);
    GPU_EXPECT_SAME(hy, y, n, "standardize forward %zux%zu", rows, width);
    GPU_EXPECT_SAME(hdx, dx, n, "standardize backward %zux%zu", rows, width);
    GPU->free(gx), GPU->free(gdy), GPU->free(gm), GPU->free(gi), GPU->free(gy), GPU->free(gdx);
    free(x), free(dy), free(mean), free(inv), free(y), free(dx), free(hy), free(hdx);
}

static void test_dropout(size_t rows, size_t width, size_t row0, double p, int in_place) {
    size_t n = rows * width;
    float *x = normal(n, 50, 1.0f), *dy = normal(n, 51, 1.0f), *y = hnew(n), *mask = hnew(n), *dx = hnew(n);
    float *gx = dput(x, n), *gdy = dput(dy, n), *gy = dput(y, n), *gmask = dput(mask, n), *gdx = dput(dx, n);
    if (in_place) {
        CPU->dropout_forward(x, mask, x, rows, width, row0, 1234, 17, 2, p);
        GPU->dropout_forward(gx, gmask, gx, rows, width, row0, 1234, 17, 2, p);
        memcpy(y, x, n * sizeof(float));
        GPU->copy(gy, gx, n * sizeof(float));
    } else {
        CPU->dropout_forward(y, mask, x, rows, width, row0, 1234, 17, 2, p);
        GPU->dropout_forward(gy, gmask, gx, rows, width, row0, 1234, 17, 2, p);
    }
    CPU->dropout_backward(dx, dy, mask, n);
    GPU->dropout_backward(gdx, gdy, gmask, n);
    float *hm = dget(gmask, n), *hy = dget(gy, n), *hdx = dget(gdx, n);
    GPU_EXPECT_SAME(hm, mask, n, "dropout masks %zux%zu from row %zu, p %.2f", rows, width, row0, p);
    GPU_EXPECT_SAME(hy, y, n, "dropout forward%s", in_place ? " in place" : "");
    GPU_EXPECT_SAME(hdx, dx, n, "dropout backward");
    GPU->free(gx), GPU->free(gdy), GPU->free(gy), GPU->free(gmask), GPU->free(gdx);
    free(x), free(dy), free(y), free(mask), free(dx), free(hm), free(hy), free(hdx);
}

// ---- linear ----

static void test_linear(size_t B, size_t I, size_t O) {
    float bound = (float)(1.0 / sqrt((double)I));
    float *x = normal(B * I, 60, 1.0f), *w = normal(O * I, 61, bound), *b = normal(O, 62, bound);
    float *dy = normal(B * O, 63, 0.1f), *dw = normal(O * I, 64, 0.01f), *db = normal(O, 65, 0.01f);
    float *y = hnew(B * O), *dx = hnew(B * I);
    float *gx = dput(x, B * I), *gw = dput(w, O * I), *gb = dput(b, O), *gdy = dput(dy, B * O);
    float *gdw = dput(dw, O * I), *gdb = dput(db, O), *gy = dput(y, B * O), *gdx = dput(dx, B * I);
    CPU->linear_forward(y, x, w, b, B, I, O);
    CPU->linear_backward_params(dw, db, dy, x, B, I, O);
    CPU->linear_backward_input(dx, dy, w, B, I, O);
    GPU->linear_forward(gy, gx, gw, gb, B, I, O);
    GPU->linear_backward_params(gdw, gdb, gdy, gx, B, I, O);
    GPU->linear_backward_input(gdx, gdy, gw, B, I, O);
    float *hy = dget(gy, B * O), *hdw = dget(gdw, O * I), *hdb = dget(gdb, O), *hdx = dget(gdx, B * I);
    GPU_EXPECT_CLOSE(hy, y, B * O, 2e-5, "linear forward B=%zu I=%zu O=%zu", B, I, O);
    GPU_EXPECT_CLOSE(hdw, dw, O * I, 2e-5, "linear weight gradient (accumulated) B=%zu I=%zu O=%zu", B, I, O);
    GPU_EXPECT_SAME(hdb, db, O, "linear bias gradient (accumulated) B=%zu O=%zu", B, O);
    GPU_EXPECT_CLOSE(hdx, dx, B * I, 2e-5, "linear input gradient B=%zu I=%zu O=%zu", B, I, O);
    float *dev[] = {gx, gw, gb, gdy, gdw, gdb, gy, gdx};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) GPU->free(dev[i]);
    free(x), free(w), free(b), free(dy), free(dw), free(db), free(y), free(dx);
    free(hy), free(hdw), free(hdb), free(hdx);
}

// ---- loss ----

static void test_softmax_xent(size_t n, size_t batch_rows) {
    float *logits = normal(2 * n, 70, 3.0f), *d = hnew(2 * n);
    uint8_t *labels = ct_calloc(n, 1);
    for (size_t r = 0; r < n; r++) labels[r] = (uint8_t)((r * 7 + 3) % 5 < 2 ? 1 : 0);
    logits[2] = logits[3] = 1.5f;  // a tie: class 0 on both
    float *gl = dput(logits, 2 * n), *gd = dput(d, 2 * n);
    size_t c_cpu = 0, c_gpu = 0;
    double l_cpu = CPU->softmax_xent(d, &c_cpu, logits, labels, n, batch_rows);
    double l_gpu = GPU->softmax_xent(gd, &c_gpu, gl, labels, n, batch_rows);
    gpu_ok("softmax cross-entropy");
    float *hd = dget(gd, 2 * n);
    CHECK(fabs(l_gpu - l_cpu) <= 1e-6 * fabs(l_cpu) + 1e-6, "softmax cross-entropy of %zu rows: loss %.10g vs %.10g",
          n, l_gpu, l_cpu);
    CHECK(c_gpu == c_cpu, "softmax cross-entropy of %zu rows: %zu correct vs %zu", n, c_gpu, c_cpu);
    if (fabs(l_gpu - l_cpu) <= 1e-6 * fabs(l_cpu) + 1e-6 && c_gpu == c_cpu)
        printf("ok   softmax cross-entropy of %zu rows: loss %.10g vs %.10g, %zu correct on both\n", n, l_gpu, l_cpu,
               c_cpu);
    GPU_EXPECT_CLOSE(hd, d, 2 * n, 1e-6, "softmax cross-entropy gradient, %zu rows of %zu", n, batch_rows);
    GPU->free(gl), GPU->free(gd);
    free(logits), free(d), free(labels), free(hd);
}

// ---- BatchNorm folding ----

static void test_bn(size_t cout, size_t per) {
    size_t nw = cout * per;
    float *w = normal(nw, 80, 0.05f), *gamma = normal(cout, 81, 0.5f), *beta = normal(cout, 82, 0.5f);
    float *mean = normal(cout, 83, 0.5f), *var = hnew(cout), *gwf = normal(nw, 84, 0.01f);
    float *gbf = normal(cout, 85, 0.01f), *gw = normal(nw, 86, 0.001f), *gg = normal(cout, 87, 0.001f);
    float *gbeta = normal(cout, 88, 0.001f), *wf = hnew(nw), *bf = hnew(cout);
    gpu_fill_uniform(var, cout, 89, 0.05f, 2.0f);
    float *d_w = dput(w, nw), *d_gamma = dput(gamma, cout), *d_beta = dput(beta, cout), *d_mean = dput(mean, cout);
    float *d_var = dput(var, cout), *d_gwf = dput(gwf, nw), *d_gbf = dput(gbf, cout), *d_gw = dput(gw, nw);
    float *d_gg = dput(gg, cout), *d_gbeta = dput(gbeta, cout), *d_wf = dput(wf, nw), *d_bf = dput(bf, cout);
    CPU->bn_fold(wf, bf, w, gamma, beta, mean, var, cout, per, MODEL_BN_EPS);
    GPU->bn_fold(d_wf, d_bf, d_w, d_gamma, d_beta, d_mean, d_var, cout, per, MODEL_BN_EPS);
    CPU->bn_unfold_grads(gw, gg, gbeta, gwf, gbf, w, gamma, mean, var, cout, per, MODEL_BN_EPS);
    GPU->bn_unfold_grads(d_gw, d_gg, d_gbeta, d_gwf, d_gbf, d_w, d_gamma, d_mean, d_var, cout, per, MODEL_BN_EPS);
    float *hwf = dget(d_wf, nw), *hbf = dget(d_bf, cout), *hgw = dget(d_gw, nw), *hgg = dget(d_gg, cout);
    float *hgb = dget(d_gbeta, cout);
    GPU_EXPECT_SAME(hwf, wf, nw, "BatchNorm fold weights (%zu x %zu)", cout, per);
    GPU_EXPECT_SAME(hbf, bf, cout, "BatchNorm fold bias (%zu)", cout);
    GPU_EXPECT_SAME(hgw, gw, nw, "BatchNorm unfold: weight gradient (accumulated)");
    GPU_EXPECT_SAME(hgg, gg, cout, "BatchNorm unfold: gamma gradient (accumulated)");
    GPU_EXPECT_SAME(hgb, gbeta, cout, "BatchNorm unfold: beta gradient (accumulated)");
    float *dev[] = {d_w, d_gamma, d_beta, d_mean, d_var, d_gwf, d_gbf, d_gw, d_gg, d_gbeta, d_wf, d_bf};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) GPU->free(dev[i]);
    float *host[] = {w, gamma, beta, mean, var, gwf, gbf, gw, gg, gbeta, wf, bf, hwf, hbf, hgw, hgg, hgb};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) free(host[i]);
}

// ---- Adam ----

static void test_adam(int adamw) {
    const size_t n = 100003;
    float *p = normal(n, 90, 0.1f), *m = hnew(n), *v = hnew(n);
    float *gp = dput(p, n), *gm = dput(m, n), *gv = dput(v, n), *gg = dput(m, n);
    for (uint64_t s = 1; s <= 5; s++) {
        float *g = normal(n, 90 + (uint32_t)s, 1e-3f);
        BackendAdamStep st = {.lr = 1e-3 * (double)s, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                              .weight_decay = 0.01, .adamw = adamw, .step = s};
        GPU->upload(gg, g, n * sizeof(float));
        CPU->adam_step(&st, p, g, m, v, n);
        GPU->adam_step(&st, gp, gg, gm, gv, n);
        free(g);
    }
    float *hp = dget(gp, n), *hm = dget(gm, n), *hv = dget(gv, n);
    const char *name = adamw ? "AdamW" : "Adam";
    GPU_EXPECT_CLOSE(hp, p, n, 1e-6, "%s, 5 steps: parameters", name);
    GPU_EXPECT_CLOSE(hm, m, n, 1e-6, "%s, 5 steps: first moments", name);
    GPU_EXPECT_CLOSE(hv, v, n, 1e-6, "%s, 5 steps: second moments", name);
    GPU->free(gp), GPU->free(gm), GPU->free(gv), GPU->free(gg);
    free(p), free(m), free(v), free(hp), free(hm), free(hv);
}

// ---- allreduce (one rank: the sum is the buffer itself) ----

static void test_allreduce(void) {
    const size_t n = 4099;
    float *a = normal(n, 95, 1.0f), *c = hcopy(a, n);
    MPI_Comm world = MPI_COMM_WORLD;
    CHECK(CPU->allreduce_sum(&world, c, n, &g_err) == 0, "CPU allreduce: %s", g_err.msg);
    CudaNccl *nc = NULL;
    int rc = cuda_nccl_create(&nc, MPI_COMM_WORLD, 0, NULL, &g_err);
    CHECK(rc == 0, "cuda_nccl_create on one rank returned %d: %s", rc, g_err.msg);
    if (rc == 0) {
        float *ga = dput(a, n);
        CHECK(GPU->allreduce_sum(nc, ga, n, &g_err) == 0, "GPU allreduce: %s", g_err.msg);
        float *h = dget(ga, n);
        GPU_EXPECT_SAME(h, c, n, "allreduce over one rank (comm: the CudaNccl *)");
        GPU->free(ga);
        free(h);
        CHECK(cuda_nccl_free(nc, &g_err) == 0, "cuda_nccl_free: %s", g_err.msg);
    }
    free(a), free(c);
}

// ---- deferred errors ----

static void test_deferred_errors(void) {
    float *g = GPU->alloc(16 * sizeof(float));
    CtError e = {{0}};
    CHECK(GPU->check(&e) == 0, "check with nothing pending: %s", e.msg);
    // dropout's probability out of range: the member cannot say so itself.
    GPU->dropout_forward(g, g + 8, g, 1, 4, 0, 1, 1, 1, 1.5);
    int rc = GPU->check(&e);
    CHECK(rc != 0 && strstr(e.msg, "dropout"), "a failed dropout is reported by check (%s)", e.msg);
    CHECK(GPU->check(&e) == 0, "check reports a failure once (%s)", e.msg);
    // ... or by the next member that returns an error.
    BackendPoolDesc d = {.c = 1, .k = 2, .stride = 2, .in_h = 2, .in_w = 2, .out_h = 1, .out_w = 1, .max_batch = 1};
    BackendPool *p = NULL;
    CHECK(GPU->maxpool_create(&p, &d, &e) == 0, "max pool plan: %s", e.msg);
    GPU->dropout_forward(g, g + 8, g, 1, 4, 0, 1, 1, 1, 1.5);
    if (p) {
        rc = GPU->maxpool_forward(p, g + 4, g, 1, &e);
        CHECK(rc != 0 && strstr(e.msg, "dropout"), "a failed dropout is reported by the next max pool (%s)", e.msg);
        GPU->maxpool_free(p);
    }
    CHECK(GPU->check(&e) == 0, "nothing pending after it was reported (%s)", e.msg);
    GPU->free(g);
    printf("ok   failures of members without an error return are reported once, by check or the next call\n");
}

int main(int argc, char **argv) {
    int skip = gpu_require(1);
    if (skip) return skip;
    MPI_Init(&argc, &argv);
    CPU = backend_ops_get(BACKEND_CPU, &g_err);
    GPU = backend_ops_get(BACKEND_CUDA, &g_err);
    CHECK(GPU && strcmp(GPU->name, "cuda") == 0, "backend_ops_get(BACKEND_CUDA): %s", GPU ? GPU->name : g_err.msg);
    if (!CPU || !GPU) {
        MPI_Finalize();
        return check_summary();
    }
    test_memory();
    const ConvCase convs[] = {
        {5, 5, 7, 3, 2, 1, 9, 11, 0, 0},      // odd sizes, stride 2, padding
        {4, 16, 8, 3, 1, 1, 7, 7, 1, 1},      // a ResNet block's second convolution: shortcut + ReLU
        {3, 8, 16, 1, 2, 0, 8, 8, 0, 0},      // a ResNet downsample (1x1 stride 2)
        {3, 64, 64, 3, 1, 1, 14, 14, 1, 0},   // VGG-like
        {2, 3, 6, 7, 2, 3, 15, 13, 1, 0},     // a stem: 7x7 stride 2 padding 3
        {6, 32, 32, 3, 1, 1, 2, 2, 1, 1},     // ResNet layer4 at 64 px: 2x2 maps
        {3, 6, 6, 3, 1, 1, 5, 9, 0, 1},       // a shortcut without ReLU
    };
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) test_conv(&convs[i]);
    for (int ties = 0; ties < 2; ties++) {
        test_maxpool(3, 4, 9, 8, 3, 2, 1, ties);   // ResNet's stem pool
        test_maxpool(4, 6, 8, 6, 2, 2, 0, ties);   // VGG's pools
        test_maxpool(2, 5, 7, 9, 2, 2, 0, ties);   // odd sizes (floor)
    }
    test_avgpool(3, 4, 5, 6, 3, 4);     // overlapping windows
    test_avgpool(3, 4, 2, 3, 7, 7);     // repeated windows (VGG at 64 px)
    test_avgpool(2, 8, 14, 14, 7, 7);   // VGG at 224 px
    test_avgpool(5, 16, 7, 7, 1, 1);    // ResNet's global pool
    test_elementwise();
    test_standardize(7, 513);
    test_dropout(5, 37, 3, 0.4, 0);
    test_dropout(32, 4096, 0, 0.5, 1);
    test_linear(16, 2048, 512);
    test_linear(5, 37, 3);
    test_linear(32, 128, 2);
    test_softmax_xent(37, 64);
    test_softmax_xent(5000, 5000);  // more rows than one staging chunk
    test_bn(7, 45);
    test_bn(64, 576);
    test_adam(0);
    test_adam(1);
    test_allreduce();
    test_deferred_errors();
    gpu_ok("the last members");
    int rc = check_summary();
    MPI_Finalize();
    return rc;
}
