/*
 * cmd_phantoms.c — `ctsweep phantoms`: writes the synthetic lung CT set
 * (CT_COVID/ and CT_NonCOVID/ PNG folders) used as the embedded default
 * data set.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "data/phantom.h"

static void phantoms_usage(FILE *f) {
    fprintf(f,
            "usage: ctsweep phantoms -o DIR [-n N] [--seed S] [--size PX]\n"
            "  -o, --output DIR   folder to write CT_COVID/ and CT_NonCOVID/ into\n"
            "  -n, --count N      number of images, half of them positive (default 200)\n"
            "  --seed S           seed; each image is a function of (seed, index) (default 0)\n"
            "  --size PX          width and height in pixels (default 128)\n");
}

static int parse_u64(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cmd_phantoms(int argc, char **argv) {
    static const struct option longopts[] = {{"output", required_argument, 0, 'o'},
                                             {"count", required_argument, 0, 'n'},
                                             {"seed", required_argument, 0, 's'},
                                             {"size", required_argument, 0, 'z'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *dir = NULL;
    unsigned long long n = 200, seed = 0, size = 128;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n':
            if (parse_u64(optarg, 2, 1000000, &n)) {
                fprintf(stderr, "ctsweep phantoms: -n '%s': expected an integer from 2 to 1000000\n", optarg);
                return CT_EXIT_USAGE;
            }
            break;
        case 's':
            if (parse_u64(optarg, 0, UINT64_MAX, &seed)) {
                fprintf(stderr, "ctsweep phantoms: --seed '%s': expected a non-negative integer\n", optarg);
                return CT_EXIT_USAGE;
            }
            break;
        case 'z':
            if (parse_u64(optarg, 32, 4096, &size)) {
                fprintf(stderr, "ctsweep phantoms: --size '%s': expected an integer from 32 to 4096\n", optarg);
                return CT_EXIT_USAGE;
            }
            break;
        case 'h': phantoms_usage(stdout); return CT_EXIT_OK;
        default: phantoms_usage(stderr); return CT_EXIT_USAGE;
        }
    }
    if (!dir || optind != argc) {
        fprintf(stderr, "ctsweep phantoms: %s\n", !dir ? "-o DIR is required" : "unexpected argument");
        return CT_EXIT_USAGE;
    }
    CtError err = {{0}};
    double t0 = ct_now();
    if (phantom_write_set(dir, (size_t)n, (uint64_t)seed, (size_t)size, &err)) {
        fprintf(stderr, "ctsweep: error: %s\n", err.msg);
        return CT_EXIT_ERROR;
    }
    ct_info("phantoms: %llu images of %llux%llu (seed %llu) in %.2f s -> %s/CT_COVID, %s/CT_NonCOVID", n, size, size,
            seed, ct_now() - t0, dir, dir);
    return CT_EXIT_OK;
}
