/* fsyncload: a write load through a mounted volume that records what fsync acknowledged, and a checker
 * that holds the volume to it after the daemon was killed (tests/e2e/70-kill-under-load.sh).
 *
 *   fsyncload run MNT STATEDIR SEED     runs until the mount goes away (the daemon was killed)
 *   fsyncload check MNT STATEDIR        checks the files in MNT against the journal of the last run
 *
 * STATEDIR is outside the mount, on the host file system: the journal and the snapshots of the files as
 * the run found them.
 *
 * The load. Up to NSLOTS files live directly in MNT, slot S under the name "fS.N" (N changes with every
 * rename and every new file). Each step picks a slot and does one of: write random bytes (random size,
 * random offset, also past the end: holes), append, truncate (shrink or extend), rename, unlink, or create
 * a new file in an empty slot; then, at random and at the latest after MAX_UNSYNCED steps on that slot,
 * it syncs the slot: fsync or fdatasync of the file, and fsync of MNT when the slot's name changed or
 * its file was removed.
 * Files stay at most MAXSIZE bytes long. The written bytes come from a generator seeded by (SEED, step number), so the
 * journal holds no data and the checker regenerates them.
 *
 * The journal (STATEDIR/journal, one text record per line, each written with one write(2)):
 *   H seed nslots maxsize block             header
 *   B slot n size sha256                    slot's file "fS.N" at the start, content in base.SEED.S
 *   W step slot off len | T step slot size | R step slot n | C step slot n | U step slot
 *                                           an operation, recorded BEFORE it is issued
 *   K slot n size sha256 | K slot - 0 -     the sync of that slot returned success; written after it
 *                                           returned, then the journal is fsync'ed
 * Each run starts a new journal (built aside, then renamed into place) from what it finds in MNT.
 *
 * What the checker accepts, and why it is what the contract promises. The checker replays the journal
 * on an in-memory model and checks the replayed state against the size and sha256 of every K record
 * (the journal is consistent with itself). For each slot, S0 is its state at its last K (or B) record:
 * fsync acknowledged it. S1..Sn are the states after each later operation on that slot: they were
 * issued, but whether the daemon saw them before it died, and whether a commit took them, is open. The
 * contract says: what fsync acknowledged is there; a chunk written but not synced reads as its old or its
 * new content, never garbage. The daemon's "new content" of a chunk is what it had been sent when it
 * committed, and with the kernel's writeback cache it is sent a file's data page by page: each page as
 * it was (some Sk) when it was written back, clipped at the file's size at that moment; a truncate is
 * sent at once, possibly before older dirty pages. So a chunk may hold pages of different ages, and the
 * file's size is a truncate's size or the end of a written-back page below some Sk's size. After the
 * crash the checker therefore requires:
 *   - the slot's name is the name of some Sk, or the slot is empty if some Sk is (a rename is atomic:
 *     never both names; neither only when an unlink or a create is pending);
 *   - for a file named "fS.N", the candidates are the Sk of the same file (incarnation) as that name;
 *     its size lies between the smallest and the largest candidate size;
 *   - every aligned 4 KiB block (no larger than a page; every chunk size is a multiple of it) reads, over
 *     its bytes below the file's size, as the same bytes of one candidate Sk, taken as zeros past that
 *     candidate's size. Blocks may come from different candidates.
 * A slot with no operation after its last acknowledged sync has one candidate and must match it exactly
 * (name, size, sha256): every fsync'd byte is there. Unsynced changes may be kept or lost, block by block,
 * but a block that is no candidate (garbage, zeros where acknowledged data was, bytes of another file or
 * of a state that never existed) fails the check, as do a read error (a false alarm), a missing or
 * extra name, and a size outside the candidates' range.
 *
 * Only the daemon is killed, never the host: operation records need only be written before the operation
 * (a record cut short by the end of the load is ignored), and the journal is fsync'ed after each K.
 *
 * Exit: run: 0 the mount went away (ENOTCONN / ECONNABORTED, or an error after which the mount answers
 * ENOTCONN), 1 an operation failed while the mount was alive; check: 0 ok, 1 the files differ from every
 * state the load could have left, 3 the journal is inconsistent; both: 64 usage, 74 local I/O errors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/evp.h>

#define NSLOTS 8
#define MAXSIZE (384u * 1024u)
#define BLK 4096u
#define MAX_UNSYNCED 10
#define SYNC_PERCENT 30

#define EXIT_DIFF 1
#define EXIT_JOURNAL 3
#define EXIT_USAGE 64
#define EXIT_IO 74

#define TOOL_NAME "fsyncload"
#include "die.h"

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die(EXIT_IO, "out of memory");
	return p;
}

/* ---- generator and hashes ---- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The bytes written by step STEP of the run seeded SEED. */
static void gen(uint64_t seed, uint64_t step, uint8_t *buf, size_t len)
{
	uint64_t s = seed ^ (step * 0xd1b54a32d192ed03ull), x = 0;
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = splitmix(&s);
		buf[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

static void sha_hex(const uint8_t *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		die(EXIT_IO, "sha256 failed");
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- the model of one slot ---- */

struct state {
	int exists;
	unsigned inc; /* incarnation: 0 for the file found at the start, then one more per create */
	unsigned n;   /* name suffix */
	size_t size;
	uint8_t *data; /* model: MAXSIZE bytes, zeros past size; snapshots: size bytes */
	char what[80]; /* how this state came about */
};

struct slot {
	struct state cur;
	/* check: hist[0] the last acknowledged state, then one per later operation */
	struct state *hist;
	size_t nhist, cap;
	unsigned incs, maxn;
	/* run */
	int fd, unsynced, renamed;
};

static struct slot S[NSLOTS];

static void m_init(void)
{
	for (int i = 0; i < NSLOTS; i++) {
		memset(&S[i], 0, sizeof(S[i]));
		S[i].cur.data = xmalloc(MAXSIZE);
		S[i].fd = -1;
	}
}

static void m_write(struct state *c, size_t off, size_t len, const uint8_t *buf)
{
	memcpy(c->data + off, buf, len);
	if (off + len > c->size)
		c->size = off + len;
}

static void m_trunc(struct state *c, size_t size)
{
	if (size < c->size)
		memset(c->data + size, 0, c->size - size);
	c->size = size;
}

static void m_unlink(struct state *c)
{
	m_trunc(c, 0);
	c->exists = 0;
}

static void m_create(struct state *c, unsigned inc, unsigned n)
{
	c->exists = 1;
	c->inc = inc;
	c->n = n;
	c->size = 0;
}

static void name_of(char *out, size_t len, int slot, unsigned n)
{
	snprintf(out, len, "f%d.%u", slot, n);
}

/* "fS.N" with S < NSLOTS: 0 and the slot and N, else -1. */
static int parse_name(const char *name, int *slot, unsigned *n)
{
	char tail;
	unsigned s, k;
	if (name[0] != 'f' || sscanf(name, "f%u.%u%c", &s, &k, &tail) != 2 || s >= NSLOTS)
		return -1;
	char back[64];
	name_of(back, sizeof(back), (int)s, k);
	if (strcmp(back, name) != 0)
		return -1;
	*slot = (int)s;
	*n = k;
	return 0;
}

/* The next entry of a directory of the mount, "." and ".." passed over: 1 when it names a slot (*slot, *n),
 * 2 when it does not, 0 at the end (errno then tells a failed readdir from the end). */
static int next_entry(DIR *d, struct dirent **e, int *slot, unsigned *n)
{
	for (;;) {
		errno = 0;
		*e = readdir(d);
		if (!*e)
			return 0;
		if (strcmp((*e)->d_name, ".") != 0 && strcmp((*e)->d_name, "..") != 0)
			return parse_name((*e)->d_name, slot, n) == 0 ? 1 : 2;
	}
}

/* ---- journal and state directory ---- */

static int jfd = -1;
static const char *mnt, *statedir;

static void jrec(int sync, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jrec(int sync, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		die(EXIT_IO, "journal record too long");
	if (write(jfd, line, (size_t)n) != n)
		die(EXIT_IO, "writing the journal: %s", strerror(errno));
	if (sync && fsync(jfd) != 0)
		die(EXIT_IO, "fsync of the journal: %s", strerror(errno));
}

static void sdpath(char *out, size_t len, const char *name)
{
	if ((size_t)snprintf(out, len, "%s/%s", statedir, name) >= len)
		die(EXIT_USAGE, "state directory path too long");
}

static void write_host_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(EXIT_IO, "%s: %s", path, strerror(errno));
	for (size_t done = 0; done < len;) {
		ssize_t w = write(fd, data + done, len - done);
		if (w <= 0)
			die(EXIT_IO, "writing %s: %s", path, w < 0 ? strerror(errno) : "short write");
		done += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
		die(EXIT_IO, "fsync %s: %s", path, strerror(errno));
}

/* Reads a whole file into BUF (at most MAX bytes); returns the length, or -errno; -EFBIG if longer. */
static ssize_t read_file(const char *path, uint8_t *buf, size_t max)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return -errno;
	size_t got = fread(buf, 1, max, f);
	int more = got == max ? fgetc(f) : EOF;
	int e = ferror(f) ? (errno ? errno : EIO) : 0;
	fclose(f);
	if (e)
		return -e;
	return more != EOF ? -EFBIG : (ssize_t)got;
}

/* ---- run ---- */

static uint64_t rng, seed, steps, acks;

static unsigned rnd(unsigned bound)
{
	return bound ? (unsigned)(splitmix(&rng) % bound) : 0;
}

/* An operation through the mount failed: the end of the run if the mount has gone away. */
static void op_failed(const char *what, int slot) __attribute__((noreturn));
static void op_failed(const char *what, int slot)
{
	int e = errno;
	struct statvfs st;
	int gone = e == ENOTCONN || e == ECONNABORTED;
	if (!gone && statvfs(mnt, &st) != 0 && (errno == ENOTCONN || errno == ECONNABORTED))
		gone = 1;
	char where[32] = "";
	if (slot >= 0)
		snprintf(where, sizeof(where), " of slot %d", slot);
	if (gone) {
		printf("load: %" PRIu64 " steps, %" PRIu64 " syncs acknowledged; stopped: %s%s: %s\n", steps, acks, what,
		       where, strerror(e));
		exit(0);
	}
	die(1, "%s%s failed while the mount is alive: %s (after %" PRIu64 " steps)", what, where, strerror(e), steps);
}

static void mpath(char *out, size_t len, int slot, unsigned n)
{
	char name[32];
	name_of(name, sizeof(name), slot, n);
	snprintf(out, len, "%s/%s", mnt, name);
}

static int dirfd_mnt = -1;

static void sync_slot(int s)
{
	struct slot *sl = &S[s];
	if (sl->cur.exists) {
		int data_only = rnd(4) == 0;
		if ((data_only ? fdatasync(sl->fd) : fsync(sl->fd)) != 0)
			op_failed(data_only ? "fdatasync" : "fsync", s);
	}
	if ((sl->renamed || !sl->cur.exists) && fsync(dirfd_mnt) != 0)
		op_failed("fsync of the directory", s);
	if (sl->cur.exists) {
		char h[65];
		sha_hex(sl->cur.data, sl->cur.size, h);
		jrec(1, "K %d %u %zu %s\n", s, sl->cur.n, sl->cur.size, h);
	} else {
		jrec(1, "K %d - 0 -\n", s);
	}
	acks++;
	sl->unsynced = 0;
	sl->renamed = 0;
}

static void step_create(int s)
{
	struct slot *sl = &S[s];
	char p[4096];
	unsigned n = ++sl->maxn;
	jrec(0, "C %" PRIu64 " %d %u\n", steps, s, n);
	mpath(p, sizeof(p), s, n);
	sl->fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (sl->fd < 0)
		op_failed("create", s);
	m_create(&sl->cur, ++sl->incs, n);
	sl->renamed = 1;
}

static void step_write(int s, size_t off, size_t len, uint8_t *buf)
{
	struct slot *sl = &S[s];
	if (off >= MAXSIZE)
		off = rnd(MAXSIZE);
	if (len > MAXSIZE - off)
		len = MAXSIZE - off;
	if (len == 0) {
		off = MAXSIZE - 1;
		len = 1;
	}
	gen(seed, steps, buf, len);
	jrec(0, "W %" PRIu64 " %d %zu %zu\n", steps, s, off, len);
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(sl->fd, buf + done, len - done, (off_t)(off + done));
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			op_failed("write", s);
		}
		done += (size_t)w;
	}
	m_write(&sl->cur, off, len, buf);
}

static void step_truncate(int s)
{
	struct slot *sl = &S[s];
	size_t size = sl->cur.size, ns;
	if (rnd(2) || size == 0)
		ns = rnd((unsigned)(size < MAXSIZE - 65536 ? size + 65536 : MAXSIZE) + 1);
	else
		ns = rnd((unsigned)size + 1);
	jrec(0, "T %" PRIu64 " %d %zu\n", steps, s, ns);
	if (ftruncate(sl->fd, (off_t)ns) != 0)
		op_failed("truncate", s);
	m_trunc(&sl->cur, ns);
}

static void step_rename(int s)
{
	struct slot *sl = &S[s];
	char from[4096], to[4096];
	unsigned n = ++sl->maxn;
	jrec(0, "R %" PRIu64 " %d %u\n", steps, s, n);
	mpath(from, sizeof(from), s, sl->cur.n);
	mpath(to, sizeof(to), s, n);
	if (rename(from, to) != 0)
		op_failed("rename", s);
	sl->cur.n = n;
	sl->renamed = 1;
}

static void step_unlink(int s)
{
	struct slot *sl = &S[s];
	char p[4096];
	jrec(0, "U %" PRIu64 " %d\n", steps, s);
	mpath(p, sizeof(p), s, sl->cur.n);
	if (unlink(p) != 0)
		op_failed("unlink", s);
	close(sl->fd);
	sl->fd = -1;
	m_unlink(&sl->cur);
}

static size_t rand_len(void)
{
	unsigned r = rnd(100);
	if (r < 40)
		return 1 + rnd(512);
	if (r < 75)
		return 512 + rnd(16 * 1024);
	return 16 * 1024 + rnd(160 * 1024);
}

static int do_run(uint64_t sd)
{
	char p[4096], h[65];
	seed = sd;
	rng = sd ^ 0x6a09e667f3bcc908ull;
	m_init();
	/* What the mount holds now is this run's starting point: the checker accepted it. */
	DIR *d = opendir(mnt);
	if (!d)
		op_failed("opendir", -1);
	struct dirent *e;
	int s, kind;
	unsigned n;
	while ((kind = next_entry(d, &e, &s, &n)) > 0) {
		if (kind != 1)
			die(1, "unexpected entry %s in %s", e->d_name, mnt);
		if (S[s].cur.exists)
			die(1, "slot %d has two names: f%d.%u and %s", s, s, S[s].cur.n, e->d_name);
		snprintf(p, sizeof(p), "%s/%s", mnt, e->d_name);
		ssize_t len = read_file(p, S[s].cur.data, MAXSIZE);
		if (len < 0) {
			errno = (int)-len;
			op_failed("read", s);
		}
		m_create(&S[s].cur, 0, n);
		S[s].cur.size = (size_t)len;
		S[s].maxn = n;
		S[s].fd = open(p, O_RDWR | O_CLOEXEC);
		if (S[s].fd < 0)
			op_failed("open", s);
	}
	if (errno)
		op_failed("readdir", -1);
	closedir(d);
	dirfd_mnt = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_mnt < 0 || fsync(dirfd_mnt) != 0)
		op_failed("fsync of the directory", -1);

	/* The new journal and its snapshots; the previous ones go once it is in place. */
	char jnew[4096], jpath[4096];
	sdpath(jnew, sizeof(jnew), "journal.new");
	sdpath(jpath, sizeof(jpath), "journal");
	jfd = open(jnew, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (jfd < 0)
		die(EXIT_IO, "%s: %s", jnew, strerror(errno));
	jrec(0, "H %" PRIu64 " %d %u %u\n", seed, NSLOTS, MAXSIZE, BLK);
	int nfiles = 0;
	for (int s = 0; s < NSLOTS; s++) {
		if (!S[s].cur.exists)
			continue;
		char base[64];
		snprintf(base, sizeof(base), "base.%" PRIu64 ".%d", seed, s);
		sdpath(p, sizeof(p), base);
		write_host_file(p, S[s].cur.data, S[s].cur.size);
		sha_hex(S[s].cur.data, S[s].cur.size, h);
		jrec(0, "B %d %u %zu %s\n", s, S[s].cur.n, S[s].cur.size, h);
		nfiles++;
	}
	if (fsync(jfd) != 0 || rename(jnew, jpath) != 0)
		die(EXIT_IO, "%s: %s", jpath, strerror(errno));
	int sdfd = open(statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sdfd < 0 || fsync(sdfd) != 0)
		die(EXIT_IO, "fsync %s: %s", statedir, strerror(errno));
	d = fdopendir(sdfd);
	char keep[64];
	snprintf(keep, sizeof(keep), "base.%" PRIu64 ".", seed);
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "base.", 5) && strncmp(e->d_name, keep, strlen(keep)) != 0)
			unlinkat(sdfd, e->d_name, 0);
	if (d)
		closedir(d);
	printf("load: seed %" PRIu64 ", %d files at the start\n", seed, nfiles);
	fflush(stdout);

	uint8_t *buf = xmalloc(MAXSIZE);
	for (;;) {
		int s = (int)rnd(NSLOTS);
		struct slot *sl = &S[s];
		steps++;
		if (!sl->cur.exists) {
			step_create(s);
		} else {
			unsigned r = rnd(100);
			if (r < 50)
				step_write(s, rnd(4) ? rnd((unsigned)sl->cur.size + 1) : sl->cur.size + rnd(20000),
					   rand_len(), buf);
			else if (r < 65)
				step_write(s, sl->cur.size, rand_len(), buf);
			else if (r < 73)
				step_truncate(s);
			else if (r < 80)
				step_rename(s);
			else if (r < 83)
				step_unlink(s);
			/* else: only the sync below, if it comes */
		}
		sl->unsynced++;
		if (sl->unsynced >= MAX_UNSYNCED || rnd(100) < SYNC_PERCENT)
			sync_slot(s);
	}
}

/* ---- check ---- */

static int failures;

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fsyncload: check: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

static void hist_push(struct slot *sl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hist_push(struct slot *sl, const char *fmt, ...)
{
	if (sl->nhist == sl->cap) {
		sl->cap = sl->cap ? 2 * sl->cap : 16;
		sl->hist = realloc(sl->hist, sl->cap * sizeof(*sl->hist));
		if (!sl->hist)
			die(EXIT_IO, "out of memory");
	}
	struct state *h = &sl->hist[sl->nhist++];
	*h = sl->cur;
	h->data = xmalloc(sl->cur.size);
	memcpy(h->data, sl->cur.data, sl->cur.size);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->what, sizeof(h->what), fmt, ap);
	va_end(ap);
}

static void hist_reset(struct slot *sl)
{
	for (size_t i = 0; i < sl->nhist; i++)
		free(sl->hist[i].data);
	sl->nhist = 0;
}

/* Byte I of state H, zeros past its size. */
static uint8_t byte_of(const struct state *h, size_t i)
{
	return i < h->size ? h->data[i] : 0;
}

/* Whether bytes [off, off+len) of the file (GOT) equal those of H. */
static int block_matches(const struct state *h, const uint8_t *got, size_t off, size_t len)
{
	if (off >= h->size) {
		for (size_t i = 0; i < len; i++)
			if (got[i])
				return 0;
		return 1;
	}
	size_t in = h->size - off < len ? h->size - off : len;
	if (memcmp(got, h->data + off, in) != 0)
		return 0;
	for (size_t i = in; i < len; i++)
		if (got[i])
			return 0;
	return 1;
}

static void describe_block(const struct state *h, const uint8_t *got, size_t off, size_t len)
{
	size_t i = 0;
	while (i < len && got[i] == byte_of(h, off + i))
		i++;
	size_t same = 0;
	for (size_t j = 0; j < len; j++)
		same += got[j] == byte_of(h, off + j);
	fprintf(stderr, "    vs %-40s size %7zu: first difference at byte %zu (read 0x%02x, expected 0x%02x), %zu of %zu bytes equal\n",
		h->what, h->size, off + i, got[i], byte_of(h, off + i), same, len);
}

/* Checks slot s's file "fS.N" (n) against its candidate states. */
static void check_file(int s, unsigned n, uint8_t *got, int *exact, size_t *newer_blocks)
{
	struct slot *sl = &S[s];
	char name[32], p[4096];
	name_of(name, sizeof(name), s, n);
	const struct state *named = NULL;
	for (size_t k = 0; k < sl->nhist; k++)
		if (sl->hist[k].exists && sl->hist[k].n == n)
			named = &sl->hist[k];
	if (!named) {
		bad("%s: a name the load never gave slot %d since its last sync (%s)", name, s,
		    sl->hist[0].exists ? "acknowledged with another name" : "acknowledged absent");
		return;
	}
	size_t *cand = xmalloc(sl->nhist * sizeof(*cand)), nc = 0, minsz = MAXSIZE, maxsz = 0;
	for (size_t k = 0; k < sl->nhist; k++) {
		const struct state *h = &sl->hist[k];
		if (!h->exists || h->inc != named->inc)
			continue;
		cand[nc++] = k;
		minsz = h->size < minsz ? h->size : minsz;
		maxsz = h->size > maxsz ? h->size : maxsz;
	}
	snprintf(p, sizeof(p), "%s/%s", mnt, name);
	ssize_t len = read_file(p, got, MAXSIZE);
	if (len < 0) {
		bad("%s: read failed: %s", name, strerror((int)-len));
		free(cand);
		return;
	}
	struct stat st;
	if (stat(p, &st) != 0 || (size_t)st.st_size != (size_t)len)
		bad("%s: stat says size %lld, reading gave %zd bytes", name, (long long)st.st_size, len);
	size_t size = (size_t)len;
	const struct state *acked = &sl->hist[cand[0]];
	if (sl->nhist == 1) {
		/* nothing unsynced: the last acknowledged state exactly */
		char hg[65], ha[65];
		sha_hex(got, size, hg);
		sha_hex(acked->data, acked->size, ha);
		if (size != acked->size || strcmp(hg, ha) != 0)
			bad("%s: size %zu sha256 %s, but fsync acknowledged size %zu sha256 %s (%s) and nothing changed "
			    "it since",
			    name, size, hg, acked->size, ha, acked->what);
		else
			(*exact)++;
	}
	if (size < minsz || size > maxsz)
		bad("%s: size %zu outside the sizes %zu-%zu of the %zu states the load could have left", name, size,
		    minsz, maxsz, nc);
	for (size_t off = 0; off < size; off += BLK) {
		size_t bl = size - off < BLK ? size - off : BLK;
		size_t k;
		for (k = 0; k < nc; k++)
			if (block_matches(&sl->hist[cand[k]], got + off, off, bl))
				break;
		if (k == nc) {
			bad("%s: block %zu (bytes %zu-%zu) is none of the %zu states the load could have left:", name,
			    off / BLK, off, off + bl - 1, nc);
			for (k = 0; k < nc; k++)
				describe_block(&sl->hist[cand[k]], got + off, off, bl);
			if (failures > 20)
				die(EXIT_DIFF, "check: too many differences, stopping");
		} else if (!block_matches(acked, got + off, off, bl)) {
			(*newer_blocks)++;
		}
	}
	free(cand);
}

static void bad_journal(unsigned line, const char *text) __attribute__((noreturn));
static void bad_journal(unsigned line, const char *text)
{
	die(EXIT_JOURNAL, "journal line %u: %s", line, text);
}

static int do_check(void)
{
	char jpath[4096], p[4096];
	sdpath(jpath, sizeof(jpath), "journal");
	FILE *j = fopen(jpath, "r");
	if (!j)
		die(EXIT_IO, "%s: %s", jpath, strerror(errno));
	m_init();
	char line[512], sha[80], nm[32];
	unsigned ln = 0, nslots, maxsize, blk;
	uint64_t sd = 0, pending_ops = 0, records = 0, ksyncs = 0;
	int header = 0;
	uint8_t *buf = xmalloc(MAXSIZE);
	while (fgets(line, sizeof(line), j)) {
		ln++;
		size_t ll = strlen(line);
		if (ll == 0 || line[ll - 1] != '\n')
			break; /* a record cut short when the load stopped: never issued */
		records++;
		uint64_t step;
		int s = -1;
		size_t a, b;
		unsigned n;
		if (!header) {
			if (sscanf(line, "H %" SCNu64 " %u %u %u", &sd, &nslots, &maxsize, &blk) != 4 || nslots != NSLOTS ||
			    maxsize != MAXSIZE || blk != BLK)
				bad_journal(ln, "no header of this program's build");
			header = 1;
			for (int i = 0; i < NSLOTS; i++)
				hist_push(&S[i], "the start of the run (absent)");
			continue;
		}
		switch (line[0]) {
		case 'B':
			if (sscanf(line, "B %d %u %zu %64s", &s, &n, &a, sha) != 4 || s < 0 || s >= NSLOTS || a > MAXSIZE ||
			    S[s].cur.exists)
				bad_journal(ln, line);
			{
				char base[64], h[65];
				snprintf(base, sizeof(base), "base.%" PRIu64 ".%d", sd, s);
				sdpath(p, sizeof(p), base);
				ssize_t got = read_file(p, S[s].cur.data, MAXSIZE);
				if (got < 0 || (size_t)got != a)
					die(EXIT_JOURNAL, "%s: missing or not %zu bytes", p, a);
				sha_hex(S[s].cur.data, a, h);
				if (strcmp(h, sha) != 0)
					die(EXIT_JOURNAL, "%s: not the content the journal names", p);
				m_create(&S[s].cur, 0, n);
				S[s].cur.size = a;
				S[s].maxn = n;
				hist_reset(&S[s]);
				hist_push(&S[s], "the start of the run");
			}
			continue;
		case 'K':
			if (sscanf(line, "K %d %31s %zu %64s", &s, nm, &a, sha) != 4 || s < 0 || s >= NSLOTS)
				bad_journal(ln, line);
			{
				struct state *c = &S[s].cur;
				char h[65] = "-", want[100];
				if (c->exists) {
					sha_hex(c->data, c->size, h);
					snprintf(want, sizeof(want), "%u %zu %s", c->n, c->size, h);
				} else {
					snprintf(want, sizeof(want), "- 0 -");
				}
				char rec[160];
				snprintf(rec, sizeof(rec), "%s %zu %s", nm, a, sha);
				if (strcmp(rec, want) != 0)
					die(EXIT_JOURNAL, "journal line %u: the sync acknowledged %s, the replayed model is %s", ln,
					    rec, want);
				hist_reset(&S[s]);
				hist_push(&S[s], "the fsync of journal line %u", ln);
				ksyncs++;
			}
			continue;
		case 'W':
			if (sscanf(line, "W %" SCNu64 " %d %zu %zu", &step, &s, &a, &b) != 4 || s < 0 || s >= NSLOTS ||
			    a > MAXSIZE || b > MAXSIZE - a || !S[s].cur.exists)
				bad_journal(ln, line);
			gen(sd, step, buf, b);
			m_write(&S[s].cur, a, b, buf);
			hist_push(&S[s], "step %" PRIu64 " (write %zu bytes at %zu)", step, b, a);
			break;
		case 'T':
			if (sscanf(line, "T %" SCNu64 " %d %zu", &step, &s, &a) != 3 || s < 0 || s >= NSLOTS || a > MAXSIZE ||
			    !S[s].cur.exists)
				bad_journal(ln, line);
			m_trunc(&S[s].cur, a);
			hist_push(&S[s], "step %" PRIu64 " (truncate to %zu)", step, a);
			break;
		case 'R':
			if (sscanf(line, "R %" SCNu64 " %d %u", &step, &s, &n) != 3 || s < 0 || s >= NSLOTS || !S[s].cur.exists ||
			    n <= S[s].maxn)
				bad_journal(ln, line);
			S[s].cur.n = S[s].maxn = n;
			hist_push(&S[s], "step %" PRIu64 " (rename to f%d.%u)", step, s, n);
			break;
		case 'C':
			if (sscanf(line, "C %" SCNu64 " %d %u", &step, &s, &n) != 3 || s < 0 || s >= NSLOTS || S[s].cur.exists ||
			    n <= S[s].maxn)
				bad_journal(ln, line);
			m_create(&S[s].cur, ++S[s].incs, n);
			S[s].maxn = n;
			hist_push(&S[s], "step %" PRIu64 " (create f%d.%u)", step, s, n);
			break;
		case 'U':
			if (sscanf(line, "U %" SCNu64 " %d", &step, &s) != 2 || s < 0 || s >= NSLOTS || !S[s].cur.exists)
				bad_journal(ln, line);
			m_unlink(&S[s].cur);
			hist_push(&S[s], "step %" PRIu64 " (unlink)", step);
			break;
		default:
			bad_journal(ln, line);
		}
		pending_ops++;
	}
	fclose(j);
	if (!header)
		die(EXIT_JOURNAL, "%s: no header", jpath);

	/* What the mount holds. */
	unsigned seen_n[NSLOTS];
	int seen[NSLOTS] = { 0 };
	DIR *d = opendir(mnt);
	if (!d)
		die(EXIT_DIFF, "check: opendir %s: %s", mnt, strerror(errno));
	struct dirent *e;
	int s, kind;
	unsigned n;
	while ((kind = next_entry(d, &e, &s, &n)) > 0) {
		if (kind != 1) {
			bad("unexpected entry %s", e->d_name);
			continue;
		}
		if (seen[s])
			bad("slot %d has two names: f%d.%u and %s", s, s, seen_n[s], e->d_name);
		seen[s] = 1;
		seen_n[s] = n;
	}
	if (errno)
		bad("readdir %s: %s", mnt, strerror(errno));
	closedir(d);

	int files = 0, exact = 0, unsynced_files = 0;
	size_t newer = 0;
	for (int s = 0; s < NSLOTS; s++) {
		struct slot *sl = &S[s];
		if (sl->nhist > 1)
			unsynced_files++;
		if (!seen[s]) {
			int may_be_absent = 0;
			for (size_t k = 0; k < sl->nhist; k++)
				may_be_absent |= !sl->hist[k].exists;
			if (!may_be_absent)
				bad("f%d.%u is missing: acknowledged by %s and never removed since", s, sl->hist[0].n,
				    sl->hist[0].what);
			continue;
		}
		files++;
		check_file(s, seen_n[s], buf, &exact, &newer);
	}
	if (failures)
		die(EXIT_DIFF, "check: %d differences (journal seed %" PRIu64 ", %" PRIu64 " records)", failures, sd, records);
	printf("check: ok: %d files, %d exactly as last fsync'd; %d slots with unsynced operations, %zu blocks "
	       "newer than the last fsync; journal: %" PRIu64 " operations, %" PRIu64 " acknowledged syncs\n",
	       files, exact, unsynced_files, newer, pending_ops, ksyncs);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "run")) {
		char *end;
		errno = 0;
		uint64_t sd = strtoull(argv[4], &end, 10);
		if (errno || *end || end == argv[4])
			die(EXIT_USAGE, "bad seed %s", argv[4]);
		mnt = argv[2];
		statedir = argv[3];
		return do_run(sd);
	}
	if (argc == 4 && !strcmp(argv[1], "check")) {
		mnt = argv[2];
		statedir = argv[3];
		return do_check();
	}
	fprintf(stderr, "usage: fsyncload run MNT STATEDIR SEED\n       fsyncload check MNT STATEDIR\n");
	return EXIT_USAGE;
}
