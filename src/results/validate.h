/*
 * validate.h — checks a results directory against hdf5_schema/schema.txt
 * (embedded at build time) plus the relations the schema's lines cannot
 * say: lengths that must agree, statuses, links from the manifest to every
 * trial file. `ctsweep validate OUTDIR` and the resume path use it.
 */
#ifndef CTSWEEP_RESULTS_VALIDATE_H
#define CTSWEEP_RESULTS_VALIDATE_H

#include <stdio.h>

// The embedded schema text.
extern const char CTSWEEP_SCHEMA_TXT[];

// Prints one line per problem to `out` and returns the number of problems
// (0: the directory matches). n_files receives the number of files checked.
int validate_outdir(const char *outdir, FILE *out, int *n_files);

#endif
