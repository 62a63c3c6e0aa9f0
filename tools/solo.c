/* fshield-verify, fshield-info: one subcommand as its own small program (built with -DSOLO_CMD=NAME), so
 * that an auditor's checker links no FUSE, no HTTP server and no archive reader. */
#include <stdio.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "tools/commands.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define STR2(a) #a
#define STR(a) STR2(a)

int main(int argc, char **argv)
{
	if (fs_crypto_init() != 0) {
		fprintf(stderr, "fshield-%s: cannot initialise the crypto library\n", STR(SOLO_CMD));
		return FS_ST_IO;
	}
	if (help_requested(argc, argv)) {
		print_usage(stdout, CAT(usage_, SOLO_CMD));
		return 0;
	}
	return CAT(cmd_, SOLO_CMD)(argc, argv);
}
