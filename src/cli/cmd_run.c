/*
 * cmd_run.c — `ctsweep run CONFIG.yaml -o OUTDIR [--resume]`, under mpirun
 * or srun with any number of ranks (one rank is master and worker).
 */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"
#include "config/grid.h"
#include "sweep/sweep.h"

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: [mpirun -n N] ctsweep run CONFIG.yaml -o OUTDIR [--resume] [--retry-failed] [--slice I/N] [--dry-run]\n"
            "                     [--break-lock]\n"
            "  -o, --output DIR   results directory: DIR/sweep.h5 and DIR/trials/<trial_id>.h5\n"
            "  --resume           continue the sweep in DIR: finished trials are kept, the rest run\n"
            "  --retry-failed     with --resume, run failed trials again\n"
            "  --slice I/N        run only slice I (0 <= I < N) of the grid: about 1/N of the work, a model's\n"
            "                     runs kept together (Slurm job arrays: one slice per array task, each to its\n"
            "                     own OUTDIR; then `ctsweep merge -o OUT DIR...`)\n"
            "  --dry-run          list the trials and exit\n"
            "  --break-lock       take DIR's lock even though a run seems to hold it (only when that run is\n"
            "                     known to be gone: e.g. killed on a node that cannot be reached)\n"
            "  --help-config      every configuration key with its default\n"
            "exit status: 0 all trials done, 3 done but some trials failed, 1 error, 2 usage,\n"
            "             74 the results cannot be written (disk full, quota, read-only): fix that, then --resume\n"
            "             75 stopped early (signal, or a lost or hung worker): run again with --resume\n");
}

int cmd_run(int argc, char **argv) {
    static const struct option longopts[] = {{"output", required_argument, 0, 'o'},
                                             {"resume", no_argument, 0, 'r'},
                                             {"retry-failed", no_argument, 0, 'f'},
                                             {"dry-run", no_argument, 0, 'd'},
                                             {"slice", required_argument, 0, 's'},
                                             {"help-config", no_argument, 0, 'c'},
                                             {"break-lock", no_argument, 0, 'b'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    SweepArgs a = {0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': a.outdir = optarg; break;
        case 'r': a.resume = 1; break;
        case 'f': a.retry_failed = 1; break;
        case 'd': a.dry_run = 1; break;
        case 'b': a.break_lock = 1; break;
        case 's':
            if (grid_slice_parse(optarg, &a.slice, &a.n_slices)) {
                fprintf(stderr, "ctsweep run: --slice %s: expected I/N with 0 <= I < N (e.g. 0/4)\n", optarg);
                return CT_EXIT_USAGE;
            }
            break;
        case 'c': config_print_help(stdout); return CT_EXIT_OK;
        case 'h': run_usage(stdout); return CT_EXIT_OK;
        default: run_usage(stderr); return CT_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || (!a.outdir && !a.dry_run)) {
        fprintf(stderr, "ctsweep run: %s\n", optind >= argc ? "CONFIG.yaml is required" : !a.outdir ? "-o OUTDIR is required" : "one CONFIG.yaml only");
        run_usage(stderr);
        return CT_EXIT_USAGE;
    }
    a.config_path = argv[optind];
    if (!a.outdir) a.outdir = ".";
    int provided;
    sweep_install_signals();
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    int code = sweep_main(&a);
    MPI_Finalize();
    return code;
}
