/*
 * cuda_train_kernels.cu — the CUDA operation table's own kernels (see
 * cuda_train_kernels.h), in grid-stride loops over NCHW float32.
 *
 * Gradients are gathered, never scattered: each input element of a pool's
 * backward sums the windows that hold it, in window order, so no atomics
 * and the same bits on every run. Average pools, folding and the
 * elementwise kernels repeat cpu_ops.c's and cpu_bn.c's operations in their
 * order with explicitly rounded intrinsics (__fadd_rn, __dmul_rn, ...):
 * nvcc would otherwise contract a*b+c into a fused multiply-add that the
 * CPU build does not use. The max pool's backward adds overlapping windows'
 * gradients in window order; oneDNN's order there is its own, so the two
 * may differ in the last bit where windows overlap (3x3 stride 2), not
 * where they do not (VGG's 2x2 stride 2). The bias gradient is a sum over
 * the batch that the CPU forms per image; here one block per channel sums
 * in double in a fixed order: deterministic, not the CPU's bits.
 */
#include "backend/cuda/cuda_train_kernels.h"
#include "backend/cuda/cuda_launch.cuh"

#include <cuda_runtime.h>
#include <math.h>

namespace {



// ---- convolution epilogue and bias gradient ----

__global__ void bias_act(float *y, const float *res, const float *bias, size_t count, size_t c, size_t hw, int relu) {
    GRID_STRIDE(i, count) {
        float v = __fadd_rn(y[i], bias[(i / hw) % c]);
        if (res) v = __fadd_rn(v, res[i]);
        if (relu) v = v > 0.0f ? v : 0.0f;
        y[i] = v;
    }
}

// One block per channel: thread t sums elements t, t + THREADS, ... of the
// channel's (n * hw) values in order, then a fixed tree adds the threads'.
__global__ void bias_grad(float *db, const float *dy, size_t n, size_t c, size_t hw) {
    __shared__ double part[THREADS];
    size_t ch = blockIdx.x, m = n * hw;
    double s = 0.0;
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        size_t img = j / hw, p = j % hw;
        s = __dadd_rn(s, (double)dy[(img * c + ch) * hw + p]);
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) part[threadIdx.x] = __dadd_rn(part[threadIdx.x], part[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) db[ch] = __fadd_rn(db[ch], (float)part[0]);
}

// ---- max pool ----

__global__ void maxpool_fwd(float *y, int32_t *arg, const float *x, size_t planes, size_t ih, size_t iw, size_t oh,
                            size_t ow, size_t k, size_t stride, size_t pad) {
    GRID_STRIDE(i, planes * oh * ow) {
        size_t ox = i % ow, oy = (i / ow) % oh, pl = i / (oh * ow);
        const float *xp = x + pl * ih * iw;
        long long y0 = (long long)(oy * stride) - (long long)pad, x0 = (long long)(ox * stride) - (long long)pad;
        float m = -INFINITY;
        long long a = -1, first = -1;
        for (size_t ky = 0; ky < k; ky++) {
            long long yy = y0 + (long long)ky;
            if (yy < 0 || yy >= (long long)ih) continue;
            for (size_t kx = 0; kx < k; kx++) {
                long long xx = x0 + (long long)kx;
                if (xx < 0 || xx >= (long long)iw) continue;
                long long idx = yy * (long long)iw + xx;
                if (first < 0) first = idx;
                float v = xp[idx];
                if (v > m) {  // strictly greater: the first maximum wins, NaN never
                    m = v;
                    a = idx;
                }
            }
        }
        if (a < 0) {  // every value -inf or NaN: the window's first element
            a = first;
            m = first >= 0 ? xp[first] : -INFINITY;
        }
        y[i] = m;
        arg[i] = (int32_t)a;
    }
}

// The windows o (0 <= o < out) with o * stride - pad <= pos <= o * stride -
// pad + k - 1: [lo, hi], empty when hi < lo.
__device__ __forceinline__ void window_range(size_t pos, size_t k, size_t stride, size_t pad, size_t out, long long *lo,
                                             long long *hi) {
    long long st = (long long)stride, t = (long long)pos + (long long)pad - (long long)k + 1;
    *lo = t <= 0 ? 0 : (t + st - 1) / st;
    *hi = ((long long)pos + (long long)pad) / st;
    if (*hi > (long long)out - 1) *hi = (long long)out - 1;
}

__global__ void maxpool_bwd(float *dx, const float *dy, const int32_t *arg, size_t planes, size_t ih, size_t iw,
                            size_t oh, size_t ow, size_t k, size_t stride, size_t pad) {
    GRID_STRIDE(i, planes * ih * iw) {
        size_t xx = i % iw, yy = (i / iw) % ih, pl = i / (ih * iw);
        int32_t me = (int32_t)(yy * iw + xx);
        long long ylo, yhi, xlo, xhi;
        window_range(yy, k, stride, pad, oh, &ylo, &yhi);
        window_range(xx, k, stride, pad, ow, &xlo, &xhi);
        const int32_t *ap = arg + pl * oh * ow;
        const float *dp = dy + pl * oh * ow;
        float s = 0.0f;
        for (long long oy = ylo; oy <= yhi; oy++)
            for (long long ox = xlo; ox <= xhi; ox++) {
                size_t o = (size_t)oy * ow + (size_t)ox;
                if (ap[o] == me) s = __fadd_rn(s, dp[o]);
            }
        dx[i] = s;
    }
}

// ---- adaptive average pool (cpu_adaptive_avgpool_*) ----

__global__ void avgpool_fwd(float *y, const float *x, size_t planes, size_t H, size_t W, size_t OH, size_t OW) {
    GRID_STRIDE(i, planes * OH * OW) {
        size_t ox = i % OW, oy = (i / OW) % OH, pl = i / (OH * OW);
        const float *xp = x + pl * H * W;
        size_t y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
        size_t x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
        double s = 0.0;
        for (size_t yy = y0; yy < y1; yy++)
            for (size_t xx = x0; xx < x1; xx++) s = __dadd_rn(s, (double)xp[yy * W + xx]);
        y[i] = __double2float_rn(__ddiv_rn(s, (double)((y1 - y0) * (x1 - x0))));
    }
}

// Each input pixel adds the shares of the windows that contain it in
// window order, as the CPU's scatter reaches it.
__global__ void avgpool_bwd(float *dx, const float *dy, size_t planes, size_t H, size_t W, size_t OH, size_t OW) {
    GRID_STRIDE(i, planes * H * W) {
        size_t xx = i % W, yy = (i / W) % H, pl = i / (H * W);
        const float *dp = dy + pl * OH * OW;
        float s = 0.0f;
        for (size_t oy = 0; oy < OH; oy++) {
            size_t y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
            if (yy < y0 || yy >= y1) continue;
            for (size_t ox = 0; ox < OW; ox++) {
                size_t x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
                if (xx < x0 || xx >= x1) continue;
                float g = __double2float_rn(__ddiv_rn((double)dp[oy * OW + ox], (double)((y1 - y0) * (x1 - x0))));
                s = __fadd_rn(s, g);
            }
        }
        dx[i] = s;
    }
}

// ---- elementwise ----

__global__ void add_kernel(float *y, const float *a, const float *b, size_t count) {
    GRID_STRIDE(i, count) y[i] = __fadd_rn(a[i], b[i]);
}

__global__ void relu_bwd(float *dx, const float *dy, const float *y, size_t count) {
    GRID_STRIDE(i, count) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void mul_kernel(float *dx, const float *dy, const float *mask, size_t count) {
    GRID_STRIDE(i, count) dx[i] = __fmul_rn(dy[i], mask[i]);
}

// ---- BatchNorm (cpu_bn.c, operation for operation) ----

__device__ __forceinline__ double inv_std(const float *var, size_t o, double eps) {
    return __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn((double)var[o], eps)));
}

__global__ void fold_w(float *wf, const float *w, const float *gamma, const float *var, size_t cout, size_t per,
                       double eps) {
    GRID_STRIDE(i, cout * per) {
        size_t o = i / per;
        double s = __ddiv_rn((double)gamma[o], __dsqrt_rn(__dadd_rn((double)var[o], eps)));
        wf[i] = __double2float_rn(__dmul_rn((double)w[i], s));
    }
}

__global__ void fold_b(float *bf, const float *gamma, const float *beta, const float *mean, const float *var,
                       size_t cout, double eps) {
    GRID_STRIDE(o, cout) {
        double s = __ddiv_rn((double)gamma[o], __dsqrt_rn(__dadd_rn((double)var[o], eps)));
        double t = __dmul_rn((double)__fsub_rn(0.0f, mean[o]), s);
        bf[o] = __double2float_rn(__dadd_rn(t, (double)beta[o]));
    }
}

__global__ void unfold_w(float *gw, const float *gwf, const float *gamma, const float *var, size_t cout, size_t per,
                         double eps) {
    GRID_STRIDE(i, cout * per) {
        size_t o = i / per;
        double s = __dmul_rn((double)gamma[o], inv_std(var, o, eps));
        gw[i] = __fadd_rn(gw[i], __double2float_rn(__dmul_rn((double)gwf[i], s)));
    }
}

// One thread per channel: the dot product in double in element order, as
// the CPU sums it.
__global__ void unfold_gamma_beta(float *ggamma, float *gbeta, const float *gwf, const float *gbf, const float *w,
                                  const float *mean, const float *var, size_t cout, size_t per, double eps) {
    GRID_STRIDE(o, cout) {
        const float *g = gwf + o * per, *wo = w + o * per;
        double dot = 0.0;
        for (size_t i = 0; i < per; i++) dot = __dadd_rn(dot, __dmul_rn((double)g[i], (double)wo[i]));
        double d = __dmul_rn(__dsub_rn(dot, __dmul_rn((double)gbf[o], (double)mean[o])), inv_std(var, o, eps));
        ggamma[o] = __fadd_rn(ggamma[o], __double2float_rn(d));
        gbeta[o] = __fadd_rn(gbeta[o], gbf[o]);
    }
}

int launched() { return (int)cudaGetLastError(); }

}  // namespace

extern "C" int cuda_t_bias_act(float *y, const float *res, const float *bias, size_t n, size_t c, size_t hw, int relu,
                               cudaStream_t stream) {
    size_t count = n * c * hw;
    if (count == 0) return 0;
    bias_act<<<blocks_for(count), THREADS, 0, stream>>>(y, res, bias, count, c, hw, relu);
    return launched();
}

extern "C" int cuda_t_bias_grad(float *db, const float *dy, size_t n, size_t c, size_t hw, cudaStream_t stream) {
    if (c == 0) return 0;
    if (c > 0x7fffffffu) return (int)cudaErrorInvalidValue;
    bias_grad<<<(unsigned)c, THREADS, 0, stream>>>(db, dy, n, c, hw);
    return launched();
}

extern "C" int cuda_t_maxpool_forward(float *y, int32_t *arg, const float *x, size_t planes, size_t ih, size_t iw,
                                      size_t oh, size_t ow, size_t k, size_t stride, size_t pad, cudaStream_t stream) {
    size_t count = planes * oh * ow;
    if (count == 0) return 0;
    if (ih * iw > 0x7fffffffu || stride == 0) return (int)cudaErrorInvalidValue;
    maxpool_fwd<<<blocks_for(count), THREADS, 0, stream>>>(y, arg, x, planes, ih, iw, oh, ow, k, stride, pad);
    return launched();
}

extern "C" int cuda_t_maxpool_backward(float *dx, const float *dy, const int32_t *arg, size_t planes, size_t ih,
                                       size_t iw, size_t oh, size_t ow, size_t k, size_t stride, size_t pad,
                                       cudaStream_t stream) {
    size_t count = planes * ih * iw;
    if (count == 0) return 0;
    if (ih * iw > 0x7fffffffu || stride == 0) return (int)cudaErrorInvalidValue;
    maxpool_bwd<<<blocks_for(count), THREADS, 0, stream>>>(dx, dy, arg, planes, ih, iw, oh, ow, k, stride, pad);
    return launched();
}

extern "C" int cuda_t_avgpool_forward(float *y, const float *x, size_t planes, size_t h, size_t w, size_t oh,
                                      size_t ow, cudaStream_t stream) {
    size_t count = planes * oh * ow;
    if (count == 0) return 0;
    avgpool_fwd<<<blocks_for(count), THREADS, 0, stream>>>(y, x, planes, h, w, oh, ow);
    return launched();
}

extern "C" int cuda_t_avgpool_backward(float *dx, const float *dy, size_t planes, size_t h, size_t w, size_t oh,
                                       size_t ow, cudaStream_t stream) {
    size_t count = planes * h * w;
    if (count == 0) return 0;
    avgpool_bwd<<<blocks_for(count), THREADS, 0, stream>>>(dx, dy, planes, h, w, oh, ow);
    return launched();
}

extern "C" int cuda_t_add(float *y, const float *a, const float *b, size_t count, cudaStream_t stream) {
    if (count == 0) return 0;
    add_kernel<<<blocks_for(count), THREADS, 0, stream>>>(y, a, b, count);
    return launched();
}

extern "C" int cuda_t_relu_backward(float *dx, const float *dy, const float *y, size_t count, cudaStream_t stream) {
    if (count == 0) return 0;
    relu_bwd<<<blocks_for(count), THREADS, 0, stream>>>(dx, dy, y, count);
    return launched();
}

extern "C" int cuda_t_mul(float *dx, const float *dy, const float *mask, size_t count, cudaStream_t stream) {
    if (count == 0) return 0;
    mul_kernel<<<blocks_for(count), THREADS, 0, stream>>>(dx, dy, mask, count);
    return launched();
}

// The head's fixed standardisation per column of a (rows, width) matrix, as
// the CPU table computes it: (x - mean) * inv_std in float, then its backward.
__global__ void standardize_fwd(float *y, const float *x, const float *mean, const float *inv_std, size_t width,
                                size_t count) {
    GRID_STRIDE(i, count) y[i] = __fmul_rn(__fsub_rn(x[i], mean[i % width]), inv_std[i % width]);
}

__global__ void standardize_bwd(float *dx, const float *dy, const float *inv_std, size_t width, size_t count) {
    GRID_STRIDE(i, count) dx[i] = __fmul_rn(dy[i], inv_std[i % width]);
}

extern "C" int cuda_t_standardize_forward(float *y, const float *x, const float *mean, const float *inv_std,
                                          size_t rows, size_t width, cudaStream_t stream) {
    size_t count = rows * width;
    if (count == 0) return 0;
    standardize_fwd<<<blocks_for(count), THREADS, 0, stream>>>(y, x, mean, inv_std, width, count);
    return launched();
}

extern "C" int cuda_t_standardize_backward(float *dx, const float *dy, const float *inv_std, size_t rows,
                                           size_t width, cudaStream_t stream) {
    size_t count = rows * width;
    if (count == 0) return 0;
    standardize_bwd<<<blocks_for(count), THREADS, 0, stream>>>(dx, dy, inv_std, width, count);
    return launched();
}

extern "C" int cuda_t_bn_fold(float *wf, float *bf, const float *w, const float *gamma, const float *beta,
                              const float *mean, const float *var, size_t cout, size_t per, double eps,
                              cudaStream_t stream) {
    if (cout == 0) return 0;
    if (per) fold_w<<<blocks_for(cout * per), THREADS, 0, stream>>>(wf, w, gamma, var, cout, per, eps);
    fold_b<<<blocks_for(cout), THREADS, 0, stream>>>(bf, gamma, beta, mean, var, cout, eps);
    return launched();
}

extern "C" int cuda_t_bn_unfold_grads(float *gw, float *ggamma, float *gbeta, const float *gwf, const float *gbf,
                                      const float *w, const float *gamma, const float *mean, const float *var,
                                      size_t cout, size_t per, double eps, cudaStream_t stream) {
    if (cout == 0) return 0;
    if (per) unfold_w<<<blocks_for(cout * per), THREADS, 0, stream>>>(gw, gwf, gamma, var, cout, per, eps);
    // Small blocks: one thread a channel, spread over the multiprocessors.
    unsigned blocks = (unsigned)((cout + 63) / 64);
    unfold_gamma_beta<<<blocks, 64, 0, stream>>>(ggamma, gbeta, gwf, gbf, w, mean, var, cout, per, eps);
    return launched();
}
