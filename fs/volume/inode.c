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
	const char *bad;
};

static int bucket_row(void *ctx, uint64_t ino, const uint8_t *k2, size_t k2len, const uint8_t *row, size_t len)
{
	(void)k2;
	(void)k2len;
	struct bucket_load *L = ctx;
	fs_volume *v = L->v;
	L->bad_ino = ino;
	if (!row) {
		L->bad = "malformed inode row";
		return 1;
	}
	uint8_t key[8];
	size_t ptlen;
	fs_inode_key(key, ino);
	uint8_t *pt = fs_row_open(v->row_aead, v->hdr.volid, FS_ROW_INODE, key, 8, row, len, &ptlen);
	struct inode *ip = new_inode(ino);
	if (!ip) {
		free(pt);
		L->bad = "out of memory";
		return 1;
	}
	if (!pt || fs_inode_decode(pt, ptlen, &ip->r) != 0 || ip->r.ino != ino || ino == 0 ||
	    bucket_of(v, ino) != L->b) {
		L->bad = pt ? "inode row is malformed" : "inode row fails authentication";
		free(pt);
		vol_free_inode(v, ip);
		return 1;
	}
	free(pt);
	ip->row = malloc(len);
	if (!ip->row) {
		vol_free_inode(v, ip);
		L->bad = "out of memory";
		return 1;
	}
	memcpy(ip->row, row, len);
	ip->rowlen = len;
	fs_leaf_inode(ip->leaf, v->k_tree, ino, row, len);
	if (L->tail)
		L->tail->bnext = ip;
	else
		L->head = ip;
	L->tail = ip;
	L->count++;
	return 0;
}

static int load_bucket(fs_volume *v, uint32_t b)
{
	struct bucket_load L = { .v = v, .b = b };
	int rc = fs_store_inodes_in_bucket(v->store, b, bucket_row, &L);
	if (rc == 0 && !L.bad) {
		fs_mac m;
		uint8_t d[32];
		fs_bucket_digest_begin(&m, v->k_tree, b, L.count);
		for (struct inode *ip = L.head; ip; ip = ip->bnext)
			fs_mac_update(&m, ip->leaf, 32);
		fs_mac_final(&m, d);
		if (fs_ct_eq(d, fs_tree_bucket(&v->tree, b), 32)) {
			v->bk[b].head = L.head;
			v->bk[b].loaded = 1;
			return 0;
		}
		L.bad = "inode rows do not match the committed tree (a row changed, deleted, added or replayed)";
		L.bad_ino = 0;
	}
	while (L.head) {
		struct inode *n = L.head->bnext;
		vol_free_inode(v, L.head);
		L.head = n;
	}
	if (rc)
		return rc;
	char what[200];
	if (L.bad_ino)
		snprintf(what, sizeof(what), "inode %llu (bucket %u): %s", (unsigned long long)L.bad_ino, b, L.bad);
	else
		snprintf(what, sizeof(what), "bucket %u: %s", b, L.bad);
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
	if (dir->nents == dir->capents) {
		size_t nc = dir->capents ? dir->capents * 2 : 8;
		struct dent *ne = realloc(dir->ents, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		dir->ents = ne;
		dir->capents = nc;
	}
	char *nm = strdup(name);
	if (!nm)
		return -ENOMEM;
	memmove(&dir->ents[pos + 1], &dir->ents[pos], (dir->nents - pos) * sizeof(struct dent));
	struct dent *d = &dir->ents[pos];
	memset(d, 0, sizeof(*d));
	memcpy(d->mac, mac, 32);
	d->ino = ino;
	d->mode = mode & S_IFMT;
	d->name = nm;
	dir->nents++;
	dir->ents_dirty = 1;
	return 0;
}

int vol_remove_dent(fs_volume *v, struct inode *dir, size_t pos)
{
	(void)v;
	struct dent *d = &dir->ents[pos];
	/* A row that was never written needs no delete; one that was must go. */
	if (dir->nrmm == dir->caprmm) {
		size_t nc = dir->caprmm ? dir->caprmm * 2 : 8;
		void *n = realloc(dir->rm_macs, nc * 32);
		if (!n)
			return -ENOMEM;
		dir->rm_macs = n;
		dir->caprmm = nc;
	}
	memcpy(dir->rm_macs[dir->nrmm++], d->mac, 32);
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
	const char *bad;
};

static int dir_row(void *ctx, uint64_t parent, const uint8_t *mac, size_t maclen, const uint8_t *row, size_t len)
{
	struct dir_load *L = ctx;
	fs_volume *v = L->v;
	if (!row || maclen != 32) {
		L->bad = "malformed directory entry row";
		return 1;
	}
	uint8_t key[40], want[32];
	size_t ptlen;
	fs_dirent_rec rec;
	fs_dirent_key(key, parent, mac);
	uint8_t *pt = fs_row_open(v->row_aead, v->hdr.volid, FS_ROW_DIRENT, key, 40, row, len, &ptlen);
	if (!pt || fs_dirent_decode(pt, ptlen, &rec) != 0) {
		L->bad = pt ? "directory entry row is malformed" : "directory entry row fails authentication";
		free(pt);
		return 1;
	}
	free(pt);
	fs_name_mac(want, v->k_name, parent, rec.name, rec.name_len);
	if (!fs_ct_eq(want, mac, 32)) {
		L->bad = "directory entry is filed under another name";
		return 1;
	}
	struct inode *dir = L->dir;
	size_t n = dir->nents;
	if (n && memcmp(dir->ents[n - 1].mac, mac, 32) >= 0) {
		L->bad = "directory entries out of order";
		return 1;
	}
	if (vol_insert_dent(v, dir, mac, rec.name, rec.ino, rec.mode) != 0) {
		L->bad = "out of memory";
		return 1;
	}
	struct dent *d = &dir->ents[dir->nents - 1];
	d->row = malloc(len);
	if (!d->row) {
		L->bad = "out of memory";
		return 1;
	}
	memcpy(d->row, row, len);
	d->rowlen = len;
	fs_leaf_dirent(d->leaf, v->k_tree, parent, mac, row, len);
	return 0;
}

struct file_load {
	fs_volume *v;
	struct inode *ip;
	const char *bad;
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
	(void)ino;
	struct file_load *L = ctx;
	struct inode *ip = L->ip;
	uint32_t cs = L->v->hdr.chunk_size;
	L->bad_idx = (int64_t)c->idx;
	if (malformed || c->len == 0 || c->len > cs || c->idx >= (ip->r.size + cs - 1) / cs || c->slot >= FS_MAX_SLOT) {
		L->bad = "malformed chunk row";
		return 1;
	}
	if (ip->nchunks == ip->capchunks) {
		size_t nc = ip->capchunks ? ip->capchunks * 2 : 8;
		struct chunk *n = realloc(ip->chunks, nc * sizeof(*n));
		if (!n) {
			L->bad = "out of memory";
			return 1;
		}
		ip->chunks = n;
		ip->capchunks = nc;
	}
	struct chunk *e = &ip->chunks[ip->nchunks++];
	memset(e, 0, sizeof(*e));
	e->idx = c->idx;
	e->cgen = c->cgen;
	e->slot = c->slot;
	e->len = c->len;
	memcpy(e->nonce, c->nonce, 24);
	memcpy(e->tag, c->tag, 16);
	vol_chunk_leaf(L->v, ip, e);
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

int vol_load_content(fs_volume *v, struct inode *ip)
{
	if (ip->loaded)
		return 0;
	uint8_t d[32];
	int rc;
	if (S_ISDIR(ip->r.mode)) {
		struct dir_load L = { v, ip, NULL };
		rc = fs_store_dirents_of(v->store, ip->ino, dir_row, &L);
		if (rc) {
			unload_content(ip);
			return rc;
		}
		ip->ents_dirty = 0;
		if (!L.bad) {
			vol_dir_digest(v, ip, d);
			if (ip->nents != ip->r.count || !fs_ct_eq(d, ip->r.content, 32))
				L.bad = "directory entries do not match the committed tree (an entry changed, "
					"deleted, added, renamed or replayed)";
		}
		if (L.bad) {
			unload_content(ip);
			return vol_violation(v, ip, -1, L.bad);
		}
	} else if (S_ISREG(ip->r.mode)) {
		struct file_load L = { v, ip, NULL, -1 };
		rc = fs_store_chunks_of(v->store, ip->ino, file_row, &L);
		if (rc) {
			unload_content(ip);
			return rc;
		}
		if (!L.bad) {
			vol_file_digest(v, ip, d);
			if (ip->nchunks != ip->r.count || !fs_ct_eq(d, ip->r.content, 32)) {
				L.bad = "chunk map does not match the committed tree (a chunk row changed, deleted, "
					"added or replayed)";
				L.bad_idx = -1;
			}
			for (size_t i = 0; i < ip->nchunks && !L.bad; i++)
				if (slot_mark(ip, ip->chunks[i].slot, 1) != 0)
					L.bad = "out of memory";
		}
		if (L.bad) {
			unload_content(ip);
			return vol_violation(v, ip, L.bad_idx, L.bad);
		}
	}
	ip->loaded = 1;
	return 0;
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
	if (what & 1) {
		ip->r.mtime_s = ts.tv_sec;
		ip->r.mtime_ns = (uint32_t)ts.tv_nsec;
	}
	if (what & 2) {
		ip->r.ctime_s = ts.tv_sec;
		ip->r.ctime_ns = (uint32_t)ts.tv_nsec;
	}
	if (what & 4) {
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
	vol_touch(v, ip, 7);
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
		fs_log(LOG_ERR, "integrity violation: %s chunk %lld (bytes %llu-%llu): %s", path, (long long)chunk,
		       (unsigned long long)a, (unsigned long long)b, kind);
	} else {
		fs_log(LOG_ERR, "integrity violation: %s: %s", path, kind);
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
	fs_log(LOG_ERR, "integrity violation: %s: %s", path, kind);
	if (!vol_failed(v))
		fs_log(LOG_ERR, "volume %s is now read-only until it is mounted again", v->dir);
	vol_fail(v, FS_ST_TAMPER);
	return -EIO;
}
