/*
 * worker_pool.c — the master's bookkeeping of its workers (see
 * worker_pool.h).
 */
#include "sweep/worker_pool.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void pool_init(WorkerPool *p, int size, int group, size_t n_runs) {
    memset(p, 0, sizeof *p);
    p->size = size;
    p->group = group > 0 ? group : 1;
    size_t n = size > 0 ? (size_t)size : 1;
    p->run = ct_calloc(n, sizeof *p->run);
    p->heard = ct_calloc(n, sizeof *p->heard);
    p->device_fails = ct_calloc(n, sizeof *p->device_fails);
    p->gone = ct_calloc(n, 1);
    for (int k = 0; k < size; k++) p->run[k] = -1;
    p->n_runs = n_runs;
    p->attempts = ct_calloc(n_runs ? n_runs : 1, sizeof *p->attempts);
    p->avoid = ct_calloc(n_runs ? n_runs : 1, sizeof *p->avoid);
    for (size_t i = 0; i < n_runs; i++) p->avoid[i] = -1;
}

void pool_free(WorkerPool *p) {
    free(p->run);
    free(p->heard);
    free(p->device_fails);
    free(p->gone);
    free(p->attempts);
    free(p->avoid);
    memset(p, 0, sizeof *p);
}

void pool_heard(WorkerPool *p, int rank, double now) {
    if (rank >= 0 && rank < p->size) p->heard[rank] = now;
}

int pool_hung(const WorkerPool *p, double now, double timeout) {
    int worst = -1;
    for (int k = 1; k < p->size; k++)
        if (p->run[k] >= 0 && !p->gone[k] && now - p->heard[k] > timeout &&
            (worst < 0 || p->heard[k] < p->heard[worst]))
            worst = k;
    return worst;
}

int pool_others_active(const WorkerPool *p, int rank) {
    int n = 0;
    for (int k = 1; k < p->size; k += p->group) n += k != rank && !p->gone[k];
    return n;
}

int pool_run_ended(WorkerPool *p, int rank, int failed, int device_error) {
    if (rank < 0 || rank >= p->size) return 0;
    p->run[rank] = -1;
    p->device_fails[rank] = failed && device_error ? p->device_fails[rank] + 1 : 0;
    return p->device_fails[rank] >= 2;
}

int pool_is_device_error(const char *msg) {
    if (strstr(msg, "out of GPU memory")) return 0;
    static const char *const apis[] = {"CUDA", "cuda", "cuDNN", "cudnn", "cuBLAS", "cublas", "NCCL"};
    if (!strstr(msg, " failed")) return 0;
    for (size_t i = 0; i < sizeof apis / sizeof *apis; i++)
        if (strstr(msg, apis[i])) return 1;
    return 0;
}
