/*
 * placement.h — where a rank's work runs: its place among the ranks of its
 * node, the CPU threads it trains with, and the GPU it binds.
 *
 * Threads: train.threads when set; else SLURM_CPUS_PER_TASK (the task's
 * share of the job); else this rank's affinity mask, divided among the
 * node's workers that hold the same mask (unbound ranks, or a whole job
 * cpuset under CTSWEEP_CPU_BIND=none), never the whole node per worker.
 * GPUs: each worker binds one by its place among the node's workers, modulo
 * the devices it sees; two workers on one GPU are refused unless
 * train.gpu_share is true; the master binds none.
 * Groups: the workers form groups of ranks_per_trial consecutive ranks that
 * train one trial data-parallel; a group of GPU workers reduces through NCCL.
 */
#ifndef CTSWEEP_SWEEP_PLACEMENT_H
#define CTSWEEP_SWEEP_PLACEMENT_H

#include <mpi.h>
#include <stddef.h>

#include "config/config.h"
#include "util/util.h"

typedef struct {
    MPI_Comm node;               // the ranks on this node
    int local_rank, local_size;  // among the ranks on this node
    int master_here;             // the master (rank 0, when there are workers) runs on this node
    int workers_here;            // worker ranks on this node
    int worker_index;            // this rank's place among them (the master is not one)
    int mask_cpus;               // CPUs in this rank's affinity mask (0 unknown)
    int mask_sharers;            // workers on this node with the very same mask (this one included)
} NodePlace;

// Collective over MPI_COMM_WORLD.
void placement_node(NodePlace *p, int rank, int size);
void placement_free(NodePlace *p);
// The thread count: configured (> 0) wins; then slurm_cpus (> 0); then the
// mask's CPUs divided among its sharers (at least 1).
int placement_thread_count(int configured, int slurm_cpus, int mask_cpus, int mask_sharers);
// Sets the OpenMP thread count of this rank (placement_thread_count of its
// situation); returns it.
int placement_threads(const NodePlace *p, const SweepConfig *cfg);
// Binds this worker's GPU (CUDA backend; the master binds none), names it in
// device ("cpu" otherwise) and, collectively over the node, refuses two
// workers on one GPU unless train.gpu_share. Returns 0 or -1 with err.
int placement_bind_gpu(const NodePlace *p, int rank, int size, const SweepConfig *cfg, const char *config_path,
                       const char *host, char *device, size_t device_len, CtError *err);
// Two entries of uuids (n of them, "" = no GPU) that are equal: returns 1 and
// their indices, else 0.
int placement_find_shared(const char (*uuids)[64], int n, int *a, int *b);

// ---- worker groups ----

// Collective over MPI_COMM_WORLD: this rank's group of ranks_per_trial
// (>= 1) workers, its rank and size in it. The master is in none (group
// MPI_COMM_NULL, rank 0, size 1); with one rank, that rank is a group of one.
void placement_group(MPI_Comm *group, int *group_rank, int *group_size, int rank, int size, size_t ranks_per_trial);
// Collective over the group (call on every rank; nothing happens outside a
// CUDA group of more than one rank): the group's NCCL communicator into
// *nccl; it stays NULL when the group's ranks share a GPU (they reduce with
// MPI then; said once). Returns 0, or -1 with err. Without the CUDA backend
// in the build: 0, *nccl NULL.
int placement_group_nccl(void **nccl, MPI_Comm group, int group_rank, int group_size, int rank,
                         const SweepConfig *cfg, CtError *err);
// The group's communicators (collective over the group).
void placement_group_free(MPI_Comm *group, void **nccl, int rank);

#endif
