/*
 * rank_check.c — the start-up comparison of every rank's data set (see
 * rank_check.h).
 */
#include "sweep/rank_check.h"

#include <stdio.h>
#include <string.h>

#include "util/sha256.h"

void rank_data_of(RankData *r, const DataSet *ds, const char *host) {
    memset(r, 0, sizeof *r);
    snprintf(r->host, sizeof r->host, "%s", host);
    snprintf(r->fingerprint, sizeof r->fingerprint, "%s", ds->fingerprint);
    for (int s = 0; s < DATA_SPLITS; s++)
        for (int l = 0; l < 2; l++) r->count[s][l] = ds->count[s][l];
    r->n_images = ds->n;
    r->n_skipped = ds->n_skipped;
    Sha256 h;
    sha256_init(&h);
    for (size_t i = 0; i < ds->n_skipped; i++) sha256_update(&h, ds->skipped[i], strlen(ds->skipped[i]) + 1);
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_hex(d, 8, r->skipped_hash);
}

int rank_data_compare(const RankData *all, int n, CtError *err) {
    const RankData *m = &all[0];
    for (int k = 1; k < n; k++) {
        const RankData *r = &all[k];
        const char *what = NULL;
        char detail[256] = "";
        if (r->n_images != m->n_images || r->n_skipped != m->n_skipped) {
            what = "image count";
            snprintf(detail, sizeof detail, "%llu images, %llu skipped; the master has %llu, %llu skipped",
                     (unsigned long long)r->n_images, (unsigned long long)r->n_skipped,
                     (unsigned long long)m->n_images, (unsigned long long)m->n_skipped);
        } else if (memcmp(r->count, m->count, sizeof r->count) != 0) {
            what = "split counts";
            snprintf(detail, sizeof detail, "train/val/test %llu/%llu/%llu; the master has %llu/%llu/%llu",
                     (unsigned long long)(r->count[0][0] + r->count[0][1]),
                     (unsigned long long)(r->count[1][0] + r->count[1][1]),
                     (unsigned long long)(r->count[2][0] + r->count[2][1]),
                     (unsigned long long)(m->count[0][0] + m->count[0][1]),
                     (unsigned long long)(m->count[1][0] + m->count[1][1]),
                     (unsigned long long)(m->count[2][0] + m->count[2][1]));
        } else if (strcmp(r->skipped_hash, m->skipped_hash) != 0) {
            what = "skipped files";
            snprintf(detail, sizeof detail, "it left out other images than the master did");
        } else if (strcmp(r->fingerprint, m->fingerprint) != 0) {
            what = "fingerprint";
            snprintf(detail, sizeof detail, "%.16s; the master's is %.16s", r->fingerprint, m->fingerprint);
        }
        if (what)
            return ct_errorf(err, "rank %d on host %s sees a different data set than the master (rank 0 on %s): "
                             "%s differs (%s); every node must read the same copy of the data", k, r->host,
                             m->host, what, detail);
    }
    return 0;
}
