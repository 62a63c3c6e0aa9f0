/* fshield verify: the offline forensic check; every finding, text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "meta/common/progress.h"
#include "meta/common/status.h"
#include "fs/volume/verify.h"
#include "tools/commands.h"
#include "tools/json_out.h"
#include "tools/keyopts.h"

const char usage_verify[] =
	"verify (--key-file F | --passphrase-file F | --extpass CMD) [--trust URI | --expect-version V --expect-root HEX]\n"
	"       [--json] [--progress | --quiet] DIR\n"
	"   or: fshield verify --trust cas://HOST:PORT/NS/SESSION/VOLUME [--tls-cert F --tls-key F --ca F] [--json] DIR\n"
	"  Checks a backing directory without changing it: header, key, freshness against the trust anchor\n"
	"  (or the given version and root), every metadata row and every chunk. Lists every finding.\n"
	"  Progress is shown on standard error when it is a terminal; --progress shows it anyway, --quiet\n"
	"  shows none and no summary line when all is well (findings and errors are always printed).\n"
	"  Exit: 0 ok, 1 tamper, 2 rollback, 3 fork, 4 pending commit, 5 wrong key, 6 trust anchor,\n"
	"  7 busy, 64 usage, 74 I/O.\n";

struct out {
	int json, n, notes, oom;
	fs_progress *pr;
	json_t *findings; /* with --json: every finding, printed with the result */
};

static void on_finding(void *ctx, const fs_finding *f)
{
	struct out *o = ctx;
	if (f->status)
		o->n++;
	else
		o->notes++;
	fs_progress_clear(o->pr);
	if (!o->json) {
		char where[2048];
		printf("%s\n", f->message);
		fsv_backing_text(f, where, sizeof(where));
		if (*where)
			printf("  backing: %s\n", where);
		return;
	}
	json_t *j = json_object(), *bk = json_array();
	int bad = !j || !bk;
	for (size_t i = 0; !bad && i < f->nbacking; i++) {
		const fs_backing *k = &f->backing[i];
		json_t *e = json_object();
		bad = !e || json_set_name(e, "file", k->file) ||
		      (k->slot >= 0 && (json_object_set_new(e, "slot", json_integer((json_int_t)k->slot)) ||
					json_set_u64(e, "offset", k->offset))) ||
		      (k->table && (json_set_name(e, "table", k->table) || json_set_name(e, "row", k->row)));
		if (bad)
			json_decref(e);
		else
			bad = json_array_append_new(bk, e) != 0;
	}
	if (!bad) { /* the object takes bk, also when it fails */
		bad = json_object_set_new(j, "backing", bk) != 0;
		bk = NULL;
	}
	if (bad || json_set_name(j, "kind", f->kind) || json_object_set_new(j, "status", json_integer(f->status)) ||
	    json_set_name(j, "path", f->path) ||
	    json_object_set_new(j, "inode", f->ino ? json_integer((json_int_t)f->ino) : json_null()) ||
	    json_set_finding_end(j, f->chunk, f->byte_a, f->byte_b, f->message)) {
		json_decref(bk);
		json_decref(j);
		o->oom = 1;
	} else if (json_array_append_new(o->findings, j)) {
		o->oom = 1;
	}
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = { KEYOPTS_LONG,
						  { "json", no_argument, NULL, OPT_JSON },
						  { "expect-version", required_argument, NULL, OPT_EXPECT_VERSION },
						  { "expect-root", required_argument, NULL, OPT_EXPECT_ROOT },
						  { "progress", no_argument, NULL, OPT_PROGRESS },
						  { "quiet", no_argument, NULL, OPT_QUIET },
						  { "help", no_argument, NULL, 'h' },
						  { 0 } };
	fs_volume_opts o = { 0 };
	fs_verify_opts vo = { .scratch_dir = getenv("TMPDIR") };
	struct out out = { 0 };
	int c, have_v = 0, have_r = 0, forced = 0, quiet = 0;
	while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		if (keyopts_apply(c, optarg, &o))
			continue;
		if (c == OPT_PROGRESS) {
			forced = 1;
		} else if (c == OPT_QUIET || c == 'q') {
			quiet = 1;
		} else if (c == OPT_JSON) {
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
	int est = keyopts_env(&o, err, sizeof(err));
	if (est != 0) {
		fprintf(stderr, "fshield verify: %s\n", err);
		return est;
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
	if (out.json && !(out.findings = json_array())) {
		keyopts_release(&held);
		return FS_ST_IO;
	}
	fflush(stdout); /* findings and the progress line share a terminal */
	fs_progress *pr = fs_progress_new(quiet ? FS_PROGRESS_OFF : forced ? FS_PROGRESS_FORCE : FS_PROGRESS_AUTO,
					  2, "verify", "chunks");
	vo.progress = pr ? fs_progress_report : NULL;
	vo.progress_ctx = out.pr = pr;
	int st = fsv_verify(&o, &vo, on_finding, &out, &res);
	fs_progress_end(pr);
	keyopts_release(&held);
	char id[33], root[65], troot[65];
	fs_hex(id, res.volid, 16);
	fs_hex(root, res.root, 32);
	fs_hex(troot, res.trusted_root, 32);
	if (out.json) {
		json_t *d = json_object();
		if (!d)
			json_decref(out.findings);
		if (!d || json_object_set_new(d, "findings", out.findings) || json_set_name(d, "volume_id", id) ||
		    json_object_set_new(d, "status", json_integer(st)) ||
		    json_set_name(d, "status_name", fs_status_name(st)) ||
		    (res.have_version && (json_set_u64(d, "version", res.version) || json_set_name(d, "root", root))) ||
		    (res.have_trusted &&
		     (json_set_u64(d, "trusted_version", res.trusted_version) || json_set_name(d, "trusted_root", troot))) ||
		    json_set_u64(d, "files", res.files) || json_set_u64(d, "directories", res.dirs) ||
		    json_set_u64(d, "chunks", res.chunks) || json_set_u64(d, "bytes", res.bytes))
			out.oom = 1;
		if (out.oom || json_print(d, 1) != 0) {
			if (out.oom)
				json_decref(d);
			fprintf(stderr, "fshield verify: the JSON output could not be written\n");
			return st ? st : FS_ST_IO;
		}
	} else if (st == 0 && !quiet) {
		printf("verify: ok: volume %s version %llu root %s (%llu files, %llu directories, %llu chunks, %llu "
		       "bytes)\n",
		       id, (unsigned long long)res.version, root, (unsigned long long)res.files,
		       (unsigned long long)res.dirs, (unsigned long long)res.chunks, (unsigned long long)res.bytes);
	} else if (st) {
		printf("verify: %d finding%s: %s (%d)\n", out.n, out.n == 1 ? "" : "s", fs_status_name(st), st);
	}
	return st;
}
