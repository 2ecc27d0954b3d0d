/*
 * main.c — the ctsweep command: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: ctsweep COMMAND ...\n");
        return 2;
    }
    return 0;
}
