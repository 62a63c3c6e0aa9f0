/* fshield verify: the offline forensic check; every finding, text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "fs/volume/verify.h"
#include "tools/commands.h"
#include "tools/json_out.h"
#include "tools/keyopts.h"

const char usage_verify[] =
	"verify (--key-file F | --passphrase-file F | --extpass CMD) [--trust URI | --expect-version V --expect-root HEX]\n"
	"       [--json] DIR\n"
	"   or: fshield verify --trust cas://HOST:PORT/NS/SESSION/VOLUME [--tls-cert F --tls-key F --ca F] [--json] DIR\n"
	"  Checks a backing directory without changing it: header, key, freshness against the trust anchor\n"
	"  (or the given version and root), every metadata row and every chunk. Lists every finding.\n"
	"  Exit: 0 ok, 1 tamper, 2 rollback, 3 fork, 4 pending commit, 5 wrong key, 6 trust anchor,\n"
	"  7 busy, 64 usage, 74 I/O.\n";

struct out {
	int json, n, notes;
};

static void on_finding(void *ctx, const fs_finding *f)
{
	struct out *o = ctx;
	if (f->status)
		o->n++;
	else
		o->notes++;
	if (!o->json) {
		char where[2048];
		printf("%s\n", f->message);
		fsv_backing_text(f, where, sizeof(where));
		if (*where)
			printf("  backing: %s\n", where);
		return;
	}
	printf("%s\n    {\"kind\": ", o->n + o->notes > 1 ? "," : "");
	json_str(f->kind);
	printf(", \"status\": %d, \"path\": ", f->status);
	json_str(f->path);
	if (f->ino)
		printf(", \"inode\": %llu", (unsigned long long)f->ino);
	else
		printf(", \"inode\": null");
	printf(", \"backing\": [");
	for (size_t i = 0; i < f->nbacking; i++) {
		const fs_backing *k = &f->backing[i];
		printf("%s{\"file\": ", i ? ", " : "");
		json_str(k->file);
		if (k->slot >= 0)
			printf(", \"slot\": %lld, \"offset\": %llu", (long long)k->slot, (unsigned long long)k->offset);
		if (k->table) {
			printf(", \"table\": ");
			json_str(k->table);
			printf(", \"row\": ");
			json_str(k->row);
		}
		printf("}");
	}
	printf("]");
	json_finding_end(f->chunk, f->byte_a, f->byte_b, f->message);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = { KEYOPTS_LONG,
						  { "json", no_argument, NULL, OPT_JSON },
						  { "expect-version", required_argument, NULL, OPT_EXPECT_VERSION },
						  { "expect-root", required_argument, NULL, OPT_EXPECT_ROOT },
						  { "help", no_argument, NULL, 'h' },
						  { 0 } };
	fs_volume_opts o = { 0 };
	fs_verify_opts vo = { .scratch_dir = getenv("TMPDIR") };
	struct out out = { 0 };
	int c, have_v = 0, have_r = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (keyopts_apply(c, optarg, &o))
			continue;
		if (c == OPT_JSON) {
			out.json = 1;
		} else if (c == OPT_EXPECT_VERSION) {
			char *end;
			vo.expect_version = strtoull(optarg, &end, 10);
			if (*end || !*optarg) {
				fprintf(stderr, "fshield verify: bad version '%s'\n", optarg);
				return FS_ST_USAGE;
			}
			have_v = 1;
		} else if (c == OPT_EXPECT_ROOT) {
			if (fs_unhex(vo.expect_root, 32, optarg) != 0) {
				fprintf(stderr, "fshield verify: --expect-root takes 64 hex digits\n");
				return FS_ST_USAGE;
			}
			have_r = 1;
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_verify);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (optind != argc - 1 || have_v != have_r || (have_v && o.trust_uri)) {
		if (have_v != have_r || (have_v && o.trust_uri))
			fprintf(stderr, "fshield verify: --expect-version and --expect-root go together, instead of --trust\n");
		print_usage(stderr, usage_verify);
		return FS_ST_USAGE;
	}
	vo.use_expect = have_v;
	o.dir = argv[optind];
	o.readonly = 1;
	char err[512];
	if (keyopts_env(&o, err, sizeof(err)) != 0) {
		fprintf(stderr, "fshield verify: %s\n", err);
		return FS_ST_ANCHOR;
	}
	keyopts_held held = { 0 };
	int kst = keyopts_resolve(&o, keyopts_extpass(), 0, &held, err, sizeof(err));
	if (!kst && !o.key && !o.passphrase && (have_v || !keyopts_trust_is_cas(o.trust_uri)))
		kst = FS_ST_USAGE, snprintf(err, sizeof(err), "a key is needed: --key-file F, --passphrase-file F or "
							  "--extpass CMD (or a cas:// trust anchor that releases it)");
	if (kst) {
		fprintf(stderr, "fshield verify: %s\n", err);
		keyopts_release(&held);
		return kst;
	}
	fs_verify_result res;
	if (out.json)
		printf("{\"findings\": [");
	int st = fsv_verify(&o, &vo, on_finding, &out, &res);
	keyopts_release(&held);
	char id[33], root[65], troot[65];
	fs_hex(id, res.volid, 16);
	fs_hex(root, res.root, 32);
	fs_hex(troot, res.trusted_root, 32);
	if (out.json) {
		printf("%s],\n \"volume_id\": \"%s\", \"status\": %d, \"status_name\": \"%s\"", out.n + out.notes ? "\n" : "",
		       id, st, fs_status_name(st));
		if (res.have_version)
			printf(", \"version\": %llu, \"root\": \"%s\"", (unsigned long long)res.version, root);
		if (res.have_trusted)
			printf(", \"trusted_version\": %llu, \"trusted_root\": \"%s\"", (unsigned long long)res.trusted_version,
			       troot);
		printf(", \"files\": %llu, \"directories\": %llu, \"chunks\": %llu, \"bytes\": %llu}\n",
		       (unsigned long long)res.files, (unsigned long long)res.dirs, (unsigned long long)res.chunks,
		       (unsigned long long)res.bytes);
	} else if (st == 0) {
		printf("verify: ok: volume %s version %llu root %s (%llu files, %llu directories, %llu chunks, %llu "
		       "bytes)\n",
		       id, (unsigned long long)res.version, root, (unsigned long long)res.files,
		       (unsigned long long)res.dirs, (unsigned long long)res.chunks, (unsigned long long)res.bytes);
	} else {
		printf("verify: %d finding%s: %s (%d)\n", out.n, out.n == 1 ? "" : "s", fs_status_name(st), st);
	}
	return st;
}
