/* fsv_verify: the offline forensic check (docs/CLI.md, "verify"). It reads a private copy of the
 * metadata store, so the backing directory is never written, not even by SQLite's WAL recovery. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/volume/verify.h"
#include "fs/volume/setup.h"
#include "meta/common/beneath.h"

struct vino {
	uint64_t ino, bucket;
	fs_inode_rec r;
	int ok;          /* row authentic and well formed */
	uint8_t leaf[32];
	uint64_t links;  /* entries naming it */
	uint64_t subdirs;
	char *path;
	int has_chunks_checked;
	/* Findings about the row or the directory, reported once paths are known. */
	const char *row_bad, *dir_bad;
	int64_t bucket_bad; /* bucket + 1 */
	uint8_t bad_mac[32]; /* the entry row that failed, when only one did (nbad_dirents == 1) */
	size_t nbad_dirents;
};

struct vdent {
	uint64_t parent, ino;
	uint32_t mode;
	uint8_t mac[32]; /* its key in the dirents table, with parent */
	char name[256];
};

/* One backing place of the next finding, in the finding's own buffers. */
struct vbk {
	char file[640];
	const char *table;
	char row[200];
	int has_row;
	int64_t slot;
	uint64_t off;
};

typedef struct {
	fs_volume *v;
	fs_finding_fn cb;
	void *ctx;
	int worst;
	struct vino *in;
	size_t nin, capin;
	struct vdent *de;
	size_t nde, capde;
	fs_verify_result *res;
	/* current group while streaming dirents or chunks (0 is a possible, bogus, key: have_cur says) */
	uint64_t cur;
	int have_cur;
	fs_mac m;
	uint8_t (*leaves)[32];
	size_t nleaves, capleaves;
	int group_bad;
	uint8_t prev_mac[32]; /* the last good entry of the current directory: entries come in order */
	uint8_t bad_mac[32];  /* the first entry row of the current directory that failed */
	size_t nbad;          /* how many did */
	int oom; /* a row callback ran out of memory and stopped the walk */
	char tmpdir[256];
	fs_progress_fn progress; /* NULL: none */
	void *progress_ctx;
	uint64_t p_items, p_items_total, p_bytes, p_bytes_total;
	/* What the next report is about: set by the bk_ functions just before it, cleared by it. */
	struct vbk bk[FS_MAX_BACKING];
	size_t nbk;
	/* The store's root does not match its bucket rows: reported once the buckets are checked against
	 * their rows, which tells which bucket rows changed. */
	int root_bad, root_status; /* root_bad: 1 found, 2 reported */
	char root_err[512];
	char bad_buckets[160]; /* "b=3" or "b IN (3, 7, ...)" of the buckets that mismatch their rows */
	size_t nbad_buckets;
	uint32_t first_bad_bucket;
	uint8_t *bucket_off; /* per bucket: 1 when its digest disagrees with its rows (NULL: not checked) */
	/* A bucket's digest disagrees with its rows: the rows changed (the digest is vouched for by the root),
	 * or, when the root does not match, the bucket row itself. */
} vctx;

static void report(vctx *c, const char *kind, int status, struct vino *vi, int64_t chunk, uint64_t a, uint64_t b,
		   const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static struct vbk *bk_next(vctx *c, const char *file)
{
	if (c->nbk == FS_MAX_BACKING)
		return NULL;
	struct vbk *k = &c->bk[c->nbk++];
	memset(k, 0, sizeof(*k));
	snprintf(k->file, sizeof(k->file), "%s", file);
	k->slot = -1;
	return k;
}

/* The next finding is about a file of the backing directory as a whole. */
static void bk_file(vctx *c, const char *file)
{
	bk_next(c, file);
}

/* ... about rows of a table of the store: those the SQL condition fmt selects (NULL: all). */
static void bk_rows(vctx *c, const char *table, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bk_rows(vctx *c, const char *table, const char *fmt, ...)
{
	struct vbk *k = bk_next(c, FS_META_NAME);
	if (!k)
		return;
	k->table = table;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(k->row, sizeof(k->row), fmt, ap);
		va_end(ap);
		k->has_row = 1;
	}
}

/* ... about the dirents row (parent, mac). */
static void bk_dirent(vctx *c, uint64_t parent, const uint8_t mac[32])
{
	char hex[65];
	fs_hex(hex, mac, 32);
	bk_rows(c, "dirents", "parent=%llu AND name_mac=X'%s'", (unsigned long long)parent, hex);
}

/* ... about a slot of the pack file of (ino, gen); slot -1: the pack file as a whole. */
static void bk_pack(vctx *c, uint64_t ino, uint64_t gen, int64_t slot)
{
	char path[64];
	vol_pack_path(c->v, ino, gen, path, sizeof(path));
	struct vbk *k = bk_next(c, path);
	if (k && slot >= 0) {
		k->slot = slot;
		k->off = (uint64_t)slot * c->v->hdr.chunk_size;
	}
}

/* Attaches the backing set for it to f and clears it for the next finding. */
static void bk_attach(vctx *c, fs_finding *f)
{
	f->nbacking = c->nbk;
	for (size_t i = 0; i < c->nbk; i++)
		f->backing[i] = (fs_backing){ c->bk[i].file, c->bk[i].table, c->bk[i].has_row ? c->bk[i].row : NULL,
					      c->bk[i].slot, c->bk[i].off };
}

void fsv_backing_text(const fs_finding *f, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < f->nbacking && n < size; i++) {
		const fs_backing *k = &f->backing[i];
		int w;
		if (k->slot >= 0)
			w = snprintf(buf + n, size - n, "%s%s slot %lld (byte %llu)", i ? "; " : "", k->file,
				     (long long)k->slot, (unsigned long long)k->offset);
		else if (k->table)
			w = snprintf(buf + n, size - n, "%s%s table %s %s%s", i ? "; " : "", k->file, k->table,
				     k->row ? "rows " : "all rows", k->row ? k->row : "");
		else
			w = snprintf(buf + n, size - n, "%s%s", i ? "; " : "", k->file);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static const char *path_of(struct vino *vi, char *buf, size_t size)
{
	if (!vi)
		return NULL;
	if (vi->path)
		return vi->path;
	snprintf(buf, size, "[inode %llu]", (unsigned long long)vi->ino);
	return buf;
}

static void report(vctx *c, const char *kind, int status, struct vino *vi, int64_t chunk, uint64_t a, uint64_t b,
		   const char *fmt, ...)
{
	char detail[512], msg[4096], pbuf[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	const char *path = path_of(vi, pbuf, sizeof(pbuf));
	if (vi && chunk >= 0)
		snprintf(msg, sizeof(msg), FS_MSG_CHUNK_VIOLATION, path,
			 (long long)chunk, (unsigned long long)a, (unsigned long long)b, detail);
	else if (vi)
		snprintf(msg, sizeof(msg), "%s: %s: %s", status ? "integrity violation" : "note", path, detail);
	else
		snprintf(msg, sizeof(msg), "%s", detail);
	fs_finding f = { kind, status, path, vi ? vi->ino : 0, vi ? chunk : -1, a, b, msg, 0, { { 0 } } };
	bk_attach(c, &f);
	c->nbk = 0;
	c->cb(c->ctx, &f);
	c->worst = fs_status_worse(c->worst, status);
}

static struct vino *find_ino(vctx *c, uint64_t ino)
{
	size_t lo = 0, hi = c->nin;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->in[mid].ino == ino)
			return &c->in[mid];
		if (c->in[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Leaves are 32-byte arrays; they travel through VEC_PUSH wrapped in a struct. */
struct leaf32 {
	uint8_t b[32];
};
static int push_leaf(vctx *c, const uint8_t leaf[32])
{
	struct leaf32 l;
	memcpy(l.b, leaf, 32);
	struct leaf32 *arr = (struct leaf32 *)c->leaves;
	int rc = VEC_PUSH(arr, c->nleaves, c->capleaves, l);
	c->leaves = (uint8_t (*)[32])arr;
	return rc;
}

/* The end of a walk over a whole table: 1 when every row was seen; else the walk's failure is reported
 * (a store that cannot be read is tamper; c->oom: memory ran out) and 0. */
static int table_read(vctx *c, int rc, const char *table, const char *sqltable)
{
	if (c->oom) {
		report(c, "io", FS_ST_IO, NULL, -1, 0, 0, "out of memory while reading the %s rows", table);
		c->oom = 0;
		return 0;
	}
	if (!rc)
		return 1;
	if (rc == -ENOMEM)
		report(c, "io", FS_ST_IO, NULL, -1, 0, 0, "out of memory while reading the %s rows", table);
	else
		bk_rows(c, sqltable, NULL), report(c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0,
		       "tamper detected: the %s rows of the metadata store cannot be read (%s); the checks that need "
		       "all of them were skipped",
		       table, fs_store_errmsg(c->v->store));
	return 0;
}

/* Inode rows: all of them, then bucket by bucket against the stored bucket digests. */
/* The leaves gathered for the current group (a directory's entries or a file's chunks). */
static fs_leaves group_leaves(vctx *c)
{
	return (fs_leaves){ c->nleaves ? c->leaves[0] : NULL, 32, c->nleaves };
}

static int inode_row(void *ctx, uint64_t ino, const uint8_t *k2, size_t k2len, const uint8_t *row, size_t len)
{
	vctx *c = ctx;
	fs_volume *v = c->v;
	struct vino blank = { 0 };
	if (VEC_PUSH(c->in, c->nin, c->capin, blank) != 0)
		return c->oom = 1;
	struct vino *vi = &c->in[c->nin - 1];
	vi->ino = ino;
	vi->bucket = k2len == 8 ? fs_get_le64(k2) : UINT64_MAX;
	fs_check_keys k = vol_check_keys(v);
	enum fs_check rc = fs_check_inode(&k, ino, vi->bucket, row, len, &vi->r, vi->leaf);
	if (rc)
		vi->row_bad = fs_check_msg(rc);
	else
		vi->ok = 1;
	return 0;
}

/* The leaves of one bucket's rows, in ino order, for fs_check_bucket. */
struct bucket_walk {
	vctx *c;
	const size_t *order;
	size_t k, end;
};
static const uint8_t *bucket_next(void *ctx)
{
	struct bucket_walk *w = ctx;
	return w->k < w->end ? w->c->in[w->order[w->k++]].leaf : NULL;
}

/* The rows to restore for a bucket whose digest disagrees with its inode rows: when the store's root
 * matches the bucket rows, the digest is vouched for and the inode rows changed; else the bucket row did. */
static void bk_bucket(vctx *c, uint32_t b)
{
	if (c->root_bad)
		bk_rows(c, "buckets", "b=%u", b);
	else
		bk_rows(c, "inodes", "bkt=%u", b);
}

/* Whether the rows of ino's bucket disagree with its digest: an inode row of it deleted, changed, added. */
static int bucket_off_of(vctx *c, uint64_t ino)
{
	return c->bucket_off && c->bucket_off[ino & (c->v->hdr.buckets - 1)];
}

static void note_bad_bucket(vctx *c, uint32_t b)
{
	if (c->bucket_off)
		c->bucket_off[b] = 1;
	size_t n = strlen(c->bad_buckets);
	if (n + 24 >= sizeof(c->bad_buckets))
		return; /* many: the list names the first ones */
	if (c->nbad_buckets == 0)
		snprintf(c->bad_buckets, sizeof(c->bad_buckets), "b=%u", b);
	else if (c->nbad_buckets == 1)
		snprintf(c->bad_buckets, sizeof(c->bad_buckets), "b IN (%u, %u)", c->first_bad_bucket, b);
	else
		snprintf(c->bad_buckets + n - 1, sizeof(c->bad_buckets) - n + 1, ", %u)", b);
	if (c->nbad_buckets++ == 0)
		c->first_bad_bucket = b;
}

static void check_buckets(vctx *c, uint8_t (*stored)[32])
{
	fs_volume *v = c->v;
	size_t i = 0;
	/* Rows sorted by ino are not sorted by bucket: collect per bucket with one pass per bucket would be
	 * quadratic, so count leaves per bucket in an index first. */
	uint32_t nb = v->hdr.buckets;
	size_t *count = calloc(nb + 1, sizeof(size_t));
	size_t *order = malloc((c->nin + 1) * sizeof(size_t));
	if (!count || !order) {
		free(count);
		free(order);
		return;
	}
	for (i = 0; i < c->nin; i++)
		count[(c->in[i].ino & (nb - 1)) + 1]++;
	for (uint32_t b = 0; b < nb; b++)
		count[b + 1] += count[b];
	size_t *pos = malloc((nb + 1) * sizeof(size_t));
	if (!pos) {
		free(count);
		free(order);
		return;
	}
	memcpy(pos, count, (nb + 1) * sizeof(size_t));
	c->bucket_off = calloc(nb, 1);
	for (i = 0; i < c->nin; i++)
		order[pos[c->in[i].ino & (nb - 1)]++] = i; /* stays sorted by ino within a bucket */
	for (uint32_t b = 0; b < nb; b++) {
		struct bucket_walk w = { c, order, count[b], count[b + 1] };
		enum fs_check rc = fs_check_bucket(v->k_tree, b, count[b + 1] - count[b], bucket_next, &w, stored[b]);
		if (rc == FS_CHECK_OK)
			continue;
		note_bad_bucket(c, b);
		if (rc == FS_CHECK_BUCKET_EMPTY) {
			bk_bucket(c, b);
			report(c, fs_check_kind(rc), fs_check_status(rc), NULL, -1, 0, 0, "integrity violation: bucket %u: %s",
			       b, fs_check_msg(rc));
			continue;
		}
		for (size_t k = count[b]; k < count[b + 1]; k++)
			c->in[order[k]].bucket_bad = (int64_t)b + 1;
	}
	free(count);
	free(order);
	free(pos);
}

/* Directory entries, grouped by parent (the store returns them in that order). */
static void finish_dir(vctx *c)
{
	if (!c->have_cur)
		return;
	struct vino *dp = find_ino(c, c->cur);
	if (!dp || !dp->ok || !S_ISDIR(dp->r.mode)) {
		/* the directory's inode row went (its bucket disagrees), or the entries were planted */
		if (dp || bucket_off_of(c, c->cur))
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)c->cur);
		else
			bk_rows(c, "dirents", "parent=%llu", (unsigned long long)c->cur);
		report(c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0,
		       "integrity violation: [inode %llu]: entries of a directory that does not exist",
		       (unsigned long long)c->cur);
	} else if (!c->group_bad) {
		enum fs_check rc = fs_check_dir(c->v->k_tree, &dp->r, group_leaves(c));
		if (rc)
			dp->dir_bad = fs_check_msg(rc);
	} else {
		dp->dir_bad = "directory entries fail authentication";
		dp->nbad_dirents = c->nbad;
		memcpy(dp->bad_mac, c->bad_mac, 32);
	}
	c->nleaves = 0;
	c->nbad = 0;
	c->group_bad = 0;
	c->cur = 0;
	c->have_cur = 0;
}

static int dirent_row(void *ctx, uint64_t parent, const uint8_t *mac, size_t maclen, const uint8_t *row, size_t len)
{
	vctx *c = ctx;
	fs_volume *v = c->v;
	if (!c->have_cur || parent != c->cur) {
		finish_dir(c);
		c->cur = parent;
		c->have_cur = 1;
	}
	uint8_t leaf[32];
	fs_dirent_rec rec;
	fs_check_keys k = vol_check_keys(v);
	if (fs_check_dirent(&k, parent, mac, maclen, c->nleaves ? c->prev_mac : NULL, row, len, &rec, leaf)) {
		c->group_bad = 1;
		if (c->nbad++ == 0 && maclen == 32)
			memcpy(c->bad_mac, mac, 32);
		else if (maclen != 32)
			c->nbad = 2; /* not a key to name: the directory's rows, all of them */
		return 0;
	}
	memcpy(c->prev_mac, mac, 32);
	if (push_leaf(c, leaf) != 0)
		return c->oom = 1;
	struct vdent d = { .parent = parent, .ino = rec.ino, .mode = rec.mode };
	memcpy(d.mac, mac, 32);
	memcpy(d.name, rec.name, rec.name_len + 1);
	if (VEC_PUSH(c->de, c->nde, c->capde, d) != 0)
		return c->oom = 1;
	return 0;
}

/* First entry of parent p in c->de (grouped by parent, in ascending order), or c->nde. */
static size_t first_entry(vctx *c, uint64_t p)
{
	size_t lo = 0, hi = c->nde;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->de[mid].parent < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Names every reachable inode by a breadth-first walk from the root. */
static void name_inodes(vctx *c)
{
	struct vino *root = find_ino(c, FS_ROOT_INO);
	if (!root)
		return;
	root->path = strdup("/");
	uint64_t *queue = malloc((c->nin + 1) * sizeof(uint64_t));
	if (!queue)
		return;
	size_t head = 0, tail = 0;
	queue[tail++] = FS_ROOT_INO;
	while (head < tail) {
		uint64_t p = queue[head++];
		struct vino *pp = find_ino(c, p);
		for (size_t i = first_entry(c, p); i < c->nde && c->de[i].parent == p; i++) {
			struct vino *ch = find_ino(c, c->de[i].ino);
			if (!ch || ch->path)
				continue;
			size_t n = strlen(pp->path) + strlen(c->de[i].name) + 2;
			ch->path = malloc(n);
			if (!ch->path)
				continue;
			snprintf(ch->path, n, "%s%s%s", strcmp(pp->path, "/") ? pp->path : "", "/", c->de[i].name);
			if (S_ISDIR(c->de[i].mode) && tail < c->nin)
				queue[tail++] = ch->ino;
		}
	}
	free(queue);
}

static void report_deferred(vctx *c)
{
	for (size_t i = 0; i < c->nin; i++) {
		struct vino *vi = &c->in[i];
		if (vi->row_bad) {
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)vi->ino);
			report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "%s", vi->row_bad);
		}
		if (vi->bucket_bad && vi->row_bad && c->root_bad == 0)
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)vi->ino); /* the row that changed */
		else if (vi->bucket_bad)
			bk_bucket(c, (uint32_t)(vi->bucket_bad - 1));
		if (vi->bucket_bad)
			report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0,
			       "inode rows of bucket %lld do not match the committed tree (a row changed, deleted, added "
			       "or replayed)",
			       (long long)vi->bucket_bad - 1);
		if (vi->dir_bad) {
			if (vi->nbad_dirents == 1)
				bk_dirent(c, vi->ino, vi->bad_mac);
			else
				bk_rows(c, "dirents", "parent=%llu", (unsigned long long)vi->ino);
			report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "%s", vi->dir_bad);
		}
	}
}

/* Whether directory p's entry rows disagree with its inode: a finding of its own (now or later). */
static int dir_off(vctx *c, uint64_t p)
{
	struct vino *dp = p ? find_ino(c, p) : NULL;
	if (!dp || !dp->ok || !S_ISDIR(dp->r.mode))
		return 0;
	if (dp->dir_bad)
		return 1;
	size_t k = first_entry(c, p);
	return dp->r.count && (k == c->nde || c->de[k].parent != p);
}

static void check_links(vctx *c)
{
	for (size_t i = 0; i < c->nde; i++) {
		struct vino *ch = find_ino(c, c->de[i].ino);
		struct vino *pp = find_ino(c, c->de[i].parent);
		if (!ch) {
			/* the entry is authentic (its directory's digest matched, or that is a finding of its own) */
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)c->de[i].ino);
			report(c, "metadata", FS_ST_TAMPER, pp, -1, 0, 0,
			       "entry '%s' names inode %llu, which does not exist (deleted file?)", c->de[i].name,
			       (unsigned long long)c->de[i].ino);
			continue;
		}
		ch->links++;
		if (ch->ok && (ch->r.mode & S_IFMT) != c->de[i].mode)
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)ch->ino), bk_dirent(c, c->de[i].parent, c->de[i].mac),
			report(c, "metadata", FS_ST_TAMPER, ch, -1, 0, 0, "entry type disagrees with the inode");
		if (S_ISDIR(c->de[i].mode) && pp)
			pp->subdirs++;
	}
	for (size_t i = 0; i < c->nin; i++) {
		struct vino *vi = &c->in[i];
		if (!vi->ok)
			continue;
		if (S_ISDIR(vi->r.mode))
			c->res->dirs++;
		else if (S_ISREG(vi->r.mode))
			c->res->files++;
		else
			c->res->others++;
		if (!vi->path) {
			/* the entry naming it went from the directory the inode records, if that one does not match
			 * its entries; else the inode row is one the tree does not hold (added or replayed) */
			if (dir_off(c, vi->r.parent))
				bk_rows(c, "dirents", "parent=%llu", (unsigned long long)vi->r.parent);
			else
				bk_rows(c, "inodes", "ino=%llu", (unsigned long long)vi->ino);
			report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "inode is not reachable from the root");
			continue;
		}
		uint64_t want = S_ISDIR(vi->r.mode) ? 2 + vi->subdirs : vi->links;
		if (vi->ino != FS_ROOT_INO && S_ISDIR(vi->r.mode) && vi->links != 1) {
			for (size_t k = 0; k < c->nde && c->nbk < FS_MAX_BACKING; k++)
				if (c->de[k].ino == vi->ino)
					bk_dirent(c, c->de[k].parent, c->de[k].mac);
			if (!c->nbk)
				bk_rows(c, "inodes", "ino=%llu", (unsigned long long)vi->ino);
			report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "directory has %llu entries naming it",
			       (unsigned long long)vi->links);
		}
		if (vi->r.nlink != want)
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)vi->ino), report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "link count %u, but %llu links exist",
			       vi->r.nlink, (unsigned long long)want);
	}
}

/* Chunks, grouped by file. A chunk's finding waits for the file's chunk map: when the map matches, the
 * chunk rows are vouched for and only the pack file's slot can be at fault; else the row may be too. */
struct pchunk {
	enum fs_check rc;
	int err;
	uint64_t idx, slot, a, b;
};

struct cfile {
	vctx *c;
	struct vino *vi;
	fs_aead *aead;
	int fd, missing_reported;
	uint8_t *buf, *pt;
	struct pchunk *pend;
	size_t npend, cappend;
};

static void report_chunk(vctx *c, struct cfile *f, const struct pchunk *p, int rows_suspect)
{
	bk_pack(c, f->vi->ino, f->vi->r.gen, p->rc == FS_CHECK_PACK_MISSING ? -1 : (int64_t)p->slot);
	if (rows_suspect)
		bk_rows(c, "chunks", "ino=%llu AND idx=%llu", (unsigned long long)f->vi->ino, (unsigned long long)p->idx);
	if (p->rc == FS_CHECK_CHUNK_READ)
		report(c, fs_check_kind(p->rc), fs_check_status(p->rc), f->vi, (int64_t)p->idx, p->a, p->b, "%s (%s)",
		       fs_check_msg(p->rc), strerror(p->err));
	else
		report(c, fs_check_kind(p->rc), fs_check_status(p->rc), f->vi, (int64_t)p->idx, p->a, p->b, "%s",
		       fs_check_msg(p->rc));
}

static void chunk_finding(vctx *c, struct cfile *f, enum fs_check rc, int err, const fs_chunk_row *r, uint64_t a,
			  uint64_t b)
{
	struct pchunk p = { rc, err, r->idx, r->slot, a, b };
	if (VEC_PUSH(f->pend, f->npend, f->cappend, p) != 0)
		report_chunk(c, f, &p, 1); /* no memory to wait: name the row as well */
}

static void check_chunk_data(vctx *c, struct cfile *f, const fs_chunk_row *r)
{
	fs_volume *v = c->v;
	uint32_t cs = v->hdr.chunk_size;
	uint64_t a = r->idx * cs, b = a + (r->len ? r->len - 1 : 0);
	enum fs_check rc;
	int err = 0;
	if (f->fd < 0) {
		if (!f->missing_reported)
			chunk_finding(c, f, FS_CHECK_PACK_MISSING, 0, r, a, b);
		f->missing_reported = 1;
		return;
	}
	if ((rc = fs_read_chunk(f->fd, cs, r, f->buf, &err)) == FS_CHECK_OK)
		rc = fs_check_chunk(f->aead, v->hdr.volid, f->vi->ino, f->vi->r.gen, r, f->buf, f->pt);
	if (rc) {
		chunk_finding(c, f, rc, err, r, a, b);
		return;
	}
	c->res->chunks++;
	c->res->bytes += r->len;
}

static void close_file(vctx *c, struct cfile *f)
{
	enum fs_check rc = FS_CHECK_OK;
	if (f->vi && !c->group_bad)
		rc = fs_check_file(c->v->k_tree, &f->vi->r, group_leaves(c));
	for (size_t i = 0; f->vi && i < f->npend; i++)
		report_chunk(c, f, &f->pend[i], c->group_bad || rc != FS_CHECK_OK);
	f->npend = 0;
	if (f->vi && !c->group_bad) {
		if (rc) {
			bk_rows(c, "chunks", "ino=%llu", (unsigned long long)f->vi->ino);
			report(c, fs_check_kind(rc), fs_check_status(rc), f->vi, -1, 0, 0, "%s", fs_check_msg(rc));
		}
		f->vi->has_chunks_checked = 1;
	}
	if (f->fd >= 0)
		close(f->fd);
	fs_aead_free(f->aead);
	f->fd = -1;
	f->aead = NULL;
	f->vi = NULL;
	f->missing_reported = 0;
	c->nleaves = 0;
	c->group_bad = 0;
}

static int open_file(vctx *c, struct cfile *f, uint64_t ino)
{
	fs_volume *v = c->v;
	f->vi = find_ino(c, ino);
	f->fd = -1;
	if (!f->vi || !f->vi->ok || !S_ISREG(f->vi->r.mode)) {
		/* the file's inode row went (its bucket disagrees) or is replayed, or the chunk rows were planted */
		if (f->vi && f->vi->ok)
			bk_rows(c, "inodes", "ino=%llu", (unsigned long long)ino),
				report(c, "metadata", FS_ST_TAMPER, f->vi, -1, 0, 0, "chunks belong to something not a file");
		else if (!f->vi)
			bk_rows(c, bucket_off_of(c, ino) ? "inodes" : "chunks", "ino=%llu", (unsigned long long)ino),
				report(c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0,
			       "integrity violation: [inode %llu]: chunks of a file that does not exist",
			       (unsigned long long)ino);
		f->vi = NULL;
		return -1;
	}
	uint8_t *k = fs_key_alloc();
	if (!k)
		return -1;
	fs_derive_file_key(k, v->k_chunk, ino, f->vi->r.gen);
	f->aead = fs_aead_new(v->hdr.aead_alg, k);
	fs_key_free(k);
	char path[64];
	vol_pack_path(v, ino, f->vi->r.gen, path, sizeof(path));
	f->fd = fs_beneath_open(v->dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	f->fd = f->fd < 0 ? -1 : f->fd; /* a link anywhere in the path: reported as missing data */
	struct stat st;
	if (f->fd >= 0 && (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(f->fd);
		f->fd = -1; /* reported as missing data: not a regular file */
	}
	return 0;
}

static int chunk_row(void *ctx, uint64_t ino, const fs_chunk_row *r, int malformed)
{
	struct cfile *f = ctx;
	vctx *c = f->c;
	if (!c->have_cur || ino != c->cur) {
		close_file(c, f);
		c->cur = ino;
		c->have_cur = 1;
		open_file(c, f, ino);
	}
	if (!f->vi)
		return 0;
	uint32_t cs = c->v->hdr.chunk_size;
	uint8_t leaf[32];
	fs_check_keys k = vol_check_keys(c->v);
	enum fs_check rc = fs_check_chunk_row(&k, ino, &f->vi->r, r, malformed, leaf);
	if (rc) {
		bk_rows(c, "chunks", "ino=%llu AND idx=%llu", (unsigned long long)ino, (unsigned long long)r->idx);
		report(c, fs_check_kind(rc), fs_check_status(rc), f->vi, (int64_t)r->idx, r->idx * cs,
		       r->idx * cs + cs - 1, "%s", fs_check_msg(rc));
		c->group_bad = 1;
		return 0;
	}
	if (push_leaf(c, leaf) != 0)
		return c->oom = 1;
	check_chunk_data(c, f, r);
	if (c->progress) {
		c->p_items++;
		c->p_bytes += r->len;
		c->progress(c->progress_ctx, c->p_items, c->p_items_total, c->p_bytes, c->p_bytes_total);
	}
	return 0;
}

/* The totals the chunk walk is measured against: what the authentic inode rows say files hold. */
static void progress_totals(vctx *c)
{
	for (size_t i = 0; i < c->nin; i++)
		if (c->in[i].ok && S_ISREG(c->in[i].r.mode)) {
			c->p_items_total += c->in[i].r.count;
			c->p_bytes_total += c->in[i].r.size;
		}
	if (c->progress)
		c->progress(c->progress_ctx, 0, c->p_items_total, 0, c->p_bytes_total);
}

/* Files with no chunk rows at all still have a digest to check (an empty one). Only over tables read
 * whole. */
static void check_chunkless(vctx *c, int chunks_ok, int dirents_ok)
{
	for (size_t i = 0; i < c->nin && chunks_ok; i++) {
		struct vino *vi = &c->in[i];
		if (!vi->ok || !S_ISREG(vi->r.mode) || vi->has_chunks_checked)
			continue;
		uint8_t d[32];
		fs_file_digest_begin(&c->m, c->v->k_tree, vi->ino, vi->r.gen, vi->r.size, 0);
		fs_mac_final(&c->m, d);
		if (vi->r.count != 0 || !fs_ct_eq(d, vi->r.content, 32))
			bk_rows(c, "chunks", "ino=%llu", (unsigned long long)vi->ino), report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "chunk rows missing (deleted from the store)");
	}
	/* Directories without any entry rows. */
	for (size_t i = 0; i < c->nin && dirents_ok; i++) {
		struct vino *vi = &c->in[i];
		if (!vi->ok || !S_ISDIR(vi->r.mode) || vi->r.count == 0)
			continue;
		size_t k = first_entry(c, vi->ino);
		if (k == c->nde || c->de[k].parent != vi->ino)
			bk_rows(c, "dirents", "parent=%llu", (unsigned long long)vi->ino), report(c, "metadata", FS_ST_TAMPER, vi, -1, 0, 0, "directory entries missing (deleted from the store)");
	}
}

/* Pack files that no live file owns: crash leftovers or planted; a note, not a violation. */
static void check_unreferenced(vctx *c)
{
	int dfd = fs_beneath_open(c->v->dirfd, FS_DATA_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0) {
		bk_file(c, FS_DATA_DIR);
		report(c, "missing", FS_ST_TAMPER, NULL, -1, 0, 0, "integrity violation: the data directory %s is %s", FS_DATA_DIR,
		       dfd == -ELOOP ? "a symbolic link" : dfd == -ENOTDIR ? "not a directory" : "missing");
		return;
	}
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int sfd = fs_beneath_open(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		char sub[300];
		snprintf(sub, sizeof(sub), "%s/%s", FS_DATA_DIR, e->d_name);
		if (sfd == -ELOOP)
			bk_file(c, sub), report(c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0,
			       "tamper detected: %s/%s is a symbolic link, not a directory of the volume", FS_DATA_DIR, e->d_name);
		DIR *s = sfd >= 0 ? fdopendir(sfd) : NULL;
		struct dirent *f;
		while (s && (f = readdir(s))) {
			if (f->d_name[0] == '.')
				continue;
			unsigned long long ino = 0, gen = 0;
			char tail, want[64] = "", got[600];
			struct vino *vi = NULL;
			snprintf(got, sizeof(got), "%s/%s/%s", FS_DATA_DIR, e->d_name, f->d_name);
			if (sscanf(f->d_name, "%16llx.%llx%c", &ino, &gen, &tail) == 2) {
				vi = find_ino(c, ino);
				vol_pack_path(c->v, ino, gen, want, sizeof(want));
			}
			if (!vi || !vi->ok || vi->r.gen != gen || !S_ISREG(vi->r.mode)) {
				char m[800];
				/* The open removes only what is named as a pack file: docs/FORMAT.md section 13. */
				snprintf(m, sizeof(m), "note: %s is not part of the volume (unreferenced data: an orphan of an "
					 "interrupted commit, or planted); %s", got,
					 strcmp(want, got) ? "it is left alone" : "the next read-write mount removes it");
				fs_finding fi = { "unreferenced", 0, NULL, 0, -1, 0, 0, m, 0, { { 0 } } };
				bk_file(c, got);
				bk_attach(c, &fi);
				c->nbk = 0;
				c->cb(c->ctx, &fi);
			}
		}
		if (s)
			closedir(s);
		else if (sfd >= 0)
			close(sfd);
	}
	if (d)
		closedir(d);
	else
		close(dfd);
}

/* The finding that the store's root does not match its bucket rows, once those were checked against
 * their inode rows: the buckets that disagree are the rows changed; if none does, the volume row is. */
static void report_root(vctx *c)
{
	if (c->root_bad != 1)
		return;
	if (c->nbad_buckets)
		bk_rows(c, "buckets", "%s", c->bad_buckets);
	else
		bk_rows(c, "volume", "id=1");
	report(c, "metadata", c->root_status, NULL, -1, 0, 0, "%s", c->root_err);
	c->root_bad = 2; /* reported; bucket findings still name the bucket rows */
}

/* Copies DIR/name to the private directory; -ENOENT when it does not exist. */
static int copy_file(int dirfd, const char *name, const char *todir)
{
	int in = fs_beneath_open(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (in < 0)
		return in;
	struct stat st;
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", todir, name);
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return -e;
	}
	char buf[65536];
	ssize_t n;
	int rc = 0;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	if (n < 0)
		rc = -errno;
	close(in);
	close(out);
	return rc;
}

static void cleanup_tmp(vctx *c)
{
	if (!c->tmpdir[0])
		return;
	static const char *const names[] = { FS_META_NAME, FS_META_NAME "-wal", FS_META_NAME "-shm" };
	char p[512];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", c->tmpdir, names[i]);
		unlink(p);
	}
	rmdir(c->tmpdir);
}

int fsv_verify(const fs_volume_opts *o, const fs_verify_opts *vo, fs_finding_fn cb, void *ctx, fs_verify_result *res)
{
	vctx c = { .cb = cb, .ctx = ctx, .res = res, .progress = vo ? vo->progress : NULL,
		   .progress_ctx = vo ? vo->progress_ctx : NULL };
	char err[512] = "";
	memset(res, 0, sizeof(*res));
	fs_volume *v = c.v = vol_new();
	if (!v)
		return FS_ST_IO;
	v->state = VOL_READONLY;
	int st = vol_setup(v, o, 0, err, sizeof(err));
	memcpy(res->volid, v->hdr.volid, 16);
	if (st) {
		/* the header is what the key was checked against, too: a wrong key names it as well */
		if (st == FS_ST_TAMPER || st == FS_ST_WRONG_KEY || strstr(err, FS_HDR_NAME))
			bk_file(&c, FS_HDR_NAME);
		report(&c, st == FS_ST_TAMPER ? "header" : fs_status_name(st), st, NULL, -1, 0, 0, "%s", err);
		goto out;
	}
	/* A daemon writing the volume right now makes any offline answer stale. */
	int lfd = fs_beneath_open(v->dirfd, FS_LOCK_NAME, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (lfd >= 0) {
		if (flock(lfd, LOCK_SH | LOCK_NB) != 0)
			report(&c, "busy", FS_ST_BUSY, NULL, -1, 0, 0, "the volume is open read-write by a daemon");
		close(lfd);
	}
	/* The marker hides nothing: believed only when the anchor has no record, else one finding more. */
	if (v->init_mark && vo && vo->use_expect)
		v->init_mark = VOL_MARK_STRAY; /* a trusted state is given: the volume was made */
	if (v->init_mark && (st = vol_check_init_mark(v, o, err, sizeof(err))) != 0) {
		bk_file(&c, FS_INIT_MARK);
		report(&c, fs_status_name(st), st, NULL, -1, 0, 0, "%s", err);
		if (st == FS_ST_IO)
			goto out;
	}
	if (v->init_mark == VOL_MARK_STRAY)
		bk_file(&c, FS_INIT_MARK), report(&c, "marker", 0, NULL, -1, 0, 0,
		       "note: %s is present, but the trust anchor records this volume: the marker is not believed "
		       "(a crash at the end of init, or planted); the next read-write mount removes it",
		       FS_INIT_MARK);
	const char *base = vo && vo->scratch_dir && *vo->scratch_dir ? vo->scratch_dir : "/tmp";
	snprintf(c.tmpdir, sizeof(c.tmpdir), "%s/fshield-verify-XXXXXX", base);
	if (!mkdtemp(c.tmpdir)) {
		c.tmpdir[0] = 0;
		report(&c, "io", FS_ST_IO, NULL, -1, 0, 0, "cannot make a private directory: %s", strerror(errno));
		goto out;
	}
	/* The store and its companions must be plain files of the directory: a link is planted. */
	static const char *const comp[] = { FS_META_NAME, FS_META_NAME "-wal", FS_META_NAME "-shm",
					    FS_META_NAME "-journal" };
	int planted = 0;
	for (size_t i = 0; i < sizeof(comp) / sizeof(comp[0]); i++) {
		int pr = fs_beneath_check_plain(v->dirfd, comp[i]);
		if (pr == -ELOOP || pr == -EMLINK || pr == -EINVAL) {
			bk_file(&c, comp[i]);
			report(&c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0, "tamper detected: %s/%s is %s, not the store's own file",
			       o->dir, comp[i], pr == -ELOOP ? "a symbolic link" : pr == -EMLINK ? "a hard link to another name"
								  : "not a regular file");
			planted = 1;
		}
	}
	if (planted)
		goto out;
	int rc = copy_file(v->dirfd, FS_META_NAME, c.tmpdir);
	if (rc) {
		bk_file(&c, FS_META_NAME);
		report(&c, rc == -ENOENT ? "metadata" : "io", rc == -ENOENT ? FS_ST_TAMPER : FS_ST_IO, NULL, -1, 0, 0,
		       "%s: the metadata store %s/%s %s", rc == -ENOENT ? "tamper detected" : "error", o->dir,
		       FS_META_NAME, rc == -ENOENT ? "is missing" : strerror(-rc));
		goto out;
	}
	copy_file(v->dirfd, FS_META_NAME "-wal", c.tmpdir);
	int tfd = open(c.tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = tfd < 0 ? -errno : fs_store_open(tfd, 0, &v->store);
	if (tfd >= 0)
		close(tfd);
	if (rc) {
		const char *why = fs_store_errmsg(v->store);
		bk_file(&c, FS_META_NAME);
		if (!strncmp(why, "tamper detected", 15))
			report(&c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0, "%s", why);
		else
			report(&c, "metadata", FS_ST_TAMPER, NULL, -1, 0, 0, "tamper detected: the metadata store is unreadable: %s",
			       why);
		goto out;
	}
	fs_volume_row row;
	if ((st = vol_check_store(v, &row, err, sizeof(err))) != 0) {
		uint8_t (*probe)[32] = calloc(v->hdr.buckets, 32);
		if (fs_store_get_volume(v->store, &row) != 0) {
			bk_rows(&c, "volume", "id=1");
		} else if (!probe || fs_store_get_buckets(v->store, v->hdr.buckets, probe) != 0) {
			bk_rows(&c, "buckets", NULL);
		} else {
			/* the root over readable bucket rows: which rows changed is known once they are checked */
			c.root_bad = 1;
			c.root_status = st;
			snprintf(c.root_err, sizeof(c.root_err), "%s", err);
		}
		free(probe);
		if (!c.root_bad)
			report(&c, "metadata", st, NULL, -1, 0, 0, "%s", err);
	}
	if (fs_store_get_volume(v->store, &row) == 0) {
		res->version = row.version;
		memcpy(res->root, row.root, 32);
		res->have_version = 1;
		/* Freshness against the anchor or the expected state. */
		if (vo && vo->skip_anchor) {
			/* every other check below runs as always */
		} else if (vo && vo->use_expect) {
			res->trusted_version = vo->expect_version;
			memcpy(res->trusted_root, vo->expect_root, 32);
			res->have_trusted = 1;
			if (row.version != vo->expect_version || !fs_ct_eq(row.root, vo->expect_root, 32))
				bk_file(&c, FS_META_NAME); /* an older or another state of the store */
			if (row.version < vo->expect_version)
				report(&c, "rollback", FS_ST_ROLLBACK, NULL, -1, 0, 0,
				       FS_MSG_ROLLBACK,
				       (unsigned long long)row.version, (unsigned long long)vo->expect_version);
			else if (row.version != vo->expect_version || !fs_ct_eq(row.root, vo->expect_root, 32))
				report(&c, "fork", FS_ST_FORK, NULL, -1, 0, 0,
				       "fork detected: volume version %llu is not the expected version %llu with the "
				       "expected root",
				       (unsigned long long)row.version, (unsigned long long)vo->expect_version);
		} else if ((st = vol_open_anchor(v, o->trust_uri, &o->tls, err, sizeof(err))) != 0) {
			report(&c, "anchor", st, NULL, -1, 0, 0, "%s", err);
		} else if (!fs_anchor_is_none(v->anchor)) {
			int roll, pending;
			fs_anchor_state as;
			char aerr[256];
			if (fs_anchor_get(v->anchor, v->hdr.volid, &as, aerr, sizeof(aerr)) == 0) {
				res->trusted_version = as.version;
				memcpy(res->trusted_root, as.root, 32);
				res->have_trusted = 1;
			}
			st = vol_check_anchor(v, &row, &roll, &pending, err, sizeof(err));
			if (st == FS_ST_ROLLBACK || st == FS_ST_FORK)
				bk_file(&c, FS_META_NAME); /* an older or another state of the store */
			else if (roll)
				bk_rows(&c, "volume", "id=1");
			if (st)
				report(&c, fs_status_name(st), st, NULL, -1, 0, 0, "%s", err);
			else if (roll)
				report(&c, "pending", FS_ST_PENDING, NULL, -1, 0, 0,
				       "pending commit: version %llu prepared on trusted version %llu",
				       (unsigned long long)row.version, (unsigned long long)res->trusted_version);
		}
	}
	/* Every row and chunk, whatever was found above. A table that cannot be read whole is one finding,
	 * and no check that needs all of it runs: a part of a table would read as rows deleted. */
	uint8_t (*stored)[32] = calloc(v->hdr.buckets, 32);
	if (!stored) {
		report_root(&c);
		report(&c, "io", FS_ST_IO, NULL, -1, 0, 0, "out of memory");
		goto out;
	}
	int buckets_ok = fs_store_get_buckets(v->store, v->hdr.buckets, stored) == 0;
	int inodes_ok = table_read(&c, fs_store_all_inodes(v->store, inode_row, &c), "inode", "inodes");
	if (buckets_ok && inodes_ok)
		check_buckets(&c, stored);
	free(stored);
	report_root(&c);
	if (!inodes_ok)
		goto out; /* every other check is about the inodes */
	c.cur = 0;
	c.have_cur = 0;
	int dirents_ok = table_read(&c, fs_store_all_dirents(v->store, dirent_row, &c), "directory entry", "dirents");
	if (dirents_ok)
		finish_dir(&c);
	c.nleaves = 0; /* a directory cut short leaves its leaves */
	c.group_bad = 0;
	name_inodes(&c);
	report_deferred(&c);
	if (dirents_ok)
		check_links(&c);
	progress_totals(&c);
	struct cfile f = { .c = &c, .fd = -1 };
	uint32_t cs = v->hdr.chunk_size;
	f.buf = malloc(cs);
	f.pt = malloc(cs);
	c.cur = 0;
	c.have_cur = 0;
	int chunks_ok = f.buf && f.pt;
	if (!chunks_ok)
		report(&c, "io", FS_ST_IO, NULL, -1, 0, 0, "out of memory");
	else
		chunks_ok = table_read(&c, fs_store_all_chunks(v->store, chunk_row, &f), "chunk", "chunks");
	if (!chunks_ok)
		c.group_bad = 1; /* the file being read when it failed has only some of its rows */
	close_file(&c, &f);
	free(f.pend);
	free(f.buf);
	free(f.pt);
	check_chunkless(&c, chunks_ok, dirents_ok);
	check_unreferenced(&c);
out:
	for (size_t i = 0; i < c.nin; i++) {
		fs_inode_rec_free(&c.in[i].r);
		free(c.in[i].path);
	}
	free(c.in);
	free(c.de);
	free(c.bucket_off);
	free(c.leaves);
	cleanup_tmp(&c);
	vol_destroy(v);
	return c.worst;
}
