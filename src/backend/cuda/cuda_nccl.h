/*
 * cuda_nccl.h — allreduce over the GPUs of one worker group (the ranks of
 * ranks_per_trial that train one trial data-parallel) through NCCL.
 *
 * One communicator per group, created collectively from an MPI
 * communicator (the unique id is broadcast over MPI). The communicator is
 * non-blocking and every wait polls ncclCommGetAsyncError with a timeout:
 * a peer that died or stopped turns into an error that names the group
 * rank and the operation, after the communicator is aborted, never into a
 * hang. Sums of two ranks are order-independent, so a group of two gives
 * the same bits as MPI_Allreduce.
 */
#ifndef CTSWEEP_BACKEND_CUDA_NCCL_H
#define CTSWEEP_BACKEND_CUDA_NCCL_H

#include <mpi.h>
#include <stddef.h>

#include "backend/gpu_rules.h"
#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

// cuda_nccl_create's answer when the group's ranks share a GPU: NCCL needs
// one device per rank, so the caller keeps reducing with MPI.
#define CUDA_NCCL_SHARED_GPU 1

typedef struct CudaNccl CudaNccl;

typedef struct {
    void *ptr;     // device memory, reduced in place
    size_t count;  // elements
    int f64;       // 1: double, 0: float
} CudaNcclBuf;

// Collective over `group`: every rank calls it, after binding its GPU
// (cuda_bind_local_rank). max_host_elems sizes the device staging buffer of
// the host-memory variants below (0 if unused). timeouts (NULL: the
// defaults of gpu_group_timeouts_default) bound the waits: set-up its own,
// longer one, each allreduce another, and teardown a short one (none once
// the group has failed; see gpu_group_timeout). Returns 0, -1 with err
// (on every rank when any failed), or CUDA_NCCL_SHARED_GPU with the reason
// in err (the same answer on every rank).
int cuda_nccl_create(CudaNccl **out, MPI_Comm group, size_t max_host_elems, const GpuGroupTimeouts *timeouts,
                     CtError *err);
// Sums the buffers over the group in place, grouped into one NCCL launch
// on the communicator's stream, and waits for the result.
int cuda_nccl_allreduce(CudaNccl *c, const CudaNcclBuf *bufs, size_t n_bufs, CtError *err);
// The same for host memory (n <= max_host_elems): copied through the device.
int cuda_nccl_allreduce_host_f32(CudaNccl *c, float *buf, size_t n, CtError *err);
int cuda_nccl_allreduce_host_f64(CudaNccl *c, double *buf, size_t n, CtError *err);
// Grows the staging buffer of the host variants to n values (before a
// trial's step loop, so nothing is allocated inside it). Local, not collective.
int cuda_nccl_reserve(CudaNccl *c, size_t n, CtError *err);
// Rank in the group and group size.
int cuda_nccl_rank(const CudaNccl *c);
int cuda_nccl_size(const CudaNccl *c);
// Collective teardown (finalize, then destroy; abort if that fails or times
// out, within the short teardown timeout; abort at once when a collective
// failed or NCCL reports an error from a peer). Returns 0, or -1 with err
// when the communicator had to be aborted after a wait.
int cuda_nccl_free(CudaNccl *c, CtError *err);

#ifdef __cplusplus
}
#endif

#endif
