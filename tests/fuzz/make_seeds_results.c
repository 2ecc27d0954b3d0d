/*
 * make_seeds_results.c — writes the seed corpus of fuzz_results: edit lists
 * in the format of results_edit.h. The empty list (the pristine directory,
 * which must validate), every operation on every file, every attribute
 * replaced by each kind of value, every object rewritten with each type and
 * with a shape near its own, and a few combinations that resume cares about
 * (a trial file whose records disagree with its checkpoint). The results
 * directory itself is written by fuzz_results at start-up.
 *
 * usage: make_seeds_results DIR   (DIR must exist)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results_edit.h"

#define N_FILES 7  // sweep.h5, 4 trial files, 2 checkpoints (fuzz_results.c)

static int g_count;
static const char *g_dir;

static void seed(const char *tag, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%03d", g_dir, tag, g_count);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "make_seeds_results: cannot write %s\n", path);
        exit(1);
    }
    g_count++;
}

static uint32_t g_lcg = 12345;
static uint8_t next(void) {
    g_lcg = g_lcg * 1103515245u + 12345u;
    return (uint8_t)(g_lcg >> 16);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds_results DIR\n");
        return 2;
    }
    g_dir = argv[1];
    uint8_t b[64];
    seed("pristine", b, 0);
    // Each operation on each file, with arguments from a fixed sequence.
    for (unsigned op = 0; op < EDIT_COUNT; op++)
        for (unsigned file = 0; file < N_FILES; file++)
        {
            b[0] = (uint8_t)op;
            b[1] = (uint8_t)file;
            for (size_t i = 2; i < 24; i++) b[i] = next();
            seed("op", b, 24);
        }
    // Every attribute (by index) of a trial, and the first ones of the
    // manifest and a checkpoint, replaced by each kind of value.
    const unsigned files[3] = {2, 0, 5}, n_attrs[3] = {32, 10, 4};
    for (int fi = 0; fi < 3; fi++)
        for (unsigned a = 0; a < n_attrs[fi]; a++) {
            size_t n = 0;
            b[n++] = EDIT_SET_ATTR;
            b[n++] = (uint8_t)files[fi];
            b[n++] = (uint8_t)a;
            b[n++] = (uint8_t)(a % 10);  // kind
            b[n++] = (uint8_t)(a / 10 + 2);  // which special value / length
            for (int i = 0; i < 8; i++) b[n++] = (uint8_t)(a * 31 + (unsigned)i);
            seed("attr", b, n);
        }
    // Every object of a trial and the manifest rewritten: another type, and
    // its own type at a shape one longer or one shorter (keeping its values),
    // empty, or huge (never written).
    for (int fi = 0; fi < 2; fi++)
        for (unsigned o = 0; o < (fi ? 12u : 10u); o++) {
            const uint8_t shapes[4][4] = {{1, 226, 225, 1}, {1, 224, 225, 1}, {1, 0, 0, 2}, {2, 252, 3, 1}};
            for (int s = 0; s < (fi ? 2 : 4); s++) {
                size_t n = 0;
                b[n++] = EDIT_SET_DATASET;
                b[n++] = (uint8_t)files[fi];
                b[n++] = (uint8_t)o;
                b[n++] = 0;  // the old type
                memcpy(b + n, shapes[s], 4);  // rank, dims..., fill (1: keep)
                n += 4;
                seed("shape", b, n);
            }
            size_t n = 0;
            b[n++] = EDIT_SET_DATASET;
            b[n++] = (uint8_t)files[fi];
            b[n++] = (uint8_t)o;
            b[n++] = (uint8_t)(o % 9);  // another type
            b[n++] = 1;
            b[n++] = 3;
            b[n++] = 0;
            for (int i = 0; i < 24; i++) b[n++] = next();
            seed("type", b, n);
        }
    // Combinations: a trial whose checkpoint moved on, or went missing; a
    // manifest that lost a trial file; the tail of a file cut or extended.
    const uint8_t combos[][12] = {
        {EDIT_SET_ATTR, 2, 40, 3, 4, EDIT_REPLACE_FILE, 5, 0},
        {EDIT_DELETE_OBJECT, 2, 8, EDIT_SET_ATTR, 4, 26, 1, 7},
        {EDIT_REPLACE_FILE, 1, 3, 2, EDIT_REPLACE_FILE, 3, 5, 0},
        {EDIT_TRUNCATE, 1, 128, EDIT_TRUNCATE, 0, 250},
        {EDIT_APPEND, 0, 200, 1, 2, 3, EDIT_LINK, 0, 5, 3, EDIT_RENAME, 2},
        {EDIT_MAKE_GROUP, 2, 0, EDIT_LINK, 3, 9, 1, EDIT_SET_DATASET, 0, 4, 7, 1},
    };
    for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) seed("combo", combos[i], sizeof combos[i]);
    printf("make_seeds_results: %d seeds in %s\n", g_count, g_dir);
    return 0;
}
