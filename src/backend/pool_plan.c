/*
 * pool_plan.c — the symbolic activation-buffer pool (see pool_plan.h).
 */
#include "backend/pool_plan.h"

#include "util/util.h"

int pool_plan_get(size_t **bytes, int **is_free, size_t *n, size_t want) {
    int best = -1, largest = -1;
    for (size_t i = 0; i < *n; i++) {
        if (!(*is_free)[i]) continue;
        if ((*bytes)[i] >= want && (best < 0 || (*bytes)[i] < (*bytes)[best])) best = (int)i;
        if (largest < 0 || (*bytes)[i] > (*bytes)[largest]) largest = (int)i;
    }
    int b = best >= 0 ? best : largest;
    if (b < 0) {
        *bytes = ct_realloc(*bytes, (*n + 1) * sizeof **bytes);
        *is_free = ct_realloc(*is_free, (*n + 1) * sizeof **is_free);
        b = (int)(*n)++;
        (*bytes)[b] = 0;
    }
    if ((*bytes)[b] < want) (*bytes)[b] = want;
    (*is_free)[b] = 0;
    return b;
}
