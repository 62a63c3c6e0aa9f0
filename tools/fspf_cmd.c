/* fshield fspf: build, seal, show and check a file system protection file (meta/fspf/fspf.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "meta/common/progress.h"
#include "meta/common/status.h"
#include "meta/fspf/fspf.h"
#include "tools/commands.h"
#include "tools/json_out.h"
#include "tools/keyopts.h"

const char usage_fspf[] =
	"fspf SUBCOMMAND ...\n"
	"  fspf create [--cipher aes-256-gcm|xchacha20-poly1305] FSPF   (--aead: the deprecated old name)\n"
	"      a new, empty manifest with a fresh random key (kept in FSPF, mode 0600, until encrypt)\n"
	"  fspf addr FSPF PATH (--encrypted | --authenticated | --not-protected) [--chunk-size N]\n"
	"      a region: files under PATH (the longest matching region wins) get this protection\n"
	"  fspf addf [--progress | --quiet] FSPF PATH SOURCE_DIR [OUTPUT_DIR]\n"
	"      adds the tree SOURCE_DIR as PATH; encrypted files are written as ciphertext to OUTPUT_DIR,\n"
	"      which must be missing or empty (and is then the tree's PATH when mounted); progress is shown on\n"
	"      a terminal, --progress shows it anyway, --quiet shows none and no summary line\n"
	"  fspf encrypt [--json] FSPF\n"
	"      seals the manifest and prints its key and tag, for the deployment policy\n"
	"  fspf show [--tag] [--key-file FILE | --key-fd N] FSPF\n"
	"      prints regions and entries (an encrypted fspf needs its key: 64 hex digits in FILE or read\n"
	"      from descriptor N); --tag prints its tag\n"
	"  fspf verify (--key-file FILE | --key-fd N) (--tag-file FILE | --tag-fd N) [--json] FSPF ROOT\n"
	"      checks every file of the protected tree ROOT against the manifest, offline; lists every finding\n"
	"  Keys and tags are never taken on the command line (every local user can read it).\n"
	"  Exit: 0 ok, 1 tamper (tag mismatch, changed files), 5 wrong key, 64 usage, 74 I/O.\n";

static int usage_err(const char *msg)
{
	if (msg)
		fprintf(stderr, "fshield fspf: %s\n", msg);
	print_usage(stderr, usage_fspf);
	return FS_ST_USAGE;
}

static int load(const char *path, const uint8_t *key, const uint8_t *tag, fspf **m)
{
	char err[4600];
	int st = fspf_load(path, key, tag, m, err, sizeof(err));
	if (st != FS_OK)
		fprintf(stderr, "fshield fspf: %s\n", err);
	return st;
}

/* Loads a working (not yet encrypted) fspf for a change. */
static int load_working(const char *path, fspf **m)
{
	int st = load(path, NULL, NULL, m);
	if (st == FS_ST_USAGE)
		fprintf(stderr, "fshield fspf: %s is already encrypted; build a new one to change it\n", path);
	return st;
}

static int save_working(const fspf *m, const char *path)
{
	size_t n;
	char err[4600];
	uint8_t *b = fspf_encode_working(m, &n);
	if (!b) {
		fprintf(stderr, "fshield fspf: out of memory\n");
		return FS_ST_IO;
	}
	int st = fspf_write_file(path, b, n, err, sizeof(err));
	sodium_memzero(b, n);
	free(b);
	if (st != FS_OK)
		fprintf(stderr, "fshield fspf: %s\n", err);
	return st;
}

/* Options of a subcommand that takes at most one flag, --name (none when name is NULL): *set says whether
 * it was given. 0, or FS_ST_USAGE after printing the usage. */
static int flag_opt(int argc, char **argv, const char *name, int *set)
{
	const struct option lo[] = { { name, no_argument, NULL, 'f' }, { 0 } };
	int c;
	*set = 0;
	while ((c = getopt_long(argc, argv, "", name ? lo : lo + 1, NULL)) != -1) {
		if (c != 'f')
			return usage_err(NULL);
		*set = 1;
	}
	return 0;
}

/* The options that give the key and the tag (--key-file, --key-fd, --tag-file, --tag-fd), and the old
 * forms --key and --tag, which are refused. */
enum { SO_KEY = 'k', SO_KEY_FILE = 'K', SO_KEY_FD = 2001, SO_TAG = 't', SO_TAG_FILE = 'T', SO_TAG_FD = 2002 };
#define KEY_LONGOPTS                                                                                  \
	{ "key", required_argument, NULL, SO_KEY }, { "key-file", required_argument, NULL, SO_KEY_FILE }, \
	{ "key-fd", required_argument, NULL, SO_KEY_FD }
#define TAG_LONGOPTS                                                                                  \
	{ "tag", required_argument, NULL, SO_TAG }, { "tag-file", required_argument, NULL, SO_TAG_FILE }, \
	{ "tag-fd", required_argument, NULL, SO_TAG_FD }

/* Applies one of the secret options: 1 if c was one, 0 if not, -1 (usage printed) if refused. */
static int secret_opt(int c, const char *arg, keyopts_secret *key, keyopts_secret *tag)
{
	switch (c) {
	case SO_KEY: keyopts_refuse_cmdline("fspf", "--key KEY", "--key-file FILE or --key-fd N"); return -1;
	case SO_TAG: keyopts_refuse_cmdline("fspf", "--tag TAG", "--tag-file FILE or --tag-fd N"); return -1;
	case SO_KEY_FILE: key->file = arg; return 1;
	case SO_TAG_FILE: tag->file = arg; return 1;
	case SO_KEY_FD: return keyopts_secret_fd(key, arg, "fspf", "--key-fd") ? -1 : 1;
	case SO_TAG_FD: return keyopts_secret_fd(tag, arg, "fspf", "--tag-fd") ? -1 : 1;
	default: return 0;
	}
}

/* Reads a given secret into out; FS_OK, or FS_ST_USAGE after saying why. */
static int read_secret_opt(const keyopts_secret *s, uint8_t out[32], const char *what)
{
	char err[512];
	int st = keyopts_secret_read(s, out, what, err, sizeof(err));
	if (st)
		fprintf(stderr, "fshield fspf: %s\n", err);
	return st;
}

static int cmd_create(int argc, char **argv)
{
	/* --cipher, as init names it; --aead is its old name, still accepted with a warning. */
	static const struct option lo[] = { { "cipher", required_argument, NULL, 'c' },
					    { "aead", required_argument, NULL, 'a' }, { 0 } };
	int c, alg = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'a')
			fprintf(stderr, "fshield fspf create: --aead is deprecated; use --cipher\n");
		if ((c == 'c' || c == 'a') && !strcmp(optarg, "aes-256-gcm"))
			alg = FS_AEAD_AES256GCM;
		else if ((c == 'c' || c == 'a') && !strcmp(optarg, "xchacha20-poly1305"))
			alg = FS_AEAD_XCHACHA20POLY1305;
		else
			return usage_err(c == 'c' || c == 'a' ? "--cipher: aes-256-gcm or xchacha20-poly1305" : NULL);
	}
	if (argc - optind != 1)
		return usage_err("create takes FSPF");
	const char *path = argv[optind];
	struct stat st;
	if (lstat(path, &st) == 0) {
		fprintf(stderr, "fshield fspf: %s exists; create never overwrites\n", path);
		return FS_ST_USAGE;
	}
	fspf *m = fspf_new(alg);
	if (!m) {
		fprintf(stderr, "fshield fspf: out of memory\n");
		return FS_ST_IO;
	}
	int rc = save_working(m, path);
	if (rc == FS_OK)
		printf("Created file system protection file %s (%s)\n", path, fs_aead_alg_name(m->data_aead));
	fspf_free(m);
	return rc;
}

static int cmd_addr(int argc, char **argv)
{
	static const struct option lo[] = { { "encrypted", no_argument, NULL, 'e' },
					    { "authenticated", no_argument, NULL, 'a' },
					    { "not-protected", no_argument, NULL, 'n' },
					    { "chunk-size", required_argument, NULL, 'c' },
					    { 0 } };
	int c, kind = 0, kinds = 0;
	uint32_t cs = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'e': kind = FSPF_ENCRYPTED; kinds++; break;
		case 'a': kind = FSPF_AUTHENTICATED; kinds++; break;
		case 'n': kind = FSPF_NOT_PROTECTED; kinds++; break;
		case 'c': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 0);
			if (!*optarg || *end || v > (1u << 20))
				return usage_err("--chunk-size: a power of two from 4096 to 1048576");
			cs = (uint32_t)v;
			break;
		}
		default: return usage_err(NULL);
		}
	}
	if (argc - optind != 2 || kinds != 1)
		return usage_err("addr takes FSPF PATH and one of --encrypted, --authenticated, --not-protected");
	fspf *m;
	int st = load_working(argv[optind], &m);
	if (st != FS_OK)
		return st;
	char err[4600];
	st = fspf_add_region(m, argv[optind + 1], kind, cs, err, sizeof(err));
	if (st != FS_OK)
		fprintf(stderr, "fshield fspf: %s\n", err);
	else
		st = save_working(m, argv[optind]);
	if (st == FS_OK)
		printf("Added region %s (%s)\n", argv[optind + 1], fspf_kind_name(kind));
	fspf_free(m);
	return st;
}

static int cmd_addf(int argc, char **argv)
{
	static const struct option lo[] = { { "progress", no_argument, NULL, 'p' },
					    { "quiet", no_argument, NULL, 'q' },
					    { 0 } };
	int c, forced = 0, quiet = 0;
	while ((c = getopt_long(argc, argv, "q", lo, NULL)) != -1) {
		if (c == 'p')
			forced = 1;
		else if (c == 'q')
			quiet = 1;
		else
			return usage_err(NULL);
	}
	if (argc - optind != 3 && argc - optind != 4)
		return usage_err("addf takes FSPF PATH SOURCE_DIR [OUTPUT_DIR]");
	fspf *m;
	int st = load_working(argv[optind], &m);
	if (st != FS_OK)
		return st;
	char err[4600];
	fs_progress *pr = fs_progress_new(quiet ? FS_PROGRESS_OFF : forced ? FS_PROGRESS_FORCE : FS_PROGRESS_AUTO, 2,
					  "fspf addf", "entries");
	fspf_add_opts o = { .progress = pr ? fs_progress_report : NULL, .progress_ctx = pr };
	st = fspf_add_tree(m, argv[optind + 1], argv[optind + 2], argc - optind == 4 ? argv[optind + 3] : NULL, &o, err,
			   sizeof(err));
	if (st == FS_OK)
		fs_progress_end(pr);
	else
		fs_progress_cancel(pr);
	if (st != FS_OK)
		fprintf(stderr, "fshield fspf: addf: %s (nothing was added)\n", err);
	else
		st = save_working(m, argv[optind]);
	if (st == FS_OK && !quiet)
		printf("Added %s: %llu files (%llu bytes), %llu directories, %llu symbolic links\n", argv[optind + 1],
		       (unsigned long long)o.files, (unsigned long long)o.bytes, (unsigned long long)o.dirs,
		       (unsigned long long)o.links);
	fspf_free(m);
	return st;
}

static int cmd_encrypt(int argc, char **argv)
{
	int json;
	if (flag_opt(argc, argv, "json", &json) != 0)
		return FS_ST_USAGE;
	if (argc - optind != 1)
		return usage_err("encrypt takes FSPF");
	const char *path = argv[optind];
	fspf *m;
	int st = load_working(path, &m);
	if (st != FS_OK)
		return st;
	size_t n;
	uint8_t tag[FSPF_TAG_BYTES];
	uint8_t *b = fspf_encode_sealed(m, &n, tag);
	char err[4600], khex[65], thex[65];
	if (!b) {
		fspf_free(m);
		fprintf(stderr, "fshield fspf: out of memory\n");
		return FS_ST_IO;
	}
	st = fspf_write_file(path, b, n, err, sizeof(err));
	free(b);
	if (st != FS_OK) {
		fprintf(stderr, "fshield fspf: %s\n", err);
		fspf_free(m);
		return st;
	}
	fs_hex(khex, m->key, 32);
	fs_hex(thex, tag, 32);
	if (json) {
		json_t *d = json_object();
		if (!d || json_set_name(d, "fspf", path) || json_set_name(d, "key", khex) || json_set_name(d, "tag", thex)) {
			json_decref(d);
			d = NULL;
		}
		if (json_print(d, 0) != 0)
			st = FS_ST_IO;
	} else {
		printf("Encrypted file system protection file %s key: %s tag: %s\n", path, khex, thex);
	}
	sodium_memzero(khex, sizeof(khex));
	fspf_free(m);
	return st;
}

/* show of a sealed fspf without its key: what the file shows by itself. The tag is a keyed hash of the
 * file (docs/FORMAT.md 19.1), so --tag cannot be answered: said so, with what can be shown instead.
 * Returns a status, or -1 for a working fspf (which holds its key: the usual show). */
static int show_keyless(const char *path, int tag_only)
{
	uint8_t *b;
	size_t n;
	char err[4600];
	int st = fspf_read_file(path, &b, &n, err, sizeof(err));
	if (st != FS_OK) {
		fprintf(stderr, "fshield fspf: %s\n", err);
		return st;
	}
	fspf_outline o;
	st = fspf_outline_of(b, n, &o, err, sizeof(err));
	free(b);
	if (st == FS_ST_USAGE)
		return -1;
	if (st != FS_OK) {
		fprintf(stderr, "fshield fspf: %s: %s\n", path, err);
		return st;
	}
	char id[33], h[65];
	fs_hex(id, o.id, sizeof(o.id));
	fs_hex(h, o.blake2b, sizeof(o.blake2b));
	if (tag_only) {
		fprintf(stderr,
			"fshield fspf: %s: the tag is a hash of the whole file keyed with the fspf's key, so it cannot be "
			"computed without it: give the key with --key-file F or --key-fd N. Without the key, 'fshield fspf "
			"show %s' prints the file's id and its BLAKE2b-256 hash (as b2sum -l 256 does)\n",
			path, path);
		return FS_ST_USAGE;
	}
	printf("fspf %s: encrypted, id %s, body cipher %s, %llu bytes, blake2b-256 %s\n", path, id,
	       fs_aead_alg_name(o.body_aead), (unsigned long long)o.size, h);
	printf("its regions, entries and tag need its key (--key-file F or --key-fd N)\n");
	return FS_OK;
}

static int cmd_show(int argc, char **argv)
{
	static const struct option lo[] = { { "tag", no_argument, NULL, 'g' }, KEY_LONGOPTS, { 0 } };
	keyopts_secret ks = KEYOPTS_SECRET_NONE, ts = KEYOPTS_SECRET_NONE;
	int c, r, tag_only = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'g')
			tag_only = 1;
		else if ((r = secret_opt(c, optarg, &ks, &ts)) < 0)
			return FS_ST_USAGE;
		else if (r == 0)
			return usage_err(NULL);
	}
	if (argc - optind == 2)
		return keyopts_refuse_cmdline("fspf", "show FSPF KEY", "show --key-file FILE FSPF or show --key-fd N FSPF");
	if (argc - optind != 1)
		return usage_err("show takes FSPF");
	const char *path = argv[optind];
	uint8_t key[32], *kp = NULL;
	if (keyopts_secret_given(&ks)) {
		int kst = read_secret_opt(&ks, key, ks.file ? "--key-file" : "--key-fd");
		if (kst != FS_OK)
			return kst;
		kp = key;
	} else {
		int kst = show_keyless(path, tag_only);
		if (kst >= 0)
			return kst;
	}
	fspf *m;
	int st = load(path, kp, NULL, &m);
	sodium_memzero(key, sizeof(key)); /* m holds its own copy */
	if (st != FS_OK)
		return st;
	if (tag_only) {
		uint8_t *b, tag[32];
		size_t n;
		char thex[65];
		if (!m->sealed) {
			fprintf(stderr, "fshield fspf: %s is not encrypted yet: it has no tag\n", path);
			fspf_free(m);
			return FS_ST_USAGE;
		}
		char err[4600];
		/* reread: the tag covers the file's bytes, not the parsed manifest */
		if (fspf_read_file(path, &b, &n, err, sizeof(err)) != FS_OK) {
			fprintf(stderr, "fshield fspf: %s\n", err);
			fspf_free(m);
			return FS_ST_IO;
		}
		fspf_tag_of(b, n, m->key, tag);
		free(b);
		fs_hex(thex, tag, 32);
		printf("%s\n", thex);
		fspf_free(m);
		return FS_OK;
	}
	char id[33];
	fs_hex(id, m->id, 16);
	printf("fspf %s: %s, id %s, file cipher %s, %u regions, %u entries\n", path,
	       m->sealed ? "encrypted" : "not encrypted yet", id, fs_aead_alg_name(m->data_aead), m->nregions,
	       m->nentries);
	for (uint32_t i = 0; i < m->nregions; i++)
		printf("region %s %s chunk %u\n", m->regions[i].path, fspf_kind_name(m->regions[i].kind),
		       m->regions[i].chunk_size);
	for (uint32_t i = 0; i < m->nentries; i++) {
		const fspf_entry *e = &m->entries[i];
		char t = S_ISDIR(e->mode) ? 'd' : S_ISLNK(e->mode) ? 'l' : 'f';
		printf("%c %04o %u:%u", t, e->mode & 07777, e->uid, e->gid);
		if (S_ISREG(e->mode))
			printf(" %llu %s %llu chunks", (unsigned long long)e->size, fspf_kind_name(e->kind),
			       (unsigned long long)(fspf_protected(e) ? fspf_nchunks(e) : 0));
		printf(" %s", e->path);
		if (S_ISLNK(e->mode))
			printf(" -> %s", e->target);
		printf("\n");
	}
	fspf_free(m);
	return FS_OK;
}

struct vout {
	int json, n, oom;
	json_t *findings; /* with --json: every finding, printed with the result */
};

/* A finding as JSON: its kind, path, chunk, byte range and message. */
static json_t *finding_json(const char *kind, const char *path, int64_t chunk, uint64_t a, uint64_t b,
			    const char *message)
{
	json_t *j = json_object();
	if (j && (json_set_name(j, "kind", kind) || json_set_name(j, "path", path) ||
		  json_set_finding_end(j, chunk, a, b, message))) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Prints the verify document: the findings and the status, with the counts when res is given. */
static int print_fverify(json_t *findings, int oom, int st, const fspf_verify_result *res)
{
	json_t *d = json_object();
	if (oom || !d || json_object_set_new(d, "findings", findings) || json_object_set_new(d, "status", json_integer(st)) ||
	    json_set_name(d, "status_name", fs_status_name(st)) ||
	    (res && (json_set_u64(d, "files", res->files) || json_set_u64(d, "directories", res->dirs) ||
		     json_set_u64(d, "links", res->links) || json_set_u64(d, "chunks", res->chunks) ||
		     json_set_u64(d, "bytes", res->bytes)))) {
		if (oom || !d)
			json_decref(findings); /* not yet d's */
		json_decref(d);
		d = NULL;
	}
	if (json_print(d, 1) != 0) {
		fprintf(stderr, "fshield fspf: the JSON output could not be written\n");
		return st ? st : FS_ST_IO;
	}
	return st;
}

static void on_finding(void *ctx, const fspf_finding *f)
{
	struct vout *o = ctx;
	o->n++;
	if (!o->json) {
		printf("%s\n", f->message);
		return;
	}
	if (json_array_append_new(o->findings, finding_json(f->kind, f->path, f->chunk, f->byte_a, f->byte_b, f->message)))
		o->oom = 1;
}

static int cmd_fverify(int argc, char **argv)
{
	static const struct option lo[] = { KEY_LONGOPTS, TAG_LONGOPTS, { "json", no_argument, NULL, 'j' }, { 0 } };
	keyopts_secret ks = KEYOPTS_SECRET_NONE, ts = KEYOPTS_SECRET_NONE;
	uint8_t key[32], tag[32];
	int c, r;
	struct vout out = { 0 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'j')
			out.json = 1;
		else if ((r = secret_opt(c, optarg, &ks, &ts)) < 0)
			return FS_ST_USAGE;
		else if (r == 0)
			return usage_err(NULL);
	}
	if (argc - optind != 2 || !keyopts_secret_given(&ks) || !keyopts_secret_given(&ts))
		return usage_err("verify takes (--key-file FILE | --key-fd N) (--tag-file FILE | --tag-fd N) FSPF ROOT");
	int kst = read_secret_opt(&ks, key, ks.file ? "--key-file" : "--key-fd");
	if (kst == FS_OK)
		kst = read_secret_opt(&ts, tag, ts.file ? "--tag-file" : "--tag-fd");
	if (kst != FS_OK) {
		sodium_memzero(key, sizeof(key));
		return kst;
	}
	const char *path = argv[optind], *root = argv[optind + 1];
	fspf *m;
	char err[4600];
	int st = fspf_load(path, key, tag, &m, err, sizeof(err));
	sodium_memzero(key, sizeof(key)); /* m holds its own copy */
	if (st == FS_OK && !m->sealed) {
		snprintf(err, sizeof(err), "%s is not encrypted: it protects nothing (run 'fshield fspf encrypt')", path);
		fspf_free(m);
		st = FS_ST_USAGE;
	}
	if (st != FS_OK) {
		if (out.json)
			return print_fverify(json_pack("[o]", finding_json(fs_status_name(st), NULL, -1, 0, 0, err)), 0, st,
					     NULL);
		printf("%s\nfspf verify: 1 finding: %s (%d)\n", err, fs_status_name(st), st);
		return st;
	}
	if (out.json && !(out.findings = json_array())) {
		fspf_free(m);
		return FS_ST_IO;
	}
	fspf_verify_result res;
	st = fspf_verify_tree(m, root, on_finding, &out, &res);
	if (out.json) {
		st = print_fverify(out.findings, out.oom, st, &res);
	} else if (st == FS_OK) {
		printf("fspf verify: ok: %s (%llu files, %llu directories, %llu links, %llu chunks, %llu bytes)\n", root,
		       (unsigned long long)res.files, (unsigned long long)res.dirs, (unsigned long long)res.links,
		       (unsigned long long)res.chunks, (unsigned long long)res.bytes);
	} else {
		printf("fspf verify: %d finding%s: %s (%d)\n", out.n, out.n == 1 ? "" : "s", fs_status_name(st), st);
	}
	fspf_free(m);
	return st;
}

int cmd_fspf(int argc, char **argv)
{
	if (argc < 2)
		return usage_err(NULL);
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		print_usage(stdout, usage_fspf);
		return 0;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = { { "create", cmd_create }, { "addr", cmd_addr },   { "addf", cmd_addf },
		     { "encrypt", cmd_encrypt }, { "show", cmd_show }, { "verify", cmd_fverify } };
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(sub, subs[i].name)) {
			optind = 1;
			return subs[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "fshield fspf: unknown subcommand '%s'\n", sub);
	return usage_err(NULL);
}
