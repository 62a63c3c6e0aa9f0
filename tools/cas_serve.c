/* fshield cas serve: the command line of the CAS server (meta/cas/server.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "meta/common/status.h"
#include "meta/cas/proto.h"
#include "meta/cas/server.h"
#include "tools/cas.h"

#ifdef FS_TEST_HOOKS
#define USAGE_TEST_OPTS " [--drop-replies-after N]"
#else
#define USAGE_TEST_OPTS ""
#endif
const char usage_cas_serve[] =
	"cas serve --listen HOST:PORT --tls-cert F --tls-key F --client-ca F\n"
	"          --store (sqlite:PATH | etcd://HOST:PORT[,HOST:PORT...])\n"
	"          --audit-key-file F --master-key-file F [--etcd-ca F [--etcd-cert F --etcd-key F]]\n"
	"          [--max-body BYTES] [--max-connections-per-address N]\n"
	"          [--handshake-timeout SECONDS] [--max-sessions-per-client N]" USAGE_TEST_OPTS "\n";

/* A whole number in [lo, hi], or a usage message. */
static int count_opt(const char *arg, unsigned lo, unsigned hi, unsigned *out, const char *name)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);
	if (!*arg || *end || v < lo || v > hi) {
		fprintf(stderr, "fshield cas serve: %s: a whole number from %u to %u\n", name, lo, hi);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int cas_serve_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },	{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },	{ "client-ca", required_argument, NULL, 'a' },
		{ "store", required_argument, NULL, 's' },	{ "max-body", required_argument, NULL, 'm' },
		{ "audit-key-file", required_argument, NULL, 'K' },
		{ "master-key-file", required_argument, NULL, 'I' },
		{ "etcd-ca", required_argument, NULL, OPT_ETCD_CA },
		{ "etcd-cert", required_argument, NULL, OPT_ETCD_CERT },
		{ "etcd-key", required_argument, NULL, 'E' },
		{ "max-connections-per-address", required_argument, NULL, 'P' },
		{ "handshake-timeout", required_argument, NULL, 'T' },
		{ "max-sessions-per-client", required_argument, NULL, 'S' },
#ifdef FS_TEST_HOOKS
		{ "drop-replies-after", required_argument, NULL, 'd' },
#endif
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cas_server_opts o = { .max_body = 64 * 1024,
				     .max_conn_per_address = CAS_DEFAULT_CONN_PER_ADDRESS,
				     .handshake_timeout = CAS_DEFAULT_HANDSHAKE_TIMEOUT,
				     .max_sessions_per_client = CAS_DEFAULT_SESSIONS_PER_CLIENT };
#ifdef FS_TEST_HOOKS
	o.drop_after = -1;
#endif
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'l': o.listen = optarg; break;
		case 'c': o.cert = optarg; break;
		case 'k': o.key = optarg; break;
		case 'a': o.client_ca = optarg; break;
		case 's': o.store = optarg; break;
		case 'K': o.audit_key_file = optarg; break;
		case 'I': o.master_key_file = optarg; break;
		case OPT_ETCD_CA: o.etcd_ca = optarg; break;
		case OPT_ETCD_CERT: o.etcd_cert = optarg; break;
		case 'E': o.etcd_key = optarg; break;
		case 'P':
			if (count_opt(optarg, 1, CAS_MAX_CONNECTIONS, &o.max_conn_per_address, "--max-connections-per-address"))
				return FS_ST_USAGE;
			break;
		case 'T':
			if (count_opt(optarg, 1, 600, &o.handshake_timeout, "--handshake-timeout"))
				return FS_ST_USAGE;
			break;
		case 'S':
			if (count_opt(optarg, 1, 1000000, &o.max_sessions_per_client, "--max-sessions-per-client"))
				return FS_ST_USAGE;
			break;
		case 'm':
			o.max_body = strtoul(optarg, &end, 10);
			if (*end || o.max_body < 1024 || o.max_body > CAS_MAX_BODY) {
				fprintf(stderr, "fshield cas serve: --max-body: 1024 to %d bytes\n", CAS_MAX_BODY);
				return FS_ST_USAGE;
			}
			break;
#ifdef FS_TEST_HOOKS
		case 'd':
			o.drop_after = strtol(optarg, &end, 10);
			if (*end || o.drop_after < 0) {
				fprintf(stderr, "fshield cas serve: --drop-replies-after: a count\n");
				return FS_ST_USAGE;
			}
			break;
#endif
		case 'h': printf("usage: fshield %s", usage_cas_serve); return 0;
		default: fprintf(stderr, "usage: fshield %s", usage_cas_serve); return FS_ST_USAGE;
		}
	}
	if (optind != argc || !o.listen || !o.cert || !o.key || !o.client_ca || !o.store || !o.audit_key_file ||
	    !o.master_key_file) {
		fprintf(stderr, "usage: fshield %s", usage_cas_serve);
		return FS_ST_USAGE;
	}
	char err[512];
	if (cas_server_run(&o, err, sizeof(err)) != 0) {
		fprintf(stderr, "fshield cas serve: %s\n", err);
		return FS_ST_IO;
	}
	return 0;
}
