/* fshield init: a new volume in an empty backing directory, registered at version 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "meta/anchor/anchor.h"

#include "crypto/aead.h"
#include "meta/common/status.h"
#include "tools/commands.h"
#include "tools/keyopts.h"

const char usage_init[] =
	"init [--key-file F | --passphrase-file F | --extpass CMD] [--trust URI] [--chunk-size N]\n"
	"     [--cipher aes-256-gcm|xchacha20-poly1305] DIR\n"
	"   or: fshield init --trust cas://HOST:PORT/NS/SESSION/VOLUME [--tls-cert F --tls-key F --ca F]\n"
	"                    [--cas-creator FINGERPRINT] [--chunk-size N] DIR\n"
	"  Creates a protected volume in the empty directory DIR and registers version 0 with the trust\n"
	"  anchor (default file:/var/lib/fshield/trust.db, or $FSHIELD_TRUST; 'none' opts out of rollback\n"
	"  protection). Chunk size: a power of two from 4096 to 1048576 (default 65536). With a cas://\n"
	"  anchor and no key option, the CAS generates and releases the volume key (docs/CAS.md);\n"
	"  --cas-creator refuses a session that another certificate than FINGERPRINT created. With no key\n"
	"  option on a terminal, a new passphrase is asked for twice. --passphrase-file - reads standard\n"
	"  input.\n";

int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = { KEYOPTS_LONG, { "chunk-size", required_argument, NULL, OPT_CHUNK_SIZE },
						  { "cipher", required_argument, NULL, OPT_CIPHER },
						  { "help", no_argument, NULL, 'h' }, { 0 } };
	fs_volume_opts o = { 0 };
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (keyopts_apply(c, optarg, &o))
			continue;
		if (c == OPT_CHUNK_SIZE) {
			char *end;
			unsigned long n = strtoul(optarg, &end, 0);
			if (!*optarg || *end || n == 0 || n > (1u << 30)) {
				fprintf(stderr, "fshield init: bad chunk size '%s': a power of two from 4096 to 1048576\n", optarg);
				return FS_ST_USAGE;
			}
			o.chunk_size = (uint32_t)n;
		} else if (c == OPT_CIPHER) {
			o.aead_alg = !strcmp(optarg, "aes-256-gcm") ? FS_AEAD_AES256GCM
				     : !strcmp(optarg, "xchacha20-poly1305") ? FS_AEAD_XCHACHA20POLY1305 : -1;
			if (o.aead_alg < 0) {
				fprintf(stderr, "fshield init: unknown cipher '%s'\n", optarg);
				return FS_ST_USAGE;
			}
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_init);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (optind != argc - 1) {
		print_usage(stderr, usage_init);
		return FS_ST_USAGE;
	}
	o.dir = argv[optind];
	char err[512] = "";
	int est = keyopts_env(&o, err, sizeof(err));
	if (est != 0) {
		fprintf(stderr, "fshield init: %s\n", err);
		return est;
	}
	keyopts_held held = { 0 };
	int st = keyopts_resolve(&o, keyopts_extpass(), KEYIN_CONFIRM, &held, err, sizeof(err));
	if (!st)
		st = fsv_create(&o, err, sizeof(err));
	if (st) {
		fprintf(stderr, "fshield init: %s\n", err);
		keyopts_release(&held);
		return st;
	}
	/* Show what was made. */
	fs_volume *v;
	o.readonly = 1;
	if (fsv_open(&o, &v, err, sizeof(err)) == 0) {
		fs_volume_info in;
		char id[33];
		fsv_info(v, &in);
		fs_hex(id, in.volid, 16);
		printf("created volume %s in %s (chunk size %u, %s, trust %s)\n", id, o.dir, in.chunk_size,
		       fs_aead_alg_name(in.aead_alg), fs_anchor_default_uri(o.trust_uri));
		if (in.anchor_desc[0]) /* who runs the CAS and who owns the session: check them */
			printf("trust anchor: %s\n", in.anchor_desc);
		fsv_close(v);
	} else {
		fprintf(stderr, "fshield init: created the volume in %s, but it does not open: %s\n", o.dir, err);
		st = FS_ST_IO;
	}
	keyopts_release(&held);
	return st;
}
