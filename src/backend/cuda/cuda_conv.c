/*
 * cuda_conv.c — forward-algorithm choice for cuDNN convolutions and the
 * process-wide cache of choices (see cuda_conv.h). The legacy convolution
 * API is deprecated in cuDNN 9 but still present and supported; it is used
 * because it is small, C-callable and enough for fixed-shape inference.
 */
#include "backend/cuda/cuda_conv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.h"

#define CACHE_MAX 512

static struct {
    CudaConvKey key;
    CudaConvChoice choice;
} g_cache[CACHE_MAX];
static size_t g_cache_n;
static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;

cudnnMathType_t cuda_conv_math_for(Precision p) {
    switch (p) {
    case PRECISION_FP32: return CUDNN_FMA_MATH;
    case PRECISION_TF32: return CUDNN_DEFAULT_MATH;
    default: return CUDNN_TENSOR_OP_MATH;
    }
}

const char *cuda_conv_algo_name(cudnnConvolutionFwdAlgo_t a) {
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "implicit_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "implicit_precomp_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "direct";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "fft";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "fft_tiling";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "winograd";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "winograd_nonfused";
    default: return "?";
    }
}

static int key_equal(const CudaConvKey *a, const CudaConvKey *b) { return memcmp(a, b, sizeof *a) == 0; }

static int cache_get(const CudaConvKey *key, size_t ws_cap, CudaConvChoice *out) {
    int found = 0;
    pthread_mutex_lock(&g_cache_mu);
    for (size_t i = 0; i < g_cache_n; i++)
        if (key_equal(&g_cache[i].key, key) && g_cache[i].choice.ws_bytes <= ws_cap) {
            *out = g_cache[i].choice;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&g_cache_mu);
    return found;
}

static void cache_put(const CudaConvKey *key, const CudaConvChoice *c) {
    pthread_mutex_lock(&g_cache_mu);
    size_t i = 0;
    while (i < g_cache_n && !key_equal(&g_cache[i].key, key)) i++;
    if (i < CACHE_MAX) {
        g_cache[i].key = *key;
        g_cache[i].choice = *c;
        if (i == g_cache_n) g_cache_n++;
    }
    pthread_mutex_unlock(&g_cache_mu);
}

static int is_winograd(cudnnConvolutionFwdAlgo_t a) {
    return a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}

// Whether a candidate may be used for this key. strict_math: for fp32, only
// candidates cuDNN reports as FMA-only.
static int acceptable(const CudaConvKey *key, const cudnnConvolutionFwdAlgoPerf_t *p, size_t ws_cap,
                      int strict_math) {
    if (p->status != CUDNN_STATUS_SUCCESS || p->memory > ws_cap) return 0;
    if (key->deterministic && p->determinism != CUDNN_DETERMINISTIC) return 0;
    // fp32 must not run TF32 tensor-core kernels, whatever the candidate list offers.
    if (strict_math && key->precision == PRECISION_FP32 && p->mathType != CUDNN_FMA_MATH) return 0;
    int wino_layer = key->r == 3 && key->stride == 1;
    if (key->conv_algo == CONV_ALGO_DIRECT)
        return p->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
               p->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    if (key->conv_algo == CONV_ALGO_WINOGRAD && wino_layer) return is_winograd(p->algo);
    return 1;
}

int cuda_conv_choose(cudnnHandle_t h, const CudaConvKey *key, cudnnTensorDescriptor_t xd, const void *x,
                     cudnnFilterDescriptor_t wd, const void *w, cudnnConvolutionDescriptor_t cd,
                     cudnnTensorDescriptor_t yd, void *y, void *ws, size_t ws_cap, CudaConvChoice *out,
                     int *cached, const char *layer, CtError *err) {
    *cached = cache_get(key, ws_cap, out);
    if (*cached) {
        CUDNN_RET(cudnnSetConvolutionMathType(cd, out->math), layer);
        return 0;
    }
    int max_count = 0;
    CUDNN_RET(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count), layer);
    if (max_count < 1) max_count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    max_count *= 4;  // one algorithm may come back once per math type
    cudnnConvolutionFwdAlgoPerf_t *perf = ct_calloc((size_t)max_count, sizeof *perf);
    int got = 0, measured = 0;
    cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED;
    if (!key->deterministic) {
        st = cudnnFindConvolutionForwardAlgorithmEx(h, xd, x, wd, w, cd, yd, y, max_count, &got, perf, ws, ws_cap);
        measured = st == CUDNN_STATUS_SUCCESS;
    }
    if (st != CUDNN_STATUS_SUCCESS) {
        // Deterministic mode, or Find failed (it can run out of memory where
        // the heuristics would not): ask the heuristics.
        got = 0;
        st = cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, max_count, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS) {
            free(perf);
            return cudnn_fail(err, (int)st, "cudnnGetConvolutionForwardAlgorithm_v7", layer);
        }
    }
    int pick = -1, forced_fma = 0;
    for (int i = 0; i < got && pick < 0; i++)
        if (acceptable(key, &perf[i], ws_cap, 1)) pick = i;
    // Should a cuDNN version label its fp32 candidates with another math type,
    // take the best one anyway and run it with the descriptor forced to FMA
    // (the workspace query below fails if the algorithm cannot do that).
    for (int i = 0; i < got && pick < 0 && key->precision == PRECISION_FP32; i++)
        if (acceptable(key, &perf[i], ws_cap, 0)) pick = i, forced_fma = 1;
    if (pick < 0) {
        char seen[512] = "";
        size_t len = 0;
        for (int i = 0; i < got && len + 64 < sizeof seen; i++)
            len += (size_t)snprintf(seen + len, sizeof seen - len, "%s%s(status %d, math %d, det %d, %zu B)",
                                    i ? ", " : "", cuda_conv_algo_name(perf[i].algo), (int)perf[i].status,
                                    (int)perf[i].mathType, (int)perf[i].determinism, perf[i].memory);
        free(perf);
        const char *why = key->conv_algo == CONV_ALGO_WINOGRAD && key->r == 3 && key->stride == 1
                              ? "no Winograd algorithm for this convolution"
                          : key->conv_algo == CONV_ALGO_DIRECT ? "no implicit-GEMM algorithm for this convolution"
                          : key->deterministic                 ? "no deterministic algorithm fits"
                                                               : "no algorithm fits";
        return ct_errorf(err, "%s: cuDNN has %s (precision %s, workspace cap %.0f MiB; candidates: %s)", layer, why,
                         precision_name((Precision)key->precision), ws_cap / 1048576.0, got ? seen : "none");
    }
    out->algo = perf[pick].algo;
    out->math = forced_fma ? CUDNN_FMA_MATH : perf[pick].mathType;
    out->ms = measured ? perf[pick].time : -1.0f;
    free(perf);
    CUDNN_RET(cudnnSetConvolutionMathType(cd, out->math), layer);
    // The candidate's memory is for its math type; ask again for the exact
    // size with the descriptor as it will run.
    size_t need = 0;
    CUDNN_RET(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, out->algo, &need), layer);
    if (need > ws_cap)
        return ct_errorf(err, "%s: cuDNN algorithm %s needs %.1f MiB of workspace, more than the %.1f MiB available",
                         layer, cuda_conv_algo_name(out->algo), need / 1048576.0, ws_cap / 1048576.0);
    out->ws_bytes = need;
    cache_put(key, out);
    return 0;
}
