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
#include "backend/gpu_rules.h"

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

static GpuAlgoClass algo_class(cudnnConvolutionFwdAlgo_t a) {
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return GPU_ALGO_WINOGRAD;
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return GPU_ALGO_IMPLICIT_GEMM;
    default: return GPU_ALGO_OTHER;
    }
}

// The layer as the refusals describe it.
static void describe(char *out, size_t len, const CudaConvKey *key) {
    snprintf(out, len, "%dx%d stride %d, %d->%d channels at %dx%d, %s", key->r, key->r, key->stride, key->c, key->k,
             key->h, key->w, precision_name((Precision)key->precision));
}

// One line saying why no candidate fits.
static int refuse(CtError *err, const char *layer, const CudaConvKey *key, GpuPickResult why, size_t min_ws,
                  size_t ws_cap, const cudnnConvolutionFwdAlgoPerf_t *perf, int got) {
    char what[128];
    describe(what, sizeof what, key);
    switch (why) {
    case GPU_PICK_NO_WINOGRAD:
        return ct_errorf(err, "%s: conv_algo: winograd, but cuDNN offers no Winograd algorithm for this layer (%s); "
                         "use conv_algo: auto or direct", layer, what);
    case GPU_PICK_WINOGRAD_WORKSPACE:
        return ct_errorf(err, "%s: conv_algo: winograd: cuDNN's Winograd algorithm for this layer (%s) needs "
                         "%.0f MiB of workspace, only %.0f MiB is free; use a smaller batch or conv_algo: auto",
                         layer, what, min_ws / 1048576.0, ws_cap / 1048576.0);
    case GPU_PICK_WINOGRAD_NONDET:
        return ct_errorf(err, "%s: conv_algo: winograd: cuDNN's Winograd algorithms for this layer (%s) are not "
                         "deterministic; use conv_algo: auto or leave deterministic mode", layer, what);
    default: break;
    }
    char seen[512] = "";
    size_t len = 0;
    for (int i = 0; i < got && len + 64 < sizeof seen; i++)
        len += (size_t)snprintf(seen + len, sizeof seen - len, "%s%s(status %d, math %d, det %d, %zu B)",
                                i ? ", " : "", cuda_conv_algo_name(perf[i].algo), (int)perf[i].status,
                                (int)perf[i].mathType, (int)perf[i].determinism, perf[i].memory);
    const char *w = why == GPU_PICK_NO_IMPLICIT_GEMM   ? "no implicit-GEMM algorithm for this convolution"
                    : why == GPU_PICK_NO_DETERMINISTIC ? "no deterministic algorithm that fits"
                                                       : "no algorithm that fits";
    return ct_errorf(err, "%s: cuDNN has %s (%s, workspace cap %.0f MiB; candidates: %s)", layer, w, what,
                     ws_cap / 1048576.0, got ? seen : "none");
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
    GpuConvCandidate *cands = ct_calloc(got > 0 ? (size_t)got : 1, sizeof *cands);
    for (int i = 0; i < got; i++)
        cands[i] = (GpuConvCandidate){algo_class(perf[i].algo), perf[i].status == CUDNN_STATUS_SUCCESS,
                                      perf[i].mathType == CUDNN_FMA_MATH, perf[i].determinism == CUDNN_DETERMINISTIC,
                                      perf[i].memory};
    GpuConvWant want = {key->conv_algo, key->deterministic, key->precision == PRECISION_FP32,
                        key->r == 3 && key->stride == 1, ws_cap};
    int forced_fma = 0;
    GpuPickResult why;
    size_t min_ws = 0;
    int pick = gpu_conv_pick(cands, got, &want, &forced_fma, &why, &min_ws);
    free(cands);
    if (pick < 0) {
        refuse(err, layer, key, why, min_ws, ws_cap, perf, got);
        free(perf);
        return -1;
    }
    out->algo = perf[pick].algo;
    out->math = forced_fma ? CUDNN_FMA_MATH : perf[pick].mathType;
    out->ms = measured ? perf[pick].time : -1.0f;
    free(perf);
    CUDNN_RET(cudnnSetConvolutionMathType(cd, out->math), layer);
    // The candidate's memory is for its math type; ask again for the exact
    // size with the descriptor as it will run.
    size_t need = 0;
    cudnnStatus_t ws_st = cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, out->algo, &need);
    if (ws_st != CUDNN_STATUS_SUCCESS && key->conv_algo == CONV_ALGO_WINOGRAD &&
        algo_class(out->algo) == GPU_ALGO_WINOGRAD) {
        // Winograd listed for another math type, refused with FMA forced.
        char what[128];
        describe(what, sizeof what, key);
        return ct_errorf(err, "%s: conv_algo: winograd, but cuDNN offers no Winograd algorithm for this layer (%s) "
                         "in that precision (%s); use conv_algo: auto or direct", layer, what,
                         cudnnGetErrorString(ws_st));
    }
    if (ws_st != CUDNN_STATUS_SUCCESS)
        return cudnn_fail(err, (int)ws_st, "cudnnGetConvolutionForwardWorkspaceSize", layer);
    if (need > ws_cap)
        return ct_errorf(err, "%s: cuDNN algorithm %s needs %.1f MiB of workspace, more than the %.1f MiB available",
                         layer, cuda_conv_algo_name(out->algo), need / 1048576.0, ws_cap / 1048576.0);
    out->ws_bytes = need;
    cache_put(key, out);
    return 0;
}
