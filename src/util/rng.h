/*
 * rng.h — a counter-based random number generator (Philox4x32-10).
 *
 * Every random draw in ctsweep is a pure function of a key (seed, purpose)
 * and a counter (e.g. image index, epoch view, draw number), never of call
 * order, so results do not depend on rank count, batch order or resumption.
 */
#ifndef CTSWEEP_RNG_H
#define CTSWEEP_RNG_H

#include <stddef.h>
#include <stdint.h>

// Purposes keep streams for different uses independent.
typedef enum {
    RNG_PHANTOM = 1,
    RNG_INIT_BACKBONE = 2,
    RNG_INIT_HEAD = 3,
    RNG_AUGMENT = 4,
    RNG_SPLIT = 5,
    RNG_SHUFFLE = 6,
    RNG_DROPOUT = 7,
    RNG_FOLD = 8,
} RngPurpose;

// One Philox4x32-10 block: 4 x 32 random bits for (key, counter).
void rng_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);

// A stream: key = (seed, purpose), counter = (a, b, c, i) where i advances.
typedef struct {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int have;  // unused words left in buf
} RngStream;

void rng_stream_init(RngStream *s, uint64_t seed, uint32_t purpose, uint32_t a, uint32_t b, uint32_t c);
uint32_t rng_u32(RngStream *s);
// Uniform in [0, 1) with 24 bits (float) or 53 bits (double).
float rng_uniform_f(RngStream *s);
double rng_uniform(RngStream *s);
// Standard normal (Box–Muller on two uniforms).
double rng_normal(RngStream *s);
// Uniform integer in [0, n) without modulo bias (n > 0).
uint32_t rng_below(RngStream *s, uint32_t n);

// Dropout masks for rows [row0, row0 + rows) of a (batch, width)
// activation: element e of the whole batch takes word e % 4 of the Philox
// block (iteration, layer, e / 4) under the key (seed, RNG_DROPOUT); a mask
// entry is 0 (dropped, probability p) or 1 / (1 - p). One definition for the
// head and every backend, so masks agree bit for bit wherever they are drawn.
void rng_dropout_masks(float *mask, size_t rows, size_t width, size_t row0, uint64_t seed, uint64_t iteration,
                       uint32_t layer, double p);

#endif
