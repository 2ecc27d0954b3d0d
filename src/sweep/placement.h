/*
 * placement.h — where a rank's work runs: its place among the ranks of its
 * node, the CPU threads it trains with, and the GPU it binds.
 */
#ifndef CTSWEEP_SWEEP_PLACEMENT_H
#define CTSWEEP_SWEEP_PLACEMENT_H

#include <stddef.h>

#include "config/config.h"
#include "util/util.h"

typedef struct {
    int local_rank, local_size;  // among the ranks on this node
    int master_here;             // the master (rank 0, when there are workers) runs on this node
    int workers_here;            // worker ranks on this node
    int worker_index;            // this rank's place among them (the master is not one)
} NodePlace;

// Collective over MPI_COMM_WORLD.
void placement_node(NodePlace *p, int rank, int size);
// Sets the OpenMP thread count of this rank; returns it.
int placement_threads(const NodePlace *p, const SweepConfig *cfg);
// Binds this worker's GPU (CUDA backend; the master binds none) and names
// it in device ("cpu" otherwise). Returns 0 or -1 with err.
int placement_bind_gpu(const NodePlace *p, int rank, int size, const SweepConfig *cfg, const char *config_path,
                       char *device, size_t device_len, CtError *err);

#endif
