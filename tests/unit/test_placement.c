/*
 * test_placement.c — the thread count a worker takes (train.threads, then
 * SLURM_CPUS_PER_TASK, then its affinity mask shared among the node's
 * workers that hold the same mask: never the whole node per worker) and the
 * detection of two workers bound to one GPU.
 */
#include <string.h>

#include "sweep/placement.h"

#include "check.h"

int main(void) {
    // train.threads wins over everything.
    CHECK(placement_thread_count(3, 8, 64, 4) == 3, "configured threads");
    // Slurm's per-task CPUs, capped by a smaller mask.
    CHECK(placement_thread_count(0, 8, 64, 9) == 8, "SLURM_CPUS_PER_TASK 8 in a 64-CPU job cpuset");
    CHECK(placement_thread_count(0, 8, 4, 1) == 4, "SLURM_CPUS_PER_TASK 8 but bound to 4 CPUs");
    // No Slurm: a rank bound to its own cores uses them; ranks with one
    // shared mask (unbound, or CTSWEEP_CPU_BIND=none in a job cpuset) split it.
    CHECK(placement_thread_count(0, 0, 8, 1) == 8, "bound to 8 cores of its own");
    CHECK(placement_thread_count(0, 0, 64, 8) == 8, "8 workers sharing a 64-CPU cpuset: 8 each, not 64");
    CHECK(placement_thread_count(0, 0, 2, 3) == 1, "more workers than CPUs: at least one thread");

    char uuids[5][64];
    memset(uuids, 0, sizeof uuids);
    strcpy(uuids[1], "GPU-aaaa");
    strcpy(uuids[2], "GPU-bbbb");
    strcpy(uuids[3], "GPU-cccc");
    int a = -1, b = -1;
    CHECK(placement_find_shared((const char(*)[64])uuids, 4, &a, &b) == 0, "master (no GPU) + 3 workers on 3 GPUs");
    strcpy(uuids[4], "GPU-aaaa");  // a 4th worker wraps around to the first GPU
    CHECK(placement_find_shared((const char(*)[64])uuids, 5, &a, &b) == 1 && a == 1 && b == 4,
          "4 workers on 3 GPUs: local ranks 1 and 4 share (got %d, %d)", a, b);
    return check_summary();
}
