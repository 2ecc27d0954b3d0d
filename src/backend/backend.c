/*
 * backend.c — option parsing and dispatch of the backend interface and the
 * operation tables to the compiled-in implementations (cuda only in builds
 * with CTSWEEP_HAVE_CUDA): the one file that knows which backends exist.
 */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "backend/cpu/cpu_net.h"
#include "backend/cpu/cpu_ops.h"
#ifdef CTSWEEP_HAVE_CUDA
#include <mpi.h>

#include "backend/cuda/cuda_backend_ops.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_nccl.h"
#include "backend/cuda/cuda_net.h"
#endif

struct BackendNet {
    BackendKind kind;
    void *impl;
};

void backend_options_default(BackendOptions *opt) {
    memset(opt, 0, sizeof *opt);
    opt->kind = BACKEND_CPU;
    opt->precision = PRECISION_FP32;
    opt->conv_algo = CONV_ALGO_AUTO;
}

int backend_kind_parse(const char *s, BackendKind *out) {
    if (strcmp(s, "cpu") == 0) *out = BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0) *out = BACKEND_CUDA;
    else return -1;
    return 0;
}

static const char *PRECISION_NAMES[] = {"fp32", "bf16", "tf32", "fp16"};

int precision_parse(const char *s, Precision *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, PRECISION_NAMES[i]) == 0) {
            *out = (Precision)i;
            return 0;
        }
    return -1;
}

const char *precision_name(Precision p) { return (unsigned)p < 4 ? PRECISION_NAMES[p] : "?"; }

const char *conv_algo_name(ConvAlgo a) {
    return a == CONV_ALGO_DIRECT ? "direct" : a == CONV_ALGO_WINOGRAD ? "winograd" : "auto";
}

int conv_algo_parse(const char *s, ConvAlgo *out) {
    if (strcmp(s, "auto") == 0) *out = CONV_ALGO_AUTO;
    else if (strcmp(s, "direct") == 0) *out = CONV_ALGO_DIRECT;
    else if (strcmp(s, "winograd") == 0) *out = CONV_ALGO_WINOGRAD;
    else return -1;
    return 0;
}

int backend_net_create(BackendNet **out, const NNGraph *g, size_t max_batch, size_t h, size_t w,
                       const BackendOptions *opt, CtError *err) {
    *out = NULL;
    void *impl = NULL;
    switch (opt->kind) {
    case BACKEND_CPU:
        if (cpu_net_create((CpuNet **)&impl, g, max_batch, h, w, opt, err)) return -1;
        break;
    case BACKEND_CUDA:
#ifdef CTSWEEP_HAVE_CUDA
        if (cuda_net_create((CudaNet **)&impl, g, max_batch, h, w, opt, err)) return -1;
        break;
#else
        return ct_errorf(err, "backend 'cuda' is not available in this build");
#endif
    default:
        return ct_errorf(err, "unknown backend %d", (int)opt->kind);
    }
    BackendNet *net = ct_calloc(1, sizeof *net);
    net->kind = opt->kind;
    net->impl = impl;
    *out = net;
    return 0;
}

int backend_net_forward(BackendNet *net, const float *in, size_t n, float *out, CtError *err) {
#ifdef CTSWEEP_HAVE_CUDA
    if (net->kind == BACKEND_CUDA) return cuda_net_forward(net->impl, in, n, out, err);
#endif
    return cpu_net_forward(net->impl, in, n, out, err);
}

size_t backend_net_output_numel(const BackendNet *net) {
#ifdef CTSWEEP_HAVE_CUDA
    if (net->kind == BACKEND_CUDA) return cuda_net_output_numel(net->impl);
#endif
    return cpu_net_output_numel(net->impl);
}

size_t backend_net_bytes(const BackendNet *net) {
#ifdef CTSWEEP_HAVE_CUDA
    if (net->kind == BACKEND_CUDA) return cuda_net_bytes(net->impl);
#endif
    return cpu_net_bytes(net->impl);
}

void backend_net_free(BackendNet *net) {
    if (!net) return;
#ifdef CTSWEEP_HAVE_CUDA
    if (net->kind == BACKEND_CUDA) cuda_net_free(net->impl);
    else
#endif
        cpu_net_free(net->impl);
    free(net);
}

const char *backend_cpu_isa(void) { return cpu_net_isa_name(); }

// ---- operation tables ----

const BackendOps *backend_ops_get(BackendKind kind, CtError *err) {
    switch (kind) {
    case BACKEND_CPU: return cpu_ops();
    case BACKEND_CUDA:
#ifdef CTSWEEP_HAVE_CUDA
        return cuda_backend_ops(err);
#else
        ct_errorf(err, "backend 'cuda' is not available in this build (no CUDA operation table)");
        return NULL;
#endif
    }
    ct_errorf(err, "backend kind %d is unknown", (int)kind);
    return NULL;
}

// ---- devices and data-parallel groups ----

int backend_bind_gpu(int worker_index, char *name, size_t name_len, char *uuid, size_t uuid_len, CtError *err) {
#ifdef CTSWEEP_HAVE_CUDA
    return cuda_bind_local_rank(worker_index, name, name_len, uuid, uuid_len, err) < 0 ? -1 : 0;
#else
    (void)worker_index, (void)name, (void)name_len, (void)uuid, (void)uuid_len;
    return ct_errorf(err, "train.backend: cuda, but this ctsweep was built without the CUDA backend");
#endif
}

int backend_group_create(void **out, BackendKind kind, void *mpi_comm, CtError *err) {
    *out = NULL;
    if (kind != BACKEND_CUDA) return 0;
#ifdef CTSWEEP_HAVE_CUDA
    CudaNccl *nc = NULL;
    int r = cuda_nccl_create(&nc, *(MPI_Comm *)mpi_comm, 0, NULL, err);  // set-up 900 s, teardown 20 s
    *out = nc;
    return r == CUDA_NCCL_SHARED_GPU ? BACKEND_GROUP_SHARED_GPU : r;
#else
    (void)mpi_comm;
    return ct_errorf(err, "train.backend: cuda, but this ctsweep was built without the CUDA backend");
#endif
}

int backend_group_allreduce_host(void *group, void *buf, size_t n, int f64, CtError *err) {
#ifdef CTSWEEP_HAVE_CUDA
    CudaNccl *c = group;
    if (cuda_nccl_reserve(c, n, err)) return -1;
    return f64 ? cuda_nccl_allreduce_host_f64(c, buf, n, err) : cuda_nccl_allreduce_host_f32(c, buf, n, err);
#else
    (void)group, (void)buf, (void)n, (void)f64;
    return ct_errorf(err, "no GPU group in this build");
#endif
}

int backend_group_free(void *group, CtError *err) {
    if (!group) return 0;
#ifdef CTSWEEP_HAVE_CUDA
    return cuda_nccl_free(group, err);
#else
    return ct_errorf(err, "no GPU group in this build");
#endif
}
