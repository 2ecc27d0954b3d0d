/*
 * placement.c — a rank's node, threads and GPU (see placement.h).
 */
#define _GNU_SOURCE
#include "sweep/placement.h"

#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"

void placement_node(NodePlace *p, int rank, int size) {
    memset(p, 0, sizeof *p);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &p->node);
    MPI_Comm_rank(p->node, &p->local_rank);
    MPI_Comm_size(p->node, &p->local_size);
    int is_master_local = rank == 0;
    MPI_Allreduce(&is_master_local, &p->master_here, 1, MPI_INT, MPI_MAX, p->node);
    p->workers_here = p->local_size - (size > 1 ? p->master_here : 0);
    p->worker_index = p->local_rank - (size > 1 ? p->master_here : 0);
    // Which workers here hold the same CPUs as this one.
    cpu_set_t mask;
    CPU_ZERO(&mask);
    p->mask_cpus = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : 0;
    int is_worker = !(rank == 0 && size > 1);
    cpu_set_t *all = ct_calloc((size_t)p->local_size, sizeof *all);
    int *workers = ct_calloc((size_t)p->local_size, sizeof *workers);
    MPI_Allgather(&mask, (int)sizeof mask, MPI_BYTE, all, (int)sizeof mask, MPI_BYTE, p->node);
    MPI_Allgather(&is_worker, 1, MPI_INT, workers, 1, MPI_INT, p->node);
    p->mask_sharers = 0;
    for (int k = 0; k < p->local_size; k++) p->mask_sharers += workers[k] && CPU_EQUAL(&all[k], &mask);
    if (p->mask_sharers < 1) p->mask_sharers = 1;
    free(all);
    free(workers);
}

void placement_free(NodePlace *p) {
    if (p->node != MPI_COMM_NULL && p->node != 0) MPI_Comm_free(&p->node);
}

int placement_thread_count(int configured, int slurm_cpus, int mask_cpus, int mask_sharers) {
    if (configured > 0) return configured;
    if (slurm_cpus > 0) return mask_cpus > 0 && mask_cpus < slurm_cpus ? mask_cpus : slurm_cpus;
    int t = mask_cpus / (mask_sharers > 0 ? mask_sharers : 1);
    return t > 0 ? t : 1;
}

int placement_threads(const NodePlace *p, const SweepConfig *cfg) {
    const char *v = getenv("SLURM_CPUS_PER_TASK");
    int slurm_cpus = v ? atoi(v) : 0;
    int mask = p->mask_cpus > 0 ? p->mask_cpus : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int threads = placement_thread_count(cfg->backend.threads, slurm_cpus, mask, p->mask_sharers);
    omp_set_num_threads(threads);
    return threads;
}

int placement_find_shared(const char (*uuids)[64], int n, int *a, int *b) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n && uuids[i][0]; j++)
            if (strcmp(uuids[i], uuids[j]) == 0) {
                *a = i;
                *b = j;
                return 1;
            }
    return 0;
}

int placement_bind_gpu(const NodePlace *p, int rank, int size, const SweepConfig *cfg, const char *config_path,
                       const char *host, char *device, size_t device_len, CtError *err) {
    snprintf(device, device_len, "cpu");
    if (cfg->backend.kind != BACKEND_CUDA) return 0;
    char uuid[64] = "";
    int rc = 0;
    if (!(rank == 0 && size > 1)) {
        char name[128] = "";
        if (backend_bind_gpu(p->worker_index, name, sizeof name, uuid, sizeof uuid, err)) rc = -1;
        else snprintf(device, device_len, "%.40s %s", name, uuid);
        if (rc && strncmp(err->msg, "train.backend", 13) == 0) ct_error_prefix(err, "%s", config_path);
    }
    // One GPU per worker, unless sharing is asked for: a node with more
    // workers than GPUs (--ntasks-per-node=9 --gres=gpu:8 on every node)
    // would otherwise put two workers on one GPU, silently.
    char (*all)[64] = ct_calloc((size_t)p->local_size, sizeof *all);
    MPI_Allgather(uuid, 64, MPI_CHAR, all, 64, MPI_CHAR, p->node);
    int i, j;
    if (rc == 0 && !cfg->gpu_share && placement_find_shared((const char(*)[64])all, p->local_size, &i, &j) &&
        p->local_rank == j)
        rc = ct_errorf(err, "%s: host %s runs %d workers but they see fewer GPUs: local ranks %d and %d would share "
                       "GPU %s; give each worker its own GPU (--gres=gpu:N with N workers per node, the master's "
                       "task aside, or --gpus-per-task=1) or set train.gpu_share: true",
                       config_path, host, p->workers_here, i, j, all[j]);
    free(all);
    return rc;
}

// ---- worker groups ----

void placement_group(MPI_Comm *group, int *group_rank, int *group_size, int rank, int size, size_t ranks_per_trial) {
    size_t G = ranks_per_trial ? ranks_per_trial : 1;
    int color = size == 1 ? 0 : rank == 0 ? MPI_UNDEFINED : (rank - 1) / (int)G;
    MPI_Comm_split(MPI_COMM_WORLD, color, rank, group);
    *group_rank = 0;
    *group_size = 1;
    if (*group != MPI_COMM_NULL) {
        MPI_Comm_rank(*group, group_rank);
        MPI_Comm_size(*group, group_size);
    }
}

int placement_group_nccl(void **nccl, MPI_Comm group, int group_rank, int group_size, int rank,
                         const SweepConfig *cfg, CtError *err) {
    *nccl = NULL;
    if (cfg->backend.kind != BACKEND_CUDA || group_size <= 1 || group == MPI_COMM_NULL) return 0;
    int r = backend_group_create(nccl, cfg->backend.kind, &group, err);
    if (r == BACKEND_GROUP_SHARED_GPU) {
        if (group_rank == 0) ct_info("rank %d: %s; the group reduces with MPI", rank, err->msg);
        err->msg[0] = '\0';
        return 0;
    }
    return r ? -1 : 0;
}

void placement_group_free(MPI_Comm *group, void **nccl, int rank) {
    CtError nerr = {{0}};
    if (*nccl && backend_group_free(*nccl, &nerr)) fprintf(stderr, "ctsweep: warning: rank %d: %s\n", rank, nerr.msg);
    *nccl = NULL;
    if (*group != MPI_COMM_NULL && *group != 0) MPI_Comm_free(group);
}
