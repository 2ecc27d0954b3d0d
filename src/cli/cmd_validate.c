/*
 * cmd_validate.c — `ctsweep validate OUTDIR`: exit 0 iff sweep.h5 and every
 * trial file match hdf5_schema.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "results/validate.h"

int cmd_validate(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr, "usage: ctsweep validate OUTDIR\n"
                "  checks OUTDIR/sweep.h5 and OUTDIR/trials/*.h5 against hdf5_schema; exit 0 iff they match\n");
        return argc == 2 ? CT_EXIT_OK : CT_EXIT_USAGE;
    }
    int files = 0;
    int problems = validate_outdir(argv[1], stderr, &files);
    if (problems) {
        fprintf(stderr, "ctsweep: error: %s: %d problem(s) in %d file(s) checked against hdf5_schema\n", argv[1],
                problems, files);
        return CT_EXIT_ERROR;
    }
    printf("%s: %d file(s) match hdf5_schema\n", argv[1], files);
    return CT_EXIT_OK;
}
