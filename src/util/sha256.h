/*
 * sha256.h — SHA-256 (FIPS 180-4), for data set fingerprints, trial ids and
 * weight file identities: stable across machines and releases, unlike a
 * fast non-cryptographic hash whose definition we would have to freeze.
 */
#ifndef CTSWEEP_SHA256_H
#define CTSWEEP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final(Sha256 *s, uint8_t digest[32]);
// Hex of the first `nbytes` of a digest into out (2 * nbytes + 1 chars).
void sha256_hex(const uint8_t digest[32], size_t nbytes, char *out);
// One-shot helpers.
void sha256_buffer(const void *data, size_t len, uint8_t digest[32]);

#endif
