/*
 * check.h — the counting CHECK macro the C unit tests share, the closing
 * "N passed, M failed" line ctest's readers recognise, and the one helper
 * every fixture-writing test needs.
 */
#ifndef CTSWEEP_TESTS_CHECK_H
#define CTSWEEP_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int g_pass, g_fail;

// Counts a check; a failing one prints file:line and the formatted message.
#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond) {                                     \
            g_pass++;                                   \
        } else {                                        \
            g_fail++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

// Prints the summary line and returns the exit status.
static inline int check_summary(void) {
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

// Writes a text fixture; a test that cannot write its own scratch folder
// stops with exit 2 (not a failed check: nothing was tested).
static inline void check_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

#endif
