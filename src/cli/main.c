/*
 * main.c — the ctsweep command: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/commands.h"
#include "results/h5io.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} Command;

static const Command COMMANDS[] = {
    {"run", cmd_run, "run CONFIG.yaml -o OUTDIR [--resume] [--retry-failed] [--slice I/N] [--dry-run]   (under mpirun -n N)"},
    {"merge", cmd_merge, "merge -o OUTDIR SLICE_DIR...   (the folders of `run --slice` into one)"},
    {"status", cmd_status, "status OUTDIR"},
    {"validate", cmd_validate, "validate OUTDIR"},
    {"features", cmd_features,
     "features --model M [--weights W.safetensors] --image-size S [--normalize imagenet|unit] -o OUT.h5 IMAGE..."},
    {"export", cmd_export, "export OUTDIR --trial ID [--epoch selected|final] -o MODEL.safetensors"},
    {"predict", cmd_predict,
     "predict MODEL.safetensors IMAGE... -o OUT.csv [--saliency DIR] [--threshold T] [--backend cpu|cuda]"},
    {"phantoms", cmd_phantoms, "phantoms -o DIR [-n N] [--seed S] [--size PX]"},
};

static void usage(FILE *f) {
    fprintf(f, "ctsweep %s — hyperparameter sweeps of transfer-learning CNN classifiers\n\nusage:\n",
            CTSWEEP_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) fprintf(f, "  ctsweep %s\n", COMMANDS[i].usage);
    fprintf(f, "\n'ctsweep COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CT_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CT_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ctsweep %s (CPU backend: oneDNN, ISA %s)\n", CTSWEEP_VERSION, backend_cpu_isa());
        return CT_EXIT_OK;
    }
    h5io_init();
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ctsweep: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CT_EXIT_USAGE;
}
