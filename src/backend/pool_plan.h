/*
 * pool_plan.h — the symbolic activation-buffer pool both backends plan
 * with: while a plan is built, each tensor asks for a buffer of some size
 * and gives it back when its last reader has run; buffers are only sized
 * here and allocated once planning ends.
 */
#ifndef CTSWEEP_BACKEND_POOL_PLAN_H
#define CTSWEEP_BACKEND_POOL_PLAN_H

#include <stddef.h>

// Best fit among the free buffers, else the largest free one grown to
// `want`, else a new buffer. bytes[n] / is_free[n] are grown as needed.
// Returns the buffer's index, now in use.
int pool_plan_get(size_t **bytes, int **is_free, size_t *n, size_t want);

#endif
