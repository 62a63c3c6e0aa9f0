/* fshield image: protect the code and libraries of a container root file system in one step. Writes the
 * protected tree, its sealed fspf, a session snippet (YAML, with the fspf key and tag: for the deployment
 * policy, never for the image) and a Dockerfile that copies the tree and the fspf into an image.
 * ROOTFS is a directory or a tar archive (any format and compression libarchive reads); from an archive
 * only the entries under the protected paths are extracted, into a scratch directory in OUT_DIR. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
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
#include "tools/image_docs.h"
#include "tools/json_out.h"

const char usage_image[] =
	"image --from ROOTFS --to OUT_DIR (--encrypt PATH | --authenticate PATH)... [--chunk-size N]\n"
	"      [--name NAME] [--base IMAGE] [--json] [--progress | --quiet]\n"
	"  Protects the paths of a container root file system (a directory, or a tar archive as made by\n"
	"  'docker export'): --encrypt paths are encrypted and authenticated, --authenticate paths only\n"
	"  authenticated. OUT_DIR (missing or empty) gets protected/ (the tree to mount), fshield.fspf,\n"
	"  session.yml (the fspf key and tag and the volume to mount: for the deployment policy, mode 0600)\n"
	"  and a Dockerfile that copies protected/ and fshield.fspf into an image FROM IMAGE.\n"
	"  Prints the fspf key and tag as 'fspf encrypt' does. Progress is shown on standard error when it is\n"
	"  a terminal; --progress shows it anyway, --quiet shows none. Exit: 0, 64 usage, 74 I/O.\n";

#define MAXP 256

struct spec {
	char *path;
	int kind;
};

static int is_under_any(const char *p, struct spec *s, int n)
{
	for (int i = 0; i < n; i++)
		if (fspf_path_under(p, s[i].path))
			return 1;
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char sub[PATH_MAX];
			if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) < (int)sizeof(sub))
				rm_rf(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Extracts the entries of the archive that lie under the protected paths into dir. 0, or a status. */
static int extract(const char *tar, const char *dir, struct spec *s, int n, fs_progress *pr)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	struct archive_entry *e;
	int st = FS_OK, r;
	uint64_t items = 0, bytes = 0;
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
						  ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	/* Entry names are normalised (no '.' or '..') and put below dir here, so they are absolute by design. */
	if (archive_read_open_filename(a, tar, 65536) != ARCHIVE_OK) {
		fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s\n", tar, archive_error_string(a));
		st = FS_ST_IO;
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		char norm[PATH_MAX], raw[PATH_MAX], dst[2 * PATH_MAX + 64];
		const char *name = archive_entry_pathname(e);
		if (!name)
			continue;
		while (name[0] == '.' && name[1] == '/')
			name += 2;
		snprintf(raw, sizeof(raw), "/%s", name);
		if (!strcmp(raw, "/.") || !strcmp(raw, "/"))
			continue;
		if (fspf_path_normalize(raw, norm, sizeof(norm)) != 0) {
			fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: entry '%s' has '.' or '..' components or is too long\n", tar,
				archive_entry_pathname(e));
			st = FS_ST_USAGE;
			goto out;
		}
		if (!is_under_any(norm, s, n))
			continue;
		mode_t t = archive_entry_filetype(e);
		if (t != AE_IFDIR && t != AE_IFREG && t != AE_IFLNK) {
			fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s is a special file (%s): only directories, regular files and "
					"symbolic links can be protected\n", tar, norm,
				t == AE_IFCHR ? "character device" : t == AE_IFBLK ? "block device" : t == AE_IFIFO ? "FIFO"
				: "socket");
			st = FS_ST_USAGE;
			goto out;
		}
		snprintf(dst, sizeof(dst), "%s%s", dir, norm);
		archive_entry_set_pathname(e, dst);
		const char *hl = archive_entry_hardlink(e);
		if (hl) {
			char hraw[PATH_MAX], hnorm[PATH_MAX], hdst[2 * PATH_MAX + 64];
			while (hl[0] == '.' && hl[1] == '/')
				hl += 2;
			snprintf(hraw, sizeof(hraw), "/%s", hl);
			if (fspf_path_normalize(hraw, hnorm, sizeof(hnorm)) != 0 || !is_under_any(hnorm, s, n)) {
				fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s is a hard link to %s, outside the protected paths\n",
					tar, norm, hl);
				st = FS_ST_USAGE;
				goto out;
			}
			snprintf(hdst, sizeof(hdst), "%s%s", dir, hnorm);
			archive_entry_set_hardlink(e, hdst);
		}
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s: %s\n", tar, norm, archive_error_string(w));
			st = FS_ST_IO;
			goto out;
		}
		const void *buf;
		size_t size;
		la_int64_t off;
		while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
			if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
				fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s\n", norm, archive_error_string(w));
				st = FS_ST_IO;
				goto out;
			}
			bytes += size;
			fs_progress_report(pr, items, 0, bytes, 0);
		}
		if (r != ARCHIVE_EOF) {
			fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s: %s\n", tar, norm, archive_error_string(a));
			st = FS_ST_IO;
			goto out;
		}
		if (archive_write_finish_entry(w) != ARCHIVE_OK) {
			fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s\n", norm, archive_error_string(w));
			st = FS_ST_IO;
			goto out;
		}
		fs_progress_report(pr, ++items, 0, bytes, 0);
	}
	if (r != ARCHIVE_EOF) {
		fs_progress_clear(pr), fprintf(stderr, "fshield image: %s: %s\n", tar, archive_error_string(a));
		st = FS_ST_IO;
	}
out:
	archive_write_close(w);
	archive_write_free(w);
	archive_read_free(a);
	return st;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
		fprintf(stderr, "fshield image: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return FS_ST_IO;
	}
	return close(fd) == 0 ? FS_OK : FS_ST_IO;
}

static int is_empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int empty = d != NULL;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	if (d)
		closedir(d);
	return empty;
}

static int spec_cmp(const void *a, const void *b)
{
	return fspf_path_cmp(((const struct spec *)a)->path, ((const struct spec *)b)->path);
}

int cmd_image(int argc, char **argv)
{
	static const struct option lo[] = { { "from", required_argument, NULL, 'f' },
					    { "to", required_argument, NULL, 't' },
					    { "encrypt", required_argument, NULL, 'e' },
					    { "authenticate", required_argument, NULL, 'a' },
					    { "chunk-size", required_argument, NULL, 'c' },
					    { "name", required_argument, NULL, 'n' },
					    { "base", required_argument, NULL, 'b' },
					    { "json", no_argument, NULL, 'j' },
					    { "progress", no_argument, NULL, 'P' },
					    { "quiet", no_argument, NULL, 'q' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	struct spec s[MAXP];
	int n = 0, c, json = 0, forced = 0, quiet = 0, st = FS_ST_USAGE;
	fs_progress *pr = NULL;
	const char *from = NULL, *to = NULL, *name = "app", *base = "debian:bookworm-slim";
	uint32_t cs = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		switch (c) {
		case 'P': forced = 1; break;
		case 'q': quiet = 1; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'n': name = optarg; break;
		case 'b': base = optarg; break;
		case 'j': json = 1; break;
		case 'c': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 0);
			if (!*optarg || *end || v > (1u << 20)) {
				fprintf(stderr, "fshield image: --chunk-size: a power of two from 4096 to 1048576\n");
				goto out;
			}
			cs = (uint32_t)v;
			break;
		}
		case 'e':
		case 'a': {
			char norm[FSPF_PATH_MAX + 2];
			if (n == MAXP || fspf_path_normalize(optarg, norm, sizeof(norm)) != 0 || !strcmp(norm, "/")) {
				fprintf(stderr, "fshield image: %s: a path in the image, absolute, not '/' (at most %d)\n",
					optarg, MAXP);
				goto out;
			}
			s[n].path = strdup(norm);
			s[n].kind = c == 'e' ? FSPF_ENCRYPTED : FSPF_AUTHENTICATED;
			if (!s[n].path)
				goto out;
			n++;
			break;
		}
		case 'h': print_usage(stdout, usage_image); st = 0; goto out;
		default: print_usage(stderr, usage_image); goto out;
		}
	}
	if (optind != argc || !from || !to || n == 0) {
		fprintf(stderr, "fshield image: --from, --to and at least one --encrypt or --authenticate are needed\n");
		print_usage(stderr, usage_image);
		goto out;
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (i != j && !strcmp(s[i].path, s[j].path)) {
				fprintf(stderr, "fshield image: %s is given twice\n", s[i].path);
				goto out;
			}
	qsort(s, (size_t)n, sizeof(s[0]), spec_cmp);
	/* Everything session.yml and the Dockerfile carry is checked before anything is written. */
	image_region regions[MAXP];
	char why[256];
	for (int i = 0; i < n; i++)
		regions[i] = (image_region){ s[i].path, s[i].kind };
	if (image_docs_check(name, base, regions, n, why, sizeof(why)) != 0) {
		fprintf(stderr, "fshield image: %s\n", why);
		goto out;
	}
	struct stat fst, tst;
	if (stat(from, &fst) != 0) {
		fprintf(stderr, "fshield image: %s: %s\n", from, strerror(errno));
		st = FS_ST_IO;
		goto out;
	}
	int made_to = 0;
	if (lstat(to, &tst) == 0) {
		if (!S_ISDIR(tst.st_mode) || !is_empty_dir(to)) {
			fprintf(stderr, "fshield image: %s: OUT_DIR must be missing or an empty directory\n", to);
			goto out;
		}
	} else if (mkdir(to, 0755) != 0) {
		fprintf(stderr, "fshield image: %s: %s\n", to, strerror(errno));
		st = FS_ST_IO;
		goto out;
	} else {
		made_to = 1;
	}
	char src[PATH_MAX + 32], scratch[PATH_MAX + 32], prot[PATH_MAX + 32], path[PATH_MAX + 64], out_abs[PATH_MAX];
	if (!realpath(to, out_abs)) {
		st = FS_ST_IO;
		goto out;
	}
	snprintf(scratch, sizeof(scratch), "%s/.rootfs-extract", out_abs);
	snprintf(prot, sizeof(prot), "%s/protected", out_abs);
	fspf *m = NULL;
	pr = fs_progress_new(quiet ? FS_PROGRESS_OFF : forced ? FS_PROGRESS_FORCE : FS_PROGRESS_AUTO, 2, "image",
			     "entries");
	if (S_ISDIR(fst.st_mode)) {
		if (!realpath(from, src)) {
			st = FS_ST_IO;
			goto fail;
		}
		if (fspf_path_under(out_abs, src)) {
			fprintf(stderr, "fshield image: OUT_DIR must not be inside ROOTFS\n");
			goto fail;
		}
	} else if (S_ISREG(fst.st_mode)) {
		if (mkdir(scratch, 0700) != 0) {
			fprintf(stderr, "fshield image: %s: %s\n", scratch, strerror(errno));
			st = FS_ST_IO;
			goto fail;
		}
		fs_progress_step(pr, "extracting");
		if ((st = extract(from, scratch, s, n, pr)) != FS_OK)
			goto fail;
		snprintf(src, sizeof(src), "%s", scratch);
	} else {
		fprintf(stderr, "fshield image: %s: ROOTFS is a directory or a tar archive\n", from);
		goto fail;
	}
	m = fspf_new(0);
	if (!m) {
		st = FS_ST_IO;
		goto fail;
	}
	char err[4600];
	for (int i = 0; i < n; i++)
		if ((st = fspf_add_region(m, s[i].path, s[i].kind, cs, err, sizeof(err))) != FS_OK) {
			fprintf(stderr, "fshield image: %s\n", err);
			goto fail;
		}
	const char *roots[MAXP];
	for (int i = 0; i < n; i++)
		roots[i] = s[i].path;
	fspf_add_opts ao = { .link_roots = roots, .nlink_roots = (size_t)n,
			     .progress = pr ? fs_progress_report : NULL, .progress_ctx = pr };
	for (int i = 0; i < n; i++) {
		if (i && fspf_path_under(s[i].path, s[i - 1].path))
			continue; /* nested: added with its parent, protected by its own region */
		char sdir[2 * PATH_MAX + 64], odir[2 * PATH_MAX + 64];
		struct stat sst;
		snprintf(sdir, sizeof(sdir), "%s%s", src, s[i].path);
		snprintf(odir, sizeof(odir), "%s%s", prot, s[i].path);
		if (lstat(sdir, &sst) != 0 || !S_ISDIR(sst.st_mode)) {
			fprintf(stderr, "fshield image: %s: %s in ROOTFS\n", s[i].path,
				errno == ENOENT || lstat(sdir, &sst) != 0 ? "not found" : "not a directory");
			st = FS_ST_USAGE;
			goto fail;
		}
		fs_progress_step(pr, s[i].path);
		if ((st = fspf_add_tree(m, s[i].path, sdir, odir, &ao, err, sizeof(err))) != FS_OK) {
			fs_progress_clear(pr);
			fprintf(stderr, "fshield image: %s\n", err);
			goto fail;
		}
	}
	fs_progress_end(pr);
	pr = NULL;
	if (S_ISREG(fst.st_mode))
		rm_rf(scratch);
	mkdir(prot, 0755); /* exists unless nothing was added */
	size_t flen;
	uint8_t tag[32];
	uint8_t *sealed = fspf_encode_sealed(m, &flen, tag);
	if (!sealed) {
		st = FS_ST_IO;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/fshield.fspf", out_abs);
	st = fspf_write_file(path, sealed, flen, err, sizeof(err));
	free(sealed);
	if (st != FS_OK) {
		fprintf(stderr, "fshield image: %s\n", err);
		goto fail;
	}
	chmod(path, 0644); /* sealed: safe to ship in the image */
	char khex[65], thex[65];
	fs_hex(khex, m->key, 32);
	fs_hex(thex, tag, 32);
	size_t ylen = 0;
	char *y = image_session_yaml(name, khex, thex, regions, n, &ylen);
	sodium_memzero(khex, sizeof(khex));
	snprintf(path, sizeof(path), "%s/session.yml", out_abs);
	if (!y)
		fprintf(stderr, "fshield image: out of memory writing session.yml\n");
	st = y ? write_text(path, y, 0600) : FS_ST_IO;
	if (y) {
		sodium_memzero(y, ylen);
		free(y);
	}
	if (st != FS_OK)
		goto fail;
	char *df = image_dockerfile(name, base, regions, n);
	snprintf(path, sizeof(path), "%s/Dockerfile", out_abs);
	if (!df)
		fprintf(stderr, "fshield image: out of memory writing the Dockerfile\n");
	st = df ? write_text(path, df, 0644) : FS_ST_IO;
	free(df);
	if (st != FS_OK)
		goto fail;
	fs_hex(khex, m->key, 32);
	snprintf(path, sizeof(path), "%s/fshield.fspf", out_abs);
	if (json) {
		json_t *d = json_object();
		if (!d || json_set_name(d, "out", out_abs) || json_set_name(d, "fspf", path) || json_set_name(d, "key", khex) ||
		    json_set_name(d, "tag", thex)) {
			json_decref(d);
			d = NULL;
		}
		if (json_print(d, 0) != 0) {
			sodium_memzero(khex, sizeof(khex));
			st = FS_ST_IO;
			goto fail;
		}
	} else
		printf("Encrypted file system protection file %s/fshield.fspf key: %s tag: %s\n", out_abs, khex, thex);
	sodium_memzero(khex, sizeof(khex));
	fspf_free(m);
	st = FS_OK;
	goto out;
fail:
	fs_progress_cancel(pr);
	pr = NULL;
	fspf_free(m);
	/* no partial output: OUT_DIR was missing or empty */
	{
		DIR *d = opendir(out_abs);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char sub[2 * PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", out_abs, de->d_name);
			rm_rf(sub);
		}
		if (d)
			closedir(d);
		if (made_to)
			rmdir(out_abs);
	}
	if (st == FS_OK)
		st = FS_ST_USAGE;
out:
	for (int i = 0; i < n; i++)
		free(s[i].path);
	return st;
}
