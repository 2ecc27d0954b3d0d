/*
 * gpu_rules.c — the CUDA backend's arithmetic planning rules (see
 * gpu_rules.h), compiled in every build so CPU-only CI tests them.
 */
#include "backend/gpu_rules.h"

#include "backend/backend.h"

// ---- cuDNN's element limit ----

size_t gpu_graph_image_elems(const NNGraph *g, const NNShape *shapes, size_t h, size_t w, const char **layer) {
    size_t best = 3 * h * w;
    if (layer) *layer = "input";
    for (size_t i = 0; i < g->n_layers; i++) {
        size_t e, dims[3] = {shapes[i].c, shapes[i].h, shapes[i].w};
        if (ct_mul_sizes(&e, dims, 3)) e = (size_t)-1;  // larger than any limit
        if (e > best) {
            best = e;
            if (layer) *layer = g->layers[i].name;
        }
    }
    return best;
}

size_t gpu_batch_piece(size_t max_batch, size_t per_image, size_t limit) {
    if (per_image == 0) return max_batch;
    size_t fit = limit / per_image;
    return fit < max_batch ? fit : max_batch;
}

// ---- workspace ----

#define SEARCH_WS_MAX ((size_t)2 << 30)

size_t gpu_search_workspace(size_t free_bytes) {
    size_t q = free_bytes / 4;
    return q < SEARCH_WS_MAX ? q : SEARCH_WS_MAX;
}

size_t gpu_run_workspace(const size_t *needs, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (needs[i] > m) m = needs[i];
    return m;
}

// ---- algorithm choice ----

// Whether c may run for want; strict_math: for fp32, FMA-labelled only.
static int acceptable(const GpuConvCandidate *c, const GpuConvWant *want, int strict_math) {
    if (!c->ok || c->ws_bytes > want->ws_cap) return 0;
    if (want->deterministic && !c->deterministic) return 0;
    if (strict_math && want->fp32 && !c->fma) return 0;
    if (want->conv_algo == CONV_ALGO_DIRECT) return c->cls == GPU_ALGO_IMPLICIT_GEMM;
    if (want->conv_algo == CONV_ALGO_WINOGRAD && want->winograd_layer) return c->cls == GPU_ALGO_WINOGRAD;
    return 1;
}

int gpu_conv_pick(const GpuConvCandidate *c, int n, const GpuConvWant *want, int *forced_fma, GpuPickResult *why,
                  size_t *min_ws) {
    *forced_fma = 0;
    *why = GPU_PICK_OK;
    *min_ws = 0;
    for (int i = 0; i < n; i++)
        if (acceptable(&c[i], want, 1)) return i;
    // Should a cuDNN version label its fp32 candidates with another math
    // type, take the best one anyway, to run with the descriptor forced to FMA.
    if (want->fp32)
        for (int i = 0; i < n; i++)
            if (acceptable(&c[i], want, 0)) {
                *forced_fma = 1;
                return i;
            }
    if (want->conv_algo == CONV_ALGO_WINOGRAD && want->winograd_layer) {
        int offered = 0, det = 0;
        size_t least = (size_t)-1;
        for (int i = 0; i < n; i++) {
            if (c[i].cls != GPU_ALGO_WINOGRAD || !c[i].ok) continue;
            offered = 1;
            if (want->deterministic && !c[i].deterministic) continue;
            det = 1;
            if (c[i].ws_bytes < least) least = c[i].ws_bytes;
        }
        *why = !offered                    ? GPU_PICK_NO_WINOGRAD
               : !det                      ? GPU_PICK_WINOGRAD_NONDET
               : least > want->ws_cap      ? GPU_PICK_WINOGRAD_WORKSPACE
                                           : GPU_PICK_NONE;
        if (det) *min_ws = least;
    } else if (want->conv_algo == CONV_ALGO_DIRECT) {
        *why = GPU_PICK_NO_IMPLICIT_GEMM;
    } else {
        *why = want->deterministic ? GPU_PICK_NO_DETERMINISTIC : GPU_PICK_NONE;
    }
    return -1;
}

// ---- group timeouts ----

void gpu_group_timeouts_default(GpuGroupTimeouts *t) {
    t->setup_s = 900;
    t->collective_s = 900;
    t->teardown_s = 20;
}

double gpu_group_timeout(const GpuGroupTimeouts *t, GpuGroupPhase phase, int group_failed) {
    GpuGroupTimeouts d;
    gpu_group_timeouts_default(&d);
    double setup = t && t->setup_s > 0 ? t->setup_s : d.setup_s;
    double coll = t && t->collective_s > 0 ? t->collective_s : d.collective_s;
    double down = t && t->teardown_s > 0 ? t->teardown_s : d.teardown_s;
    switch (phase) {
    case GPU_GROUP_SETUP: return setup;
    case GPU_GROUP_COLLECTIVE: return coll;
    case GPU_GROUP_TEARDOWN:
        if (group_failed) return 0;
        return down < coll ? down : coll;
    }
    return coll;
}
