/*
 * cuda_net_kernels.cu — the backbone plan's own kernels (see
 * cuda_net_kernels.h). One thread per output element in grid-stride loops,
 * threads consecutive in the channel, so NHWC reads and writes coalesce;
 * storage types are template parameters, arithmetic is float32 (double for
 * the average pool's sums, as the CPU backend does).
 */
#include "backend/cuda/cuda_net_kernels.h"
#include "backend/cuda/cuda_launch.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

#include <type_traits>

namespace {


__device__ __forceinline__ float load(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half *p, size_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load(const __nv_bfloat16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__half *p, size_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16 *p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }


template <typename T>
__global__ void nchw_to_nhwc(T *dst, const float *src, size_t n, size_t c, size_t h, size_t w) {
    size_t count = n * c * h * w;
    GRID_STRIDE(i, count) {
        size_t ch = i % c, r = i / c;
        size_t x = r % w;
        r /= w;
        size_t y = r % h, b = r / h;
        store(dst, i, src[((b * c + ch) * h + y) * w + x]);
    }
}

template <typename T>
__global__ void convert(T *dst, const float *src, size_t count) {
    GRID_STRIDE(i, count) store(dst, i, src[i]);
}

template <typename T>
__global__ void bias_act(T *y, const T *res, const float *bias, size_t count, size_t c, int relu) {
    GRID_STRIDE(i, count) {
        float v = load(y, i) + bias[i % c];
        if (res) v += load(res, i);
        if (relu) v = v > 0.0f ? v : 0.0f;
        store(y, i, v);
    }
}

template <typename T>
__global__ void maxpool(T *y, const T *x, size_t n, size_t c, size_t ih, size_t iw, size_t oh, size_t ow, size_t k,
                        size_t stride, size_t pad) {
    size_t count = n * oh * ow * c;
    GRID_STRIDE(i, count) {
        size_t ch = i % c, r = i / c;
        size_t ox = r % ow;
        r /= ow;
        size_t oy = r % oh, b = r / oh;
        float m = -INFINITY;
        // Window rows/columns as signed offsets: padding sits before index 0.
        long long y0 = (long long)(oy * stride) - (long long)pad, x0 = (long long)(ox * stride) - (long long)pad;
        for (size_t ky = 0; ky < k; ky++) {
            long long yy = y0 + (long long)ky;
            if (yy < 0 || yy >= (long long)ih) continue;
            for (size_t kx = 0; kx < k; kx++) {
                long long xx = x0 + (long long)kx;
                if (xx < 0 || xx >= (long long)iw) continue;
                float v = load(x, ((b * ih + (size_t)yy) * iw + (size_t)xx) * c + ch);
                m = v > m ? v : m;
            }
        }
        store(y, i, m);
    }
}

template <typename T>
__global__ void avgpool(T *y, const T *x, size_t n, size_t c, size_t ih, size_t iw, size_t oh, size_t ow, size_t k,
                        size_t stride) {
    size_t count = n * oh * ow * c;
    GRID_STRIDE(i, count) {
        size_t ch = i % c, r = i / c;
        size_t ox = r % ow;
        r /= ow;
        size_t oy = r % oh, b = r / oh;
        float s = 0.0f;
        for (size_t ky = 0; ky < k; ky++)
            for (size_t kx = 0; kx < k; kx++)
                s += load(x, ((b * ih + oy * stride + ky) * iw + ox * stride + kx) * c + ch);
        store(y, i, s / (float)(k * k));
    }
}

template <typename T>
__global__ void bn_relu(T *y, const T *x, size_t rows, size_t c, size_t x_ld, const float *scale,
                        const float *shift) {
    size_t count = rows * c;
    GRID_STRIDE(i, count) {
        size_t ch = i % c, r = i / c;
        float v = fmaf(load(x, r * x_ld + ch), scale[ch], shift[ch]);
        store(y, i, v > 0.0f ? v : 0.0f);
    }
}

template <typename T>
__global__ void copy_channels(T *dst, size_t dst_ld, const T *src, size_t src_ld, size_t rows, size_t c) {
    size_t count = rows * c;
    GRID_STRIDE(i, count) {
        size_t ch = i % c, r = i / c;
        dst[r * dst_ld + ch] = src[r * src_ld + ch];
    }
}

template <typename T>
__global__ void avgpool_to_nchw(float *y, const T *x, size_t n, size_t c, size_t ih, size_t iw, size_t oh,
                                size_t ow) {
    size_t count = n * oh * ow * c;
    GRID_STRIDE(i, count) {
        size_t ch = i % c, r = i / c;
        size_t ox = r % ow;
        r /= ow;
        size_t oy = r % oh, b = r / oh;
        size_t y0 = oy * ih / oh, y1 = ((oy + 1) * ih + oh - 1) / oh;
        size_t x0 = ox * iw / ow, x1 = ((ox + 1) * iw + ow - 1) / ow;
        double s = 0;
        for (size_t yy = y0; yy < y1; yy++)
            for (size_t xx = x0; xx < x1; xx++) s += load(x, ((b * ih + yy) * iw + xx) * c + ch);
        y[((b * c + ch) * oh + oy) * ow + ox] = (float)(s / (double)((y1 - y0) * (x1 - x0)));
    }
}

__device__ __forceinline__ uint32_t mix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return h;
}

template <typename T>
__global__ void fill_random(T *x, size_t count, uint32_t seed) {
    GRID_STRIDE(i, count) {
        uint32_t h = mix32((uint32_t)i ^ mix32(seed ^ (uint32_t)(i >> 32) * 0x9E3779B9u));
        store(x, i, (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
    }
}

template <typename T>
__global__ void max_diff(float *out, const T *a, const T *b, size_t count) {
    float md = 0.0f, mr = 0.0f;
    GRID_STRIDE(i, count) {
        float va = load(a, i), vb = load(b, i);
        float d = fabsf(va - vb);
        if (!(d <= md)) md = d;  // NaN wins
        mr = fmaxf(mr, fabsf(vb));
    }
    for (int off = 16; off > 0; off /= 2) {
        float od = __shfl_down_sync(0xffffffffu, md, off), orr = __shfl_down_sync(0xffffffffu, mr, off);
        if (!(od <= md)) md = od;
        mr = fmaxf(mr, orr);
    }
    if ((threadIdx.x & 31) == 0) {
        atomicMax((int *)&out[0], __float_as_int(md));
        atomicMax((int *)&out[1], __float_as_int(mr));
    }
}

// Runs `launch` with the storage type t maps to.
template <typename F>
int dispatch(CudaDType t, F launch) {
    switch (t) {
    case CUDA_DT_F32: launch((float *)nullptr); break;
    case CUDA_DT_F16: launch((__half *)nullptr); break;
    case CUDA_DT_BF16: launch((__nv_bfloat16 *)nullptr); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

}  // namespace

extern "C" size_t cuda_dtype_size(CudaDType t) { return t == CUDA_DT_F32 ? 4 : 2; }

extern "C" int cuda_k_nchw_to_nhwc(void *dst, CudaDType t, const float *src, size_t n, size_t c, size_t h, size_t w,
                                   cudaStream_t stream) {
    size_t count = n * c * h * w;
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        nchw_to_nhwc<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)dst, src, n, c, h, w);
    });
}

extern "C" int cuda_k_convert(void *dst, CudaDType t, const float *src, size_t count, cudaStream_t stream) {
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        convert<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)dst, src, count);
    });
}

extern "C" int cuda_k_bias_act(void *y, const void *res, const float *bias, CudaDType t, size_t count, size_t c,
                               int relu, cudaStream_t stream) {
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        bias_act<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)y, (const T *)res, bias, count, c, relu);
    });
}

extern "C" int cuda_k_maxpool(void *y, const void *x, CudaDType t, size_t n, size_t c, size_t ih, size_t iw,
                              size_t oh, size_t ow, size_t k, size_t stride, size_t pad, cudaStream_t stream) {
    size_t count = n * oh * ow * c;
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        maxpool<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)y, (const T *)x, n, c, ih, iw, oh, ow, k, stride,
                                                              pad);
    });
}

extern "C" int cuda_k_avgpool(void *y, const void *x, CudaDType t, size_t n, size_t c, size_t ih, size_t iw,
                              size_t oh, size_t ow, size_t k, size_t stride, cudaStream_t stream) {
    size_t count = n * oh * ow * c;
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        avgpool<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)y, (const T *)x, n, c, ih, iw, oh, ow, k, stride);
    });
}

extern "C" int cuda_k_bn_relu(void *y, const void *x, CudaDType t, size_t rows, size_t c, size_t x_ld,
                              const float *scale, const float *shift, cudaStream_t stream) {
    size_t count = rows * c;
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        bn_relu<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)y, (const T *)x, rows, c, x_ld, scale, shift);
    });
}

extern "C" int cuda_k_copy_channels(void *dst, size_t dst_ld, const void *src, size_t src_ld, CudaDType t,
                                    size_t rows, size_t c, cudaStream_t stream) {
    size_t count = rows * c;
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        copy_channels<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)dst, dst_ld, (const T *)src, src_ld, rows,
                                                                    c);
    });
}

extern "C" int cuda_k_avgpool_to_nchw(float *y, const void *x, CudaDType t, size_t n, size_t c, size_t ih, size_t iw,
                                      size_t oh, size_t ow, cudaStream_t stream) {
    size_t count = n * oh * ow * c;
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        avgpool_to_nchw<T><<<blocks_for(count), THREADS, 0, stream>>>(y, (const T *)x, n, c, ih, iw, oh, ow);
    });
}

extern "C" int cuda_k_fill_random(void *x, CudaDType t, size_t count, uint32_t seed, cudaStream_t stream) {
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        fill_random<T><<<blocks_for(count), THREADS, 0, stream>>>((T *)x, count, seed);
    });
}

extern "C" int cuda_k_max_diff(float *out, const void *a, const void *b, CudaDType t, size_t count,
                               cudaStream_t stream) {
    if (count == 0) return 0;
    return dispatch(t, [&](auto *tag) {
        using T = typename std::remove_pointer<decltype(tag)>::type;
        max_diff<T><<<blocks_for(count), THREADS, 0, stream>>>(out, (const T *)a, (const T *)b, count);
    });
}
