/*
 * master_stats.c — the master's counters and delay histogram (see
 * master_stats.h).
 */
#include "sweep/master_stats.h"

#include <math.h>
#include <time.h>

double master_stats_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Bucket k holds delays in [2^(k-1), 2^k) sixteenths of a millisecond.
static int bucket_of(double seconds) {
    double units = seconds * 16000.0;
    if (!(units >= 1.0)) return 0;
    int k = (int)floor(log2(units)) + 1;
    return k < MASTER_STATS_BUCKETS ? k : MASTER_STATS_BUCKETS - 1;
}

void master_stats_delay(MasterStats *m, double seconds) {
    if (seconds < 0) seconds = 0;  // clocks of two processes a hair apart
    m->bucket[bucket_of(seconds)]++;
    m->delays++;
    if (seconds > m->delay_max) m->delay_max = seconds;
}

double master_stats_quantile(const MasterStats *m, double q) {
    if (!m->delays) return 0.0;
    uint64_t want = (uint64_t)ceil(q * (double)m->delays), seen = 0;
    for (int k = 0; k < MASTER_STATS_BUCKETS; k++) {
        seen += m->bucket[k];
        if (seen >= want && seen) {
            double upper = ldexp(1.0, k) / 16000.0;
            return upper < m->delay_max ? upper : m->delay_max;
        }
    }
    return m->delay_max;
}
