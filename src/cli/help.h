/* The command table and what is read from it: help, the command list, shell
 * completion (cli/help.c). Each command's help text lives next to the
 * command (fp_help_serve in serve.c, ...) and starts with its usage lines:
 *
 *   usage: fogport CMD SUB [--option ARG] [--flag]
 *          fogport CMD OTHER ...
 *
 * then a blank line, what it does (options explained), and "examples:" with
 * one command a line ("  fogport CMD ..."). Sub-commands are the lowercase
 * words after CMD in the usage lines ("add|passwd": alternatives); options
 * and their arguments are read from the same lines (FILE and PREFIX complete
 * files, DIR directories, a|b the words). */
#ifndef FP_CLI_HELP_H
#define FP_CLI_HELP_H

#include <stddef.h>
#include <stdio.h>

struct fp_cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;    /* NULL: no help (internal) */
    const char *summary; /* one line for `fogport help`; NULL: not listed */
};
extern const struct fp_cli_command fp_cli_commands[];
extern const size_t fp_cli_ncommands;

/* Print the help of command name. */
void fp_cli_help(const char *name);
/* argv (from the command word on) asks for help: --help or -h right after
 * the command and its sub-command words. Print the help of that
 * sub-command and return 0; else -1 (later, the command's own option
 * parsing answers --help). */
int fp_cli_help_for(int argc, char **argv);
/* The list of commands with their summaries. */
void fp_cli_usage(FILE *f);
/* fogport help [--commands | CMD [SUB...]] */
int fp_cmd_help(int argc, char **argv);
/* fogport __complete WORD... CURRENT (the bash completion asks it) */
int fp_cmd_complete(int argc, char **argv);

#endif
