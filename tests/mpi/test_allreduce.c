/*
 * test_allreduce.c — the CPU operation table's gradient allreduce under
 * mpirun: every rank ends with the element-wise sum over the ranks (values
 * chosen so that float32 sums are exact), on MPI_COMM_WORLD and on a
 * communicator of a subset of the ranks, as the sweep's trial groups use.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"

#include "../unit/check.h"

static void check_sum(const BackendOps *ops, MPI_Comm comm, const char *what) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    const size_t n = 100003;
    float *buf = malloc(n * sizeof *buf);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(rank + 1) + 0.5f * (float)(i % 1000);
    CtError err = {{0}};
    CHECK(ops->allreduce_sum(&comm, buf, n, &err) == 0, "%s: %s", what, err.msg);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = (float)(size * (size + 1) / 2) + (float)size * 0.5f * (float)(i % 1000);
        bad += buf[i] != want;
    }
    CHECK(bad == 0, "%s: %zu of %zu sums wrong on rank %d of %d", what, bad, n, rank, size);
    if (rank == 0) printf("ok   allreduce of %zu floats over %d ranks (%s)\n", n, size, what);
    free(buf);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CtError err = {{0}};
    const BackendOps *ops = backend_ops_get(BACKEND_CPU, &err);
    CHECK(ops != NULL, "cpu table: %s", err.msg);
    if (ops) {
        check_sum(ops, MPI_COMM_WORLD, "world");
        MPI_Comm group;
        MPI_Comm_split(MPI_COMM_WORLD, rank < 2, rank, &group);
        check_sum(ops, group, rank < 2 ? "ranks 0-1" : "rank 2");
        MPI_Comm_free(&group);
    }
    int failed = g_fail, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) printf("%d passed, %d failed\n", g_pass, any);
    MPI_Finalize();
    return any ? 1 : 0;
}
