/*
 * cpu_linear.c — dense layers through oneDNN's row-major sgemm, split into
 * fixed blocks of output columns that OpenMP threads take in any order; a
 * single-threaded sgemm per block keeps every sum's order independent of
 * the thread count.
 */
#include "backend/cpu/cpu_linear.h"

#include <dnnl.h>
#include <omp.h>

#include "util/util.h"

#define COL_BLOCK 64

// Below this many multiply-adds a layer runs on one thread: a small head's
// layers finish faster than a parallel region wakes its threads, more so when
// the cores are shared with other processes. The blocks are the same either
// way, and so are the results, as long as each block's sgemm is itself
// single-threaded: outside an active parallel region oneDNN would split it
// over omp_get_max_threads() threads, so the serial path sets that to 1.
#define PARALLEL_MIN_MACS ((size_t)1 << 23)

static int serial_begin(size_t macs) {
    if (macs >= PARALLEL_MIN_MACS) return 0;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    return saved;
}

static void serial_end(int saved) {
    if (saved) omp_set_num_threads(saved);
}

static void sgemm(char ta, char tb, size_t M, size_t N, size_t K, const float *A, size_t lda, const float *Bm,
                  size_t ldb, float beta, float *C, size_t ldc) {
    dnnl_status_t st = dnnl_sgemm(ta, tb, (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, 1.0f, A, (dnnl_dim_t)lda, Bm,
                                  (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    if (st != dnnl_success) fatal("oneDNN sgemm failed (%d) for %zux%zux%zu", (int)st, M, N, K);
}

void cpu_linear_forward(float *y, const float *x, const float *w, const float *b, size_t B, size_t I, size_t O) {
    size_t nblk = (O + COL_BLOCK - 1) / COL_BLOCK;
    int saved = serial_begin(B * I * O);
#pragma omp parallel for schedule(dynamic, 1) if (!saved)
    for (size_t k = 0; k < nblk; k++) {
        size_t o0 = k * COL_BLOCK, n = O - o0 < COL_BLOCK ? O - o0 : COL_BLOCK;
        // y[:, o0:o0+n] = x (B, I) * w[o0:o0+n, :]^T
        sgemm('N', 'T', B, n, I, x, I, w + o0 * I, I, 0.0f, y + o0, O);
        if (b)
            for (size_t r = 0; r < B; r++)
                for (size_t j = 0; j < n; j++) y[r * O + o0 + j] += b[o0 + j];
    }
    serial_end(saved);
}

void cpu_linear_backward_params(float *dw, float *db, const float *dy, const float *x, size_t B, size_t I, size_t O) {
    size_t nblk = (I + COL_BLOCK * 8 - 1) / (COL_BLOCK * 8);
    int saved = serial_begin(B * I * O);
#pragma omp parallel for schedule(dynamic, 1) if (!saved)
    for (size_t k = 0; k < nblk; k++) {
        size_t i0 = k * COL_BLOCK * 8, n = I - i0 < COL_BLOCK * 8 ? I - i0 : COL_BLOCK * 8;
        // dw[:, i0:i0+n] += dy^T (O, B) * x[:, i0:i0+n] (B, n)
        sgemm('T', 'N', O, n, B, dy, O, x + i0, I, 1.0f, dw + i0, I);
    }
    serial_end(saved);
    if (db)
        for (size_t o = 0; o < O; o++) {
            float s = 0.0f;
            for (size_t r = 0; r < B; r++) s += dy[r * O + o];
            db[o] += s;
        }
}

void cpu_linear_backward_input(float *dx, const float *dy, const float *w, size_t B, size_t I, size_t O) {
    size_t nblk = (I + COL_BLOCK * 8 - 1) / (COL_BLOCK * 8);
    int saved = serial_begin(B * I * O);
#pragma omp parallel for schedule(dynamic, 1) if (!saved)
    for (size_t k = 0; k < nblk; k++) {
        size_t i0 = k * COL_BLOCK * 8, n = I - i0 < COL_BLOCK * 8 ? I - i0 : COL_BLOCK * 8;
        // dx[:, i0:i0+n] = dy (B, O) * w[:, i0:i0+n] (O, n)
        sgemm('N', 'N', B, n, O, dy, O, w + i0, I, 0.0f, dx + i0, I);
    }
    serial_end(saved);
}
