/* fshield cas seal-store / rotate-master-key: the store's volume keys sealed under a master key for the
 * first time, or re-sealed under a new one (docs/CAS.md, "Keys at rest"). Both change the store in one
 * atomic step and are run with every CAS on that store stopped. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <sodium.h>
#include <string.h>

#include "crypto/keys.h"
#include "meta/cas/keyseal.h"
#include "meta/cas/store.h"
#include "meta/common/status.h"
#include "tools/cas.h"

const char usage_cas_keys[] =
	"cas seal-store --store SPEC --master-key-file F [ETCD TLS OPTIONS]\n"
	"      seals the volume keys of a store that keeps them in clear (made by an older fshield)\n"
	"    cas rotate-master-key --store SPEC --master-key-file OLD --new-master-key-file NEW [ETCD TLS OPTIONS]\n"
	"      re-seals every volume key under NEW; OLD no longer opens the store\n"
	"  ETCD TLS OPTIONS: --etcd-ca F [--etcd-cert F --etcd-key F]. Stop every CAS on the store first.\n";

int cas_keys_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "master-key-file", required_argument, NULL, 'I' },
		{ "new-master-key-file", required_argument, NULL, 'N' },
		{ "etcd-ca", required_argument, NULL, OPT_ETCD_CA },
		{ "etcd-cert", required_argument, NULL, OPT_ETCD_CERT },
		{ "etcd-key", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cmd = argv[0], *store = NULL, *oldf = NULL, *newf = NULL;
	struct cas_store_conf conf = { 0 };
	int rotate = !strcmp(cmd, "rotate-master-key"), c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': store = optarg; break;
		case 'I': oldf = optarg; break;
		case 'N': newf = optarg; break;
		case OPT_ETCD_CA: conf.etcd_ca = optarg; break;
		case OPT_ETCD_CERT: conf.etcd_cert = optarg; break;
		case 'E': conf.etcd_key = optarg; break;
		case 'h': printf("usage: fshield %s", usage_cas_keys); return 0;
		default: fprintf(stderr, "usage: fshield %s", usage_cas_keys); return FS_ST_USAGE;
		}
	}
	if (optind != argc || !store || !oldf || (rotate != (newf != NULL))) {
		fprintf(stderr, "usage: fshield %s", usage_cas_keys);
		return FS_ST_USAGE;
	}
	uint8_t *oldk = fs_key_alloc(), *newk = fs_key_alloc();
	char err[600];
	int st = FS_ST_IO, rc = -ENOMEM;
	if (!oldk || !newk) {
		snprintf(err, sizeof(err), "out of memory (or locked memory)");
		goto out;
	}
	/* seal-store: the one key file is the new master key; rotate: the old, then the new. */
	if ((rc = cas_master_key_file(oldf, rotate ? oldk : newk, err, sizeof(err))) != 0 ||
	    (rotate && (rc = cas_master_key_file(newf, newk, err, sizeof(err))) != 0))
		goto out;
	if (rotate && sodium_memcmp(oldk, newk, 32) == 0) {
		snprintf(err, sizeof(err), "the new master key is the old one");
		st = FS_ST_USAGE;
		rc = -EINVAL;
		goto out;
	}
	conf.master = newk;
	unsigned n = 0;
	rc = cas_store_rekey(store, &conf, rotate ? oldk : NULL, &n, err, sizeof(err));
	if (!rc)
		printf("fshield cas %s: %u volume key%s sealed under %s\n", cmd, n, n == 1 ? "" : "s", rotate ? newf : oldf);
out:
	fs_key_free(oldk);
	fs_key_free(newk);
	if (rc) {
		fprintf(stderr, "fshield cas %s: %s\n", cmd, err);
		if (rc == -EKEYREJECTED || rc == -EINVAL)
			st = FS_ST_USAGE;
		return st;
	}
	return 0;
}
