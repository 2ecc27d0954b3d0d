/*
 * master_stats.h — what the master's own work costs, for bench/master_scale
 * and the closing summary: epoch messages received, result files written,
 * and the queueing delay of epoch messages (from the worker's send to the
 * master's receipt: the time they waited behind the master's file writes).
 */
#ifndef CTSWEEP_SWEEP_MASTER_STATS_H
#define CTSWEEP_SWEEP_MASTER_STATS_H

#include <stddef.h>
#include <stdint.h>

enum { MASTER_STATS_BUCKETS = 64 };

typedef struct {
    uint64_t epochs;        // epoch messages recorded
    uint64_t file_writes;   // trial files, manifests and checkpoints written whole
    uint64_t delays;        // epoch messages with a delay measured
    double delay_max;       // seconds
    uint64_t bucket[MASTER_STATS_BUCKETS];  // delays in log2 buckets of 1/16 ms
} MasterStats;

// Wall-clock seconds (comparable between ranks on one node; across nodes as
// far as their clocks agree).
double master_stats_clock(void);
void master_stats_delay(MasterStats *m, double seconds);
// The q-quantile (0..1) of the recorded delays in seconds (bucket upper bound).
double master_stats_quantile(const MasterStats *m, double q);

#endif
