/* Usage text printing shared by every subcommand (a leaf, so subcommands never call back into main). */
#include <stdio.h>

#include "tools/commands.h"

void print_usage(FILE *f, const char *usage)
{
	fprintf(f, "usage: fshield %s", usage);
}
