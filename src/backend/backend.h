/*
 * backend.h — the one small interface between the network description and
 * the hardware. A backend compiles a frozen backbone graph for a maximum
 * batch and an input size into a plan it runs many times. Training's
 * operations (backward passes, loss, optimiser step, allreduce) are the
 * backend's operation table, backend_ops.h.
 *
 * Implementations: `cpu` (oneDNN, the reference) and `cuda` (cuDNN, cuBLAS).
 */
#ifndef CTSWEEP_BACKEND_H
#define CTSWEEP_BACKEND_H

#include <stddef.h>

#include "nn/graph.h"
#include "util/util.h"

typedef enum { BACKEND_CPU = 0, BACKEND_CUDA = 1 } BackendKind;
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16, PRECISION_TF32, PRECISION_FP16 } Precision;
typedef enum {
    CONV_ALGO_AUTO = 0,  // fastest available that keeps fp32 accuracy
    CONV_ALGO_DIRECT,    // the library's direct convolution only
    CONV_ALGO_WINOGRAD,  // Winograd for every 3x3 stride-1 convolution
} ConvAlgo;

typedef struct {
    BackendKind kind;
    Precision precision;
    ConvAlgo conv_algo;
    int threads;  // 0: leave the runtime's default
    int verbose;  // print the plan (per-layer implementation, memory)
    int deterministic;  // cuda: only deterministic algorithms, chosen without timing (0: fastest)
} BackendOptions;

void backend_options_default(BackendOptions *opt);
int backend_kind_parse(const char *s, BackendKind *out);
int precision_parse(const char *s, Precision *out);
const char *precision_name(Precision p);
int conv_algo_parse(const char *s, ConvAlgo *out);
const char *conv_algo_name(ConvAlgo a);

typedef struct BackendNet BackendNet;

// Compiles g for inputs (n <= max_batch, 3, h, w). The graph's weights are
// copied (reordered) into the plan; g may be freed afterwards.
int backend_net_create(BackendNet **out, const NNGraph *g, size_t max_batch, size_t h, size_t w,
                       const BackendOptions *opt, CtError *err);
// in: (n, 3, h, w) float32; out: (n, output_numel) float32, the graph's last
// layer flattened in NCHW order. Any n from 1 to max_batch.
int backend_net_forward(BackendNet *net, const float *in, size_t n, float *out, CtError *err);
size_t backend_net_output_numel(const BackendNet *net);
// Bytes of weights, activations and workspace the plan holds.
size_t backend_net_bytes(const BackendNet *net);
void backend_net_free(BackendNet *net);
// The instruction set the CPU backend's kernels use here ("avx2",
// "avx512_core_bf16", ...), as oneDNN reports it after ONEDNN_MAX_CPU_ISA.
const char *backend_cpu_isa(void);

// ---- devices and data-parallel groups ----

// Binds this process to the GPU of its local worker index (cuda); fills the
// device's name and UUID. -1 with err, also when this build has no CUDA.
int backend_bind_gpu(int worker_index, char *name, size_t name_len, char *uuid, size_t uuid_len, CtError *err);
// The communicator a group of GPU ranks sums over (NCCL, over the MPI
// communicator *mpi_comm): *out is what the CUDA operation table's
// allreduce_sum takes. 0 (with *out NULL for the CPU, which sums with MPI
// on *mpi_comm itself), BACKEND_GROUP_SHARED_GPU when the group's ranks
// share a GPU (NCCL cannot; err says so, *out NULL), or -1 with err.
#define BACKEND_GROUP_SHARED_GPU 1
int backend_group_create(void **out, BackendKind kind, void *mpi_comm, CtError *err);
// Sums host values over the group through its communicator (f64: 1 for double).
int backend_group_allreduce_host(void *group, void *buf, size_t n, int f64, CtError *err);
int backend_group_free(void *group, CtError *err);

#endif
