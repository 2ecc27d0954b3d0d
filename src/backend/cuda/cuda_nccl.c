/*
 * cuda_nccl.c — a group's NCCL communicator with bounded waits (see
 * cuda_nccl.h). Every NCCL call may answer ncclInProgress on a
 * non-blocking communicator; the state is then polled until it settles, a
 * real error shows, or the timeout passes, and on the last two the
 * communicator is aborted so no rank stays stuck inside NCCL.
 */
#include "backend/cuda/cuda_nccl.h"

#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda/cuda_common.h"

struct CudaNccl {
    ncclComm_t comm;
    MPI_Comm group;
    int rank, size, device;
    GpuGroupTimeouts timeouts;
    int failed;  // a wait timed out or NCCL reported an error: the group is broken
    cudaStream_t stream;
    void *stage;  // device (max_host_elems doubles)
    size_t max_host_elems;
};

static void pause_briefly(double waited) {
    // Spin for the first millisecond (allreduces of a head are short), then
    // sleep in small steps.
    if (waited < 1e-3) return;
    struct timespec ts = {0, waited < 0.1 ? 20000 : 200000};
    nanosleep(&ts, NULL);
}

static int nccl_fail(CudaNccl *c, ncclResult_t r, const char *what, CtError *err) {
    const char *last = c && c->comm ? ncclGetLastError(c->comm) : NULL;
    return ct_errorf(err, "NCCL %s on group rank %d of %d (GPU %d) failed: %s%s%s", what, c ? c->rank : -1,
                     c ? c->size : -1, c ? c->device : -1, ncclGetErrorString(r), last && *last ? ": " : "",
                     last ? last : "");
}

static void abort_comm(CudaNccl *c) {
    if (c->comm) (void)ncclCommAbort(c->comm);
    c->comm = NULL;
    c->failed = 1;
}

// Waits at most timeout_s while the communicator reports ncclInProgress.
static int wait_settled(CudaNccl *c, ncclResult_t r, double timeout_s, const char *what, CtError *err) {
    double t0 = ct_now();
    while (r == ncclInProgress) {
        double waited = ct_now() - t0;
        if (waited > timeout_s) {
            abort_comm(c);
            return ct_errorf(err, "NCCL %s on group rank %d of %d did not complete within %.0f s (a peer rank may "
                             "have died or stopped); communicator aborted", what, c->rank, c->size, timeout_s);
        }
        pause_briefly(waited);
        if (ncclCommGetAsyncError(c->comm, &r) != ncclSuccess) r = ncclInternalError;
    }
    if (r != ncclSuccess) {
        nccl_fail(c, r, what, err);
        abort_comm(c);
        return -1;
    }
    return 0;
}

// Waits at most timeout_s for the stream, watching the communicator for
// asynchronous errors.
static int wait_stream(CudaNccl *c, double timeout_s, const char *what, CtError *err) {
    double t0 = ct_now();
    for (;;) {
        cudaError_t q = cudaStreamQuery(c->stream);
        if (q == cudaSuccess) return 0;
        if (q != cudaErrorNotReady) {
            cuda_fail(err, q, "cudaStreamQuery", what);
            abort_comm(c);
            return -1;
        }
        ncclResult_t r = ncclSuccess;
        if (ncclCommGetAsyncError(c->comm, &r) != ncclSuccess || (r != ncclSuccess && r != ncclInProgress)) {
            nccl_fail(c, r == ncclSuccess ? ncclInternalError : r, what, err);
            abort_comm(c);
            return -1;
        }
        double waited = ct_now() - t0;
        if (waited > timeout_s) {
            abort_comm(c);
            return ct_errorf(err, "NCCL %s on group rank %d of %d did not finish within %.0f s (a peer rank may have "
                             "died or stopped); communicator aborted", what, c->rank, c->size, timeout_s);
        }
        pause_briefly(waited);
    }
}

// Whether every rank of the group succeeded; MPI carries the answer.
static int group_agrees(MPI_Comm group, int ok) {
    int all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, group) != MPI_SUCCESS) return 0;
    return all;
}

static double collective_timeout(const CudaNccl *c) {
    return gpu_group_timeout(&c->timeouts, GPU_GROUP_COLLECTIVE, 0);
}

int cuda_nccl_create(CudaNccl **out, MPI_Comm group, size_t max_host_elems, const GpuGroupTimeouts *timeouts,
                     CtError *err) {
    *out = NULL;
    CudaNccl *c = ct_calloc(1, sizeof *c);
    c->group = group;
    gpu_group_timeouts_default(&c->timeouts);
    if (timeouts) c->timeouts = *timeouts;
    c->max_host_elems = max_host_elems;
    MPI_Comm_rank(group, &c->rank);
    MPI_Comm_size(group, &c->size);
    int ok = 1;
    unsigned char uuid[16] = {0};
    if (cudaGetDevice(&c->device) != cudaSuccess) ok = 0;
    struct cudaDeviceProp prop;
    if (ok && cudaGetDeviceProperties(&prop, c->device) == cudaSuccess) memcpy(uuid, prop.uuid.bytes, 16);
    else ok = 0;
    if (!group_agrees(group, ok)) {
        free(c);
        return ct_errorf(err, "NCCL group: a rank has no usable GPU (bind one with cuda_bind_local_rank first)");
    }
    // NCCL refuses two ranks on one device; find that out here, the same way on every rank.
    unsigned char *all = ct_malloc_array((size_t)c->size, 16);
    MPI_Allgather(uuid, 16, MPI_BYTE, all, 16, MPI_BYTE, group);
    for (int i = 0; i < c->size; i++)
        for (int j = i + 1; j < c->size; j++)
            if (memcmp(all + 16 * (size_t)i, all + 16 * (size_t)j, 16) == 0) {
                free(all);
                free(c);
                ct_errorf(err, "NCCL group: ranks %d and %d share one GPU; NCCL needs a GPU per rank (reducing with "
                          "MPI instead)", i, j);
                return CUDA_NCCL_SHARED_GPU;
            }
    free(all);

    struct {
        int ok;
        ncclUniqueId id;
    } hello;
    memset(&hello, 0, sizeof hello);
    if (c->rank == 0) hello.ok = ncclGetUniqueId(&hello.id) == ncclSuccess;
    MPI_Bcast(&hello, (int)sizeof hello, MPI_BYTE, 0, group);
    if (!hello.ok) {
        free(c);
        return ct_errorf(err, "NCCL group: ncclGetUniqueId failed on group rank 0");
    }
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&c->comm, c->size, hello.id, c->rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) {
        nccl_fail(c, r, "ncclCommInitRankConfig", err);
        abort_comm(c);
        ok = 0;
    } else {
        ok = wait_settled(c, r, gpu_group_timeout(&c->timeouts, GPU_GROUP_SETUP, 0), "communicator initialisation",
                          err) == 0;
    }
    if (ok && cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess) {
        ct_errorf(err, "NCCL group: cannot create a stream on GPU %d", c->device);
        ok = 0;
    }
    if (ok && max_host_elems && cuda_alloc(&c->stage, max_host_elems * sizeof(double), "NCCL staging", NULL, err))
        ok = 0;
    if (!group_agrees(group, ok)) {
        if (ok) ct_errorf(err, "NCCL group: another rank of the group failed to set up its communicator");
        abort_comm(c);
        cuda_free(c->stage);
        if (c->stream) (void)cudaStreamDestroy(c->stream);
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int cuda_nccl_allreduce(CudaNccl *c, const CudaNcclBuf *bufs, size_t n_bufs, CtError *err) {
    if (!c->comm) return ct_errorf(err, "NCCL allreduce on group rank %d: the communicator was aborted", c->rank);
    ncclResult_t r = ncclGroupStart();
    if (r != ncclSuccess) return nccl_fail(c, r, "ncclGroupStart", err);
    for (size_t i = 0; i < n_bufs; i++) {
        if (bufs[i].count == 0) continue;
        r = ncclAllReduce(bufs[i].ptr, bufs[i].ptr, bufs[i].count, bufs[i].f64 ? ncclFloat64 : ncclFloat32, ncclSum,
                          c->comm, c->stream);
        if (r != ncclSuccess && r != ncclInProgress) {
            (void)ncclGroupEnd();
            nccl_fail(c, r, "ncclAllReduce", err);
            abort_comm(c);
            return -1;
        }
    }
    r = ncclGroupEnd();
    if (r != ncclSuccess && r != ncclInProgress) {
        nccl_fail(c, r, "ncclGroupEnd", err);
        abort_comm(c);
        return -1;
    }
    if (wait_settled(c, r, collective_timeout(c), "allreduce launch", err)) return -1;
    return wait_stream(c, collective_timeout(c), "allreduce", err);
}

static int allreduce_host(CudaNccl *c, void *buf, size_t n, int f64, CtError *err) {
    if (n == 0) return 0;
    if (n > c->max_host_elems)
        return ct_errorf(err, "NCCL allreduce of %zu values: the group was set up for %zu", n, c->max_host_elems);
    size_t bytes = n * (f64 ? sizeof(double) : sizeof(float));
    CUDA_RET(cudaMemcpyAsync(c->stage, buf, bytes, cudaMemcpyHostToDevice, c->stream), "NCCL allreduce staging");
    CudaNcclBuf b = {c->stage, n, f64};
    if (cuda_nccl_allreduce(c, &b, 1, err)) return -1;
    CUDA_RET(cudaMemcpyAsync(buf, c->stage, bytes, cudaMemcpyDeviceToHost, c->stream), "NCCL allreduce staging");
    return wait_stream(c, collective_timeout(c), "allreduce copy-back", err);
}

int cuda_nccl_allreduce_host_f32(CudaNccl *c, float *buf, size_t n, CtError *err) {
    return allreduce_host(c, buf, n, 0, err);
}

int cuda_nccl_allreduce_host_f64(CudaNccl *c, double *buf, size_t n, CtError *err) {
    return allreduce_host(c, buf, n, 1, err);
}

int cuda_nccl_reserve(CudaNccl *c, size_t n, CtError *err) {
    if (n <= c->max_host_elems) return 0;
    if (n > ((size_t)-1) / sizeof(double)) return ct_errorf(err, "NCCL staging for %zu values overflows", n);
    CUDA_RET(cudaStreamSynchronize(c->stream), "NCCL staging");
    cuda_free(c->stage);
    c->stage = NULL;
    c->max_host_elems = 0;
    if (cuda_alloc(&c->stage, n * sizeof(double), "NCCL staging", NULL, err)) return -1;
    c->max_host_elems = n;
    return 0;
}

int cuda_nccl_rank(const CudaNccl *c) { return c->rank; }

int cuda_nccl_size(const CudaNccl *c) { return c->size; }

int cuda_nccl_free(CudaNccl *c, CtError *err) {
    if (!c) return 0;
    int rc = 0;
    if (c->comm) {
        // A peer that failed leaves an asynchronous error here; then the
        // communicator is aborted at once instead of waiting on the peer.
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(c->comm, &async) != ncclSuccess ||
            (async != ncclSuccess && async != ncclInProgress))
            c->failed = 1;
        double limit = gpu_group_timeout(&c->timeouts, GPU_GROUP_TEARDOWN, c->failed);
        if (limit <= 0) {
            abort_comm(c);
            rc = ct_errorf(err, "NCCL teardown on group rank %d of %d: the group had failed (%s); communicator "
                           "aborted without waiting", c->rank, c->size, ncclGetErrorString(async));
        } else {
            if (c->stream && wait_stream(c, limit, "teardown", err)) rc = -1;  // aborted on failure
            ncclResult_t r = c->comm ? ncclCommFinalize(c->comm) : ncclSuccess;
            if (c->comm && r != ncclSuccess && r != ncclInProgress) {
                nccl_fail(c, r, "ncclCommFinalize", err);
                abort_comm(c);
                rc = -1;
            } else if (c->comm && wait_settled(c, r, limit, "communicator teardown", err)) {
                rc = -1;  // aborted by wait_settled
            }
        }
        if (c->comm) {
            ncclResult_t r = ncclCommDestroy(c->comm);
            c->comm = NULL;
            if (r != ncclSuccess && r != ncclInProgress) rc = nccl_fail(c, r, "ncclCommDestroy", err);
        }
    }
    cuda_free(c->stage);
    if (c->stream) (void)cudaStreamDestroy(c->stream);
    free(c);
    return rc;
}
