/* Inodes in memory: loading and verifying buckets of inode rows, loading and verifying a file's chunk
 * map or a directory's entries, allocation, attributes, and freeing unlinked inodes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/volume/internal.h"

static uint32_t bucket_of(fs_volume *v, uint64_t ino)
{
	return (uint32_t)(ino & (v->hdr.buckets - 1));
}

int vol_writable(fs_volume *v)
{
	return vol_readonly(v) || vol_failed(v) ? -EROFS : 0;
}

static struct inode *new_inode(uint64_t ino)
{
	struct inode *ip = calloc(1, sizeof(*ip));
	if (ip) {
		ip->ino = ino;
		ip->fd = -1;
	}
	return ip;
}

void vol_free_inode(fs_volume *v, struct inode *ip)
{
	fs_inode_rec_free(&ip->r);
	free(ip->row);
	free(ip->chunks);
	for (size_t i = 0; i < ip->nents; i++) {
		free(ip->ents[i].name);
		free(ip->ents[i].row);
	}
	free(ip->ents);
	free(ip->rm_idx);
	free(ip->rm_macs);
	free(ip->slots);
	free(ip->retire);
	for (size_t i = 0; i < ip->ndc; i++)
		free(ip->dc[i].buf);
	v->mem_chunks -= ip->ndc;
	free(ip->rcache);
	fs_aead_free(ip->aead);
	if (ip->fd >= 0) {
		close(ip->fd);
		v->nfds--;
	}
	free(ip);
}

struct bucket_load {
	fs_volume *v;
	uint32_t b;
	struct inode *head, *tail;
	uint64_t count, bad_ino;
	enum fs_check bad;
};

static int bucket_row(void *ctx, uint64_t ino, const uint8_t *k2, size_t k2len, const uint8_t *row, size_t len)
{
	(void)k2;
	(void)k2len;
	struct bucket_load *L = ctx;
	fs_volume *v = L->v;
	fs_check_keys k = vol_check_keys(v);
	L->bad_ino = ino;
	struct inode *ip = new_inode(ino);
	if (!ip) {
		L->bad = FS_CHECK_NOMEM;
		return 1;
	}
	if ((L->bad = fs_check_inode(&k, ino, L->b, row, len, &ip->r, ip->leaf)) != FS_CHECK_OK)
		goto fail;
	if (!(ip->row = malloc(len))) {
		L->bad = FS_CHECK_NOMEM;
		goto fail;
	}
	memcpy(ip->row, row, len);
	ip->rowlen = len;
	if (L->tail)
		L->tail->bnext = ip;
	else
		L->head = ip;
	L->tail = ip;
	L->count++;
	return 0;
fail:
	vol_free_inode(v, ip);
	return 1;
}

/* Leaves of a bucket list in ino order, skipping unlinked inodes (their rows leave at the next commit). */
static const uint8_t *next_leaf(void *ctx)
{
	struct inode **cur = ctx;
	while (*cur && (*cur)->unlinked)
		*cur = (*cur)->bnext;
	if (!*cur)
		return NULL;
	const uint8_t *leaf = (*cur)->leaf;
	*cur = (*cur)->bnext;
	return leaf;
}

static uint64_t linked(struct inode *head)
{
	uint64_t n = 0;
	for (struct inode *ip = head; ip; ip = ip->bnext)
		n += !ip->unlinked;
	return n;
}

void vol_bucket_digest(fs_volume *v, uint32_t b, uint8_t out[32])
{
	struct inode *cur = v->bk[b].head;
	fs_bucket_digest(out, v->k_tree, b, linked(cur), next_leaf, &cur);
}

static int load_bucket(fs_volume *v, uint32_t b)
{
	struct bucket_load L = { .v = v, .b = b };
	int rc = fs_store_inodes_in_bucket(v->store, b, bucket_row, &L);
	if (rc == 0 && !L.bad) {
		struct inode *cur = L.head;
		L.bad = fs_check_bucket(v->k_tree, b, L.count, next_leaf, &cur, fs_tree_bucket(&v->tree, b));
		if (!L.bad) {
			v->bk[b].head = L.head;
			v->bk[b].loaded = 1;
			return 0;
		}
		L.bad_ino = 0;
	}
	while (L.head) {
		struct inode *n = L.head->bnext;
		vol_free_inode(v, L.head);
		L.head = n;
	}
	if (rc) {
		char what[64];
		snprintf(what, sizeof(what), "inode rows of bucket %u", b);
		return vol_store_violation(v, NULL, rc, what);
	}
	if (L.bad == FS_CHECK_NOMEM)
		return -ENOMEM;
	char what[200];
	if (L.bad_ino)
		snprintf(what, sizeof(what), "inode %llu (bucket %u): %s", (unsigned long long)L.bad_ino, b,
			 fs_check_msg(L.bad));
	else
		snprintf(what, sizeof(what), "bucket %u: %s", b, fs_check_msg(L.bad));
	if (v->lookup_dir) /* a lookup brought us here: name what it looked for */
		return vol_violation_at(v, v->lookup_dir, v->lookup_name, what);
	return vol_violation(v, NULL, -1, what);
}

struct inode *vol_ifind(fs_volume *v, uint64_t ino)
{
	struct bucket *bk = &v->bk[bucket_of(v, ino)];
	if (!bk->loaded)
		return NULL;
	for (struct inode *ip = bk->head; ip && ip->ino <= ino; ip = ip->bnext)
		if (ip->ino == ino)
			return ip;
	return NULL;
}

struct inode *vol_iget(fs_volume *v, uint64_t ino, int *err)
{
	if (v->stale) { /* a stale copy serves nothing more */
		*err = -EIO;
		return NULL;
	}
	uint32_t b = bucket_of(v, ino);
	if (!v->bk[b].loaded) {
		int rc = load_bucket(v, b);
		if (rc) {
			*err = rc;
			return NULL;
		}
	}
	struct inode *ip = vol_ifind(v, ino);
	if (!ip) {
		*err = -ENOENT;
		return NULL;
	}
	return ip;
}

/* Directory entries. */
struct dent *vol_find_dent(struct inode *dir, const uint8_t mac[32], size_t *pos)
{
	size_t lo = 0, hi = dir->nents;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(dir->ents[mid].mac, mac, 32);
		if (c == 0) {
			*pos = mid;
			return &dir->ents[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return NULL;
}

int vol_insert_dent(fs_volume *v, struct inode *dir, const uint8_t mac[32], const char *name, uint64_t ino,
		    uint32_t mode)
{
	(void)v;
	size_t pos;
	if (vol_find_dent(dir, mac, &pos))
		return -EEXIST;
	char *nm = strdup(name);
	if (!nm || VEC_PUSH(dir->ents, dir->nents, dir->capents, (struct dent){ .ino = 0 }) != 0) {
		free(nm);
		return -ENOMEM;
	}
	memmove(&dir->ents[pos + 1], &dir->ents[pos], (dir->nents - 1 - pos) * sizeof(struct dent));
	struct dent *d = &dir->ents[pos];
	memset(d, 0, sizeof(*d));
	memcpy(d->mac, mac, 32);
	d->ino = ino;
	d->mode = mode & S_IFMT;
	d->name = nm;
	dir->ents_dirty = 1;
	return 0;
}

int vol_remove_dent(fs_volume *v, struct inode *dir, size_t pos)
{
	(void)v;
	struct dent *d = &dir->ents[pos];
	/* A row that was never written needs no delete; one that was must go. */
	struct name_mac m;
	memcpy(m.mac, d->mac, 32);
	if (VEC_PUSH(dir->rm_macs, dir->nrmm, dir->caprmm, m) != 0)
		return -ENOMEM;
	free(d->name);
	free(d->row);
	memmove(d, d + 1, (dir->nents - pos - 1) * sizeof(struct dent));
	dir->nents--;
	dir->ents_dirty = 1;
	return 0;
}

struct dir_load {
	fs_volume *v;
	struct inode *dir;
	enum fs_check bad;
};

static int dir_row(void *ctx, uint64_t parent, const uint8_t *mac, size_t maclen, const uint8_t *row, size_t len)
{
	struct dir_load *L = ctx;
	fs_volume *v = L->v;
	fs_check_keys k = vol_check_keys(v);
	struct inode *dir = L->dir;
	const uint8_t *prev = dir->nents ? dir->ents[dir->nents - 1].mac : NULL;
	fs_dirent_rec rec;
	uint8_t leaf[32];
	if ((L->bad = fs_check_dirent(&k, parent, mac, maclen, prev, row, len, &rec, leaf)) != FS_CHECK_OK)
		return 1;
	uint8_t *copy = malloc(len);
	if (!copy || vol_insert_dent(v, dir, mac, rec.name, rec.ino, rec.mode) != 0) {
		free(copy);
		L->bad = FS_CHECK_NOMEM;
		return 1;
	}
	struct dent *d = &dir->ents[dir->nents - 1];
	memcpy(copy, row, len);
	d->row = copy;
	d->rowlen = len;
	memcpy(d->leaf, leaf, 32);
	return 0;
}

struct file_load {
	fs_volume *v;
	struct inode *ip;
	enum fs_check bad;
	int64_t bad_idx;
};

static int slot_mark(struct inode *ip, uint64_t slot, int used)
{
	if (slot >= ip->nslots * 8) {
		if (!used)
			return 0;
		uint64_t n = ip->nslots ? ip->nslots : 16;
		while (n * 8 <= slot)
			n *= 2;
		uint8_t *ns = realloc(ip->slots, n);
		if (!ns)
			return -ENOMEM;
		memset(ns + ip->nslots, 0, n - ip->nslots);
		ip->slots = ns;
		ip->nslots = n;
	}
	if (used)
		ip->slots[slot / 8] |= (uint8_t)(1u << (slot % 8));
	else
		ip->slots[slot / 8] &= (uint8_t)~(1u << (slot % 8));
	return 0;
}

int vol_slot_mark(struct inode *ip, uint64_t slot, int used)
{
	return slot_mark(ip, slot, used);
}

static int file_row(void *ctx, uint64_t ino, const fs_chunk_row *c, int malformed)
{
	struct file_load *L = ctx;
	struct inode *ip = L->ip;
	fs_check_keys k = vol_check_keys(L->v);
	struct chunk e = { .idx = c->idx, .cgen = c->cgen, .slot = c->slot, .len = c->len };
	L->bad_idx = (int64_t)c->idx;
	if ((L->bad = fs_check_chunk_row(&k, ino, &ip->r, c, malformed, e.leaf)) != FS_CHECK_OK)
		return 1;
	memcpy(e.nonce, c->nonce, 24);
	memcpy(e.tag, c->tag, 16);
	if (VEC_PUSH(ip->chunks, ip->nchunks, ip->capchunks, e) != 0) {
		L->bad = FS_CHECK_NOMEM;
		return 1;
	}
	/* Slots are marked in use only after the chunk map verified: a forged slot number must not
	 * make us allocate its bitmap. */
	return 0;
}

static void unload_content(struct inode *ip)
{
	for (size_t i = 0; i < ip->nents; i++) {
		free(ip->ents[i].name);
		free(ip->ents[i].row);
	}
	ip->nents = 0;
	ip->nchunks = 0;
	ip->nrmm = ip->nrm = 0;
	ip->ents_dirty = 0;
	free(ip->slots);
	ip->slots = NULL;
	ip->nslots = 0;
}

static int load_dir(fs_volume *v, struct inode *ip, enum fs_check *bad)
{
	struct dir_load L = { v, ip, FS_CHECK_OK };
	int rc = fs_store_dirents_of(v->store, ip->ino, dir_row, &L);
	ip->ents_dirty = 0;
	if (!rc && !L.bad)
		L.bad = fs_check_dir(v->k_tree, &ip->r, FS_LEAVES(ip->ents, ip->nents, leaf));
	*bad = L.bad;
	return rc;
}

static int load_file(fs_volume *v, struct inode *ip, enum fs_check *bad, int64_t *bad_idx)
{
	struct file_load L = { v, ip, FS_CHECK_OK, -1 };
	int rc = fs_store_chunks_of(v->store, ip->ino, file_row, &L);
	if (!rc && !L.bad && (L.bad = fs_check_file(v->k_tree, &ip->r, FS_LEAVES(ip->chunks, ip->nchunks, leaf))))
		L.bad_idx = -1;
	for (size_t i = 0; i < ip->nchunks && !rc && !L.bad; i++)
		if (slot_mark(ip, ip->chunks[i].slot, 1) != 0)
			L.bad = FS_CHECK_NOMEM;
	*bad = L.bad;
	*bad_idx = L.bad_idx;
	return rc;
}

int vol_load_content(fs_volume *v, struct inode *ip)
{
	if (ip->loaded)
		return 0;
	enum fs_check bad = FS_CHECK_OK;
	int64_t idx = -1;
	int rc = S_ISDIR(ip->r.mode) ? load_dir(v, ip, &bad) : S_ISREG(ip->r.mode) ? load_file(v, ip, &bad, &idx) : 0;
	if (!rc && !bad) {
		ip->loaded = 1;
		return 0;
	}
	/* Unloaded before naming it: naming may load other directories. */
	unload_content(ip);
	if (rc)
		return vol_store_violation(v, ip, rc, S_ISDIR(ip->r.mode) ? "directory entries" : "chunk map");
	return bad == FS_CHECK_NOMEM ? -ENOMEM : vol_violation(v, ip, idx, fs_check_msg(bad));
}

void vol_mark_dirty(fs_volume *v, struct inode *ip)
{
	ip->dirty = 1;
	v->bk[bucket_of(v, ip->ino)].dirty = 1;
	vol_mark_changed(v);
}

void vol_touch(fs_volume *v, struct inode *ip, int what)
{
	struct timespec ts;
	vol_now(&ts);
	if (what & VOL_MTIME) {
		ip->r.mtime_s = ts.tv_sec;
		ip->r.mtime_ns = (uint32_t)ts.tv_nsec;
	}
	if (what & VOL_CTIME) {
		ip->r.ctime_s = ts.tv_sec;
		ip->r.ctime_ns = (uint32_t)ts.tv_nsec;
	}
	if (what & VOL_ATIME) {
		ip->r.atime_s = ts.tv_sec;
		ip->r.atime_ns = (uint32_t)ts.tv_nsec;
	}
	vol_mark_dirty(v, ip);
}

int vol_alloc_inode(fs_volume *v, uint32_t mode, uint32_t uid, uint32_t gid, uint64_t parent, struct inode **out)
{
	uint64_t ino = 0;
	for (int tries = 0; tries < 16 && !ino; tries++) {
		randombytes_buf(&ino, sizeof(ino));
		ino &= ((uint64_t)1 << 62) - 1;
		if (ino < 2) {
			ino = 0;
			continue;
		}
		int err = 0;
		uint32_t b = bucket_of(v, ino);
		if (!v->bk[b].loaded && (err = load_bucket(v, b)) != 0)
			return err;
		if (vol_ifind(v, ino))
			ino = 0;
	}
	if (!ino)
		return -ENOSPC;
	struct inode *ip = new_inode(ino);
	if (!ip)
		return -ENOMEM;
	ip->r.ino = ino;
	ip->r.gen = v->version + 1;
	ip->r.parent = parent;
	ip->r.mode = mode;
	ip->r.uid = uid;
	ip->r.gid = gid;
	ip->r.nlink = S_ISDIR(mode) ? 2 : 1;
	ip->r.target = calloc(1, 1);
	ip->r.xattrs = calloc(1, 1);
	if (!ip->r.target || !ip->r.xattrs) {
		vol_free_inode(v, ip);
		return -ENOMEM;
	}
	ip->loaded = 1;
	ip->row_gone = 1;
	vol_touch(v, ip, VOL_MTIME | VOL_CTIME | VOL_ATIME);
	/* Keep the bucket list sorted by ino. */
	struct bucket *bk = &v->bk[bucket_of(v, ino)];
	struct inode **pp = &bk->head;
	while (*pp && (*pp)->ino < ino)
		pp = &(*pp)->bnext;
	ip->bnext = *pp;
	*pp = ip;
	*out = ip;
	return 0;
}

void vol_fill_attr(fs_volume *v, struct inode *ip, fs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ip->ino;
	a->gen = ip->r.gen;
	a->mode = ip->r.mode;
	a->nlink = ip->unlinked ? 0 : ip->r.nlink;
	a->uid = ip->r.uid;
	a->gid = ip->r.gid;
	a->size = S_ISLNK(ip->r.mode) ? ip->r.target_len : ip->r.size;
	a->rdev = ip->r.rdev;
	if (S_ISREG(ip->r.mode) && ip->loaded) {
		uint64_t bytes = 0;
		for (size_t i = 0; i < ip->nchunks; i++)
			bytes += ip->chunks[i].len;
		for (size_t i = 0; i < ip->ndc; i++)
			bytes += ip->dc[i].len;
		a->blocks = (bytes + 511) / 512;
	} else if (S_ISREG(ip->r.mode)) {
		/* Not loaded (stat needs no chunk map): at most count whole chunks hold data. */
		uint64_t most = ip->r.count * v->hdr.chunk_size;
		a->blocks = ((most < a->size ? most : a->size) + 511) / 512;
	} else {
		a->blocks = (a->size + 511) / 512;
	}
	a->atime.tv_sec = ip->r.atime_s;
	a->atime.tv_nsec = ip->r.atime_ns;
	a->mtime.tv_sec = ip->r.mtime_s;
	a->mtime.tv_nsec = ip->r.mtime_ns;
	a->ctime.tv_sec = ip->r.ctime_s;
	a->ctime.tv_nsec = ip->r.ctime_ns;
}

/* An unlinked inode leaves memory once nobody holds it; its row leaves the store at the next commit and
 * its pack file after that commit succeeded. */
void vol_maybe_free(fs_volume *v, struct inode *ip)
{
	if (!ip->unlinked || ip->nlookup || ip->nopen || ip->ino == FS_ROOT_INO)
		return;
	struct bucket *bk = &v->bk[bucket_of(v, ip->ino)];
	struct inode **pp = &bk->head;
	while (*pp && *pp != ip)
		pp = &(*pp)->bnext;
	if (!*pp)
		return;
	*pp = ip->bnext;
	if (!ip->row_gone)
		VEC_PUSH(v->rm_inodes, v->nrmi, v->caprmi, ip->ino);
	if (S_ISREG(ip->r.mode))
		VEC_PUSH(v->dead, v->ndead, v->capdead, ((struct dead_file){ ip->ino, ip->r.gen, v->version + 1, 0 }));
	bk->dirty = 1;
	vol_mark_changed(v);
	vol_drop_file_data(v, ip);
	vol_free_inode(v, ip);
}

/* ---- Naming a file in a report: naming needs the loader (a parent's entries), so it lives here. ---- */

/* The path of an inode in the volume, from the parent hints in its row and the names in loaded
 * directories; components that cannot be named without I/O show as #ino. */
int vol_path(fs_volume *v, struct inode *ip, char *buf, size_t size)
{
	char *parts[64];
	int n = 0;
	struct inode *cur = ip;
	while (cur && cur->ino != FS_ROOT_INO && n < 64) {
		struct inode *par = vol_ifind(v, cur->r.parent);
		const char *name = NULL;
		/* Loading a parent's entries to name a file is fine, but not while reporting a failure of
		 * that very load. */
		if (par && !par->loaded && !v->naming) {
			v->naming = 1;
			vol_load_content(v, par);
			v->naming = 0;
		}
		if (par && par->loaded)
			for (size_t i = 0; i < par->nents; i++)
				if (par->ents[i].ino == cur->ino) {
					name = par->ents[i].name;
					break;
				}
		char tmp[32];
		if (!name) {
			snprintf(tmp, sizeof(tmp), "#%llu", (unsigned long long)cur->ino);
			name = tmp;
		}
		parts[n++] = strdup(name);
		if (!par || par == cur)
			break;
		cur = par;
	}
	size_t off = 0;
	buf[0] = 0;
	if (n == 0)
		snprintf(buf, size, "/");
	for (int i = n - 1; i >= 0; i--) {
		if (off < size)
			off += (size_t)snprintf(buf + off, size - off, "/%s", parts[i] ? parts[i] : "?");
		free(parts[i]);
	}
	return 0;
}

int vol_violation(fs_volume *v, struct inode *ip, int64_t chunk, const char *kind)
{
	char path[4096];
	if (ip)
		vol_path(v, ip, path, sizeof(path));
	else
		snprintf(path, sizeof(path), "(volume metadata)");
	if (chunk >= 0) {
		uint64_t a = (uint64_t)chunk * v->hdr.chunk_size, b = a + v->hdr.chunk_size - 1;
		/* The bytes of the file the chunk holds. */
		if (ip && S_ISREG(ip->r.mode) && ip->r.size > a && ip->r.size - 1 < b)
			b = ip->r.size - 1;
		fs_log(LOG_ERR, FS_MSG_CHUNK_VIOLATION, path, (long long)chunk,
		       (unsigned long long)a, (unsigned long long)b, kind);
	} else {
		fs_log(LOG_ERR, FS_MSG_VIOLATION, path, kind);
	}
	if (!vol_failed(v))
		fs_log(LOG_ERR, "volume %s is now read-only until it is mounted again", v->dir);
	vol_fail(v, FS_ST_TAMPER);
	return -EIO;
}

/* The same for the entry name in directory dir (its inode could not be loaded). */
int vol_violation_at(fs_volume *v, struct inode *dir, const char *name, const char *kind)
{
	char path[4096];
	vol_path(v, dir, path, sizeof(path));
	size_t n = strlen(path);
	snprintf(path + n, sizeof(path) - n, "%s%s", n > 1 ? "/" : "", name);
	fs_log(LOG_ERR, FS_MSG_VIOLATION, path, kind);
	if (!vol_failed(v))
		fs_log(LOG_ERR, "volume %s is now read-only until it is mounted again", v->dir);
	vol_fail(v, FS_ST_TAMPER);
	return -EIO;
}

int vol_store_violation(fs_volume *v, struct inode *ip, int rc, const char *what)
{
	if (rc == -ENOMEM)
		return rc;
	char kind[600];
	snprintf(kind, sizeof(kind), "%s: the metadata store %s cannot be read (%s)", what, FS_META_NAME,
		 v->store ? fs_store_errmsg(v->store) : strerror(-rc));
	if (!ip && v->lookup_dir)
		return vol_violation_at(v, v->lookup_dir, v->lookup_name, kind);
	return vol_violation(v, ip, -1, kind);
}

int fsv_known_inodes(fs_volume *v, uint64_t **out, size_t *n)
{
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&v->lock);
	int rc = 0;
	for (uint32_t b = 0; b < v->hdr.buckets && !rc; b++)
		for (struct inode *ip = v->bk[b].head; ip && !rc; ip = ip->bnext)
			if (ip->nlookup || ip->nopen || ip->ino == FS_ROOT_INO)
				rc = VEC_PUSH(*out, *n, cap, ip->ino);
	pthread_mutex_unlock(&v->lock);
	return rc ? -ENOMEM : 0;
}
