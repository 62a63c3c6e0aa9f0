/* fshield info: what a backing directory says about itself; with the key, its state too. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "meta/common/status.h"
#include "meta/common/beneath.h"
#include "meta/header.h"
#include "tools/commands.h"
#include "tools/json_out.h"
#include "tools/keyopts.h"

const char usage_info[] =
	"info [--key-file F | --passphrase-file F | --extpass CMD] [--trust URI] [--json] DIR\n"
	"  Shows the volume's format, id, chunk size and algorithms; with the key also its version, root\n"
	"  and file and chunk counts. Use 'verify' to check the volume.\n";

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = { KEYOPTS_LONG, { "json", no_argument, NULL, OPT_JSON },
						  { "help", no_argument, NULL, 'h' }, { 0 } };
	fs_volume_opts o = { 0 };
	int c, json = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (keyopts_apply(c, optarg, &o))
			continue;
		if (c == OPT_JSON) {
			json = 1;
		} else {
			print_usage(c == 'h' ? stdout : stderr, usage_info);
			return c == 'h' ? 0 : FS_ST_USAGE;
		}
	}
	if (optind != argc - 1) {
		print_usage(stderr, usage_info);
		return FS_ST_USAGE;
	}
	o.dir = argv[optind];
	o.readonly = 1;
	char path[4096], err[512];
	int est = keyopts_env(&o, err, sizeof(err));
	if (est != 0) {
		fprintf(stderr, "fshield info: %s\n", err);
		return est;
	}
	snprintf(path, sizeof(path), "%s/%s", o.dir, FS_HDR_NAME);
	uint8_t raw[FS_HDR_BYTES + 1];
	/* The header is read beneath the directory: a planted link is tamper, not a file to read. */
	int dfd = open(o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = dfd < 0 ? -errno : fs_beneath_open(dfd, FS_HDR_NAME, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (dfd >= 0)
		close(dfd);
	if (fd == -ELOOP) {
		fprintf(stderr, "fshield info: tamper detected: the volume header %s is a symbolic link\n", path);
		return FS_ST_TAMPER;
	}
	if (fd < 0 && fd != -ENOENT) {
		fprintf(stderr, "fshield info: cannot read the volume header %s: %s\n", dfd < 0 ? o.dir : path, strerror(-fd));
		return FS_ST_IO;
	}
	if (fd < 0) {
		fprintf(stderr, "fshield info: %s is not an fshield volume: %s: %s\n", o.dir, path, strerror(-fd));
		return FS_ST_IO;
	}
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	fs_header h;
	if (n < 0 || fs_header_parse(raw, (size_t)n, &h, err, sizeof(err)) != 0) {
		fprintf(stderr, "fshield info: %s\n", n < 0 ? "cannot read the header" : err);
		return n < 0 ? FS_ST_IO : FS_ST_TAMPER;
	}
	int st = 0;
	char id[33], anchor[33], root[65];
	uint8_t zero[16] = { 0 };
	fs_hex(id, h.volid, 16);
	fs_hex(anchor, h.anchor_id, 16);
	int bound = memcmp(h.anchor_id, zero, 16) != 0;
	char buri[FS_ANCHOR_URI_MAX];
	int have_uri = bound && fsv_bound_anchor_uri(o.dir, buri, sizeof(buri)) == 0;
	keyopts_held held = { 0 };
	int have_key = o.key_file || o.passphrase_file || keyopts_extpass();
	if ((st = keyopts_resolve(&o, keyopts_extpass(), KEYIN_NO_PROMPT, &held, err, sizeof(err))) != 0) {
		fprintf(stderr, "fshield info: %s\n", err);
		return st;
	}
	fs_volume *v = NULL;
	fs_volume_info in = { 0 };
	if (have_key && (st = fsv_open(&o, &v, err, sizeof(err))) == 0) {
		fsv_info(v, &in);
		fsv_close(v);
		fs_hex(root, in.root, 32);
	}
	keyopts_release(&held);
	if (json) {
		json_t *d = json_object();
		json_t *kdf = h.key_source == FS_KEYSRC_PASSPHRASE
				      ? json_pack("{s:s, s:I, s:I}", "alg", "argon2id", "opslimit", (json_int_t)h.kdf.opslimit,
						  "memlimit", (json_int_t)h.kdf.memlimit)
				      : json_null();
		int bad = !d || json_set_u64(d, "format", h.format_version) || json_set_name(d, "volume_id", id) ||
			  json_set_u64(d, "chunk_size", h.chunk_size) ||
			  json_set_name(d, "aead", fs_aead_alg_name(h.aead_alg)) || json_object_set_new(d, "kdf", kdf) ||
			  json_set_name(d, "anchor_id", bound ? anchor : NULL) ||
			  json_set_name(d, "anchor_uri", have_uri ? buri : bound ? NULL : "none");
		if (have_key && !st)
			bad = bad || json_set_u64(d, "version", in.version) || json_set_name(d, "root", root) ||
			      json_set_u64(d, "files", in.inodes) || json_set_u64(d, "chunks", in.chunks);
		else if (have_key)
			bad = bad || json_set_name(d, "error", err);
		if (bad)
			json_decref(d);
		if (bad || json_print(d, 0) != 0) {
			fprintf(stderr, "fshield info: the JSON output could not be written\n");
			return FS_ST_IO;
		}
	} else {
		printf("format        %u\nvolume id     %s\nchunk size    %u\naead          %s\n", h.format_version, id,
		       h.chunk_size, fs_aead_alg_name(h.aead_alg));
		if (h.key_source == FS_KEYSRC_PASSPHRASE)
			printf("key           passphrase (argon2id, ops %llu, mem %llu)\n",
			       (unsigned long long)h.kdf.opslimit, (unsigned long long)h.kdf.memlimit);
		else
			printf("key           key file\n");
		if (!bound)
			printf("bound to      none (no rollback protection)\n");
		else
			printf("bound to      %s (anchor id %s)\n", have_uri ? buri : "(URI not recorded)", anchor);
		if (have_key && !st)
			printf("version       %llu\nroot          %s\nfiles         %llu\nchunks        %llu\n",
			       (unsigned long long)in.version, root, (unsigned long long)in.inodes,
			       (unsigned long long)in.chunks);
		else if (have_key)
			printf("state         %s\n", err);
	}
	/* Freshness is verify's job; info fails only when the header or the key does. */
	return st == FS_ST_TAMPER || st == FS_ST_WRONG_KEY || st == FS_ST_USAGE ? st : 0;
}
