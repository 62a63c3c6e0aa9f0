/* fsmodel: model checking of a directory in a mounted volume against a plain directory on the host.
 *
 *   fsmodel run SEED A B [--ops N] [--from K] [--check-every M] [-v]
 *       performs operations K .. K+N-1 (defaults: K 0, N 10000) of the random sequence of SEED on the
 *       trees below A (in the volume) and B (the model: a directory on the host's own file system), and
 *       compares after every operation the return values, errno, data read, and the sizes of the files
 *       touched; every M operations (default 250) and at the end, the whole trees: listings, types,
 *       modes, link counts, sizes and contents, read through fresh descriptors. -v prints every
 *       operation with its result, and the time spent in each kind of operation.
 *   fsmodel compare A B
 *       only the comparison of the whole trees (e.g. after an unmount and a mount).
 *
 * Operation I draws its random numbers from (SEED, I) alone, and what it does depends only on them and on
 * the state of B, so a sequence may be cut anywhere and continued with --from (after a remount, say).
 * Open descriptors are closed every 500 operations (and when the program ends): a sequence cut at
 * multiples of 500 performs the same operations as the uncut one. On the first difference the program
 * prints the seed, the operation's index, the operation, both results and the last operations before it,
 * and exits 1.
 *
 * Operations: open (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, all access modes), close, pwrite, write at the
 * file position, pread, read, lseek, ftruncate, truncate, fsync, fdatasync, fsync of a directory, writes
 * through a MAP_SHARED mapping (after reading it) then msync (MS_SYNC or MS_ASYNC), fallocate (0,
 * KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE), reads through a fresh descriptor, stat, fstat, create, unlink, link,
 * rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE, through the raw system call), mkdir, rmdir, removal of
 * a whole tree, directory listings. Names come from a fixed pool of five directories ("", d0, d1, d0/e0,
 * d1/e1) and six file names in each; directories may be renamed onto other names of the pool, taking
 * their contents with them. Descriptors stay open across unlink and rename.
 *
 * Offsets and sizes fall into a few zones: the first 3 MiB (mostly near chunk boundaries of 4096 bytes
 * and near the current size), one MiB at 40 MiB, one MiB around 4 GiB, one MiB just past 5 GiB. Nothing
 * is ever written between zones, so a whole-tree comparison reads every zone of every file and samples
 * the gaps between them, which must read as zeros.
 *
 * Exit: 0 same; 1 a difference; 64 usage; 74 A or B cannot be opened. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXIT_DIFF 1
#define EXIT_USAGE 64
#define EXIT_IO 74

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define CS ((uint64_t)4096) /* the volume's chunk size in the test; offsets cluster around its multiples */
#define NSLOTS 8
#define EPOCH 500 /* descriptors are all closed at multiples of this */
#define MAXIO (256 * KiB + 2 * CS)
#define HISTORY 16

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

static const char *const side_name[2] = { "A (volume)", "B (model)" };

struct zone {
	uint64_t lo, hi;
};
static const struct zone zones[] = {
	{ 0, 3 * MiB },
	{ 40 * MiB + 1234, 41 * MiB },
	{ 4 * GiB - 512 * KiB, 4 * GiB + 512 * KiB },
	{ 5 * GiB + 3, 5 * GiB + 3 + MiB },
};
#define NZONES (sizeof(zones) / sizeof(zones[0]))

/* ---- state ---- */

static int root[2];
static uint64_t g_seed, g_op;
static int g_in_run, verbose;
static char desc[600];
static char history[HISTORY][640];
static unsigned nhistory;

struct slot {
	int used, flags;
	int fd[2];
	char path[32];
};
static struct slot slots[NSLOTS];

struct res {
	long ret;
	int err;
};

static unsigned char *iobuf[2], *databuf;
static size_t pagesize;

/* ---- random numbers ---- */

struct rng {
	uint64_t s;
};

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t next(struct rng *r)
{
	return mix(r->s += 0x9e3779b97f4a7c15ull);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? next(r) % n : 0;
}

static int chance(struct rng *r, unsigned pct)
{
	return below(r, 100) < pct;
}

static void fill_data(struct rng *r, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = next(r);
		memcpy(databuf + i, &x, n - i < 8 ? n - i : 8);
	}
}

/* ---- reporting ---- */

static void describe(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void describe(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (g_in_run) {
		snprintf(history[nhistory % HISTORY], sizeof(history[0]), "op %" PRIu64 ": %s", g_op, desc);
		nhistory++;
	}
	if (verbose)
		printf("op %" PRIu64 ": %s\n", g_op, desc);
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "?";
}

static const char *fmtres(struct res r, char *buf, size_t n)
{
	if (r.ret < 0)
		snprintf(buf, n, "%ld, errno %s (%s)", r.ret, errname(r.err), strerror(r.err));
	else
		snprintf(buf, n, "%ld", r.ret);
	return buf;
}

static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void mismatch(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	if (g_in_run) {
		unsigned first = nhistory > HISTORY ? nhistory - HISTORY : 0;
		fprintf(stderr, "fsmodel: the operations before it:\n");
		for (unsigned i = first; i + 1 < nhistory; i++)
			fprintf(stderr, "    %s\n", history[i % HISTORY]);
		fprintf(stderr, "fsmodel: MISMATCH, seed %" PRIu64 ", operation %" PRIu64 ": %s\n", g_seed, g_op,
			desc);
	} else {
		fprintf(stderr, "fsmodel: MISMATCH: %s\n", desc);
	}
	fputs("    ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_DIFF);
}

#define TOOL_NAME "fsmodel"
#include "die.h"

/* Both sides must have returned the same value with the same errno. */
static void same(const struct res *rs)
{
	char a[160], b[160];
	if (rs[0].ret != rs[1].ret || (rs[0].ret < 0 && rs[0].err != rs[1].err))
		mismatch("results differ: A (volume) returned %s; B (model) returned %s", fmtres(rs[0], a, sizeof(a)),
			 fmtres(rs[1], b, sizeof(b)));
}

static struct res result(long ret)
{
	struct res r = { ret, ret < 0 ? errno : 0 };
	return r;
}

/* Runs CALL on side A and then on side B (CALL names the side as s: root[s], fd[s]) into rs[0] and rs[1],
 * and fails unless both returned the same. */
#define BOTH(rs, CALL)                         \
	do {                                   \
		for (int s = 0; s < 2; s++)    \
			(rs)[s] = result(CALL); \
		same(rs);                      \
	} while (0)

/* BOTH, then the result is noted for the statistics and the verbose log. */
#define BOTH_NOTED(rs, CALL)      \
	do {                      \
		BOTH(rs, CALL);   \
		note(rs);         \
	} while (0)

/* Reports the first differing byte of two buffers that hold [off, off+n) of a file. */
static void same_bytes(const unsigned char *a, const unsigned char *b, size_t n, uint64_t off, const char *what)
{
	if (!memcmp(a, b, n))
		return;
	size_t i = 0;
	while (a[i] == b[i])
		i++;
	size_t end = n - i < 16 ? n : i + 16;
	char ha[64] = "", hb[64] = "";
	for (size_t k = i, p = 0; k < end; k++, p += 3) {
		snprintf(ha + p, sizeof(ha) - p, "%02x ", a[k]);
		snprintf(hb + p, sizeof(hb) - p, "%02x ", b[k]);
	}
	mismatch("%s: content differs at file offset %" PRIu64 " (byte %zu of %zu read from offset %" PRIu64
		 "): A (volume) %s; B (model) %s",
		 what, off + i, i, n, off, ha, hb);
}

/* ---- the pool of names ---- */

static const char *const dirs[] = { "", "d0/", "d1/", "d0/e0/", "d1/e1/" };
#define NDIRS (sizeof(dirs) / sizeof(dirs[0]))
#define NFNAMES 6
#define NFILESLOTS (NDIRS * NFNAMES)
#define NPOOL (NFILESLOTS + NDIRS - 1)

static void pool_path(unsigned i, char *out, size_t n)
{
	if (i < NFILESLOTS) {
		snprintf(out, n, "%sf%u", dirs[i / NFNAMES], i % NFNAMES);
	} else {
		snprintf(out, n, "%s", dirs[i - NFILESLOTS + 1]);
		out[strlen(out) - 1] = '\0';
	}
}

/* A name of the pool that is a regular file in B, most of the time; else any file name of the pool. */
static void pick_file(struct rng *r, char *out, size_t n)
{
	unsigned have[NFILESLOTS], nh = 0;
	char p[32];
	struct stat st;
	for (unsigned i = 0; i < NFILESLOTS; i++) {
		pool_path(i, p, sizeof(p));
		if (fstatat(root[1], p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			have[nh++] = i;
	}
	if (nh && chance(r, 85))
		pool_path(have[below(r, nh)], out, n);
	else
		pool_path((unsigned)below(r, NFILESLOTS), out, n);
}

static void pick_any(struct rng *r, char *out, size_t n)
{
	if (chance(r, 80))
		pick_file(r, out, n);
	else
		pool_path((unsigned)below(r, NPOOL), out, n);
}

static void pick_dir(struct rng *r, char *out, size_t n)
{
	if (chance(r, 96))
		pool_path(NFILESLOTS + (unsigned)below(r, NDIRS - 1), out, n);
	else
		pool_path((unsigned)below(r, NFILESLOTS), out, n);
}

/* A name of the pool (of a file, or of a directory) that does not exist in B but whose directory does,
 * most of the time; else any name of that kind. */
static void pick_new(struct rng *r, int dir, char *out, size_t n)
{
	unsigned cand[NPOOL], nc = 0, lo = dir ? NFILESLOTS : 0, hi = dir ? NPOOL : NFILESLOTS;
	char p[32];
	struct stat st;
	for (unsigned i = lo; i < hi; i++) {
		pool_path(i, p, sizeof(p));
		if (fstatat(root[1], p, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
			continue;
		char *slash = strrchr(p, '/');
		if (slash)
			*slash = '\0';
		if (!slash || (fstatat(root[1], p, &st, 0) == 0 && S_ISDIR(st.st_mode)))
			cand[nc++] = i;
	}
	if (nc && chance(r, 80))
		pool_path(cand[below(r, nc)], out, n);
	else
		pool_path(lo + (unsigned)below(r, hi - lo), out, n);
}

/* With pct percent chance a new name (as pick_new), else one from other (pick_any, pick_file, pick_dir). */
static void pick_new_or(struct rng *r, unsigned pct, int dir, void (*other)(struct rng *, char *, size_t), char *out,
			size_t n)
{
	if (chance(r, pct))
		pick_new(r, dir, out, n);
	else
		other(r, out, n);
}

/* ---- offsets and sizes ---- */

/* Moves x into a zone: unchanged inside one (or at its end), else wrapped into the zone below it. */
static uint64_t fit(uint64_t x)
{
	unsigned z = 0;
	for (unsigned i = 0; i < NZONES; i++)
		if (zones[i].lo <= x)
			z = i;
	if (x <= zones[z].hi)
		return x;
	return zones[z].lo + (x - zones[z].lo) % (zones[z].hi - zones[z].lo);
}

static const struct zone *zone_of(uint64_t off)
{
	for (unsigned i = 0; i < NZONES; i++)
		if (zones[i].lo <= off && off < zones[i].hi)
			return &zones[i];
	return NULL;
}

static uint64_t near_boundary(struct rng *r)
{
	uint64_t k = below(r, 96), d = below(r, 7);
	return k * CS + d < 3 ? 0 : k * CS + d - 3;
}

static uint64_t far_point(struct rng *r)
{
	unsigned z = 1 + (unsigned)below(r, NZONES - 1);
	if (z == 2 && chance(r, 40)) /* right at 4 GiB */
		return 4 * GiB - 8 + below(r, 16);
	return zones[z].lo + below(r, zones[z].hi - zones[z].lo);
}

/* An offset to write at, for a file of the given size (always inside a zone). */
static uint64_t gen_off(struct rng *r, uint64_t size)
{
	uint64_t p = below(r, 100);
	if (p < 45)
		return fit(below(r, size + 2 * CS + 1));
	if (p < 72)
		return near_boundary(r);
	if (p < 92)
		return below(r, zones[0].hi);
	return far_point(r);
}

static uint64_t gen_len(struct rng *r)
{
	switch (below(r, 11)) {
	case 0:
		return 1 + below(r, 16);
	case 1:
		return CS - 1;
	case 2:
		return CS;
	case 3:
		return CS + 1;
	case 4:
		return 2 * CS - 1 + below(r, 3);
	case 5:
		return (1 + below(r, 8)) * CS;
	case 6:
	case 7:
		return 1 + below(r, 64 * KiB);
	case 8:
		return 1 + below(r, 1024);
	case 9:
		return 1 + below(r, 256 * KiB);
	default:
		return 3 * CS + below(r, 2 * CS);
	}
}

/* Keeps [off, off+len) inside off's zone. */
static uint64_t clamp_len(uint64_t off, uint64_t len)
{
	const struct zone *z = zone_of(off);
	if (!z)
		return 0;
	return off + len > z->hi ? z->hi - off : len;
}

static uint64_t gen_size(struct rng *r, uint64_t size)
{
	uint64_t p = below(r, 100);
	if (p < 30)
		return fit(below(r, size + 1));
	if (p < 50)
		return below(r, 96) * CS + 1 + below(r, CS - 1); /* inside a chunk */
	if (p < 62)
		return near_boundary(r);
	if (p < 77)
		return fit(size + below(r, 3 * CS));
	if (p < 81)
		return 0;
	if (p < 93)
		return below(r, zones[0].hi);
	return far_point(r);
}

/* ---- sides ---- */

static struct stat fstat_both(const int *fd, const char *what)
{
	struct stat st[2];
	struct res rs[2];
	BOTH(rs, fstat(fd[s], &st[s]));
	if (rs[0].ret < 0)
		mismatch("%s: fstat failed on both sides: %s", what, strerror(rs[0].err));
	if ((st[0].st_mode & S_IFMT) != (st[1].st_mode & S_IFMT))
		mismatch("%s: file type differs: A (volume) 0%o; B (model) 0%o", what, st[0].st_mode, st[1].st_mode);
	if (S_ISREG(st[1].st_mode) && st[0].st_size != st[1].st_size) /* directory sizes are the file system's own */
		mismatch("%s: size differs: A (volume) %" PRIu64 "; B (model) %" PRIu64, what, (uint64_t)st[0].st_size,
			 (uint64_t)st[1].st_size);
	return st[1];
}

/* Reads up to n bytes at off, as many as there are; -errno on failure. */
static long read_at(int fd, unsigned char *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (long)got;
}

/* Compares [off, off+n) of two open files, which must both be readable to that extent. */
static void compare_range(const int *fd, uint64_t off, uint64_t n, const char *what)
{
	while (n > 0) {
		size_t k = n < MAXIO ? (size_t)n : MAXIO;
		struct res rs[2];
		BOTH(rs, read_at(fd[s], iobuf[s], k, off));
		if (rs[0].ret != (long)k)
			mismatch("%s: short read at %" PRIu64 ": %ld of %zu bytes on both sides", what, off, rs[0].ret, k);
		same_bytes(iobuf[0], iobuf[1], k, off, what);
		off += k;
		n -= k;
	}
}

/* The whole content of a file: every zone in full, the gaps between them sampled (they must be zero). */
static void compare_content(const int *fd, uint64_t size, const char *what)
{
	struct rng r = { size };
	for (unsigned i = 0; i < NZONES && zones[i].lo < size; i++) {
		uint64_t hi = zones[i].hi < size ? zones[i].hi : size;
		compare_range(fd, zones[i].lo, hi - zones[i].lo, what);
		uint64_t g0 = zones[i].hi, g1 = i + 1 < NZONES && zones[i + 1].lo < size ? zones[i + 1].lo : size;
		if (g0 >= g1)
			continue;
		uint64_t pts[4] = { g0, g1 - (g1 - g0 < CS ? g1 - g0 : CS), g0 + below(&r, g1 - g0),
				    g0 + below(&r, g1 - g0) };
		for (unsigned k = 0; k < 4; k++) {
			uint64_t n = g1 - pts[k] < 2 * CS ? g1 - pts[k] : 2 * CS;
			compare_range(fd, pts[k], n, what);
			for (uint64_t j = 0; j < n; j++)
				if (iobuf[0][j])
					mismatch("%s: byte %" PRIu64 " between zones, never written, is not zero", what,
						 pts[k] + j);
		}
	}
}

static void join(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s%s%s", dir, *dir ? "/" : "", name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in a directory (without . and ..); -errno on failure. */
static long list_dir(int side, const char *rel, char ***names)
{
	int fd = openat(root[side], *rel ? rel : ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof(*v));
	struct dirent *de;
	errno = 0;
	while (v && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof(*v));
		if (v && !(v[n++] = strdup(de->d_name)))
			die(EXIT_IO, "out of memory");
	}
	int e = errno;
	closedir(d);
	if (!v)
		die(EXIT_IO, "out of memory");
	if (e) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return -e;
	}
	qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	return (long)n;
}

static void free_names(char **v, long n)
{
	for (long i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void list_both(const char *rel, char ***names, long *n)
{
	struct res rs[2];
	char **v[2] = { NULL, NULL };
	for (int s = 0; s < 2; s++) {
		long k = list_dir(s, rel, &v[s]);
		rs[s] = k < 0 ? (struct res){ -1, (int)-k } : (struct res){ k, 0 };
	}
	if (rs[0].ret >= 0 && rs[1].ret >= 0) {
		for (long i = 0; i < rs[0].ret || i < rs[1].ret; i++) {
			const char *a = i < rs[0].ret ? v[0][i] : "(end)", *b = i < rs[1].ret ? v[1][i] : "(end)";
			if (strcmp(a, b))
				mismatch("listing of '%s' differs: entry %ld is '%s' in A (volume), '%s' in B (model)", rel,
					 i, a, b);
		}
	}
	same(rs);
	if (rs[0].ret >= 0)
		free_names(v[0], rs[0].ret);
	*names = v[1];
	*n = rs[1].ret;
}

/* Compares what lstat says on both sides (type, mode, links, size of files); returns B's stat. */
static long stat_both(const char *rel, struct stat *out)
{
	struct stat st[2];
	struct res rs[2];
	BOTH(rs, fstatat(root[s], rel, &st[s], AT_SYMLINK_NOFOLLOW));
	if (rs[0].ret < 0)
		return -rs[0].err;
	if (st[0].st_mode != st[1].st_mode)
		mismatch("'%s': mode differs: A (volume) 0%o; B (model) 0%o", rel, st[0].st_mode, st[1].st_mode);
	/* (the link count of a directory is 2 + subdirectories, unless B's file system keeps it at 1) */
	if (st[0].st_nlink != st[1].st_nlink && !(S_ISDIR(st[1].st_mode) && st[1].st_nlink == 1))
		mismatch("'%s': link count differs: A (volume) %lu; B (model) %lu", rel, (unsigned long)st[0].st_nlink,
			 (unsigned long)st[1].st_nlink);
	if (S_ISREG(st[1].st_mode) && st[0].st_size != st[1].st_size)
		mismatch("'%s': size differs: A (volume) %" PRIu64 "; B (model) %" PRIu64, rel, (uint64_t)st[0].st_size,
			 (uint64_t)st[1].st_size);
	*out = st[1];
	return 0;
}

/* After a link or a rename, both names must look alike on both sides. */
static void stat_names_both(const char *a, const char *b)
{
	struct stat st;
	stat_both(a, &st);
	stat_both(b, &st);
}

struct totals {
	uint64_t files, dirs, bytes;
};

/* Opens rel on both sides; both must succeed or fail alike. Returns -1 if both failed. */
static int open_both(const char *rel, int flags, int *fd)
{
	struct res rs[2];
	for (int s = 0; s < 2; s++) {
		fd[s] = openat(root[s], rel, flags | O_CLOEXEC, 0644);
		rs[s] = result(fd[s] < 0 ? -1 : 0);
	}
	if ((fd[0] < 0) != (fd[1] < 0))
		for (int s = 0; s < 2; s++)
			if (fd[s] >= 0)
				close(fd[s]);
	same(rs);
	if (verbose && fd[0] < 0)
		printf("    -> open: %s\n", errname(rs[1].err));
	return fd[0] < 0 ? -1 : 0;
}

static void compare_file(const char *rel, uint64_t size, struct totals *t)
{
	int fd[2];
	struct res rs[2];
	if (open_both(rel, O_RDONLY, fd) < 0)
		mismatch("'%s' cannot be opened on either side", rel);
	char what[600];
	snprintf(what, sizeof(what), "'%s' through a fresh descriptor", rel);
	fstat_both(fd, what);
	compare_content(fd, size, what);
	/* and nothing past the end */
	BOTH(rs, pread(fd[s], iobuf[s], 16, (off_t)size));
	close(fd[0]);
	close(fd[1]);
	t->files++;
	t->bytes += size;
}

static void compare_tree(const char *rel, struct totals *t)
{
	char **names, p[512];
	long n;
	list_both(rel, &names, &n);
	if (n < 0)
		mismatch("'%s' cannot be listed on either side: %s", rel, strerror((int)-n));
	t->dirs++;
	for (long i = 0; i < n; i++) {
		struct stat st;
		join(p, sizeof(p), rel, names[i]);
		if (stat_both(p, &st) < 0)
			mismatch("'%s' listed but cannot be stat'ed on either side", p);
		if (S_ISDIR(st.st_mode))
			compare_tree(p, t);
		else if (S_ISREG(st.st_mode))
			compare_file(p, (uint64_t)st.st_size, t);
	}
	free_names(names, n);
}

static struct totals compare_all(void)
{
	struct totals t = { 0, 0, 0 };
	compare_tree("", &t);
	return t;
}

/* ---- operations ---- */

enum {
	OP_OPEN,
	OP_CLOSE,
	OP_PWRITE,
	OP_WRITE,
	OP_PREAD,
	OP_READ,
	OP_LSEEK,
	OP_FTRUNCATE,
	OP_TRUNCATE,
	OP_FSYNC,
	OP_MMAP,
	OP_FALLOCATE,
	OP_FRESHREAD,
	OP_STAT,
	OP_FSTAT,
	OP_CREATE,
	OP_UNLINK,
	OP_LINK,
	OP_RENAME,
	OP_MKDIR,
	OP_RMDIR,
	OP_READDIR,
	OP_RMTREE,
	NOPS
};
static const char *const op_names[NOPS] = {
	"open", "close", "pwrite", "write", "pread", "read", "lseek", "ftruncate", "truncate", "fsync", "mmap",
	"fallocate", "freshread", "stat", "fstat", "create", "unlink", "link", "rename", "mkdir", "rmdir",
	"readdir", "rmtree",
};
static const unsigned op_weight[NOPS] = { 8, 4, 18, 6, 10, 3, 2, 6, 2, 2, 5, 6, 5, 3, 2, 4, 3, 2, 5, 2, 2, 1, 1 };
static uint64_t op_count[NOPS], op_failed;
static double op_time[NOPS];

static void note(const struct res *rs)
{
	if (rs[1].ret < 0)
		op_failed++;
	if (verbose) {
		char a[160];
		printf("    -> %s\n", fmtres(rs[1], a, sizeof(a)));
	}
}

static int nslots_used(void)
{
	int n = 0;
	for (int i = 0; i < NSLOTS; i++)
		n += slots[i].used;
	return n;
}

static struct slot *pick_slot(struct rng *r)
{
	int n = nslots_used(), k = (int)below(r, (uint64_t)n);
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].used && k-- == 0)
			return &slots[i];
	return NULL;
}

static void close_slot(struct slot *sl)
{
	struct res rs[2];
	for (int s = 0; s < 2; s++)
		rs[s] = result(close(sl->fd[s]));
	sl->used = 0;
	same(rs);
}

static void close_all(void)
{
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].used) {
			describe("close slot %d (%s) at the end of an epoch", i, slots[i].path);
			close_slot(&slots[i]);
		}
}

static const char *flag_str(int flags)
{
	static char b[80];
	int acc = flags & O_ACCMODE;
	snprintf(b, sizeof(b), "%s%s%s%s%s", acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : "O_RDWR",
		 flags & O_CREAT ? "|O_CREAT" : "", flags & O_EXCL ? "|O_EXCL" : "", flags & O_TRUNC ? "|O_TRUNC" : "",
		 flags & O_APPEND ? "|O_APPEND" : "");
	return b;
}

static void do_open(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	int flags, idx = -1;
	uint64_t a = below(r, 100);
	flags = a < 76 ? O_RDWR : a < 88 ? O_RDONLY : O_WRONLY;
	if (chance(r, 20))
		flags |= O_APPEND;
	if (chance(r, 40))
		flags |= O_CREAT;
	if ((flags & O_CREAT) && chance(r, 10))
		flags |= O_EXCL;
	if (chance(r, 7))
		flags |= O_TRUNC;
	if ((flags & O_CREAT) && chance(r, 30))
		pick_new(r, 0, p, sizeof(p));
	else
		pick_file(r, p, sizeof(p));
	for (int i = 0; i < NSLOTS && idx < 0; i++)
		if (!slots[i].used)
			idx = i;
	if (idx < 0) { /* all in use: reuse one */
		idx = (int)below(r, NSLOTS);
		describe("close slot %d (%s) to reuse it", idx, slots[idx].path);
		close_slot(&slots[idx]);
	}
	describe("open '%s' %s, mode 0644 -> slot %d", p, flag_str(flags), idx);
	int fd[2];
	if (open_both(p, flags, fd) < 0)
		op_failed++;
	else {
		struct slot *sl = &slots[idx];
		sl->used = 1;
		sl->flags = flags;
		sl->fd[0] = fd[0];
		sl->fd[1] = fd[1];
		snprintf(sl->path, sizeof(sl->path), "%s", p);
		fstat_both(sl->fd, "after open");
	}
}

#define SLOT_FMT "slot %d ('%s' %s)"
#define SLOT_ARGS(sl) (int)((sl) - slots), (sl)->path, flag_str((sl)->flags)

static void do_close(struct rng *r, struct slot *sl)
{
	(void)r;
	describe("close " SLOT_FMT, SLOT_ARGS(sl));
	close_slot(sl);
}

static uint64_t cur_size(struct slot *sl)
{
	struct stat st;
	return fstat(sl->fd[1], &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void after_change(struct slot *sl)
{
	fstat_both(sl->fd, "size after the operation");
}

/* Where a write at off goes: the end of the file for O_APPEND (pwrite too, on Linux). */
static uint64_t write_pos(struct slot *sl, uint64_t off)
{
	return (sl->flags & O_APPEND) ? cur_size(sl) : off;
}

static void do_pwrite(struct rng *r, struct slot *sl)
{
	uint64_t off = gen_off(r, cur_size(sl));
	uint64_t len = clamp_len(write_pos(sl, off), gen_len(r)); /* 0 when it would leave the zones */
	fill_data(r, (size_t)len);
	describe("pwrite " SLOT_FMT " %" PRIu64 " bytes at %" PRIu64, SLOT_ARGS(sl), len, off);
	struct res rs[2];
	BOTH_NOTED(rs, pwrite(sl->fd[s], databuf, (size_t)len, (off_t)off));
	after_change(sl);
}

static void do_write(struct rng *r, struct slot *sl)
{
	uint64_t len = gen_len(r);
	if (len > 64 * KiB)
		len = 64 * KiB;
	len = clamp_len(write_pos(sl, (uint64_t)lseek(sl->fd[1], 0, SEEK_CUR)), len);
	fill_data(r, (size_t)len);
	describe("write " SLOT_FMT " %" PRIu64 " bytes at the file position", SLOT_ARGS(sl), len);
	struct res rs[2];
	BOTH_NOTED(rs, write(sl->fd[s], databuf, (size_t)len));
	BOTH(rs, lseek(sl->fd[s], 0, SEEK_CUR));
	after_change(sl);
}

static void do_pread(struct rng *r, struct slot *sl)
{
	uint64_t size = cur_size(sl);
	uint64_t off = chance(r, 80) ? gen_off(r, size) : size + below(r, 2 * CS) - CS / 2;
	uint64_t len = gen_len(r);
	if (len > MAXIO)
		len = MAXIO;
	describe("pread " SLOT_FMT " %" PRIu64 " bytes at %" PRIu64 " (size %" PRIu64 ")", SLOT_ARGS(sl), len, off,
		 size);
	struct res rs[2];
	BOTH_NOTED(rs, pread(sl->fd[s], iobuf[s], (size_t)len, (off_t)off));
	if (rs[0].ret > 0)
		same_bytes(iobuf[0], iobuf[1], (size_t)rs[0].ret, off, "pread");
}

static void do_read(struct rng *r, struct slot *sl)
{
	uint64_t len = 1 + below(r, 64 * KiB);
	describe("read " SLOT_FMT " %" PRIu64 " bytes at the file position", SLOT_ARGS(sl), len);
	struct res rs[2];
	off_t pos = lseek(sl->fd[1], 0, SEEK_CUR);
	BOTH_NOTED(rs, read(sl->fd[s], iobuf[s], (size_t)len));
	if (rs[0].ret > 0)
		same_bytes(iobuf[0], iobuf[1], (size_t)rs[0].ret, (uint64_t)pos, "read");
}

static void do_lseek(struct rng *r, struct slot *sl)
{
	uint64_t size = cur_size(sl);
	int whence;
	int64_t off;
	switch (below(r, 4)) {
	case 0:
		whence = SEEK_END;
		off = (int64_t)below(r, 3 * CS) - (int64_t)(2 * CS);
		break;
	case 1:
		whence = SEEK_CUR;
		off = (int64_t)below(r, 2 * CS) - (int64_t)CS;
		break;
	default:
		whence = SEEK_SET;
		off = (int64_t)gen_off(r, size);
	}
	describe("lseek " SLOT_FMT " %" PRId64 " %s", SLOT_ARGS(sl), off,
		 whence == SEEK_SET ? "SEEK_SET" : whence == SEEK_CUR ? "SEEK_CUR" : "SEEK_END");
	struct res rs[2];
	BOTH_NOTED(rs, lseek(sl->fd[s], (off_t)off, whence));
}

static void do_ftruncate(struct rng *r, struct slot *sl)
{
	uint64_t size = cur_size(sl), to = gen_size(r, size);
	describe("ftruncate " SLOT_FMT " from %" PRIu64 " to %" PRIu64, SLOT_ARGS(sl), size, to);
	struct res rs[2];
	BOTH_NOTED(rs, ftruncate(sl->fd[s], (off_t)to));
	after_change(sl);
}

static void do_fsync(struct rng *r, struct slot *sl)
{
	struct res rs[2];
	uint64_t k = below(r, 4);
	if (k == 3) {
		char d[32];
		pick_dir(r, d, sizeof(d));
		if (chance(r, 30))
			d[0] = '\0';
		describe("fsync of directory '%s'", d);
		for (int s = 0; s < 2; s++) {
			int fd = openat(root[s], *d ? d : ".", O_RDONLY | O_DIRECTORY);
			rs[s] = result(fd < 0 ? -1 : fsync(fd));
			if (fd >= 0)
				close(fd);
		}
	} else {
		describe("%s " SLOT_FMT, k ? "fsync" : "fdatasync", SLOT_ARGS(sl));
		for (int s = 0; s < 2; s++)
			rs[s] = result(k ? fsync(sl->fd[s]) : fdatasync(sl->fd[s]));
	}
	same(rs);
	note(rs);
}

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_side = -1;

static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_side >= 0)
		siglongjmp(bus_jmp, 1);
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

static void do_mmap(struct rng *r, struct slot *sl)
{
	uint64_t size = cur_size(sl);
	if (size == 0) {
		do_pwrite(r, sl);
		return;
	}
	uint64_t off = fit(chance(r, 60) ? below(r, size) : size - 1 - below(r, size < 2 * CS ? size : 2 * CS));
	uint64_t len = clamp_len(off, gen_len(r));
	if (len > 64 * KiB)
		len = 64 * KiB;
	if (off + len > size)
		len = size - off;
	uint64_t pg = off / pagesize * pagesize, mlen = off + len - pg;
	fill_data(r, (size_t)len);
	int sync = chance(r, 30) ? MS_SYNC : MS_ASYNC; /* MS_SYNC commits the volume: slow */
	describe("mmap MAP_SHARED " SLOT_FMT " [%" PRIu64 ", +%" PRIu64 "), write %" PRIu64 " bytes at %" PRIu64
		 ", msync %s (size %" PRIu64 ")",
		 SLOT_ARGS(sl), pg, mlen, len, off, sync == MS_SYNC ? "MS_SYNC" : "MS_ASYNC", size);
	fstat_both(sl->fd, "before mmap");
	unsigned char *m[2];
	struct res rs[2];
	for (int s = 0; s < 2; s++) {
		m[s] = mmap(NULL, (size_t)mlen, PROT_READ | PROT_WRITE, MAP_SHARED, sl->fd[s], (off_t)pg);
		rs[s] = result(m[s] == MAP_FAILED ? -1 : 0);
	}
	if ((m[0] == MAP_FAILED) != (m[1] == MAP_FAILED))
		for (int s = 0; s < 2; s++)
			if (m[s] != MAP_FAILED)
				munmap(m[s], (size_t)mlen);
	same(rs);
	note(rs);
	if (m[0] == MAP_FAILED)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
	if (sigsetjmp(bus_jmp, 1))
		mismatch("SIGBUS touching the mapping on side %s", side_name[bus_side]);
	for (int s = 0; s < 2; s++) {
		bus_side = s;
		memcpy(iobuf[s], m[s], (size_t)mlen);
	}
	bus_side = -1;
	same_bytes(iobuf[0], iobuf[1], (size_t)mlen, pg, "read through the mapping before writing");
	for (int s = 0; s < 2; s++) {
		bus_side = s;
		memcpy(m[s] + (off - pg), databuf, (size_t)len);
	}
	bus_side = -1;
	BOTH(rs, msync(m[s], (size_t)mlen, sync));
	for (int s = 0; s < 2; s++)
		munmap(m[s], (size_t)mlen);
	after_change(sl);
}

static void do_fallocate(struct rng *r, struct slot *sl)
{
	uint64_t size = cur_size(sl), p = below(r, 100), off, len;
	int mode;
	const char *mname;
	if (p < 25) {
		mode = 0;
		mname = "0";
	} else if (p < 40) {
		mode = FALLOC_FL_KEEP_SIZE;
		mname = "KEEP_SIZE";
	} else {
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		mname = "PUNCH_HOLE|KEEP_SIZE";
	}
	if (mode != 0 && size > 0 && chance(r, 75))
		off = fit(below(r, size));
	else
		off = gen_off(r, size);
	len = chance(r, 3) ? 0 : clamp_len(off, chance(r, 30) ? below(r, 96) * CS + 1 : gen_len(r));
	describe("fallocate " SLOT_FMT " mode %s, %" PRIu64 " bytes at %" PRIu64 " (size %" PRIu64 ")", SLOT_ARGS(sl),
		 mname, len, off, size);
	struct res rs[2];
	BOTH_NOTED(rs, fallocate(sl->fd[s], mode, (off_t)off, (off_t)len));
	after_change(sl);
}

static void do_fstat(struct rng *r, struct slot *sl)
{
	(void)r;
	describe("fstat " SLOT_FMT, SLOT_ARGS(sl));
	fstat_both(sl->fd, "fstat");
}

/* truncate(2) takes a path: rel below side s's root, through /proc/self/fd. */
static const char *proc_path(int s, const char *rel, char *out, size_t n)
{
	snprintf(out, n, "/proc/self/fd/%d/%s", root[s], rel);
	return out;
}

static void do_truncate(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	struct stat st;
	pick_file(r, p, sizeof(p));
	uint64_t size = fstatat(root[1], p, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
	uint64_t to = gen_size(r, size);
	describe("truncate '%s' to %" PRIu64, p, to);
	struct res rs[2];
	char full[2][4096];
	BOTH_NOTED(rs, truncate(proc_path(s, p, full[s], sizeof(full[s])), (off_t)to));
}

static void do_freshread(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	pick_file(r, p, sizeof(p));
	int whole = chance(r, 30);
	uint64_t x = next(r);
	describe("open '%s' O_RDONLY, read %s, close", p, whole ? "everything" : "a range");
	int fd[2];
	struct res rs[2];
	if (open_both(p, O_RDONLY, fd) < 0) {
		op_failed++;
		return;
	}
	struct stat st = fstat_both(fd, "fresh descriptor");
	uint64_t size = (uint64_t)st.st_size;
	if (!S_ISREG(st.st_mode)) { /* a directory: reading fails alike */
		BOTH(rs, read(fd[s], iobuf[s], 16));
	} else if (whole) {
		compare_content(fd, size, "read through a fresh descriptor");
	} else {
		struct rng r2 = { x };
		uint64_t off = gen_off(&r2, size), len = gen_len(&r2);
		if (len > MAXIO)
			len = MAXIO;
		BOTH(rs, pread(fd[s], iobuf[s], (size_t)len, (off_t)off));
		if (rs[0].ret > 0)
			same_bytes(iobuf[0], iobuf[1], (size_t)rs[0].ret, off, "pread through a fresh descriptor");
	}
	close(fd[0]);
	close(fd[1]);
}

static void do_stat(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	struct stat st;
	pick_any(r, p, sizeof(p));
	describe("lstat '%s'", p);
	long rc = stat_both(p, &st);
	struct res rs[2] = { { rc < 0 ? -1 : 0, (int)-rc }, { rc < 0 ? -1 : 0, (int)-rc } };
	note(rs);
}

static void do_create(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	pick_new_or(r, 85, 0, pick_any, p, sizeof(p));
	describe("create '%s' (O_CREAT|O_EXCL|O_WRONLY, mode 0644), close", p);
	int fd[2];
	if (open_both(p, O_CREAT | O_EXCL | O_WRONLY, fd) < 0) {
		op_failed++;
		return;
	}
	close(fd[0]);
	close(fd[1]);
}

/* unlink or rmdir (what, with flags) of a name from pick, on both sides. */
static void remove_picked(struct rng *r, void (*pick)(struct rng *, char *, size_t), const char *what, int flags)
{
	char p[32];
	pick(r, p, sizeof(p));
	describe("%s '%s'", what, p);
	struct res rs[2];
	BOTH_NOTED(rs, unlinkat(root[s], p, flags));
}

static void do_unlink(struct rng *r, struct slot *sl)
{
	(void)sl;
	remove_picked(r, pick_any, "unlink", 0);
}

static void do_link(struct rng *r, struct slot *sl)
{
	(void)sl;
	char a[32], b[32];
	pick_any(r, a, sizeof(a));
	pick_new_or(r, 70, 0, pick_any, b, sizeof(b));
	describe("link '%s' '%s'", a, b);
	struct res rs[2];
	BOTH_NOTED(rs, linkat(root[s], a, root[s], b, 0));
	if (rs[1].ret == 0)
		stat_names_both(a, b);
}

static void do_rename(struct rng *r, struct slot *sl)
{
	(void)sl;
	char a[32], b[32];
	if (chance(r, 8)) {
		pick_dir(r, a, sizeof(a));
		pick_dir(r, b, sizeof(b));
	} else {
		pick_any(r, a, sizeof(a));
		pick_new_or(r, 40, 0, pick_any, b, sizeof(b));
	}
	uint64_t k = below(r, 100);
	unsigned flags = k < 55	  ? 0
			 : k < 75 ? RENAME_NOREPLACE
			 : k < 98 ? RENAME_EXCHANGE
				  : RENAME_NOREPLACE | RENAME_EXCHANGE; /* both: EINVAL */
	static const char *const fname[4] = { "0", "RENAME_NOREPLACE", "RENAME_EXCHANGE",
					      "RENAME_NOREPLACE|RENAME_EXCHANGE (invalid)" };
	describe("renameat2 '%s' '%s' %s", a, b, fname[flags]);
	struct res rs[2];
	BOTH_NOTED(rs, syscall(SYS_renameat2, root[s], a, root[s], b, flags));
	if (rs[1].ret == 0)
		stat_names_both(a, b);
}

static void do_mkdir(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	pick_new_or(r, 70, 1, pick_dir, p, sizeof(p));
	describe("mkdir '%s' 0755", p);
	struct res rs[2];
	BOTH_NOTED(rs, mkdirat(root[s], p, 0755));
}

static void do_rmdir(struct rng *r, struct slot *sl)
{
	(void)sl;
	remove_picked(r, pick_dir, "rmdir", AT_REMOVEDIR);
}

static void do_readdir(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32], **names;
	long n;
	pick_dir(r, p, sizeof(p));
	if (chance(r, 25))
		p[0] = '\0';
	describe("list directory '%s'", p);
	list_both(p, &names, &n);
	struct res rs[2] = { { n < 0 ? -1 : n, n < 0 ? (int)-n : 0 }, { n < 0 ? -1 : n, n < 0 ? (int)-n : 0 } };
	note(rs);
	if (n >= 0)
		free_names(names, n);
}

/* Removes the tree at rel (as B lists it) entry by entry on both sides, depth first. */
static void rm_tree(const char *rel)
{
	struct stat st;
	struct res rs[2];
	char **names, p[512];
	if (fstatat(root[1], rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		long n = list_dir(1, rel, &names);
		for (long i = 0; i < n; i++) {
			join(p, sizeof(p), rel, names[i]);
			rm_tree(p);
		}
		if (n >= 0)
			free_names(names, n);
		for (int s = 0; s < 2; s++)
			rs[s] = result(unlinkat(root[s], rel, AT_REMOVEDIR));
	} else {
		for (int s = 0; s < 2; s++)
			rs[s] = result(unlinkat(root[s], rel, 0));
	}
	if (rs[0].ret != rs[1].ret || rs[0].err != rs[1].err)
		describe("remove '%s' while removing a tree", rel);
	same(rs);
}

static void do_rmtree(struct rng *r, struct slot *sl)
{
	(void)sl;
	char p[32];
	if (chance(r, 70)) /* mostly a directory that took a file's name: it would stay out of reach */
		pool_path((unsigned)below(r, NFILESLOTS), p, sizeof(p));
	else
		pick_dir(r, p, sizeof(p));
	describe("remove the tree '%s' (unlink and rmdir, depth first)", p);
	rm_tree(p);
}

/* What each operation runs, and which work on an open slot (with none open, an open runs instead). */
static void (*const op_run[NOPS])(struct rng *, struct slot *) = {
	[OP_OPEN] = do_open,	       [OP_CLOSE] = do_close,	    [OP_PWRITE] = do_pwrite,
	[OP_WRITE] = do_write,	       [OP_PREAD] = do_pread,	    [OP_READ] = do_read,
	[OP_LSEEK] = do_lseek,	       [OP_FTRUNCATE] = do_ftruncate, [OP_TRUNCATE] = do_truncate,
	[OP_FSYNC] = do_fsync,	       [OP_MMAP] = do_mmap,	    [OP_FALLOCATE] = do_fallocate,
	[OP_FRESHREAD] = do_freshread, [OP_STAT] = do_stat,	    [OP_FSTAT] = do_fstat,
	[OP_CREATE] = do_create,       [OP_UNLINK] = do_unlink,	    [OP_LINK] = do_link,
	[OP_RENAME] = do_rename,       [OP_MKDIR] = do_mkdir,	    [OP_RMDIR] = do_rmdir,
	[OP_READDIR] = do_readdir,     [OP_RMTREE] = do_rmtree,
};
static const unsigned char op_on_slot[NOPS] = {
	[OP_CLOSE] = 1, [OP_PWRITE] = 1, [OP_WRITE] = 1,  [OP_PREAD] = 1,     [OP_READ] = 1,  [OP_LSEEK] = 1,
	[OP_FTRUNCATE] = 1, [OP_FSYNC] = 1, [OP_MMAP] = 1, [OP_FALLOCATE] = 1, [OP_FSTAT] = 1,
};

static void one_op(uint64_t i)
{
	struct rng r = { mix(g_seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) ^ mix(i + 1) };
	unsigned total = 0, op = 0;
	for (unsigned k = 0; k < NOPS; k++)
		total += op_weight[k];
	uint64_t x = below(&r, total);
	while (x >= op_weight[op])
		x -= op_weight[op++];
	struct slot *sl = NULL;
	if (op_on_slot[op]) {
		if (nslots_used() == 0)
			op = OP_OPEN;
		else
			sl = pick_slot(&r);
	}
	op_count[op]++;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	op_run[op](&r, sl);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	op_time[op] += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: fsmodel run SEED A B [--ops N] [--from K] [--check-every M] [-v]\n"
			"       fsmodel compare A B\n");
	exit(EXIT_USAGE);
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || !*s || *end || *s == '-')
		usage();
	return v;
}

static void open_roots(const char *a, const char *b)
{
	const char *p[2] = { a, b };
	for (int s = 0; s < 2; s++) {
		root[s] = open(p[s], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root[s] < 0)
			die(EXIT_IO, "%s: %s", p[s], strerror(errno));
	}
	for (int s = 0; s < 2; s++) {
		iobuf[s] = malloc(MAXIO);
		if (!iobuf[s])
			die(EXIT_IO, "out of memory");
	}
	databuf = malloc(MAXIO);
	if (!databuf)
		die(EXIT_IO, "out of memory");
	pagesize = (size_t)sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "compare")) {
		open_roots(argv[2], argv[3]);
		describe("comparison of the whole trees %s and %s", argv[2], argv[3]);
		struct totals t = compare_all();
		printf("fsmodel compare: same: %" PRIu64 " directories, %" PRIu64 " files, %" PRIu64 " bytes\n", t.dirs,
		       t.files, t.bytes);
		return 0;
	}
	if (argc < 5 || strcmp(argv[1], "run"))
		usage();
	uint64_t ops = 10000, from = 0, every = 250;
	g_seed = num(argv[2]);
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--ops"))
			ops = num(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--from"))
			from = num(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--check-every"))
			every = num(argv[++i]);
		else
			usage();
	}
	open_roots(argv[3], argv[4]);
	g_in_run = 1;
	uint64_t checks = 0;
	struct totals t = { 0, 0, 0 };
	for (g_op = from; g_op < from + ops; g_op++) {
		if (g_op % EPOCH == 0)
			close_all();
		one_op(g_op);
		if (every && (g_op + 1) % every == 0) {
			describe("comparison of the whole trees after operation %" PRIu64, g_op);
			t = compare_all();
			checks++;
			if (verbose)
				printf("same: %" PRIu64 " directories, %" PRIu64 " files, %" PRIu64 " bytes\n", t.dirs, t.files,
				       t.bytes);
		}
	}
	g_op = from + ops;
	close_all();
	describe("comparison of the whole trees at the end of the run");
	t = compare_all();
	checks++;
	printf("fsmodel run: seed %" PRIu64 ", operations %" PRIu64 "-%" PRIu64 " same on both sides; %" PRIu64
	       " whole-tree comparisons, the last of %" PRIu64 " directories, %" PRIu64 " files, %" PRIu64 " bytes\n",
	       g_seed, from, from + ops - 1, checks, t.dirs, t.files, t.bytes);
	printf("    ");
	for (unsigned k = 0; k < NOPS; k++)
		printf("%s %" PRIu64 "%s", op_names[k], op_count[k], k + 1 < NOPS ? ", " : "");
	printf("; %" PRIu64 " failed with the same errno on both sides\n", op_failed);
	if (verbose)
		for (unsigned k = 0; k < NOPS; k++)
			printf("    %-10s %6" PRIu64 " ops %8.3f s\n", op_names[k], op_count[k], op_time[k]);
	return 0;
}
