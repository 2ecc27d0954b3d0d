/*
 * gpu_rules.h — the CUDA backend's planning rules that are arithmetic
 * alone: how large a batch piece cuDNN's legacy API can take, which
 * workspace the algorithm search and the run get, which of cuDNN's
 * candidate algorithms a layer may use (and why none, in words), and how
 * long a GPU group waits at set-up, at each collective and at teardown.
 *
 * They live outside src/backend/cuda/ so that every build compiles them and
 * the CPU-only unit tests (tests/unit/test_gpu_rules.c) check them; the
 * CUDA files only translate cuDNN's and NCCL's types into these.
 */
#ifndef CTSWEEP_BACKEND_GPU_RULES_H
#define CTSWEEP_BACKEND_GPU_RULES_H

#include <stddef.h>

#include "nn/graph.h"
#include "util/util.h"

// ---- cuDNN's element limit ----

// The legacy cuDNN API (cudnnSetTensor4dDescriptor and the convolutions
// that use its descriptors) takes int dimensions and refuses a tensor of
// 2^31 elements or more.
#define GPU_LEGACY_MAX_ELEMS ((size_t)2147483647)

// The most elements one image contributes to any tensor of g's plan for
// (3, h, w) input (the input itself and every layer's output; shapes from
// graph_infer_shapes). *layer (may be NULL) names the tensor.
size_t gpu_graph_image_elems(const NNGraph *g, const NNShape *shapes, size_t h, size_t w, const char **layer);

// The batch a plan piece runs so that no tensor exceeds `limit` elements:
// min(max_batch, limit / per_image); 0 when a single image exceeds it.
size_t gpu_batch_piece(size_t max_batch, size_t per_image, size_t limit);

// ---- workspace ----

// The workspace offered to cuDNN's algorithm search: a quarter of the free
// device memory, at most 2 GiB.
size_t gpu_search_workspace(size_t free_bytes);

// The workspace the plan runs with: the largest need of the chosen
// algorithms (needs[i] of convolution i). The fusion check at planning runs
// with exactly this size, after the search workspace is given back, so a
// fused call accepted there cannot need more at run time.
size_t gpu_run_workspace(const size_t *needs, size_t n);

// ---- algorithm choice ----

typedef enum { GPU_ALGO_OTHER = 0, GPU_ALGO_IMPLICIT_GEMM, GPU_ALGO_WINOGRAD } GpuAlgoClass;

// One of cuDNN's candidates for a convolution, as Find or the heuristics
// report it.
typedef struct {
    GpuAlgoClass cls;
    int ok;             // status CUDNN_STATUS_SUCCESS: cuDNN offers it for this layer
    int fma;            // math type CUDNN_FMA_MATH (no TF32 tensor-core rounding)
    int deterministic;  // CUDNN_DETERMINISTIC
    size_t ws_bytes;
} GpuConvCandidate;

typedef struct {
    int conv_algo;      // ConvAlgo
    int deterministic;  // only deterministic algorithms
    int fp32;           // precision fp32: FMA math only
    int winograd_layer; // a 3x3 stride-1 convolution, the layers conv_algo winograd applies to
    size_t ws_cap;      // workspace available
} GpuConvWant;

typedef enum {
    GPU_PICK_OK = 0,
    GPU_PICK_NO_WINOGRAD,        // conv_algo winograd: cuDNN offers no Winograd algorithm here
    GPU_PICK_WINOGRAD_WORKSPACE, // ... offers one, but it needs more workspace than there is
    GPU_PICK_WINOGRAD_NONDET,    // ... offers one, but not a deterministic one
    GPU_PICK_NO_IMPLICIT_GEMM,   // conv_algo direct: no implicit-GEMM algorithm
    GPU_PICK_NO_DETERMINISTIC,   // deterministic mode: none fits
    GPU_PICK_NONE,               // nothing fits the workspace
} GpuPickResult;

// Picks the first acceptable candidate (cuDNN lists the fastest first):
// returns its index, or -1 with *why saying what is missing. For fp32 a
// candidate labelled with another math type is taken only when no FMA one
// is acceptable, with *forced_fma set (the caller runs it with the
// descriptor forced to FMA math). *min_ws: the smallest workspace of an
// offered candidate of the requested class (for the refusal's wording).
int gpu_conv_pick(const GpuConvCandidate *c, int n, const GpuConvWant *want, int *forced_fma, GpuPickResult *why,
                  size_t *min_ws);

// ---- group timeouts ----

typedef enum { GPU_GROUP_SETUP = 0, GPU_GROUP_COLLECTIVE, GPU_GROUP_TEARDOWN } GpuGroupPhase;

typedef struct {
    double setup_s;       // communicator creation: every rank must arrive (slow starts on clusters)
    double collective_s;  // one allreduce: the ranks run in step, but a peer may still be computing
    double teardown_s;    // finalize: healthy peers answer in milliseconds
} GpuGroupTimeouts;

// setup 900 s, collective 900 s, teardown 20 s.
void gpu_group_timeouts_default(GpuGroupTimeouts *t);

// The wait for a phase. Unset (<= 0) fields take the defaults; teardown
// waits at most min(teardown_s, collective_s), and not at all once the
// group has failed (a peer died or a collective timed out: the
// communicator is aborted instead, so no rank waits on a peer that will
// never answer).
double gpu_group_timeout(const GpuGroupTimeouts *t, GpuGroupPhase phase, int group_failed);

#endif
