#ifndef FS_COMMANDS_H
#define FS_COMMANDS_H
#include <stdio.h>

#define CMD(name, summary) int cmd_##name(int argc, char **argv); extern const char usage_##name[];
#include "tools/commands.def"
#undef CMD

/* Prints "usage: fshield " and a command's usage text to f (stdout for help, stderr for mistakes). */
void print_usage(FILE *f, const char *usage);
/* 1 when argv[1..] holds --help or -h before any "--": the command then prints its usage on standard
 * output and exits 0, whatever else it was given. */
int help_requested(int argc, char **argv);
#endif
