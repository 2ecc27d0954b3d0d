/*
 * rng.c — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011) and the stream helpers built on it.
 */
#include "util/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rng_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n1 = lo1;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        uint32_t n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void rng_stream_init(RngStream *s, uint64_t seed, uint32_t purpose, uint32_t a, uint32_t b, uint32_t c) {
    // Fold the purpose into the key so streams of different purposes never
    // share a counter space.
    s->key[0] = (uint32_t)seed ^ (purpose * 0x85EBCA6Bu);
    s->key[1] = (uint32_t)(seed >> 32) ^ (purpose * 0xC2B2AE35u);
    s->ctr[0] = a;
    s->ctr[1] = b;
    s->ctr[2] = c;
    s->ctr[3] = 0;
    s->have = 0;
}

uint32_t rng_u32(RngStream *s) {
    if (s->have == 0) {
        rng_philox4x32(s->buf, s->ctr, s->key);
        s->ctr[3]++;
        s->have = 4;
    }
    return s->buf[4 - s->have--];
}

float rng_uniform_f(RngStream *s) { return (float)(rng_u32(s) >> 8) * (1.0f / 16777216.0f); }

double rng_uniform(RngStream *s) {
    uint64_t hi = rng_u32(s) >> 5, lo = rng_u32(s) >> 6;
    return ((double)hi * 67108864.0 + (double)lo) * (1.0 / 9007199254740992.0);
}

double rng_normal(RngStream *s) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t rng_below(RngStream *s, uint32_t n) {
    uint32_t limit = (uint32_t)(-n) % n;  // 2^32 mod n
    for (;;) {
        uint64_t m = (uint64_t)rng_u32(s) * n;
        if ((uint32_t)m >= limit) return (uint32_t)(m >> 32);
    }
}

void rng_dropout_masks(float *mask, size_t rows, size_t width, size_t row0, uint64_t seed, uint64_t iteration,
                       uint32_t layer, double p) {
    size_t first = row0 * width, n = rows * width;
    float keep_scale = (float)(1.0 / (1.0 - p)), pf = (float)p;
    uint32_t key[2] = {(uint32_t)seed ^ (RNG_DROPOUT * 0x85EBCA6Bu), (uint32_t)(seed >> 32) ^ (RNG_DROPOUT * 0xC2B2AE35u)};
    uint32_t out[4];
    size_t have_blk = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t e = first + i, blk = e / 4;
        if (blk != have_blk) {
            uint32_t ctr[4] = {(uint32_t)iteration, (uint32_t)(iteration >> 32), layer, (uint32_t)blk};
            rng_philox4x32(out, ctr, key);
            have_blk = blk;
        }
        float u = (float)(out[e % 4] >> 8) * (1.0f / 16777216.0f);
        mask[i] = u < pf ? 0.0f : keep_scale;
    }
}
