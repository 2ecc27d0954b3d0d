/*
 * rank_check.h — every rank must see the same data set: each rank
 * fingerprints and decodes the data itself, so a stale copy on one node
 * would change that worker's val/test counts (and its results) silently.
 * At start-up every rank's summary goes to the master, which compares them
 * with its own and names the first rank (and host) that differs.
 */
#ifndef CTSWEEP_SWEEP_RANK_CHECK_H
#define CTSWEEP_SWEEP_RANK_CHECK_H

#include <stdint.h>

#include "data/dataset.h"
#include "util/util.h"

// One rank's view of the data set, sent as bytes (fixed layout).
typedef struct {
    char host[64];
    char fingerprint[65];
    char skipped_hash[17];        // first 16 hex digits of SHA-256 over the skipped list
    uint64_t count[DATA_SPLITS][2];  // [split][label != 0]
    uint64_t n_images, n_skipped;
} RankData;

void rank_data_of(RankData *r, const DataSet *ds, const char *host);
// all[0] is the master's. Returns 0, or -1 with err naming the first rank
// that differs, its host and what differs.
int rank_data_compare(const RankData *all, int n, CtError *err);

#endif
