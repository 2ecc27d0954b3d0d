/*
 * cuda_ops.cu — the head's training operations on the GPU (see cuda_ops.h).
 *
 * Where the CPU result is exact given its inputs (dropout masks, bias
 * column sums, Adam) the kernels repeat its operations one for one with
 * explicitly rounded intrinsics (__fmul_rn, __fadd_rn, ...), because nvcc
 * would otherwise contract a*b+c into a fused multiply-add that the CPU
 * build does not use. Matrix products go through cuBLAS and differ from
 * oneDNN's only in summation order.
 */
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_ops.h"

extern "C" {
#include "util/rng.h"
}

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <limits.h>
#include <math.h>

struct CudaOps {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    size_t max_rows;
    float *host_loss;      // pinned (max_rows)
    uint8_t *host_correct; // pinned (max_rows)
};

namespace {

const int THREADS = 256;

unsigned blocks_for(size_t count) {
    size_t b = (count + THREADS - 1) / THREADS;
    const size_t cap = (size_t)1 << 18;
    if (b > cap) b = cap;
    return (unsigned)(b ? b : 1);
}

#define GRID_STRIDE(i, count) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += (size_t)gridDim.x * blockDim.x)

// ---- Philox4x32-10, as util/rng.c ----

__device__ __forceinline__ void philox4x32(uint32_t out[4], uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                           uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
        uint32_t hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += W0;
        k1 += W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

// Element e of the whole batch takes word e % 4 of Philox block e / 4; one
// thread per block of four.
__global__ void dropout_kernel(float *y, float *mask, size_t first, size_t n, uint32_t it_lo, uint32_t it_hi,
                               uint32_t layer, uint32_t k0, uint32_t k1, float pf, float keep_scale) {
    size_t blk0 = first / 4, blks = (first + n + 3) / 4 - blk0;
    GRID_STRIDE(j, blks) {
        size_t blk = blk0 + j;
        uint32_t out[4];
        philox4x32(out, it_lo, it_hi, layer, (uint32_t)blk, k0, k1);
#pragma unroll
        for (int wd = 0; wd < 4; wd++) {
            size_t e = blk * 4 + (size_t)wd;
            if (e < first || e >= first + n) continue;
            size_t i = e - first;
            float u = (float)(out[wd] >> 8) * (1.0f / 16777216.0f);
            float m = u < pf ? 0.0f : keep_scale;
            mask[i] = m;
            if (y) y[i] = __fmul_rn(y[i], m);
        }
    }
}

__global__ void add_bias(float *y, const float *b, size_t B, size_t O) {
    GRID_STRIDE(i, B * O) y[i] = __fadd_rn(y[i], b[i % O]);
}

// db[o] += sum over rows of dy[r, o], summed in row order as cpu_linear.c.
__global__ void column_sums(float *db, const float *dy, size_t B, size_t O) {
    GRID_STRIDE(o, O) {
        float s = 0.0f;
        for (size_t r = 0; r < B; r++) s = __fadd_rn(s, dy[r * O + o]);
        db[o] = __fadd_rn(db[o], s);
    }
}

__global__ void relu_kernel(float *y, const float *x, size_t n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

__global__ void relu_dropout_backward(float *dx, const float *act, const float *mask, size_t n) {
    GRID_STRIDE(i, n) dx[i] = act[i] > 0.0f ? (mask ? __fmul_rn(dx[i], mask[i]) : dx[i]) : 0.0f;
}

__global__ void standardize_kernel(float *z, const float *x, const float *mean, const float *inv_std, size_t n,
                                   size_t D) {
    GRID_STRIDE(i, n * D) z[i] = __fmul_rn(__fsub_rn(x[i], mean[i % D]), inv_std[i % D]);
}

__global__ void softmax_xent(float *d, float *row_loss, uint8_t *row_correct, const float *logits,
                             const uint8_t *labels, size_t n, size_t C, float inv_n) {
    GRID_STRIDE(r, n) {
        const float *l = logits + r * C;
        float *dr = d + r * C;
        size_t y = C == 2 ? (labels[r] != 0) : labels[r];
        float m = l[0];
        size_t best = 0;
        for (size_t j = 1; j < C; j++) {
            if (l[j] > m) m = l[j];
            if (l[j] > l[best]) best = j;
        }
        float s = 0.0f;
        for (size_t j = 0; j < C; j++) s = __fadd_rn(s, expf(__fsub_rn(l[j], m)));
        float lse = __fadd_rn(m, logf(s));
        row_loss[r] = y < C ? __fsub_rn(lse, l[y]) : NAN;
        row_correct[r] = best == y;
        for (size_t j = 0; j < C; j++)
            dr[j] = __fmul_rn(__fsub_rn(expf(__fsub_rn(l[j], lse)), j == y ? 1.0f : 0.0f), inv_n);
    }
}

__global__ void prob1_kernel(float *p, const float *logits, size_t n) {
    GRID_STRIDE(r, n) {
        float l0 = logits[2 * r], l1 = logits[2 * r + 1];
        float m = l0 > l1 ? l0 : l1;
        float e0 = expf(__fsub_rn(l0, m)), e1 = expf(__fsub_rn(l1, m));
        p[r] = __fdiv_rn(e1, __fadd_rn(e0, e1));
    }
}

struct AdamArgs {
    float step_size, bc2_sqrt, b1, b2, omb1, omb2, eps, wd, decay;
    int adamw, l2;
};

// adam.c's loop body, operation for operation.
__global__ void adam_kernel(float *params, const float *grads, float *m, float *v, size_t n, AdamArgs a) {
    GRID_STRIDE(i, n) {
        float g = grads[i], p = params[i];
        if (a.adamw) p = __fmul_rn(p, a.decay);
        if (a.l2) g = __fadd_rn(g, __fmul_rn(a.wd, p));
        float mi = __fadd_rn(__fmul_rn(m[i], a.b1), __fmul_rn(g, a.omb1));
        float vi = __fadd_rn(__fmul_rn(v[i], a.b2), __fmul_rn(__fmul_rn(a.omb2, g), g));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), a.bc2_sqrt), a.eps);
        params[i] = __fadd_rn(p, __fdiv_rn(__fmul_rn(-a.step_size, mi), denom));
        m[i] = mi;
        v[i] = vi;
    }
}

int launched(const char *op, CtError *err) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    return ct_errorf(err, "%s: kernel launch failed: %s", op, cudaGetErrorString(e));
}

int dims_fit(const char *op, size_t B, size_t I, size_t O, CtError *err) {
    if (B > INT_MAX || I > INT_MAX || O > INT_MAX || (I && O > (size_t)INT_MAX / I))
        return ct_errorf(err, "%s: dimensions %zu x %zu x %zu exceed cuBLAS's int range", op, B, I, O);
    return 0;
}

}  // namespace

// ---- lifetime ----

extern "C" int cuda_ops_create(CudaOps **out, size_t max_rows, int allow_tf32, CtError *err) {
    *out = NULL;
    CudaOps *ops = (CudaOps *)ct_calloc(1, sizeof *ops);
    ops->max_rows = max_rows ? max_rows : 1;
    CUDA_TRY(cudaGetDevice(&ops->device), "GPU training ops");
    CUDA_TRY(cudaStreamCreateWithFlags(&ops->stream, cudaStreamNonBlocking), "GPU training ops");
    {
        cublasStatus_t st = cublasCreate(&ops->blas);
        if (st != CUBLAS_STATUS_SUCCESS) {
            cublas_fail(err, (int)st, "cublasCreate", "GPU training ops");
            goto fail;
        }
        st = cublasSetStream(ops->blas, ops->stream);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasSetMathMode(ops->blas, allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
        if (st != CUBLAS_STATUS_SUCCESS) {
            cublas_fail(err, (int)st, "cublasSetStream/cublasSetMathMode", "GPU training ops");
            goto fail;
        }
    }
    CUDA_TRY(cudaMallocHost((void **)&ops->host_loss, ops->max_rows * sizeof(float)), "pinned loss buffer");
    CUDA_TRY(cudaMallocHost((void **)&ops->host_correct, ops->max_rows), "pinned loss buffer");
    *out = ops;
    return 0;
fail:
    cuda_ops_free(ops);
    return -1;
}

extern "C" void cuda_ops_free(CudaOps *ops) {
    if (!ops) return;
    if (ops->stream) (void)cudaStreamSynchronize(ops->stream);
    if (ops->blas) cublasDestroy(ops->blas);
    if (ops->host_loss) (void)cudaFreeHost(ops->host_loss);
    if (ops->host_correct) (void)cudaFreeHost(ops->host_correct);
    if (ops->stream) (void)cudaStreamDestroy(ops->stream);
    free(ops);
}

extern "C" void *cuda_ops_stream(CudaOps *ops) { return (void *)ops->stream; }

extern "C" int cuda_ops_sync(CudaOps *ops, const char *what, CtError *err) {
    CUDA_RET(cudaStreamSynchronize(ops->stream), what);
    return 0;
}

extern "C" int cuda_ops_upload(CudaOps *ops, void *dst, const void *src, size_t bytes, CtError *err) {
    CUDA_RET(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ops->stream), "copy to the GPU");
    return 0;
}

extern "C" int cuda_ops_download(CudaOps *ops, void *dst, const void *src, size_t bytes, CtError *err) {
    CUDA_RET(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ops->stream), "copy from the GPU");
    CUDA_RET(cudaStreamSynchronize(ops->stream), "copy from the GPU");
    return 0;
}

// ---- linear layers ----
// cuBLAS is column-major: a row-major (R, C) matrix is a column-major (C, R)
// one, so each product below is the transposed product of cpu_linear.c's.

extern "C" int cuda_linear_forward(CudaOps *ops, float *y, const float *x, const float *w, const float *b, size_t B,
                                   size_t I, size_t O, CtError *err) {
    if (B == 0 || O == 0) return 0;
    if (dims_fit("linear forward", B, I, O, err)) return -1;
    const float one = 1.0f, zero = 0.0f;
    // y^T (O, B) = W (O, I) x^T (I, B): W is col-major (I, O) -> op T; x is col-major (I, B).
    CUBLAS_RET(cublasSgemm(ops->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)O, (int)B, (int)I, &one, w, (int)I, x, (int)I,
                           &zero, y, (int)O),
               "linear forward");
    if (b) {
        add_bias<<<blocks_for(B * O), THREADS, 0, ops->stream>>>(y, b, B, O);
        if (launched("linear forward bias", err)) return -1;
    }
    return 0;
}

extern "C" int cuda_linear_backward_params(CudaOps *ops, float *dw, float *db, const float *dy, const float *x,
                                           size_t B, size_t I, size_t O, CtError *err) {
    if (B == 0 || O == 0) return 0;
    if (dims_fit("linear backward (weights)", B, I, O, err)) return -1;
    const float one = 1.0f;
    // dw^T (I, O) += x^T (I, B) dy (B, O): x col-major (I, B); dy col-major (O, B) -> op T.
    CUBLAS_RET(cublasSgemm(ops->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)I, (int)O, (int)B, &one, x, (int)I, dy, (int)O,
                           &one, dw, (int)I),
               "linear backward (weights)");
    if (db) {
        column_sums<<<blocks_for(O), THREADS, 0, ops->stream>>>(db, dy, B, O);
        if (launched("linear backward (bias)", err)) return -1;
    }
    return 0;
}

extern "C" int cuda_linear_backward_input(CudaOps *ops, float *dx, const float *dy, const float *w, size_t B,
                                          size_t I, size_t O, CtError *err) {
    if (B == 0 || I == 0) return 0;
    if (dims_fit("linear backward (input)", B, I, O, err)) return -1;
    const float one = 1.0f, zero = 0.0f;
    // dx^T (I, B) = W^T (I, O) dy^T (O, B): W col-major (I, O); dy col-major (O, B).
    CUBLAS_RET(cublasSgemm(ops->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)I, (int)B, (int)O, &one, w, (int)I, dy, (int)O,
                           &zero, dx, (int)I),
               "linear backward (input)");
    return 0;
}

// ---- elementwise ----

extern "C" int cuda_relu_forward(CudaOps *ops, float *y, const float *x, size_t n, CtError *err) {
    if (n == 0) return 0;
    relu_kernel<<<blocks_for(n), THREADS, 0, ops->stream>>>(y, x, n);
    return launched("ReLU", err);
}

extern "C" int cuda_relu_dropout_backward(CudaOps *ops, float *dx, const float *act, const float *mask, size_t n,
                                          CtError *err) {
    if (n == 0) return 0;
    relu_dropout_backward<<<blocks_for(n), THREADS, 0, ops->stream>>>(dx, act, mask, n);
    return launched("ReLU/dropout backward", err);
}

extern "C" int cuda_dropout_forward(CudaOps *ops, float *y, float *mask, size_t rows, size_t width, size_t row0,
                                    uint64_t seed, uint64_t iteration, uint32_t layer, double p, CtError *err) {
    size_t n = rows * width;
    if (n == 0) return 0;
    if (!(p >= 0 && p < 1)) return ct_errorf(err, "dropout probability %g is not in [0, 1)", p);
    // Keys, threshold and scale computed as head.c computes them.
    uint32_t k0 = (uint32_t)seed ^ ((uint32_t)RNG_DROPOUT * 0x85EBCA6Bu);
    uint32_t k1 = (uint32_t)(seed >> 32) ^ ((uint32_t)RNG_DROPOUT * 0xC2B2AE35u);
    float keep_scale = (float)(1.0 / (1.0 - p)), pf = (float)p;
    size_t first = row0 * width;
    size_t blks = (first + n + 3) / 4 - first / 4;
    dropout_kernel<<<blocks_for(blks), THREADS, 0, ops->stream>>>(y, mask, first, n, (uint32_t)iteration,
                                                                   (uint32_t)(iteration >> 32), layer, k0, k1, pf,
                                                                   keep_scale);
    return launched("dropout", err);
}

extern "C" int cuda_standardize(CudaOps *ops, float *z, const float *x, const float *mean, const float *inv_std,
                                size_t n, size_t D, CtError *err) {
    if (n == 0 || D == 0) return 0;
    standardize_kernel<<<blocks_for(n * D), THREADS, 0, ops->stream>>>(z, x, mean, inv_std, n, D);
    return launched("standardisation", err);
}

// ---- loss ----

extern "C" int cuda_softmax_xent(CudaOps *ops, float *dlogits, float *row_loss, uint8_t *row_correct,
                                 const float *logits, const uint8_t *labels, size_t n, size_t C, size_t batch_rows,
                                 CtError *err) {
    if (n == 0) return 0;
    if (C < 2 || C > 255 || batch_rows == 0) return ct_errorf(err, "softmax cross-entropy: %zu classes", C);
    float inv_n = 1.0f / (float)batch_rows;
    softmax_xent<<<blocks_for(n), THREADS, 0, ops->stream>>>(dlogits, row_loss, row_correct, logits, labels, n, C,
                                                              inv_n);
    return launched("softmax cross-entropy", err);
}

extern "C" int cuda_softmax_xent_sum(CudaOps *ops, const float *row_loss, const uint8_t *row_correct, size_t n,
                                     double *loss_sum, size_t *correct, CtError *err) {
    if (n > ops->max_rows)
        return ct_errorf(err, "softmax cross-entropy: %zu rows, more than the %zu the ops were made for", n,
                         ops->max_rows);
    *loss_sum = 0.0;
    if (correct) *correct = 0;
    if (n == 0) return 0;
    CUDA_RET(cudaMemcpyAsync(ops->host_loss, row_loss, n * sizeof(float), cudaMemcpyDeviceToHost, ops->stream),
             "copying the losses from the GPU");
    CUDA_RET(cudaMemcpyAsync(ops->host_correct, row_correct, n, cudaMemcpyDeviceToHost, ops->stream),
             "copying the losses from the GPU");
    CUDA_RET(cudaStreamSynchronize(ops->stream), "softmax cross-entropy");
    double s = 0.0;
    size_t ok = 0;
    for (size_t r = 0; r < n; r++) {
        s += (double)ops->host_loss[r];
        ok += ops->host_correct[r] != 0;
    }
    *loss_sum = s;
    if (correct) *correct = ok;
    return 0;
}

extern "C" int cuda_softmax_prob1(CudaOps *ops, float *p, const float *logits, size_t n, CtError *err) {
    if (n == 0) return 0;
    prob1_kernel<<<blocks_for(n), THREADS, 0, ops->stream>>>(p, logits, n);
    return launched("softmax probabilities", err);
}

// ---- optimiser ----

extern "C" int cuda_adam_step(CudaOps *ops, float *params, const float *grads, float *m, float *v, size_t n,
                              const CudaAdamSpec *s, uint64_t step, double lr, CtError *err) {
    if (step == 0) return ct_errorf(err, "Adam: step numbers start at 1");
    if (n == 0) return 0;
    // Scalars in double, then float, exactly as adam.c derives them.
    double bc1 = 1.0 - pow(s->beta1, (double)step);
    double bc2 = 1.0 - pow(s->beta2, (double)step);
    AdamArgs a;
    a.step_size = (float)(lr / bc1);
    a.bc2_sqrt = (float)sqrt(bc2);
    a.b1 = (float)s->beta1;
    a.b2 = (float)s->beta2;
    a.omb1 = (float)(1.0 - s->beta1);
    a.omb2 = (float)(1.0 - s->beta2);
    a.eps = (float)s->eps;
    a.wd = (float)s->weight_decay;
    a.decay = (float)(1.0 - lr * s->weight_decay);
    a.adamw = s->adamw != 0;
    a.l2 = !s->adamw && s->weight_decay != 0.0;
    adam_kernel<<<blocks_for(n), THREADS, 0, ops->stream>>>(params, grads, m, v, n, a);
    return launched("Adam step", err);
}
