/* fshield keygen [-o FILE]: a new random 256-bit volume key, as hex. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "tools/commands.h"

const char usage_keygen[] =
	"keygen [-o FILE]\n"
	"  Writes a new random volume key (64 hex digits) to FILE, created with mode 0600 and never\n"
	"  overwritten, or to standard output.\n";

int cmd_keygen(int argc, char **argv)
{
	const char *out = NULL;
	int c;
	while ((c = getopt(argc, argv, "o:h")) != -1) {
		if (c == 'o') {
			out = optarg;
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_keygen);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (optind != argc) {
		print_usage(stderr, usage_keygen);
		return FS_ST_USAGE;
	}
	int rc = fs_key_generate_file(out);
	if (rc) {
		fprintf(stderr, "fshield keygen: %s: %s\n", out ? out : "stdout", strerror(-rc));
		return rc == -EEXIST ? FS_ST_USAGE : FS_ST_IO;
	}
	return 0;
}
