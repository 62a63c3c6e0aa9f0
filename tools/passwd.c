/* fshield passwd: a new passphrase or key file for a volume, without re-encrypting it. */
#include <stdio.h>
#include <string.h>

#include "fs/volume/rekey.h"
#include "meta/common/status.h"
#include "tools/commands.h"
#include "tools/keyopts.h"

const char usage_passwd[] =
	"passwd [--key-file F | --passphrase-file F | --extpass CMD]\n"
	"       [--new-key-file F | --new-passphrase-file F | --new-extpass CMD] DIR\n"
	"  Changes the key that opens the volume in DIR: the current key (or passphrase, asked on a terminal)\n"
	"  opens its header, and the same volume key is wrapped again under the new passphrase (asked twice\n"
	"  on a terminal when no --new option is given) or the new key file. No data is re-encrypted; the\n"
	"  header is replaced atomically once the new one opens. The old passphrase or key file no longer\n"
	"  opens the volume, but one that leaked with an old copy of the header still does (docs/CLI.md).\n"
	"  The volume must not be mounted read-write.\n";

enum { OPT_NEW_KEY = 2000, OPT_NEW_PASS, OPT_NEW_EXTPASS };

int cmd_passwd(int argc, char **argv)
{
	static const struct option longopts[] = { KEYOPTS_LONG,
						  { "new-key-file", required_argument, NULL, OPT_NEW_KEY },
						  { "new-passphrase-file", required_argument, NULL, OPT_NEW_PASS },
						  { "new-extpass", required_argument, NULL, OPT_NEW_EXTPASS },
						  { "help", no_argument, NULL, 'h' },
						  { 0 } };
	fs_volume_opts o = { 0 }, n = { 0 };
	const char *new_extpass = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (keyopts_apply(c, optarg, &o))
			continue;
		if (c == OPT_NEW_KEY) {
			n.key_file = optarg;
		} else if (c == OPT_NEW_PASS) {
			n.passphrase_file = optarg;
		} else if (c == OPT_NEW_EXTPASS) {
			new_extpass = optarg;
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_passwd);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (optind != argc - 1) {
		print_usage(stderr, usage_passwd);
		return FS_ST_USAGE;
	}
	o.dir = n.dir = argv[optind];
	o.readonly = 1;
	if (o.passphrase_file && n.passphrase_file && !strcmp(o.passphrase_file, "-") && !strcmp(n.passphrase_file, "-")) {
		fprintf(stderr, "fshield passwd: standard input (-) can give the old or the new passphrase, not both\n");
		return FS_ST_USAGE;
	}
	char err[512] = "";
	keyopts_held oh = { 0 }, nh = { 0 };
	int st = keyopts_env(&o, err, sizeof(err));
	if (!st)
		st = keyopts_resolve(&o, keyopts_extpass(), 0, &oh, err, sizeof(err));
	if (!st && !o.key && !o.passphrase)
		st = FS_ST_USAGE, snprintf(err, sizeof(err), "the current key is needed: --key-file F, --passphrase-file F "
							     "or --extpass CMD, or run on a terminal");
	n.trust_uri = "none"; /* the new key is never one a CAS releases: never skip asking for it */
	if (!st)
		st = keyopts_resolve(&n, new_extpass, KEYIN_CONFIRM, &nh, err, sizeof(err));
	if (!st && !n.key && !n.passphrase)
		st = FS_ST_USAGE, snprintf(err, sizeof(err), "the new key is needed: --new-key-file F, "
							     "--new-passphrase-file F or --new-extpass CMD, or run on a terminal");
	if (!st)
		st = fsv_rekey(&o, &n, err, sizeof(err));
	keyopts_release(&oh);
	keyopts_release(&nh);
	if (st) {
		fprintf(stderr, "fshield passwd: %s\n", err);
		return st;
	}
	printf("passwd: %s now opens with the new %s; the old one no longer does\n", o.dir,
	       n.key ? "key file" : "passphrase");
	return 0;
}
