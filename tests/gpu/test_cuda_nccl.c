/*
 * test_cuda_nccl.c — the group allreduce under mpirun -n 2: with one GPU
 * per rank, sums of float and double buffers (device and host memory) equal
 * MPI_Allreduce's bit for bit, and a rank that stops answering makes its
 * peer's allreduce fail within the timeout instead of hanging; with a
 * single GPU, both ranks learn that they share it (and would reduce with
 * MPI) and nothing else is run.
 *
 * Timeouts: communicator set-up gets 120 s (NCCL's first initialisation on
 * a machine loads its plugins and probes the topology, which can take far
 * longer than a collective), each allreduce 5 s, teardown 5 s; the silent
 * peer's partner must come out of teardown in seconds, not after set-up's
 * 120 s.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_nccl.h"

#include "gpu_test.h"

static int all_ok(int ok) {
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char why[256];
    int ndev = cuda_device_count(why, sizeof why);
    int skip = 0;
    if (size != 2) {
        if (rank == 0) printf("SKIP: run under mpirun -n 2 (got %d rank(s))\n", size);
        skip = 1;
    } else if (ndev == 0) {
        if (rank == 0) printf("SKIP: no CUDA device visible (%s)\n", why);
        skip = 1;
    }
    if (skip) {
        MPI_Finalize();
        return GPU_SKIP;
    }
    CtError err = {{0}};
    char name[256] = "", uuid[64] = "";
    int dev = cuda_bind_local_rank(rank, name, sizeof name, uuid, sizeof uuid, &err);
    CHECK(dev >= 0, "rank %d: binding: %s", rank, err.msg);
    printf("rank %d: GPU %d %s %s\n", rank, dev, name, uuid);
    CudaNccl *c = NULL;
    const size_t n = 1000003;
    const GpuGroupTimeouts timeouts = {120.0, 5.0, 5.0};
    int rc = cuda_nccl_create(&c, MPI_COMM_WORLD, n, &timeouts, &err);
    if (ndev < 2) {
        CHECK(rc == CUDA_NCCL_SHARED_GPU, "rank %d: one GPU, but cuda_nccl_create returned %d (%s)", rank, rc,
              err.msg);
        if (rc == CUDA_NCCL_SHARED_GPU && rank == 0) printf("ok   one GPU for two ranks detected: %s\n", err.msg);
        int ok = all_ok(g_fail == 0);
        if (rank == 0) printf("%d passed, %d failed (NCCL allreduce needs 2 GPUs: not run)\n", g_pass, g_fail);
        MPI_Finalize();
        return ok ? GPU_SKIP : 1;
    }
    CHECK(rc == 0, "rank %d: cuda_nccl_create: %s", rank, err.msg);
    if (!all_ok(rc == 0)) {
        MPI_Finalize();
        return 1;
    }
    float *hf = ct_malloc_array(n, sizeof(float)), *want_f = ct_malloc_array(n, sizeof(float));
    double *hd = ct_malloc_array(n, sizeof(double)), *want_d = ct_malloc_array(n, sizeof(double));
    gpu_fill_normal(hf, n, 50 + (uint32_t)rank, 1.0f);
    for (size_t i = 0; i < n; i++) hd[i] = (double)hf[i] * 1.0000001;
    MPI_Allreduce(hf, want_f, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(hd, want_d, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);

    // Device buffers, grouped into one launch.
    void *df = NULL, *dd = NULL;
    CHECK(cuda_alloc(&df, n * sizeof(float), "test", NULL, &err) == 0, "%s", err.msg);
    CHECK(cuda_alloc(&dd, n * sizeof(double), "test", NULL, &err) == 0, "%s", err.msg);
    // From pageable memory cudaMemcpy may return before the data reaches
    // the device, and the allreduce runs on the communicator's own
    // non-blocking stream, which does not wait for the default stream:
    // synchronise before handing the buffers to NCCL.
    cudaError_t ce = cudaMemcpy(df, hf, n * sizeof(float), cudaMemcpyHostToDevice);
    if (ce == cudaSuccess) ce = cudaMemcpy(dd, hd, n * sizeof(double), cudaMemcpyHostToDevice);
    if (ce == cudaSuccess) ce = cudaDeviceSynchronize();
    CHECK(ce == cudaSuccess, "rank %d: copying the test data to the GPU: %s", rank, cudaGetErrorString(ce));
    CudaNcclBuf bufs[2] = {{df, n, 0}, {dd, n, 1}};
    CHECK(cuda_nccl_allreduce(c, bufs, 2, &err) == 0, "rank %d: grouped allreduce: %s", rank, err.msg);
    float *gf = ct_malloc_array(n, sizeof(float));
    double *gd = ct_malloc_array(n, sizeof(double));
    ce = cudaMemcpy(gf, df, n * sizeof(float), cudaMemcpyDeviceToHost);
    if (ce == cudaSuccess) ce = cudaMemcpy(gd, dd, n * sizeof(double), cudaMemcpyDeviceToHost);
    CHECK(ce == cudaSuccess, "rank %d: copying the sums back: %s", rank, cudaGetErrorString(ce));
    CHECK(memcmp(gf, want_f, n * sizeof(float)) == 0, "rank %d: float sums differ from MPI's", rank);
    CHECK(memcmp(gd, want_d, n * sizeof(double)) == 0, "rank %d: double sums differ from MPI's", rank);

    // Host buffers through the staging copy.
    CHECK(cuda_nccl_allreduce_host_f32(c, hf, n, &err) == 0, "rank %d: host allreduce: %s", rank, err.msg);
    CHECK(cuda_nccl_allreduce_host_f64(c, hd, 3, &err) == 0, "rank %d: host allreduce: %s", rank, err.msg);
    CHECK(memcmp(hf, want_f, n * sizeof(float)) == 0, "rank %d: host float sums differ from MPI's", rank);
    CHECK(memcmp(hd, want_d, 3 * sizeof(double)) == 0, "rank %d: host double sums differ from MPI's", rank);
    if (all_ok(g_fail == 0) && rank == 0) printf("ok   NCCL sums equal MPI_Allreduce's bit for bit (device and host)\n");

    // Rank 1 stops answering: rank 0's allreduce must give up within the timeout.
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        double t0 = ct_now();
        int r = cuda_nccl_allreduce_host_f32(c, hf, 16, &err);
        double t = ct_now() - t0;
        CHECK(r == -1 && t < 60, "rank 0: allreduce with a silent peer returned %d after %.1f s", r, t);
        if (r == -1) printf("ok   silent peer: \"%s\" after %.1f s\n", err.msg, t);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    // Rank 0 aborted its communicator; rank 1's teardown waits for a peer
    // that is gone and must give up within the teardown timeout (5 s).
    CtError ferr = {{0}};
    double t0 = ct_now();
    cuda_nccl_free(c, &ferr);
    double t = ct_now() - t0;
    CHECK(t < 30, "rank %d: teardown after a failed peer took %.1f s (set-up's timeout is %.0f s)", rank, t,
          timeouts.setup_s);
    if (t < 30) printf("ok   rank %d: teardown after a failed peer returned in %.1f s%s%s\n", rank, t,
                       ferr.msg[0] ? ": " : "", ferr.msg);
    cuda_free(df), cuda_free(dd);
    free(hf), free(want_f), free(hd), free(want_d), free(gf), free(gd);
    int ok = all_ok(g_fail == 0);
    if (rank == 0) printf("%d passed, %d failed\n", g_pass, g_fail);
    MPI_Finalize();
    return ok ? 0 : 1;
}
