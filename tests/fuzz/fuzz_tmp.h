/*
 * fuzz_tmp.h — the temporary folder of a fuzz target that needs files
 * (fuzz_config, fuzz_results): made under $TMPDIR (or /tmp) as
 * <tag>.<pid>.XXXXXX, removed at exit. A target that crashes or is killed
 * cannot remove its own, so each start also removes the folders of
 * processes that no longer run.
 */
#ifndef CTSWEEP_TESTS_FUZZ_TMP_H
#define CTSWEEP_TESTS_FUZZ_TMP_H

#include <stddef.h>

// Makes the folder into out (n bytes); aborts when it cannot.
void fuzz_tmp_make(const char *tag, char *out, size_t n);
// Removes a folder and everything under it (links are not followed).
void fuzz_tmp_remove_tree(const char *dir);

#endif
