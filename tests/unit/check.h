/*
 * check.h — the counting CHECK macro the C unit tests share, and the
 * closing "N passed, M failed" line ctest's readers recognise.
 */
#ifndef CTSWEEP_TESTS_CHECK_H
#define CTSWEEP_TESTS_CHECK_H

#include <stdio.h>

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

#endif
