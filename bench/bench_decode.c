/*
 * bench_decode.c — decode + resize throughput over a data set folder, the
 * figure bench/decode sets beside PIL's.
 *
 * usage: bench_decode ROOT SIZE THREADS ROUNDS
 * Prints one line of key=value pairs (best of ROUNDS).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/dataset.h"
#include "data/image_cache.h"

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_decode ROOT SIZE THREADS ROUNDS\n");
        return 2;
    }
    size_t size = (size_t)atoi(argv[2]);
    int threads = atoi(argv[3]), rounds = atoi(argv[4]);
    omp_set_num_threads(threads);
    DataSpec spec;
    data_spec_default(&spec, argv[1]);
    DataSet ds;
    CtError err = {{0}};
    ImageLimits lim;
    image_limits_default(&lim);
    double best = 1e30;
    size_t n = 0;
    for (int r = 0; r < rounds; r++) {
        if (dataset_open(&ds, &spec, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        ImageCache c;
        double t = ct_now();
        if (image_cache_build(&c, &ds, size, &lim, BAD_IMAGE_ERROR, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        t = ct_now() - t;
        if (t < best) best = t;
        n = c.n;
        image_cache_free(&c);
        dataset_free(&ds);
    }
    printf("images=%zu size=%zu threads=%d seconds=%.3f images_per_s=%.1f\n", n, size, threads, best, n / best);
    return 0;
}
