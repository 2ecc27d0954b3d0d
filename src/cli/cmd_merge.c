/*
 * cmd_merge.c — `ctsweep merge -o OUTDIR DIR...`: the results folders of a
 * sweep's slices (`ctsweep run --slice I/N`, e.g. one per Slurm array task)
 * into one folder with one manifest.
 */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>

#include "cli/commands.h"
#include "sweep/sweep.h"

static void merge_usage(FILE *f) {
    fprintf(f,
            "usage: ctsweep merge -o OUTDIR [--break-lock] DIR...\n"
            "  combines the results folders of one sweep's slices (ctsweep run --slice I/N) into OUTDIR:\n"
            "  every trial file (with its checkpoint) from the folder where it got furthest, one manifest\n"
            "  for the whole grid. Trials no folder finished stay pending: `ctsweep run CONFIG -o OUTDIR\n"
            "  --resume` runs them. OUTDIR may be a previous merge of the same sweep (it is brought up to date).\n"
            "  --break-lock takes OUTDIR's lock even though a run seems to hold it (one known to be gone).\n"
            "exit status: 0 every trial done, 3 done but some trials failed, 75 some trials still pending\n"
            "             (a slice missing or unfinished), 1 error, 2 usage\n");
}

int cmd_merge(int argc, char **argv) {
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"break-lock", no_argument, 0, 'b'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int break_lock = 0;
    const char *outdir = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': outdir = optarg; break;
        case 'b': break_lock = 1; break;
        case 'h': merge_usage(stdout); return CT_EXIT_OK;
        default: merge_usage(stderr); return CT_EXIT_USAGE;
        }
    }
    if (!outdir || optind >= argc) {
        fprintf(stderr, "ctsweep merge: %s\n", !outdir ? "-o OUTDIR is required" : "at least one DIR is required");
        merge_usage(stderr);
        return CT_EXIT_USAGE;
    }
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int code;
    if (size != 1) {
        fprintf(stderr, "ctsweep merge: runs as one process (not under mpirun -n %d)\n", size);
        code = CT_EXIT_USAGE;
    } else {
        code = sweep_merge(outdir, argv + optind, (size_t)(argc - optind), break_lock);
    }
    MPI_Finalize();
    return code;
}
