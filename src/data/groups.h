/*
 * groups.h — which images belong together (one patient's slices or crops),
 * so that no split and no fold divides them. A group id comes from the
 * first capture group of data.groups.pattern matched against the image's
 * path relative to data.root, or from the CSV data.groups.file (columns
 * path,group); without data.groups each image is its own group.
 *
 * With groups, a fraction split is drawn by group (stratified, seeded:
 * folds.h); with split files, a group found in two splits is an error
 * naming the group and both files (or a warning, on_straddle: warn).
 */
#ifndef CTSWEEP_DATA_GROUPS_H
#define CTSWEEP_DATA_GROUPS_H

#include "data/dataset.h"

// Sets every item's group, then splits by group or checks the split files
// as above. Errors name the image, pattern, CSV file and line, or group.
int groups_apply(DataSet *ds, const DataSpec *spec, CtError *err);

// Checks a group pattern: an extended POSIX regular expression with at
// least one capture group. 0, or -1 with the reason in err.
int groups_pattern_check(const char *pattern, CtError *err);

// The group id of rel under pattern (the first capture group), allocated;
// NULL when the pattern does not match or captures nothing.
char *groups_match(const char *pattern, const char *rel);

#endif
