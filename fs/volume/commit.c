/* The commit protocol (docs/FORMAT.md, "Commit"):
 *   1. seal dirty chunks into free slots and make the data durable (fdatasync);
 *   2. one SQLite transaction: the changed rows, bucket digests, and the volume row as
 *      prepared (V+1, R', parent R);
 *   3. compare-and-swap (V, R) -> (V+1, R') at the trust anchor;
 *   4. mark the volume row committed, then retire the slots and pack files no state references.
 * A crash anywhere leaves either the trusted state or a prepared successor of it (rolled forward at
 * the next open). FSHIELD_CRASH_AT names a step after which the process kills itself (tests). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "meta/common/beneath.h"

/* Step 1: every dirty chunk sealed and written, every written pack file and new name durable. Many
 * files: one syncfs of the backing filesystem beats an fdatasync each. */
#define SYNCFS_THRESHOLD 32

/* The inode after ip (NULL: the first) in a dirty bucket, still linked, whose pack file has writes not yet
 * synced; *b walks the buckets (start it at 0). */
static struct inode *next_unsynced(fs_volume *v, uint32_t *b, struct inode *ip)
{
	if (*b >= v->hdr.buckets)
		return NULL;
	ip = ip ? ip->bnext : v->bk[*b].dirty ? v->bk[*b].head : NULL;
	for (;;) {
		for (; ip; ip = ip->bnext)
			if (!ip->unlinked && ip->fd_unsynced)
				return ip;
		do {
			if (++*b >= v->hdr.buckets)
				return NULL;
		} while (!v->bk[*b].dirty);
		ip = v->bk[*b].head;
	}
}

static int sync_data(fs_volume *v)
{
	size_t unsynced = 0;
	for (uint32_t b = 0; b < v->hdr.buckets; b++) {
		if (!v->bk[b].dirty)
			continue;
		for (struct inode *ip = v->bk[b].head; ip; ip = ip->bnext) {
			if (ip->unlinked)
				continue;
			int rc = ip->ndc ? vol_flush_file(v, ip) : 0;
			if (rc)
				return rc;
			unsynced += ip->fd_unsynced;
		}
	}
	/* A pack file deleted or renamed under our open descriptor would take acknowledged data with it. */
	uint32_t b = 0;
	for (struct inode *ip = next_unsynced(v, &b, NULL); ip; ip = next_unsynced(v, &b, ip)) {
		char path[64];
		struct stat a, p;
		vol_pack_path(v, ip->ino, ip->r.gen, path, sizeof(path));
		if (fstat(ip->fd, &a) != 0 || fs_beneath_stat(v->dirfd, path, &p) != 0 ||
		    a.st_ino != p.st_ino || a.st_dev != p.st_dev || a.st_nlink == 0)
			return vol_violation(v, ip, -1, "chunk data file removed or replaced while in use");
	}
	int whole = unsynced > SYNCFS_THRESHOLD || v->need_syncfs;
	if (whole && vol_data_sync(v->dirfd, VOL_SYNC_FS) != 0)
		return vol_sync_failed(v, NULL, "syncfs of the backing filesystem", errno);
	v->need_syncfs = 0;
	b = 0;
	for (struct inode *ip = next_unsynced(v, &b, NULL); ip; ip = next_unsynced(v, &b, ip)) {
		if (!whole && vol_data_sync(ip->fd, VOL_SYNC_DATA) != 0)
			return vol_sync_failed(v, ip, "fdatasync of its chunk data", errno);
		ip->fd_unsynced = 0;
	}
	/* New pack files: their directory entries, once per directory, and new directories' in d/. A failed
	 * directory sync is latched too: the entry exists now and would never be synced again. */
	if (v->new_data_dir && !whole) {
		int fd = vol_openat(v, FS_DATA_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		int bad = vol_data_sync(fd, VOL_SYNC_DIR) != 0, e = errno;
		close(fd);
		if (bad)
			return vol_sync_failed(v, NULL, "fsync of the pack file directory d/", e);
	}
	v->new_data_dir = 0;
	/* New pack files: their directory entries, once per directory. */
	for (int d = 0; d < 256; d++) {
		if (!(v->new_packs[d / 8] & (1u << (d % 8))))
			continue;
		char sub[8];
		snprintf(sub, sizeof(sub), FS_DATA_DIR "/%02x", d);
		int fd = -1;
		if (!whole && (fd = vol_openat(v, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)) < 0)
			return fd;
		if (fd >= 0 && vol_data_sync(fd, VOL_SYNC_DIR) != 0) {
			int e = errno;
			close(fd);
			return vol_sync_failed(v, NULL, "fsync of a directory of pack files", e);
		}
		if (fd >= 0)
			close(fd);
		v->new_packs[d / 8] &= (uint8_t) ~(1u << (d % 8));
	}
	vol_fd_reclaim(v, 0);
	return 0;
}

int vol_sync_failed(fs_volume *v, struct inode *ip, const char *what, int err)
{
	char path[4096] = "";
	if (ip) {
		vol_path(v, ip, path, sizeof(path) - 2);
		strcat(path, ": ");
	}
	fs_log(LOG_ERR,
	       "commit: %s%s failed (%s): the data written may not be on disk and cannot be written again, so "
	       "nothing after version %llu is acknowledged; the volume is now read-only. Unmount, check the "
	       "backing storage, and mount again: the volume then holds version %llu, and the changes made since "
	       "are lost",
	       path, what, strerror(err), (unsigned long long)v->version, (unsigned long long)v->version);
	vol_fail(v, FS_ST_IO);
	return -EIO;
}

/* Seals the rows of a changed inode (its entries first, for directories) and refreshes its leaf. */
static int seal_inode(fs_volume *v, struct inode *ip)
{
	if (S_ISDIR(ip->r.mode) && ip->ents_dirty) {
		for (size_t i = 0; i < ip->nents; i++) {
			struct dent *d = &ip->ents[i];
			if (d->row)
				continue;
			fs_dirent_rec rec = { .ino = d->ino, .mode = d->mode, .name_len = (uint16_t)strlen(d->name) };
			memcpy(rec.name, d->name, rec.name_len + 1);
			size_t ptlen;
			uint8_t *pt = fs_dirent_encode(&rec, &ptlen), key[40];
			if (!pt)
				return -ENOMEM;
			fs_dirent_key(key, ip->ino, d->mac);
			d->row = fs_row_seal(v->row_aead, v->hdr.volid, FS_ROW_DIRENT, key, 40, pt, ptlen, &d->rowlen);
			free(pt);
			if (!d->row)
				return -ENOMEM;
			fs_leaf_dirent(d->leaf, v->k_tree, ip->ino, d->mac, d->row, d->rowlen);
			d->newrow = 1;
		}
	}
	if (ip->loaded && S_ISDIR(ip->r.mode)) {
		vol_dir_digest(v, ip, ip->r.content);
		ip->r.count = ip->nents;
	} else if (ip->loaded && S_ISREG(ip->r.mode)) {
		vol_file_digest(v, ip, ip->r.content);
		ip->r.count = ip->nchunks;
	}
	size_t ptlen;
	uint8_t *pt = fs_inode_encode(&ip->r, &ptlen), key[8];
	if (!pt)
		return -ENOMEM;
	fs_inode_key(key, ip->ino);
	size_t rowlen;
	uint8_t *row = fs_row_seal(v->row_aead, v->hdr.volid, FS_ROW_INODE, key, 8, pt, ptlen, &rowlen);
	sodium_memzero(pt, ptlen);
	free(pt);
	if (!row)
		return -ENOMEM;
	free(ip->row);
	ip->row = row;
	ip->rowlen = rowlen;
	fs_leaf_inode(ip->leaf, v->k_tree, ip->ino, row, rowlen);
	return 0;
}

/* Step 2's rows for one inode. */
static int write_inode_rows(fs_volume *v, struct inode *ip)
{
	int rc = 0;
	if (ip->unlinked) {
		/* The inode and everything under it: chunks of a file, entry rows of a directory. */
		if (!ip->row_gone && !(rc = fs_store_del_inode(v->store, ip->ino)) &&
		    !(rc = fs_store_del_chunks_of(v->store, ip->ino)))
			rc = fs_store_del_dirents_of(v->store, ip->ino);
		return rc;
	}
	for (size_t i = 0; i < ip->nrm && !rc; i++)
		rc = fs_store_del_chunk(v->store, ip->ino, ip->rm_idx[i]);
	for (size_t i = 0; i < ip->nchunks && !rc; i++) {
		struct chunk *c = &ip->chunks[i];
		if (!c->dirty)
			continue;
		fs_chunk_row row = { c->idx, c->cgen, c->slot, c->len, { 0 }, { 0 } };
		memcpy(row.nonce, c->nonce, 24);
		memcpy(row.tag, c->tag, 16);
		rc = fs_store_put_chunk(v->store, ip->ino, &row);
	}
	for (size_t i = 0; i < ip->nrmm && !rc; i++)
		rc = fs_store_del_dirent(v->store, ip->ino, ip->rm_macs[i].mac);
	if (ip->ents_dirty)
		for (size_t i = 0; i < ip->nents && !rc; i++)
			if (ip->ents[i].newrow)
				rc = fs_store_put_dirent(v->store, ip->ino, ip->ents[i].mac, ip->ents[i].row,
							 ip->ents[i].rowlen);
	if (!rc && ip->dirty)
		rc = fs_store_put_inode(v->store, ip->ino, (uint32_t)(ip->ino & (v->hdr.buckets - 1)), ip->row,
					ip->rowlen);
	return rc;
}

/* After the store took the rows: in-memory state is the store's state. */
static void rows_written(struct inode *ip)
{
	if (ip->unlinked) {
		ip->row_gone = 1;
		return;
	}
	ip->row_gone = 0;
	ip->dirty = 0;
	ip->nrm = ip->nrmm = 0;
	ip->ents_dirty = 0;
	for (size_t i = 0; i < ip->nents; i++)
		ip->ents[i].newrow = 0;
	/* The prepared state now references these slots: recovery may return to it. */
	for (size_t i = 0; i < ip->nchunks; i++)
		ip->chunks[i].dirty = ip->chunks[i].fresh = 0;
}

/* Step 4, after the anchor acknowledged version `acked`: slots and pack files that no state recovery
 * may return to references any more. */
static void retire(fs_volume *v, uint64_t acked)
{
	uint32_t cs = v->hdr.chunk_size;
	for (uint32_t b = 0; b < v->hdr.buckets; b++) {
		if (!v->bk[b].retire)
			continue;
		v->bk[b].retire = 0;
		for (struct inode *ip = v->bk[b].head; ip; ip = ip->bnext) {
			/* Give the space back; an old version left readable would only be a replay waiting to be
			 * tried (it would fail against the tree, but there is no reason to keep it). */
			if (ip->nretire && ip->fd < 0)
				vol_pack_open(v, ip, 0);
			size_t keep = 0;
			for (size_t i = 0; i < ip->nretire; i++) {
				if (ip->retire[i].after > acked) {
					ip->retire[keep++] = ip->retire[i];
					v->bk[b].retire = 1;
					continue;
				}
				vol_slot_mark(ip, ip->retire[i].slot, 0);
				if (ip->fd >= 0)
					fallocate(ip->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						  (off_t)(ip->retire[i].slot * cs), cs);
			}
			ip->nretire = keep;
		}
	}
	size_t keep = 0;
	int began = v->ndead && fs_store_begin(v->store) == 0;
	for (size_t i = 0; i < v->ndead; i++) {
		char path[64];
		if (v->dead[i].after > acked) {
			v->dead[keep++] = v->dead[i];
			continue;
		}
		if (vol_pack_path(v, v->dead[i].ino, v->dead[i].gen, path, sizeof(path)) == 0)
			fs_beneath_unlink(v->dirfd, path, 0);
		if (began && v->dead[i].stored)
			fs_store_del_gc(v->store, v->dead[i].ino, v->dead[i].gen);
	}
	if (began && fs_store_commit(v->store) != 0)
		fs_store_rollback(v->store); /* the rows stay; the next open removes them */
	v->ndead = keep;
}

/* Step 3 and 4 for the prepared state in v->pending_row. */
static int anchor_and_finish(fs_volume *v)
{
	fs_anchor_state expect = { v->pending_row.version - 1, { 0 } }, next = { v->pending_row.version, { 0 } }, cur;
	memcpy(expect.root, v->pending_row.parent, 32);
	memcpy(next.root, v->pending_row.root, 32);
	char err[1024] = "";
	int rc = fs_anchor_cas(v->anchor, v->hdr.volid, &expect, &next, &cur, err, sizeof(err));
	/* A retry whose first attempt went through (its answer was lost) finds its own state there. */
	if (rc == -ESTALE && cur.version == next.version && fs_ct_eq(cur.root, next.root, 32))
		rc = 0;
	if (rc == -ESTALE) {
		fs_log(LOG_ERR, "commit of version %llu refused by the trust anchor (%s): another writer, a rollback "
				"or a fork; the volume is now read-only",
		       (unsigned long long)next.version, err);
		vol_fail(v, FS_ST_FORK);
		return -EIO;
	}
	if (rc) {
		fs_log(LOG_ERR, "commit of version %llu is prepared but the trust anchor did not answer (%s); "
				"it will be retried",
		       (unsigned long long)next.version, err);
		return -EIO;
	}
	vol_crash_point(v, "anchored");
	vol_set_acknowledged(v);
	if (fs_store_set_state(v->store, FS_STATE_COMMITTED) != 0)
		fs_log(LOG_WARNING, "could not mark version %llu committed in the store (%s); the next open will",
		       (unsigned long long)next.version, fs_store_errmsg(v->store));
	vol_crash_point(v, "marked");
	retire(v, next.version);
	vol_crash_point(v, "retired");
	return 0;
}

/* After an integrity violation (only) the changes accepted before it are committed: salvage.c. */
int vol_salvageable(const fs_volume *v)
{
	return vol_failed(v) && v->fail_status == FS_ST_TAMPER && !v->stale && v->fail_from != VOL_READONLY;
}

int vol_salvage_pending(const fs_volume *v)
{
	enum vol_state s = v->fail_from;
	return s == VOL_DIRTY || s == VOL_PREPARED || s == VOL_PREPARED_DIRTY;
}

int vol_commit_failed(fs_volume *v)
{
	if (!vol_salvageable(v))
		return -EIO;
	if (!vol_salvage_pending(v) && !v->ndead)
		return 0;
	int status = v->fail_status;
	uint64_t from = v->version;
	v->state = v->fail_from; /* for this commit only: no write gets in, the lock is held */
	int rc = vol_commit_locked(v);
	if (vol_failed(v)) { /* failed again in the commit: a worse reason wins */
		v->fail_status = fs_status_worse(status, v->fail_status);
		return rc ? rc : -EIO;
	}
	v->fail_from = v->state;
	v->state = VOL_FAILED;
	v->fail_status = status;
	if (!rc && v->version != from)
		fs_log(LOG_NOTICE, "volume %s: the changes made before the integrity violation were committed "
				   "(version %llu)", v->dir, (unsigned long long)v->version);
	return rc;
}

static int commit_once(fs_volume *v)
{
	if (vol_readonly(v))
		return 0;
	if (vol_failed(v))
		return vol_commit_failed(v);
	int rc;
	if (vol_prepared(v) && (rc = anchor_and_finish(v)) != 0)
		return rc;
	if (!vol_changed(v)) {
		if (v->ndead)
			retire(v, v->version);
		return 0;
	}
	if ((rc = sync_data(v)) != 0) {
		fs_log(LOG_ERR, "commit: writing chunk data failed: %s", strerror(-rc));
		return rc;
	}
	vol_crash_point(v, "data-synced");

	for (uint32_t b = 0; b < v->hdr.buckets; b++) {
		if (!v->bk[b].dirty)
			continue;
		for (struct inode *ip = v->bk[b].head; ip; ip = ip->bnext) {
			if (ip->unlinked || !(ip->dirty || ip->ents_dirty))
				continue;
			ip->dirty = 1; /* new entries mean a new directory digest in its row */
			if ((rc = seal_inode(v, ip)) != 0)
				return rc;
		}
		uint8_t d[32];
		vol_bucket_digest(v, b, d);
		fs_tree_set_bucket(&v->tree, b, d);
	}
	uint8_t top[32];
	fs_volume_row row = { .version = v->version + 1, .state = FS_STATE_PREPARED };
	fs_tree_top(&v->tree, top);
	fs_volume_root(row.root, v->k_tree, v->hdr.volid, row.version, top);
	memcpy(row.parent, v->root, 32);

	if ((rc = fs_store_begin(v->store)) != 0)
		goto sqlfail;
	for (uint32_t b = 0; b < v->hdr.buckets && !rc; b++) {
		if (!v->bk[b].dirty)
			continue;
		for (struct inode *ip = v->bk[b].head; ip && !rc; ip = ip->bnext)
			rc = write_inode_rows(v, ip);
		if (!rc)
			rc = fs_store_put_bucket(v->store, b, fs_tree_bucket(&v->tree, b));
	}
	for (size_t i = 0; i < v->nrmi && !rc; i++)
		if (!(rc = fs_store_del_inode(v->store, v->rm_inodes[i])) &&
		    !(rc = fs_store_del_chunks_of(v->store, v->rm_inodes[i])))
			rc = fs_store_del_dirents_of(v->store, v->rm_inodes[i]);
	for (size_t i = 0; i < v->ndead && !rc; i++)
		if (!v->dead[i].stored)
			rc = fs_store_put_gc(v->store, v->dead[i].ino, v->dead[i].gen, v->dead[i].after);
	if (!rc)
		rc = fs_store_put_volume(v->store, &row);
	if (rc) {
		fs_store_rollback(v->store);
		goto sqlfail;
	}
	if ((rc = fs_store_commit(v->store)) != 0) {
		fs_store_rollback(v->store);
		goto sqlfail;
	}
	vol_crash_point(v, "prepared");

	for (uint32_t b = 0; b < v->hdr.buckets; b++) {
		if (!v->bk[b].dirty)
			continue;
		for (struct inode *ip = v->bk[b].head; ip; ip = ip->bnext)
			rows_written(ip);
		v->bk[b].dirty = 0;
		v->bk[b].retire = 1;
	}
	v->nrmi = 0;
	for (size_t i = 0; i < v->ndead; i++)
		v->dead[i].stored = 1;
	v->state = VOL_PREPARED; /* from VOL_DIRTY: a prepared version was acknowledged above */
	v->dirty_bytes = 0;
	v->version = row.version;
	memcpy(v->root, row.root, 32);
	v->pending_row = row;
	return anchor_and_finish(v);

sqlfail:
	fs_log(LOG_ERR, "commit: the metadata store refused the transaction: %s (%s)", strerror(-rc),
	       fs_store_errmsg(v->store));
	/* A page SQLite finds corrupt while it writes is the store failing a read: a violation. */
	if (rc == -EBADMSG)
		return vol_violation(v, NULL, -1, "commit: the metadata store " FS_META_NAME " cannot be read");
	return rc;
}

/* A commit that finds the backing store full (something else filled it: writes keep room for their own
 * commits) is tried once more with the reserve's space; its deletes then give space back. */
int vol_commit_locked(fs_volume *v)
{
	int rc = commit_once(v);
	if (rc == -ENOSPC && vol_reserve_release(v))
		rc = commit_once(v);
	if (rc == 0)
		vol_reserve_make(v);
	return rc;
}

/* A write that brings the dirty bytes to the limit commits, so that memory stays bounded; one refused for
 * space commits first and is tried again. */
ssize_t fsv_write(fs_volume *v, uint64_t ino, const void *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&v->lock);
	ssize_t ret = vol_write_locked(v, ino, buf, size, off);
	/* Short of space: a commit may free some (the slots of replaced chunks); then it is refused. */
	if (ret == -ENOSPC && v->dirty_bytes && vol_commit_locked(v) == 0)
		ret = vol_write_locked(v, ino, buf, size, off);
	if (v->dirty_bytes >= v->dirty_limit) {
		int rc = vol_commit_locked(v);
		if (rc && ret >= 0)
			fs_log(LOG_ERR, "commit after %llu dirty bytes failed: %s", (unsigned long long)v->dirty_bytes,
			       strerror(-rc));
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

int fsv_commit(fs_volume *v)
{
	pthread_mutex_lock(&v->lock);
	int rc = vol_commit_locked(v);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int fsv_dirty(fs_volume *v)
{
	pthread_mutex_lock(&v->lock);
	int d = vol_changed(v) || vol_prepared(v) || v->ndead || (vol_salvageable(v) && vol_salvage_pending(v));
	pthread_mutex_unlock(&v->lock);
	return d;
}
