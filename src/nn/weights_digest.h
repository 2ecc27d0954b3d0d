/*
 * weights_digest.h — the identity of a weights file: SHA-256 of its
 * content, so that trial ids and feature cache keys follow the weights
 * themselves, not where they lie. A file moved or reached through another
 * path keeps its identity; a file replaced in place gets a new one.
 *
 * A VGG file is about 530 MB, so each file is read once per process: the
 * digest is remembered by path, device, inode, size and modification time,
 * and read again only when one of those changes.
 */
#ifndef CTSWEEP_NN_WEIGHTS_DIGEST_H
#define CTSWEEP_NN_WEIGHTS_DIGEST_H

#include "util/util.h"

#define WEIGHTS_DIGEST_HEX 64

// hex (WEIGHTS_DIGEST_HEX + 1 chars): SHA-256 of the file at path, lower
// case. 0, or -1 with err = "PATH: why it cannot be read". Not thread-safe
// (the master and the workers call it from their main thread).
int weights_digest(const char *path, char hex[WEIGHTS_DIGEST_HEX + 1], CtError *err);

#endif
