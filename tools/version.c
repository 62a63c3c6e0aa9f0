/* fshield version: the release this program was built from (the Makefile takes it from
 * tools/debian/changelog, so the package and the program cannot disagree). */
#include <stdio.h>

#include "meta/common/status.h"
#include "tools/commands.h"

#ifndef FSHIELD_VERSION
#error "FSHIELD_VERSION is set by the Makefile"
#endif

const char usage_version[] =
	"version\n"
	"  Prints \"fshield VERSION\" (also: fshield --version).\n";

int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		print_usage(stderr, usage_version);
		return FS_ST_USAGE;
	}
	printf("fshield %s\n", FSHIELD_VERSION);
	return 0;
}
