/* fshield trust adopt: binds a volume whose trust anchor was lost to a new one, on an operator's word. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "fs/volume/adopt.h"
#include "fs/volume/verify.h"
#include "meta/anchor/anchor.h"
#include "meta/common/status.h"
#include "tools/commands.h"
#include "tools/keyopts.h"

const char usage_trust[] =
	"trust adopt [--key-file F | --passphrase-file F | --extpass CMD] --trust URI [--yes-i-know] DIR\n"
	"  Binds the volume in DIR, as it is now, to the trust anchor URI, when the anchor it was bound to is\n"
	"  lost (a deleted trust store, a pod moved to another node). The volume is verified first (every\n"
	"  check but the missing anchor record); then the operator confirms by typing 'yes' on the terminal,\n"
	"  or gives --yes-i-know. The anchor cannot tell a lost record from a rollback: adopting an old copy\n"
	"  makes the old state the trusted one (docs/THREAT-MODEL.md). Prints the old and new anchor, the\n"
	"  version and the root.\n";

static void on_finding(void *ctx, const fs_finding *f)
{
	(void)ctx;
	fprintf(stderr, "  %s\n", f->message);
}

/* "yes" typed on the terminal. */
static int confirmed(void)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	static const char q[] = "Type yes to bind this state of the volume to the new trust anchor: ";
	char line[16] = "";
	size_t n = 0;
	if (write(fd, q, sizeof(q) - 1) == (ssize_t)sizeof(q) - 1)
		for (char ch; n < sizeof(line) - 1 && read(fd, &ch, 1) == 1 && ch != '\n';)
			line[n++] = ch;
	close(fd);
	return strcmp(line, "yes") == 0;
}

static int adopt(int argc, char **argv)
{
	static const struct option longopts[] = { KEYOPTS_LONG, { "yes-i-know", no_argument, NULL, 'y' },
						  { "help", no_argument, NULL, 'h' }, { 0 } };
	fs_volume_opts o = { 0 };
	int c, yes = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (keyopts_apply(c, optarg, &o))
			continue;
		if (c == 'y') {
			yes = 1;
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_trust);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (optind != argc - 1 || !o.trust_uri) {
		if (!o.trust_uri)
			fprintf(stderr, "fshield trust adopt: --trust URI names the new anchor; it is never taken from the "
					"environment\n");
		print_usage(stderr, usage_trust);
		return FS_ST_USAGE;
	}
	o.dir = argv[optind];
	o.readonly = 1;
	char err[1024] = "";
	keyopts_held held = { 0 };
	int st = keyopts_env(&o, err, sizeof(err));
	if (!st)
		st = keyopts_resolve(&o, keyopts_extpass(), 0, &held, err, sizeof(err));
	if (!st && !o.key && !o.passphrase && !keyopts_trust_is_cas(o.trust_uri))
		st = FS_ST_USAGE, snprintf(err, sizeof(err), "the volume's key is needed: --key-file F, --passphrase-file F "
							     "or --extpass CMD, or run on a terminal");
	if (st) {
		fprintf(stderr, "fshield trust adopt: %s\n", err);
		keyopts_release(&held);
		return st;
	}
	/* The real verify, with every check but freshness: a tampered volume is never adopted. */
	fs_verify_opts vo = { .skip_anchor = 1, .scratch_dir = getenv("TMPDIR") };
	fs_verify_result res;
	fprintf(stderr, "fshield trust adopt: verifying %s\n", o.dir);
	st = fsv_verify(&o, &vo, on_finding, NULL, &res);
	if (st || !res.have_version) {
		fprintf(stderr, "fshield trust adopt: refused: verify found the problems above (%s); nothing was changed\n",
			fs_status_name(st ? st : FS_ST_TAMPER));
		keyopts_release(&held);
		return st ? st : FS_ST_TAMPER;
	}
	char id[33], root[65], oldid[33], bound[FS_ANCHOR_URI_MAX];
	fs_hex(id, res.volid, 16);
	fs_hex(root, res.root, 32);
	if (fsv_bound_anchor_uri(o.dir, bound, sizeof(bound)) != 0)
		snprintf(bound, sizeof(bound), "(URI not recorded)");
	fprintf(stderr,
		"WARNING: trust adopt makes the state of the volume found in %s the trusted one:\n"
		"  volume %s, version %llu, root %s\n"
		"  bound to %s, to be bound to %s.\n"
		"  No anchor can check this state: if %s is an old copy (a rollback) or another writer's (a fork),\n"
		"  it becomes the trusted state. Adopt only a volume you know is the latest one.\n",
		o.dir, id, (unsigned long long)res.version, root, bound, o.trust_uri, o.dir);
	if (yes) {
		fprintf(stderr, "WARNING: --yes-i-know given: adopting without asking\n");
	} else if (!isatty(0) || !confirmed()) {
		fprintf(stderr, "fshield trust adopt: not confirmed: type 'yes' on the terminal, or give --yes-i-know; "
				"nothing was changed\n");
		keyopts_release(&held);
		return FS_ST_USAGE;
	}
	fs_adopt_result ar;
	st = fsv_adopt(&o, res.version, res.root, &ar, err, sizeof(err));
	keyopts_release(&held);
	if (st) {
		fprintf(stderr, "fshield trust adopt: %s\n", err);
		return st;
	}
	char newid[33];
	fs_hex(oldid, ar.old_id, 16);
	fs_hex(newid, ar.new_id, 16);
	printf("adopted volume %s in %s\n  old anchor  %s (anchor id %s)\n  new anchor  %s (anchor id %s)%s\n"
	       "  version     %llu\n  root        %s\n  header      %s\n",
	       id, o.dir, ar.old_uri, oldid, o.trust_uri, newid, ar.registered ? ", registered" : ", held this state already",
	       (unsigned long long)ar.version, root,
	       ar.header_rewritten ? "anchor binding rewritten" : "unchanged (same anchor id)");
	return 0;
}

int cmd_trust(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "adopt"))
		return adopt(argc - 1, argv + 1);
	int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
	print_usage(help ? stdout : stderr, usage_trust);
	return help ? 0 : FS_ST_USAGE;
}
