/*
 * commands.h — the subcommands of the ctsweep command line. Each takes the
 * arguments after its name (argv[0] is the subcommand) and returns the
 * process exit code.
 */
#ifndef CTSWEEP_CLI_COMMANDS_H
#define CTSWEEP_CLI_COMMANDS_H

int cmd_export(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_phantoms(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_validate(int argc, char **argv);

// Exit codes shared by every command.
#define CT_EXIT_OK 0
#define CT_EXIT_ERROR 1
#define CT_EXIT_USAGE 2
// Some inputs were skipped (each named on stderr), the rest done.
#define CT_EXIT_SKIPPED 3

#endif
