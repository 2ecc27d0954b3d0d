/*
 * gpu_test.h — what the GPU tests share: the skip (exit 77, which ctest's
 * SKIP_RETURN_CODE turns into "skipped") when no CUDA device is visible,
 * random test data, and the normalised error every comparison reports:
 * max |a - ref| / max |ref|, with the worst element printed on failure.
 */
#ifndef CTSWEEP_TESTS_GPU_TEST_H
#define CTSWEEP_TESTS_GPU_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_device.h"
#include "util/rng.h"

#include "check.h"

#define GPU_SKIP 77

// Returns 0 when at least `need` devices are visible; otherwise prints the
// reason and returns GPU_SKIP for main to return.
static inline int gpu_require(int need) {
    char why[256];
    int n = cuda_device_count(why, sizeof why);
    if (n == 0) {
        printf("SKIP: no CUDA device visible (%s)\n", why);
        return GPU_SKIP;
    }
    if (n < need) {
        printf("SKIP: %d CUDA device(s) visible, this test needs %d\n", n, need);
        return GPU_SKIP;
    }
    char name[256] = "?", uuid[64] = "?";
    CtError err = {{0}};
    cuda_device_describe(0, name, sizeof name, uuid, sizeof uuid, &err);
    printf("device 0: %s (%s), %d visible\n", name, uuid, n);
    return 0;
}

static inline void gpu_fill_normal(float *x, size_t n, uint32_t stream, float scale) {
    RngStream rs;
    rng_stream_init(&rs, 1234, 99, stream, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&rs) * scale;
}

static inline void gpu_fill_uniform(float *x, size_t n, uint32_t stream, float lo, float hi) {
    RngStream rs;
    rng_stream_init(&rs, 1234, 98, stream, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform_f(&rs);
}

typedef struct {
    double err;       // max |a - ref| / max |ref| (max |a - ref| when ref is all zero)
    size_t worst;     // index of the largest |a - ref|
    double got, want;  // the values there
    size_t mismatches;  // elements not bit-identical
} GpuCmp;

static inline GpuCmp gpu_compare(const float *a, const float *ref, size_t n) {
    GpuCmp c = {0, 0, 0, 0, 0};
    double md = -1, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d != d) d = INFINITY;  // NaN counts as the worst
        if (d > md) {
            md = d;
            c.worst = i;
        }
        if (fabs((double)ref[i]) > mr) mr = fabs((double)ref[i]);
        c.mismatches += a[i] != ref[i];
    }
    if (n) {
        c.got = a[c.worst];
        c.want = ref[c.worst];
    }
    c.err = n == 0 ? 0 : mr > 0 ? md / mr : md;
    return c;
}

// Counts a check of a against ref within bound and prints one line.
#define GPU_EXPECT_CLOSE(a, ref, n, bound, ...)                                                               \
    do {                                                                                                      \
        GpuCmp c_ = gpu_compare((a), (ref), (n));                                                             \
        char what_[256];                                                                                      \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                                           \
        CHECK(c_.err <= (bound), "%s: normalised error %.3g > %.3g (worst element %zu: %.9g vs %.9g)", what_, \
              c_.err, (double)(bound), c_.worst, c_.got, c_.want);                                               \
        if (c_.err <= (bound))                                                                                \
            printf("ok   %s: normalised error %.3g <= %.3g (%zu of %zu elements not bit-identical)\n", what_,   \
                   c_.err, (double)(bound), c_.mismatches, (size_t)(n));                                      \
    } while (0)

// Counts a check that a equals ref bit for bit and prints one line.
#define GPU_EXPECT_SAME(a, ref, n, ...)                                                                         \
    do {                                                                                                       \
        GpuCmp c_ = gpu_compare((a), (ref), (n));                                                              \
        char what_[256];                                                                                       \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                                            \
        CHECK(c_.mismatches == 0, "%s: %zu of %zu elements differ (worst element %zu: %.9g vs %.9g)", what_,    \
              c_.mismatches, (size_t)(n), c_.worst, c_.got, c_.want);                                         \
        if (c_.mismatches == 0) printf("ok   %s: bit-identical (%zu elements)\n", what_, (size_t)(n));          \
    } while (0)

#endif
