/*
 * cpu_ops.c — the CPU backend's operation table (backend_ops.h): oneDNN
 * convolution and max pool (cpu_conv.c), sgemm linear layers
 * (cpu_linear.c), the Adam step (cpu_adam.c), BatchNorm folding
 * (cpu_bn.c), and here the small
 * operations in plain C: average pools, residual add, ReLU, dropout,
 * softmax cross-entropy, host memory and the MPI gradient allreduce.
 *
 * Every loop here is element-wise or sums in a fixed order inside one
 * output element, so the thread count changes no bit.
 */
#include "backend/cpu/cpu_ops.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_adam.h"
#include "backend/cpu/cpu_bn.h"
#include "backend/cpu/cpu_conv.h"
#include "backend/cpu/cpu_linear.h"
#include "util/rng.h"

// ---- memory ----

static void *host_alloc(size_t bytes) {
    void *p = ct_try_aligned_alloc(bytes ? bytes : 1, 1);
    if (p) memset(p, 0, bytes);
    return p;
}

static void host_free(void *p) { ct_aligned_free(p); }

static void host_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}

static void host_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}

// ---- average pools ----

// PyTorch's adaptive windows: [floor(i*H/o), ceil((i+1)*H/o)); sums in
// double, as the frozen prefix's final pool (cpu_net.c) computes them.
void cpu_adaptive_avgpool_forward(float *y, const float *x, size_t n, size_t c, size_t H, size_t W, size_t OH,
                                  size_t OW) {
#pragma omp parallel for schedule(static) if (n * c >= 256)
    for (size_t m = 0; m < n * c; m++) {
        const float *xm = x + m * H * W;
        float *ym = y + m * OH * OW;
        for (size_t oy = 0; oy < OH; oy++) {
            size_t y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
            for (size_t ox = 0; ox < OW; ox++) {
                size_t x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
                double s = 0;
                for (size_t yy = y0; yy < y1; yy++)
                    for (size_t xx = x0; xx < x1; xx++) s += xm[yy * W + xx];
                ym[oy * OW + ox] = (float)(s / (double)((y1 - y0) * (x1 - x0)));
            }
        }
    }
}

// Each input pixel gathers the windows that contain it (windows overlap when
// H is not a multiple of OH), in window order: no scatter, no race.
void cpu_adaptive_avgpool_backward(float *dx, const float *dy, size_t n, size_t c, size_t H, size_t W, size_t OH,
                                   size_t OW) {
#pragma omp parallel for schedule(static) if (n * c >= 256)
    for (size_t m = 0; m < n * c; m++) {
        float *dxm = dx + m * H * W;
        const float *dym = dy + m * OH * OW;
        memset(dxm, 0, H * W * sizeof(float));
        for (size_t oy = 0; oy < OH; oy++) {
            size_t y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
            for (size_t ox = 0; ox < OW; ox++) {
                size_t x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
                float g = (float)((double)dym[oy * OW + ox] / (double)((y1 - y0) * (x1 - x0)));
                for (size_t yy = y0; yy < y1; yy++)
                    for (size_t xx = x0; xx < x1; xx++) dxm[yy * W + xx] += g;
            }
        }
    }
}

static void global_avgpool_forward(float *y, const float *x, size_t n, size_t c, size_t h, size_t w) {
    cpu_adaptive_avgpool_forward(y, x, n, c, h, w, 1, 1);
}

static void global_avgpool_backward(float *dx, const float *dy, size_t n, size_t c, size_t h, size_t w) {
    cpu_adaptive_avgpool_backward(dx, dy, n, c, h, w, 1, 1);
}

// ---- elementwise ----

// As the head standardises (head.c): the same expression, element by element.
static void standardize_forward(float *y, const float *x, const float *mean, const float *inv_std, size_t rows,
                                size_t width) {
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < width; i++) y[r * width + i] = (x[r * width + i] - mean[i]) * inv_std[i];
}

static void standardize_backward(float *dx, const float *dy, const float *inv_std, size_t rows, size_t width) {
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < width; i++) dx[r * width + i] = dy[r * width + i] * inv_std[i];
}

static void add(float *y, const float *a, const float *b, size_t count) {
#pragma omp parallel for schedule(static) if (count > ((size_t)1 << 20))
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

static void relu_forward(float *y, const float *x, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(float *dx, const float *dy, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// Element e of the whole batch takes word e % 4 of the Philox block
// (iteration, layer, e / 4) under the key (seed, RNG_DROPOUT): the same masks
// as the head's (src/train/head.c), on every backend and shard.
void cpu_dropout_masks(float *mask, size_t rows, size_t width, size_t row0, uint64_t seed, uint64_t iteration,
                       uint32_t layer, double p) {
    rng_dropout_masks(mask, rows, width, row0, seed, iteration, layer, p);
}

static void dropout_forward(float *y, float *mask, const float *x, size_t rows, size_t width, size_t row0,
                            uint64_t seed, uint64_t iteration, uint32_t layer, double p) {
    cpu_dropout_masks(mask, rows, width, row0, seed, iteration, layer, p);
    for (size_t i = 0; i < rows * width; i++) y[i] = x[i] * mask[i];
}

static void dropout_backward(float *dx, const float *dy, const float *mask, size_t count) {
    for (size_t i = 0; i < count; i++) dx[i] = dy[i] * mask[i];
}

// ---- loss ----

double cpu_softmax_xent(float *d, size_t *correct, const float *logits, const uint8_t *labels, size_t n,
                           size_t batch_rows) {
    double loss = 0.0;
    size_t ok = 0;
    float inv_n = 1.0f / (float)batch_rows;
    for (size_t r = 0; r < n; r++) {
        float l0 = logits[2 * r], l1 = logits[2 * r + 1];
        float m = l0 > l1 ? l0 : l1;
        float lse = m + logf(expf(l0 - m) + expf(l1 - m));
        int y = labels[r] != 0;
        loss += (double)(lse - (y ? l1 : l0));
        ok += (l1 > l0) == y;  // argmax; a tie picks class 0 as torch.argmax does
        float p0 = expf(l0 - lse), p1 = expf(l1 - lse);
        d[2 * r] = (p0 - (y == 0)) * inv_n;
        d[2 * r + 1] = (p1 - (y == 1)) * inv_n;
    }
    if (correct) *correct = ok;
    return loss;
}

// ---- collectives ----

// MPI sums in a fixed reduction tree for a given communicator size, so the
// result is the same on every rank; chunks keep each call's count in an int.
static int allreduce_sum(void *comm, float *buf, size_t n, CtError *err) {
    MPI_Comm c = *(MPI_Comm *)comm;
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        int m = (int)(n - off < chunk ? n - off : chunk);
        if (MPI_Allreduce(MPI_IN_PLACE, buf + off, m, MPI_FLOAT, MPI_SUM, c) != MPI_SUCCESS)
            return ct_errorf(err, "MPI_Allreduce of %zu gradients failed", n);
    }
    return 0;
}

// ---- errors ----

// Every CPU member that can fail says so at once.
static int check(CtError *err) {
    (void)err;
    return 0;
}

// ---- the table ----

static const BackendOps CPU_OPS = {
    .name = "cpu",
    .host_memory = 1,
    .alloc = host_alloc,
    .free = host_free,
    .upload = host_copy,
    .download = host_copy,
    .copy = host_copy,
    .zero = host_zero,
    .conv_create = cpu_conv_create,
    .conv_free = cpu_conv_free,
    .conv_forward = cpu_conv_forward,
    .conv_backward_data = cpu_conv_backward_data,
    .conv_backward_weights = cpu_conv_backward_weights,
    .maxpool_create = cpu_maxpool_create,
    .maxpool_free = cpu_maxpool_free,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .adaptive_avgpool_forward = cpu_adaptive_avgpool_forward,
    .adaptive_avgpool_backward = cpu_adaptive_avgpool_backward,
    .global_avgpool_forward = global_avgpool_forward,
    .global_avgpool_backward = global_avgpool_backward,
    .add = add,
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
    .standardize_forward = standardize_forward,
    .standardize_backward = standardize_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward_params = cpu_linear_backward_params,
    .linear_backward_input = cpu_linear_backward_input,
    .softmax_xent = cpu_softmax_xent,
    .bn_fold = cpu_bn_fold,
    .bn_unfold_grads = cpu_bn_unfold_grads,
    .adam_step = cpu_adam_step,
    .allreduce_sum = allreduce_sum,
    .check = check,
};

const BackendOps *cpu_ops(void) { return &CPU_OPS; }
