/* Usage text printing shared by every subcommand (a leaf, so subcommands never call back into main). */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"

void print_usage(FILE *f, const char *usage)
{
	fprintf(f, "usage: fshield %s", usage);
}

int help_requested(int argc, char **argv)
{
	/* Every command and subcommand takes --help and -h the same way, wherever they stand before "--". */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}
