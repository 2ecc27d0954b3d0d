/*
 * placement.c — a rank's node, threads and GPU (see placement.h).
 */
#define _GNU_SOURCE
#include "sweep/placement.h"

#include <mpi.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#ifdef CTSWEEP_HAVE_CUDA
#include "backend/cuda/cuda_device.h"
#endif

void placement_node(NodePlace *p, int rank, int size) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &p->local_rank);
    MPI_Comm_size(node, &p->local_size);
    int is_master_local = rank == 0;
    p->master_here = 0;
    MPI_Allreduce(&is_master_local, &p->master_here, 1, MPI_INT, MPI_MAX, node);
    MPI_Comm_free(&node);
    p->workers_here = p->local_size - (size > 1 ? p->master_here : 0);
    p->worker_index = p->local_rank - (size > 1 ? p->master_here : 0);
}

int placement_threads(const NodePlace *p, const SweepConfig *cfg) {
    // A rank bound to some of the node's cores (srun --cpu-bind, mpirun
    // --bind-to core with PE=n, a cgroup) uses the cores it was given;
    // unbound ranks share the node's cores.
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t mask;
    int bound = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : 0;
    int threads = cfg->backend.threads > 0                ? cfg->backend.threads
                  : bound > 0 && bound < cores            ? bound
                                                          : (int)(cores / (p->workers_here > 0 ? p->workers_here : 1));
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    return threads;
}

int placement_bind_gpu(const NodePlace *p, int rank, int size, const SweepConfig *cfg, const char *config_path,
                       char *device, size_t device_len, CtError *err) {
    // GPUs: each worker takes one by its place among the node's workers
    // (modulo the devices it sees); the master uses none.
    snprintf(device, device_len, "cpu");
    if (cfg->backend.kind != BACKEND_CUDA || (rank == 0 && size > 1)) return 0;
#ifdef CTSWEEP_HAVE_CUDA
    char name[128] = "", uuid[64] = "";
    if (cuda_bind_local_rank(p->worker_index, name, sizeof name, uuid, sizeof uuid, err) < 0) return -1;
    snprintf(device, device_len, "%.40s %s", name, uuid);
    return 0;
#else
    (void)p;
    return ct_errorf(err, "%s: train.backend: cuda, but this ctsweep was built without the CUDA backend", config_path);
#endif
}
