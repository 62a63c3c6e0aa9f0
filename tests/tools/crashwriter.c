/* crashwriter: drives the volume library through deterministic rounds of changes, one commit per round,
 * so that a process killed anywhere in a commit (FSHIELD_CRASH_AT) leaves a state the checker can name.
 *
 *   crashwriter write DIR KEYFILE TRUST ROUND   volume must hold round ROUND-1 (nothing for ROUND 1);
 *                                              rewrites it into round ROUND, commits once, prints
 *                                              "round R version V"
 *   crashwriter check DIR KEYFILE TRUST         opens the volume read-write (completing a pending
 *                                              commit), checks that every file holds the complete
 *                                              content of one and the same round, prints
 *                                              "round R version V", then one "pack PATH" line per file
 *
 * The state of round R (R >= 1):
 *   /f0 .. /f9      content(fI, R), sizes from one to several chunks, mostly partial last chunks; each
 *                   round changes every file's size and rewrites it with one of four write patterns
 *                   (truncate then write, overwrite then truncate, backwards unaligned, aligned pieces)
 *   /nR             content(nR, R): one file created per round, the previous round's one removed
 *   /sub/mR         content(mR, R): renamed from mR-1 each round and rewritten in place
 * content(TAG, R) starts with "TAG round R\n" and continues with bytes from a generator seeded by
 * (TAG, R), so no two rounds share a chunk; the checker reads a file's round from its first line and then
 * compares every byte and the size. Anything else (a name too many or missing, a file of another round, a
 * mix of rounds inside a file, a failed read) is reported and the check fails.
 *
 * Exit: 0; the fs_status of a failed open (2 rollback, 3 fork, ...); 9 the volume opened but its
 * contents are not the complete state of one round; 64 usage; 74 other errors. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/keys.h"
#include "fs/volume/volume.h"

#define NFILES 10
#define EXIT_STATE 9
#define EXIT_IO 74
#define EXIT_USAGE 64

static uint32_t cs;

#define TOOL_NAME "crashwriter"
#include "die.h"

/* ---- deterministic content ---- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t seed_of(const char *tag, unsigned round)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = tag; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h ^ ((uint64_t)round << 32) ^ round;
}

/* Size of file fI in round r: every size differs from the previous round's. */
static size_t fsize(int i, unsigned r)
{
	const size_t sizes[10] = { 33,	       cs - 1,	       cs,	       cs + 1,		   2 * cs + 1,
				   3 * cs,     3 * cs + 100,   5 * cs - 1,     7 * cs + cs / 2 + 1, 11 * cs + 7 };
	return sizes[(3u * (unsigned)i + r) % 10];
}

static size_t nsize(unsigned r)
{
	return 2 * cs + 16 + (r * 997u) % cs;
}

static size_t msize(unsigned r)
{
	return cs + 64 + (r * 389u) % (2 * cs);
}

static uint8_t *content(const char *tag, unsigned round, size_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		die(EXIT_IO, "out of memory");
	uint64_t s = seed_of(tag, round);
	for (size_t i = 0; i < size; i += 8) {
		uint64_t x = splitmix(&s);
		memcpy(b + i, &x, size - i < 8 ? size - i : 8);
	}
	char head[64];
	int n = snprintf(head, sizeof(head), "%s round %u\n", tag, round);
	memcpy(b, head, (size_t)n < size ? (size_t)n : size);
	return b;
}

/* ---- volume helpers ---- */

static fs_volume *vol_open(const char *dir, const char *key, const char *trust)
{
	fs_volume_opts o = { .dir = dir, .key_file = key, .trust_uri = trust, .crash_at = getenv("FSHIELD_CRASH_AT") };
	fs_volume *v = NULL;
	char err[512] = "";
	int st = fsv_open(&o, &v, err, sizeof(err));
	if (st)
		die(st, "open %s: %s (status %d)", dir, err, st);
	fs_volume_info info;
	fsv_info(v, &info);
	cs = info.chunk_size;
	return v;
}

static uint64_t version_of(fs_volume *v)
{
	fs_volume_info info;
	fsv_info(v, &info);
	return info.version;
}

struct names {
	char name[64][FS_NAME_MAX + 1];
	uint64_t ino[64];
	uint32_t mode[64];
	int n, overflow;
};

static int fill(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next_off)
{
	(void)next_off;
	struct names *l = ctx;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (l->n == 64) {
		l->overflow = 1;
		return 1;
	}
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	l->ino[l->n] = ino;
	l->mode[l->n] = mode;
	l->n++;
	return 0;
}

static void list_dir(fs_volume *v, uint64_t dir, struct names *l)
{
	memset(l, 0, sizeof(*l));
	int rc = fsv_readdir(v, dir, 0, fill, l);
	if (rc)
		die(EXIT_STATE, "readdir of inode %" PRIu64 ": %s", dir, strerror(-rc));
	if (l->overflow)
		die(EXIT_STATE, "directory inode %" PRIu64 " has more than 64 entries", dir);
}

/* The single entry "PREFIX<number>" of a listing: its number, or 0 when there is none. */
static unsigned numbered(const struct names *l, char prefix, int *idx)
{
	unsigned found = 0;
	for (int i = 0; i < l->n; i++) {
		unsigned k;
		char tail;
		if (l->name[i][0] != prefix || sscanf(l->name[i] + 1, "%u%c", &k, &tail) != 1 || k == 0)
			continue;
		if (found)
			die(EXIT_STATE, "two files %c%u and %s: not the state of one round", prefix, found, l->name[i]);
		found = k;
		*idx = i;
	}
	return found;
}

static void write_all(fs_volume *v, uint64_t ino, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = fsv_write(v, ino, buf, len, off);
		if (n <= 0)
			die(EXIT_IO, "write of inode %" PRIu64 " at %" PRIu64 ": %s", ino, off,
			    n < 0 ? strerror((int)-n) : "no progress");
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
}

static void set_size(fs_volume *v, uint64_t ino, uint64_t size)
{
	fs_attr in = { .size = size }, out;
	int rc = fsv_setattr(v, ino, &in, FS_SET_SIZE, &out);
	if (rc)
		die(EXIT_IO, "truncate inode %" PRIu64 " to %" PRIu64 ": %s", ino, size, strerror(-rc));
}

static uint64_t size_of(fs_volume *v, uint64_t ino)
{
	fs_attr a;
	int rc = fsv_getattr(v, ino, &a);
	if (rc)
		die(EXIT_STATE, "getattr of inode %" PRIu64 ": %s", ino, strerror(-rc));
	return a.size;
}

/* Replaces the whole content of ino by buf, with one of four write patterns. */
static void rewrite(fs_volume *v, uint64_t ino, const uint8_t *buf, size_t size, int pattern)
{
	switch (pattern & 3) {
	case 0: /* truncate to zero, one write */
		set_size(v, ino, 0);
		write_all(v, ino, buf, size, 0);
		break;
	case 1: /* overwrite in place in 1000-byte pieces, then cut to size */
		for (size_t off = 0; off < size; off += 1000)
			write_all(v, ino, buf + off, size - off < 1000 ? size - off : 1000, off);
		set_size(v, ino, size);
		break;
	case 2: { /* unaligned 3000-byte pieces from the end backwards, then cut to size */
		size_t end = size;
		while (end) {
			size_t a = end > 3000 ? end - 3000 : 0;
			write_all(v, ino, buf + a, end - a, a);
			end = a;
		}
		set_size(v, ino, size);
		break;
	}
	default: /* resize first, then chunk-aligned pieces and a partial last one */
		set_size(v, ino, size);
		for (size_t off = 0; off < size; off += cs)
			write_all(v, ino, buf + off, size - off < cs ? size - off : cs, off);
		break;
	}
}

/* Reads the whole file and returns the round its content belongs to; dies unless it is exactly
 * content(tag, round) for that round. */
static unsigned file_round(fs_volume *v, uint64_t ino, const char *tag, size_t (*sizefn)(int, unsigned), int i)
{
	uint64_t size = size_of(v, ino);
	if (size > 64 * (uint64_t)cs)
		die(EXIT_STATE, "%s: size %" PRIu64 " is no round's", tag, size);
	uint8_t *got = malloc(size + 1);
	if (!got)
		die(EXIT_IO, "out of memory");
	size_t done = 0;
	while (done < size) {
		ssize_t n = fsv_read(v, ino, got + done, size - done, done);
		if (n < 0)
			die(EXIT_STATE, "%s: read at %zu failed: %s", tag, done, strerror((int)-n));
		if (n == 0)
			die(EXIT_STATE, "%s: read at %zu: end of file before its size %" PRIu64, tag, done, size);
		done += (size_t)n;
	}
	got[size] = 0;
	char want_head[40];
	unsigned r;
	int hlen = 0;
	if (sscanf((char *)got, "%*s round %u\n%n", &r, &hlen) != 1 || r == 0)
		die(EXIT_STATE, "%s: does not start with a round header (size %" PRIu64 ")", tag, size);
	snprintf(want_head, sizeof(want_head), "%s round %u\n", tag, r);
	if (strncmp((char *)got, want_head, strlen(want_head)) != 0)
		die(EXIT_STATE, "%s: holds another file's content", tag);
	size_t want = sizefn(i, r);
	if (size != want)
		die(EXIT_STATE, "%s: header of round %u but size %" PRIu64 " instead of %zu", tag, r, size, want);
	uint8_t *exp = content(tag, r, want);
	for (size_t k = 0; k < want; k++)
		if (got[k] != exp[k])
			die(EXIT_STATE, "%s: header of round %u, but byte %zu (chunk %zu) differs from that round's content",
			    tag, r, k, k / cs);
	free(exp);
	free(got);
	return r;
}

static size_t nsize_i(int i, unsigned r)
{
	(void)i;
	return nsize(r);
}

static size_t msize_i(int i, unsigned r)
{
	(void)i;
	return msize(r);
}

/* Checks the whole volume; returns its round (0: empty volume, never written). When packs is set, writes
 * there the pack file of each file (layout d/II/INO.GEN, fs/volume/data.c) for the leftover check. */
static unsigned check_state(fs_volume *v, FILE *packs)
{
	struct names root, sub;
	list_dir(v, FS_ROOT_INO, &root);
	if (root.n == 0)
		return 0;
	int ni = -1, si = -1, seen[NFILES] = { 0 };
	unsigned rn = numbered(&root, 'n', &ni);
	if (!rn)
		die(EXIT_STATE, "no file nR in the root directory");
	for (int i = 0; i < root.n; i++) {
		int k;
		char tail;
		if (i == ni)
			continue;
		if (!strcmp(root.name[i], "sub") && S_ISDIR(root.mode[i]))
			si = i;
		else if (sscanf(root.name[i], "f%d%c", &k, &tail) == 1 && k >= 0 && k < NFILES && !seen[k] &&
			 S_ISREG(root.mode[i]))
			seen[k] = i + 1;
		else
			die(EXIT_STATE, "unexpected entry '%s' in the root directory", root.name[i]);
	}
	if (si < 0)
		die(EXIT_STATE, "directory 'sub' missing");
	for (int k = 0; k < NFILES; k++)
		if (!seen[k])
			die(EXIT_STATE, "file f%d missing", k);
	list_dir(v, root.ino[si], &sub);
	int mi = -1;
	unsigned rm = numbered(&sub, 'm', &mi);
	if (!rm || sub.n != 1)
		die(EXIT_STATE, "sub holds %d entries, expected exactly one mR", sub.n);

	char tag[16];
	unsigned r = file_round(v, root.ino[ni], root.name[ni], nsize_i, 0);
	if (r != rn)
		die(EXIT_STATE, "%s holds the content of round %u", root.name[ni], r);
	snprintf(tag, sizeof(tag), "m%u", rm);
	unsigned r2 = file_round(v, sub.ino[mi], tag, msize_i, 0);
	if (rm != rn || r2 != rn)
		die(EXIT_STATE, "mixed rounds: n%u, but sub/m%u with content of round %u", rn, rm, r2);
	for (int k = 0; k < NFILES; k++) {
		snprintf(tag, sizeof(tag), "f%d", k);
		unsigned rf = file_round(v, root.ino[seen[k] - 1], tag, fsize, k);
		if (rf != rn)
			die(EXIT_STATE, "mixed rounds: n%u, but f%d holds round %u", rn, k, rf);
	}
	if (packs) {
		uint64_t inos[NFILES + 2];
		for (int k = 0; k < NFILES; k++)
			inos[k] = root.ino[seen[k] - 1];
		inos[NFILES] = root.ino[ni];
		inos[NFILES + 1] = sub.ino[mi];
		for (int k = 0; k < NFILES + 2; k++) {
			fs_attr a;
			if (fsv_getattr(v, inos[k], &a) != 0)
				die(EXIT_STATE, "getattr of inode %" PRIu64 " failed", inos[k]);
			fprintf(packs, "pack d/%02x/%016" PRIx64 ".%" PRIx64 "\n", (unsigned)(a.ino & 0xff), a.ino,
				a.gen);
		}
	}
	return rn;
}

static uint64_t lookup(fs_volume *v, uint64_t parent, const char *name)
{
	fs_attr a;
	int rc = fsv_lookup(v, parent, name, &a);
	if (rc)
		die(EXIT_STATE, "lookup %s: %s", name, strerror(-rc));
	fsv_forget(v, a.ino, 1);
	return a.ino;
}

static uint64_t create(fs_volume *v, uint64_t parent, const char *name, uint32_t mode)
{
	fs_attr a;
	int rc = S_ISDIR(mode) ? fsv_mkdir(v, parent, name, mode & 07777, 0, 0, &a)
			       : fsv_mknod(v, parent, name, mode, 0, 0, 0, &a);
	if (rc)
		die(EXIT_IO, "create %s: %s", name, strerror(-rc));
	fsv_forget(v, a.ino, 1);
	return a.ino;
}

static int do_write(const char *dir, const char *key, const char *trust, unsigned round)
{
	fs_volume *v = vol_open(dir, key, trust);
	unsigned cur = check_state(v, NULL);
	if (cur != round - 1)
		die(EXIT_STATE, "the volume holds round %u, not %u: cannot write round %u", cur, round - 1, round);
	char name[32], prev[32];
	uint64_t sub;
	if (round == 1) {
		for (int i = 0; i < NFILES; i++) {
			snprintf(name, sizeof(name), "f%d", i);
			create(v, FS_ROOT_INO, name, S_IFREG | 0644);
		}
		sub = create(v, FS_ROOT_INO, "sub", S_IFDIR | 0755);
		create(v, sub, "m1", S_IFREG | 0644);
	} else {
		sub = lookup(v, FS_ROOT_INO, "sub");
		snprintf(prev, sizeof(prev), "m%u", round - 1);
		snprintf(name, sizeof(name), "m%u", round);
		int rc = fsv_rename(v, sub, prev, sub, name, 0);
		if (rc)
			die(EXIT_IO, "rename sub/%s: %s", prev, strerror(-rc));
		snprintf(prev, sizeof(prev), "n%u", round - 1);
		if ((rc = fsv_unlink(v, FS_ROOT_INO, prev)) != 0)
			die(EXIT_IO, "unlink %s: %s", prev, strerror(-rc));
	}
	/* the round's new file */
	snprintf(name, sizeof(name), "n%u", round);
	uint64_t ino = create(v, FS_ROOT_INO, name, S_IFREG | 0644);
	uint8_t *buf = content(name, round, nsize(round));
	rewrite(v, ino, buf, nsize(round), (int)round);
	free(buf);
	/* the renamed one, rewritten in place */
	snprintf(name, sizeof(name), "m%u", round);
	ino = lookup(v, sub, name);
	buf = content(name, round, msize(round));
	rewrite(v, ino, buf, msize(round), 1);
	free(buf);
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ino = lookup(v, FS_ROOT_INO, name);
		size_t size = fsize(i, round);
		buf = content(name, round, size);
		rewrite(v, ino, buf, size, i + (int)round);
		free(buf);
	}
	uint64_t before = version_of(v);
	int rc = fsv_commit(v);
	if (rc)
		die(EXIT_IO, "commit of round %u: %s", round, strerror(-rc));
	uint64_t after = version_of(v);
	if (after != before + 1)
		die(EXIT_STATE, "commit of round %u made version %" PRIu64 " from %" PRIu64, round, after, before);
	if ((rc = fsv_close(v)) != 0)
		die(EXIT_IO, "close: %s", strerror(-rc));
	printf("round %u version %" PRIu64 "\n", round, after);
	return 0;
}

static int do_check(const char *dir, const char *key, const char *trust)
{
	fs_volume *v = vol_open(dir, key, trust);
	uint64_t ver = version_of(v);
	/* the line with round and version first, the pack lines after it */
	char *packs = NULL;
	size_t plen = 0;
	FILE *mem = open_memstream(&packs, &plen);
	if (!mem)
		die(EXIT_IO, "out of memory");
	unsigned r = check_state(v, mem);
	fclose(mem);
	if (version_of(v) != ver)
		die(EXIT_STATE, "reading the volume changed its version");
	int rc = fsv_close(v);
	if (rc)
		die(EXIT_IO, "close: %s", strerror(-rc));
	printf("round %u version %" PRIu64 "\n%s", r, ver, packs ? packs : "");
	free(packs);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fs_crypto_init() != 0) /* the library expects its caller to initialise libsodium */
		die(EXIT_IO, "cannot initialise the crypto library");
	if (argc == 6 && !strcmp(argv[1], "write")) {
		char *end;
		unsigned long r = strtoul(argv[5], &end, 10);
		if (*end || r == 0 || r > 1000000)
			die(EXIT_USAGE, "bad round '%s'", argv[5]);
		return do_write(argv[2], argv[3], argv[4], (unsigned)r);
	}
	if (argc == 5 && !strcmp(argv[1], "check"))
		return do_check(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: crashwriter write DIR KEYFILE TRUST ROUND\n"
			"       crashwriter check DIR KEYFILE TRUST\n");
	return EXIT_USAGE;
}
