/* fshield cas: run the CAS server, and talk to one: upload, update and show sessions, read the audit log;
 * print a certificate's fingerprint (the identity sessions name clients by). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "meta/cas/client.h"
#include "meta/cas/proto.h"
#include "meta/cas/session.h"
#include "tools/cas.h"
#include "tools/commands.h"
#include "tools/keyopts.h"

#ifdef FS_TEST_HOOKS
#define USAGE_SERVE_TEST_OPTS " [--drop-replies-after N]"
#else
#define USAGE_SERVE_TEST_OPTS ""
#endif
const char usage_cas[] =
	"cas COMMAND ...\n"
	"  The Configuration and Attestation Service (docs/CAS.md): keeps per volume its key and latest\n"
	"  (version, root) behind mutually authenticated TLS 1.3.\n"
	"    cas serve --listen HOST:PORT --tls-cert F --tls-key F --client-ca F\n"
	"              --store (sqlite:PATH | etcd://HOST:PORT[,HOST:PORT...])\n"
	"              --audit-key-file F --master-key-file F [--etcd-ca F [--etcd-cert F --etcd-key F]]\n"
	"              [--max-body BYTES] [--max-connections-per-address N]\n"
	"              [--handshake-timeout SECONDS] [--max-sessions-per-client N]" USAGE_SERVE_TEST_OPTS "\n"
	"    cas seal-store --store SPEC --master-key-file F   seal the clear volume keys of an old store\n"
	"    cas rotate-master-key --store SPEC --master-key-file OLD --new-master-key-file NEW\n"
	"                                                     re-seal every volume key under a new master key\n"
	"    cas session create FILE.yaml [CLIENT OPTIONS]   upload a new session; you become its creator\n"
	"    cas session update FILE.yaml [CLIENT OPTIONS]   replace a session (its creator only)\n"
	"    cas session show NAMESPACE/SESSION [CLIENT OPTIONS]  the session (its creator), or who created it\n"
	"                                                     (a client it lists)\n"
	"    cas audit NAMESPACE/SESSION [--after SEQ] [CLIENT OPTIONS]   the tag updates of its volumes and\n"
	"                                                     the refusals, once the CAS checked the log's chain\n"
	"    cas fingerprint CERT.pem                         SHA-256 of a certificate, as sessions name clients\n"
	"    cas fingerprint --public-key CERT.pem            SHA-256 of its public key, as volumes pin a CAS\n"
	"  CLIENT OPTIONS: --cas HOST:PORT (or $FSHIELD_CAS), --tls-cert F, --tls-key F, --ca F (or\n"
	"  $FSHIELD_TLS_CERT, $FSHIELD_TLS_KEY, $FSHIELD_CA).\n"
	"  Exit: 0; 1 the CAS's audit log is broken (cas audit);\n  6 the CAS is unreachable, the TLS handshake failed, or the CAS refused the request;\n"
	"  64 usage; 74 a file cannot be read.\n";

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = CAS_MAX_BODY + 1;
	char *b = malloc(cap + 1);
	*len = b ? fread(b, 1, cap, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!b || bad) {
		free(b);
		return NULL;
	}
	b[*len] = 0;
	return b;
}

struct copts {
	const char *cas;
	cas_tls tls;
	uint64_t after;
};

/* Parses the client options; returns the index of the first operand, or -1. */
static int client_opts(int argc, char **argv, struct copts *o, const char *what)
{
	static const struct option longopts[] = { { "cas", required_argument, NULL, 'c' },
						  { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
						  { "tls-key", required_argument, NULL, OPT_TLS_KEY },
						  { "ca", required_argument, NULL, OPT_CA },
						  { "after", required_argument, NULL, 'a' },
						  { 0 } };
	int c;
	optind = 1;
	o->cas = getenv("FSHIELD_CAS");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'c': o->cas = optarg; break;
		case OPT_TLS_CERT: o->tls.cert = optarg; break;
		case OPT_TLS_KEY: o->tls.key = optarg; break;
		case OPT_CA: o->tls.ca = optarg; break;
		case 'a':
			if (strcmp(what, "audit") != 0)
				return -1;
			o->after = strtoull(optarg, &end, 10);
			if (*end || !*optarg)
				return -1;
			break;
		default: return -1;
		}
	}
	if (!o->cas || !*o->cas) {
		fprintf(stderr, "fshield cas %s: which CAS? --cas HOST:PORT or $FSHIELD_CAS\n", what);
		return -1;
	}
	return optind;
}

/* One request; prints the answer (pretty JSON) on success unless quiet, the reason on failure; *out (if
 * not NULL) gets the parsed answer of a success. */
static int request(const char *what, const struct copts *o, const char *method, const char *path, const char *ctype,
		   const char *body, size_t len, int quiet, json_t **out)
{
	cas_tls tls = o->tls;
	cas_client *cl;
	char err[512];
	if (keyopts_tls_env(&tls, err, sizeof(err)) != 0 || cas_client_new(o->cas, &tls, &cl, err, sizeof(err)) != 0) {
		fprintf(stderr, "fshield cas %s: %s\n", what, err);
		return FS_ST_USAGE;
	}
	long status = 0;
	char *resp = NULL;
	size_t rlen = 0;
	int rc = cas_client_request(cl, method, path, ctype, body, len, &status, &resp, &rlen, err, sizeof(err));
	cas_client_free(cl);
	if (rc) {
		fprintf(stderr, "fshield cas %s: %s\n", what, err);
		return FS_ST_ANCHOR;
	}
	json_t *j = json_loadb(resp, rlen, 0, NULL);
	int st = status >= 200 && status < 300 ? 0 : FS_ST_ANCHOR;
	if (st) {
		json_t *m = j ? json_object_get(j, "message") : NULL;
		fprintf(stderr, "fshield cas %s: refused (HTTP %ld): %s\n", what, status,
			m && json_is_string(m) ? json_string_value(m) : resp);
	} else if (!quiet) {
		char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		printf("%s\n", pretty ? pretty : resp);
		free(pretty);
	}
	if (out && !st)
		*out = json_incref(j);
	json_decref(j);
	free(resp);
	return st;
}

static int call(const char *what, const struct copts *o, const char *method, const char *path, const char *ctype,
		const char *body, size_t len, int quiet)
{
	return request(what, o, method, path, ctype, body, len, quiet, NULL);
}

static int cmd_session(int argc, char **argv)
{
	if (argc < 2) {
		print_usage(stderr, usage_cas);
		return FS_ST_USAGE;
	}
	const char *sub = argv[1];
	struct copts o = { 0 };
	int i = client_opts(argc - 1, argv + 1, &o, "session");
	if (i < 0 || i != argc - 2) {
		print_usage(stderr, usage_cas);
		return FS_ST_USAGE;
	}
	const char *arg = argv[1 + i];
	if (!strcmp(sub, "show")) {
		if (cas_session_name_valid(arg) != 0) {
			fprintf(stderr, "fshield cas session show: not a session name (NAMESPACE/SESSION): %s\n", arg);
			return FS_ST_USAGE;
		}
		char path[300];
		snprintf(path, sizeof(path), "/v1/sessions/%s", arg);
		return call("session show", &o, "GET", path, NULL, NULL, 0, 0);
	}
	if (strcmp(sub, "create") != 0 && strcmp(sub, "update") != 0) {
		print_usage(stderr, usage_cas);
		return FS_ST_USAGE;
	}
	size_t len;
	char *yaml = slurp(arg, &len);
	if (!yaml) {
		fprintf(stderr, "fshield cas session %s: %s: %s\n", sub, arg, strerror(errno));
		return FS_ST_IO;
	}
	char path[300] = "/v1/sessions";
	if (!strcmp(sub, "update")) {
		/* The name in the URL comes from the file; the server checks the two agree. */
		cas_session s;
		char why[512];
		if (cas_session_from_yaml(yaml, len, &s, why, sizeof(why)) != 0) {
			fprintf(stderr, "fshield cas session update: %s: %s\n", arg, why);
			free(yaml);
			return FS_ST_USAGE;
		}
		snprintf(path, sizeof(path), "/v1/sessions/%s", s.name);
		cas_session_free(&s);
	}
	char what[32];
	snprintf(what, sizeof(what), "session %s", sub);
	int st = call(what, &o, !strcmp(sub, "update") ? "PUT" : "POST", path, "application/yaml", yaml, len, 0);
	free(yaml);
	return st;
}

static int cmd_audit(int argc, char **argv)
{
	struct copts o = { 0 };
	int i = client_opts(argc, argv, &o, "audit");
	if (i < 0 || i != argc - 1 || cas_session_name_valid(argv[i]) != 0) {
		print_usage(stderr, usage_cas);
		return FS_ST_USAGE;
	}
	char path[400];
	snprintf(path, sizeof(path), "/v1/audit/%s?after=%llu", argv[i], (unsigned long long)o.after);
	json_t *j = NULL;
	int st = request("audit", &o, "GET", path, NULL, NULL, 0, 1, &j);
	if (st)
		return st;
	/* The CAS checked the whole chain; a broken one is reported, not printed as if it were the log. */
	json_t *chain = json_object_get(j, "chain"), *why = json_object_get(chain, "reason");
	if (!json_is_true(json_object_get(chain, "intact"))) {
		fprintf(stderr,
			"fshield cas audit: the CAS's audit log is broken at record %lld: %s. Its store was edited "
			"outside the CAS; restore the store from a backup and find out who could write it.\n",
			(long long)json_integer_value(json_object_get(chain, "broken_at")),
			json_is_string(why) ? json_string_value(why) : "no reason given");
		json_decref(j);
		return FS_ST_TAMPER;
	}
	char *pretty = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("%s\n", pretty ? pretty : "{}");
	free(pretty);
	json_decref(j);
	return 0;
}

static int cmd_fingerprint(int argc, char **argv)
{
	int of_key = argc == 3 && !strcmp(argv[1], "--public-key");
	if (of_key) {
		argv++;
		argc--;
	}
	if (argc != 2 || argv[1][0] == '-') {
		print_usage(stderr, usage_cas);
		return FS_ST_USAGE;
	}
	size_t len;
	char *pem = slurp(argv[1], &len);
	uint8_t fp[32];
	if (!pem) {
		fprintf(stderr, "fshield cas fingerprint: %s: %s\n", argv[1], strerror(errno));
		return FS_ST_IO;
	}
	int rc = of_key ? cas_cert_key_fingerprint_pem(pem, len, fp) : cas_cert_fingerprint_pem(pem, len, fp);
	free(pem);
	if (rc) {
		fprintf(stderr, "fshield cas fingerprint: %s: no PEM certificate\n", argv[1]);
		return FS_ST_USAGE;
	}
	char hex[65];
	fs_hex(hex, fp, 32);
	printf("%s\n", hex);
	return 0;
}

int cmd_cas(int argc, char **argv)
{
	if (argc < 2) {
		print_usage(stderr, usage_cas);
		return FS_ST_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "serve"))
		return cas_serve_main(argc - 1, argv + 1);
	if (!strcmp(sub, "seal-store") || !strcmp(sub, "rotate-master-key"))
		return cas_keys_main(argc - 1, argv + 1);
	if (!strcmp(sub, "session"))
		return cmd_session(argc - 1, argv + 1);
	if (!strcmp(sub, "audit"))
		return cmd_audit(argc - 1, argv + 1);
	if (!strcmp(sub, "fingerprint"))
		return cmd_fingerprint(argc - 1, argv + 1);
	if (!strcmp(sub, "help") || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		print_usage(stdout, usage_cas);
		return 0;
	}
	fprintf(stderr, "fshield cas: unknown command '%s'\n", sub);
	print_usage(stderr, usage_cas);
	return FS_ST_USAGE;
}
