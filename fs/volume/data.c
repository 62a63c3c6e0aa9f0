/* File data: chunks sealed with the per-file key into slots of the file's pack file, a small write-back
 * set of dirty plaintext chunks per file, reads that verify every chunk, truncate and fallocate. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/volume/internal.h"


void vol_chunk_leaf(fs_volume *v, struct inode *ip, struct chunk *c)
{
	fs_leaf_chunk(c->leaf, v->k_tree, ip->ino, ip->r.gen, c->idx, c->cgen, c->slot, c->len, c->nonce, c->tag);
}

static int file_key(fs_volume *v, struct inode *ip)
{
	if (ip->aead)
		return 0;
	uint8_t *k = fs_key_alloc();
	if (!k)
		return -ENOMEM;
	fs_derive_file_key(k, v->k_chunk, ip->ino, ip->r.gen);
	ip->aead = fs_aead_new(v->hdr.aead_alg, k);
	fs_key_free(k);
	return ip->aead ? 0 : -ENOMEM;
}


static fs_chunk_row row_of(const struct chunk *c)
{
	fs_chunk_row r = { .idx = c->idx, .cgen = c->cgen, .slot = c->slot, .len = c->len };
	memcpy(r.nonce, c->nonce, 24);
	memcpy(r.tag, c->tag, 16);
	return r;
}

/* Reads and verifies chunk c of ip into out (chunk_size bytes; zeros past its length). */
static int read_chunk(fs_volume *v, struct inode *ip, const struct chunk *c, uint8_t *out)
{
	int rc = file_key(v, ip);
	if (rc)
		return rc;
	fs_chunk_row r = row_of(c);
	enum fs_check bad = FS_CHECK_OK;
	int err = 0;
	rc = vol_pack_open(v, ip, 0);
	if (rc)
		bad = rc == -ENOENT ? FS_CHECK_PACK_MISSING : rc == -EFTYPE_PACK ? FS_CHECK_PACK_NOT_REGULAR : FS_CHECK_PACK_OPEN;
	else if (!(bad = fs_read_chunk(ip->fd, v->hdr.chunk_size, &r, v->scratch, &err)))
		bad = fs_check_chunk(ip->aead, v->hdr.volid, ip->ino, ip->r.gen, &r, v->scratch, out);
	if (bad == FS_CHECK_CHUNK_READ) {
		char why[96];
		snprintf(why, sizeof(why), "%s (%s)", fs_check_msg(bad), strerror(err));
		return vol_violation(v, ip, (int64_t)c->idx, why);
	}
	if (bad)
		return vol_violation(v, ip, (int64_t)c->idx, fs_check_msg(bad));
	memset(out + c->len, 0, v->hdr.chunk_size - c->len);
	return 0;
}

static struct chunk *find_chunk(struct inode *ip, uint64_t idx, size_t *pos)
{
	size_t lo = 0, hi = ip->nchunks;
	/* Appends are the common case. */
	if (hi && ip->chunks[hi - 1].idx < idx) {
		*pos = hi;
		return NULL;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ip->chunks[mid].idx == idx) {
			*pos = mid;
			return &ip->chunks[mid];
		}
		if (ip->chunks[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return NULL;
}

static uint64_t alloc_slot(struct inode *ip)
{
	/* With at most FS_MAX_CHUNKS chunks, a free slot below FS_MAX_SLOT exists unless as many again
	 * wait to be retired (the caller refuses then). */
	for (uint64_t i = 0; i < ip->nslots; i++)
		if (ip->slots[i] != 0xff)
			for (int b = 0; b < 8; b++)
				if (!(ip->slots[i] & (1u << b)))
					return i * 8 + (uint64_t)b;
	return ip->nslots * 8;
}

/* The slot of a replaced or removed chunk: free now if no committed state references it, else after
 * the next commit. */
static int release_slot(fs_volume *v, struct inode *ip, struct chunk *c)
{
	if (c->fresh)
		return vol_slot_mark(ip, c->slot, 0);
	/* The next prepared version (store version + 1) is the first without this slot. */
	return VEC_PUSH(ip->retire, ip->nretire, ip->capretire, ((struct retired){ c->slot, v->version + 1 }));
}

static int remove_chunk(fs_volume *v, struct inode *ip, size_t pos)
{
	struct chunk *c = &ip->chunks[pos];
	int rc = release_slot(v, ip, c);
	if (!rc)
		rc = VEC_PUSH(ip->rm_idx, ip->nrm, ip->caprm, c->idx);
	if (rc)
		return rc;
	memmove(c, c + 1, (ip->nchunks - pos - 1) * sizeof(*c));
	ip->nchunks--;
	return 0;
}

/* A file whose key has made as many chunk seals as its cipher allows with random nonces (docs/FORMAT.md
 * section 5; wseq counts them) takes no more writes: its key is fixed by (ino, igen), so a new key means
 * a new file. Logged once per file, so a program that retries does not flood the log. */
static int seals_exhausted(fs_volume *v, struct inode *ip)
{
	if (!ip->seals_logged) {
		char path[4096];
		vol_path(v, ip, path, sizeof(path));
		fs_log(LOG_ERR,
		       "%s: writes refused: its key has sealed %llu chunks, the most one %s key may seal with random "
		       "nonces; copy the file to a new one (a new file gets a new key) and replace it",
		       path, (unsigned long long)ip->r.wseq, fs_aead_alg_name(v->hdr.aead_alg));
		ip->seals_logged = 1;
	}
	return -EFBIG;
}

/* Seals one dirty chunk into a free slot and points the chunk map at it. */
static int seal_chunk(fs_volume *v, struct inode *ip, struct dirty_chunk *d)
{
	size_t pos;
	struct chunk *old = find_chunk(ip, d->idx, &pos);
	if (d->len == 0)
		return old ? remove_chunk(v, ip, pos) : 0;
	int rc = file_key(v, ip);
	if (!rc)
		rc = vol_pack_open(v, ip, 1);
	if (rc == -EFTYPE_PACK) /* a link or special file planted where the data goes: tamper, never followed */
		return vol_violation(v, ip, (int64_t)d->idx, fs_check_msg(FS_CHECK_PACK_NOT_REGULAR));
	if (rc)
		return rc;
	if (ip->r.wseq >= v->seal_limit)
		return seals_exhausted(v, ip); /* get_dirty refuses first; never seal past the bound */
	struct chunk c;
	memset(&c, 0, sizeof(c));
	c.idx = d->idx;
	c.cgen = ++ip->r.wseq;
	c.len = d->len;
	c.slot = alloc_slot(ip);
	if (c.slot >= FS_MAX_SLOT)
		return -ENOSPC; /* only with very many replaced chunks waiting for an unreachable anchor */
	c.fresh = c.dirty = 1;
	fs_aead_random_nonce(c.nonce);
	uint8_t ad[56];
	fs_chunk_ad(v->hdr.volid, ip->ino, ip->r.gen, c.idx, c.cgen, c.len, ad);
	if (fs_aead_seal(ip->aead, c.nonce, ad, sizeof(ad), d->buf, d->len, v->scratch, c.tag) != 0)
		return -EIO;
	uint32_t cs = v->hdr.chunk_size;
	size_t done = 0;
	while (done < c.len) {
		ssize_t n = pwrite(ip->fd, v->scratch + done, c.len - done, (off_t)(c.slot * cs + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	if ((rc = vol_slot_mark(ip, c.slot, 1)) != 0)
		return rc;
	ip->fd_unsynced = 1;
	vol_chunk_leaf(v, ip, &c);
	if (old) {
		if ((rc = release_slot(v, ip, old)) != 0)
			return rc;
		*old = c;
	} else {
		if ((rc = VEC_PUSH(ip->chunks, ip->nchunks, ip->capchunks, c)) != 0)
			return rc;
		memmove(&ip->chunks[pos + 1], &ip->chunks[pos], (ip->nchunks - 1 - pos) * sizeof(c));
		ip->chunks[pos] = c;
	}
	if (ip->rcache_valid && ip->rcache_idx == d->idx)
		ip->rcache_valid = 0;
	vol_mark_dirty(v, ip);
	return 0;
}

/* Seals and writes every dirty chunk of the file (not yet durable: the commit syncs). */
int vol_flush_file(fs_volume *v, struct inode *ip)
{
	int rc = 0;
	size_t i;
	for (i = 0; i < ip->ndc && !rc; i++)
		rc = seal_chunk(v, ip, &ip->dc[i]);
	/* Keep what failed (and everything after it) so nothing is lost. */
	size_t keep_from = rc ? i - 1 : ip->ndc;
	for (size_t j = 0; j < keep_from; j++)
		free(ip->dc[j].buf);
	v->mem_chunks -= keep_from;
	memmove(ip->dc, ip->dc + keep_from, (ip->ndc - keep_from) * sizeof(ip->dc[0]));
	ip->ndc -= keep_from;
	return rc;
}

static struct dirty_chunk *find_dirty(struct inode *ip, uint64_t idx)
{
	for (size_t i = 0; i < ip->ndc; i++)
		if (ip->dc[i].idx == idx)
			return &ip->dc[i];
	return NULL;
}

/* The dirty chunk for idx, made from the chunk's current content if needed. A new one for a write must fit
 * in the backing store (check_space); one that truncates or punches a chunk is let into the store's
 * last room, since that change frees more than it takes. */
static int get_dirty(fs_volume *v, struct inode *ip, uint64_t idx, int need_old, int check_space,
		     struct dirty_chunk **out)
{
	struct dirty_chunk *d = find_dirty(ip, idx);
	if (d) {
		*out = d;
		return 0;
	}
	if (ip->ndc == FS_MAX_DIRTY_CHUNKS) {
		int rc = vol_flush_file(v, ip);
		if (rc)
			return rc;
	}
	/* Each dirty chunk is sealed at most once: refuse the one that could pass the bound, before any of
	 * the file changes, rather than fail later in a flush or a commit. */
	if (ip->r.wseq + ip->ndc >= v->seal_limit)
		return seals_exhausted(v, ip);
	/* Room that fallocate took for this file is used first, and needs no new room. */
	int rc = 0;
	if (check_space && ip->reserved)
		ip->reserved--;
	else if (check_space)
		rc = vol_space_for(v, 1);
	if (rc)
		return rc;
	uint32_t cs = v->hdr.chunk_size;
	uint8_t *buf = malloc(cs);
	if (!buf)
		return -ENOMEM;
	size_t pos;
	struct chunk *c = find_chunk(ip, idx, &pos);
	uint32_t len = 0;
	if (c) {
		len = c->len;
		if (need_old) {
			if (ip->rcache_valid && ip->rcache_idx == idx)
				memcpy(buf, ip->rcache, cs);
			else if ((rc = read_chunk(v, ip, c, buf)) != 0) {
				free(buf);
				return rc;
			}
		}
	}
	if (!c || !need_old)
		memset(buf, 0, cs);
	d = &ip->dc[ip->ndc++];
	v->mem_chunks++;
	d->idx = idx;
	d->len = len;
	d->buf = buf;
	*out = d;
	return 0;
}

/* The part of the byte range [pos, pos + left) that lies in one chunk: its index, the offset in it, and
 * (returned) its length. */
static size_t span_at(uint32_t cs, uint64_t pos, size_t left, uint64_t *idx, uint32_t *in)
{
	*idx = pos / cs;
	*in = (uint32_t)(pos % cs);
	return cs - *in < left ? cs - *in : left;
}

/* The regular file ino, to be changed: NULL with *err set when it cannot be (-EROFS on a read-only or
 * failed volume, -EISDIR for a directory, notreg for anything else not a regular file). */
static struct inode *writable_file(fs_volume *v, uint64_t ino, int notreg, int *err)
{
	struct inode *ip = vol_iget(v, ino, err);
	if (!ip)
		return NULL;
	if ((*err = vol_writable(v)) != 0)
		return NULL;
	if (!S_ISREG(ip->r.mode)) {
		*err = S_ISDIR(ip->r.mode) ? -EISDIR : notreg;
		return NULL;
	}
	return ip;
}

/* The data path of fsv_write (commit.c), under the volume lock; when to commit is not its concern. */
ssize_t vol_write_locked(fs_volume *v, uint64_t ino, const void *buf, size_t size, uint64_t off)
{
	int err = 0;
	ssize_t ret;
	struct inode *ip = writable_file(v, ino, -EINVAL, &err);
	if (!ip) {
		ret = err;
		goto out;
	}
	if (off > FS_MAX_FILE_SIZE_FOR(v->hdr.chunk_size) || size > FS_MAX_FILE_SIZE_FOR(v->hdr.chunk_size) - off) {
		ret = -EFBIG;
		goto out;
	}
	if ((ret = vol_load_content(v, ip)) != 0)
		goto out;
	uint32_t cs = v->hdr.chunk_size;
	size_t done = 0;
	while (done < size) {
		uint64_t idx;
		uint32_t in;
		size_t n = span_at(cs, off + done, size - done, &idx, &in);
		struct dirty_chunk *d;
		/* A write that covers the chunk's existing bytes entirely needs no read of them. */
		size_t cpos;
		struct chunk *c = find_chunk(ip, idx, &cpos);
		struct dirty_chunk *dd = find_dirty(ip, idx);
		uint32_t cur = dd ? dd->len : c ? c->len : 0;
		int need_old = !(in == 0 && n >= cur);
		if ((ret = get_dirty(v, ip, idx, need_old, 1, &d)) != 0)
			break;
		memcpy(d->buf + in, (const uint8_t *)buf + done, n);
		if (in + n > d->len)
			d->len = (uint32_t)(in + n);
		done += n;
		if (ip->rcache_valid && ip->rcache_idx == idx)
			ip->rcache_valid = 0;
	}
	if (done) {
		v->dirty_bytes += done; /* written, sealed or not, until the next commit */
		if (off + done > ip->r.size)
			ip->r.size = off + done;
		vol_touch(v, ip, VOL_MTIME | VOL_CTIME);
		ret = (ssize_t)done;
	}
out:
	return ret;
}

ssize_t fsv_read(fs_volume *v, uint64_t ino, void *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&v->lock);
	int err = 0;
	ssize_t ret = 0;
	struct inode *ip = vol_iget(v, ino, &err);
	if (!ip) {
		ret = err;
		goto out;
	}
	if (!S_ISREG(ip->r.mode)) {
		ret = S_ISDIR(ip->r.mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((ret = vol_load_content(v, ip)) != 0)
		goto out;
	if (off >= ip->r.size)
		goto out;
	if (size > ip->r.size - off)
		size = (size_t)(ip->r.size - off);
	uint32_t cs = v->hdr.chunk_size;
	size_t done = 0;
	while (done < size) {
		uint64_t idx;
		uint32_t in;
		size_t n = span_at(cs, off + done, size - done, &idx, &in);
		uint8_t *dst = (uint8_t *)buf + done;
		struct dirty_chunk *d = find_dirty(ip, idx);
		size_t cpos;
		struct chunk *c;
		if (d) {
			memcpy(dst, d->buf + in, n);
		} else if ((c = find_chunk(ip, idx, &cpos)) != NULL) {
			if (!(ip->rcache_valid && ip->rcache_idx == idx)) {
				if (!ip->rcache && !(ip->rcache = malloc(cs))) {
					ret = -ENOMEM;
					goto out;
				}
				ip->rcache_valid = 0;
				if ((ret = read_chunk(v, ip, c, ip->rcache)) != 0)
					goto out;
				ip->rcache_idx = idx;
				ip->rcache_valid = 1;
			}
			memcpy(dst, ip->rcache + in, n);
		} else {
			memset(dst, 0, n); /* a hole: no chunk, as the verified chunk map says */
		}
		done += n;
	}
	ret = (ssize_t)done;
out:
	pthread_mutex_unlock(&v->lock);
	return ret;
}

/* Removes chunks wholly in [from, to) chunk indexes, dirty or sealed. */
static int drop_chunks(fs_volume *v, struct inode *ip, uint64_t from, uint64_t to)
{
	for (size_t i = 0; i < ip->ndc;) {
		if (ip->dc[i].idx >= from && ip->dc[i].idx < to) {
			free(ip->dc[i].buf);
			ip->dc[i] = ip->dc[--ip->ndc];
			v->mem_chunks--;
		} else {
			i++;
		}
	}
	size_t pos;
	find_chunk(ip, from, &pos);
	while (pos < ip->nchunks && ip->chunks[pos].idx < to) {
		int rc = remove_chunk(v, ip, pos);
		if (rc)
			return rc;
	}
	ip->rcache_valid = 0;
	return 0;
}

/* Zeroes [a, b) inside chunk idx (in-chunk offsets); shortens its length when the zeros reach its end. */
static int zero_in_chunk(fs_volume *v, struct inode *ip, uint64_t idx, uint32_t a, uint32_t b)
{
	size_t pos;
	struct chunk *c = find_chunk(ip, idx, &pos);
	struct dirty_chunk *d = find_dirty(ip, idx);
	if (!c && !d)
		return 0;
	int rc = get_dirty(v, ip, idx, 1, 0, &d);
	if (rc)
		return rc;
	if (a < d->len) {
		uint32_t end = b < d->len ? b : d->len;
		memset(d->buf + a, 0, end - a);
		if (end == d->len)
			d->len = a;
	}
	ip->rcache_valid = 0;
	return 0;
}

int vol_truncate(fs_volume *v, struct inode *ip, uint64_t size)
{
	if (size > FS_MAX_FILE_SIZE_FOR(v->hdr.chunk_size))
		return -EFBIG;
	int rc = vol_load_content(v, ip);
	if (rc)
		return rc;
	uint32_t cs = v->hdr.chunk_size;
	if (size < ip->r.size) {
		uint64_t keep = (size + cs - 1) / cs; /* chunks [0, keep) may hold data */
		if ((rc = drop_chunks(v, ip, keep, UINT64_MAX)) != 0)
			return rc;
		if (size % cs && (rc = zero_in_chunk(v, ip, size / cs, (uint32_t)(size % cs), cs)) != 0)
			return rc;
	}
	ip->r.size = size;
	vol_touch(v, ip, VOL_MTIME | VOL_CTIME);
	return 0;
}

/* fallocate's allocation, chunk by chunk as a local file system does it block by block: every chunk the
 * range touches is allocated, also where the range covers only part of it. inside: chunks up to the size
 * that hold no data or less than they could (holes, a short last chunk); beyond: chunks past the size
 * (FALLOC_FL_KEEP_SIZE), which the format does not let hold data. */
static void count_unallocated(fs_volume *v, struct inode *ip, uint64_t off, uint64_t end, uint64_t size,
			      uint64_t *inside, uint64_t *beyond)
{
	uint32_t cs = v->hdr.chunk_size;
	uint64_t in_chunks = (size + cs - 1) / cs;
	for (uint64_t idx = off / cs; idx * cs < end; idx++) {
		if (idx >= in_chunks) {
			*beyond += (end - idx * cs + cs - 1) / cs;
			return;
		}
		size_t pos;
		struct chunk *c = find_chunk(ip, idx, &pos);
		struct dirty_chunk *d = find_dirty(ip, idx);
		uint64_t could = size - idx * cs < cs ? size - idx * cs : cs;
		if ((d ? d->len : c ? c->len : 0) < could)
			(*inside)++;
	}
}

/* Allocates the chunks [off, stop) touches, stop at most the size: a hole becomes a chunk of zeros and a
 * short chunk is extended with zeros, sealed and written like any data (so the space is taken now and
 * st_blocks counts it); reads see the zeros they saw before. */
static int allocate_range(fs_volume *v, struct inode *ip, uint64_t off, uint64_t stop)
{
	uint32_t cs = v->hdr.chunk_size;
	for (uint64_t idx = off / cs; idx * cs < stop; idx++) {
		size_t pos;
		struct chunk *c = find_chunk(ip, idx, &pos);
		struct dirty_chunk *d = find_dirty(ip, idx);
		uint64_t could = ip->r.size - idx * cs < cs ? ip->r.size - idx * cs : cs;
		uint32_t have = d ? d->len : c ? c->len : 0;
		if (have >= could)
			continue;
		int rc = get_dirty(v, ip, idx, have > 0, 0, &d);
		if (rc)
			return rc;
		if (ip->rcache_valid && ip->rcache_idx == idx)
			ip->rcache_valid = 0;
		v->dirty_bytes += could - d->len;
		d->len = (uint32_t)could; /* the bytes past the old length are zero (get_dirty) */
		vol_mark_dirty(v, ip);
	}
	return 0;
}

/* Takes the room for n chunks in the backing store past the end of the pack file, where the next slots go
 * (a slot freed below them may be taken first). */
static int reserve_past_end(fs_volume *v, struct inode *ip, uint64_t n)
{
	int rc = vol_pack_open(v, ip, 1);
	if (rc)
		return rc;
	struct stat st;
	if (fstat(ip->fd, &st) != 0)
		return -errno;
	uint64_t cs = v->hdr.chunk_size, from = (uint64_t)st.st_size > ip->nslots * 8 * cs ? (uint64_t)st.st_size : ip->nslots * 8 * cs;
	if (fallocate(ip->fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(n * cs)) != 0)
		return errno == EOPNOTSUPP ? 0 : -errno; /* a backing file system without it: checked, not held */
	ip->reserved += n;
	return 0;
}

int fsv_fallocate(fs_volume *v, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&v->lock);
	int err = 0, rc;
	struct inode *ip = writable_file(v, ino, -ENODEV, &err);
	if (!ip) {
		rc = err;
		goto out;
	}
	if (len == 0 || off > FS_MAX_FILE_SIZE_FOR(v->hdr.chunk_size) || len > FS_MAX_FILE_SIZE_FOR(v->hdr.chunk_size) - off) {
		rc = len == 0 ? -EINVAL : -EFBIG;
		goto out;
	}
	if ((rc = vol_load_content(v, ip)) != 0)
		goto out;
	uint64_t end = off + len;
	uint32_t cs = v->hdr.chunk_size;
	if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
		uint64_t size = mode == 0 && end > ip->r.size ? end : ip->r.size;
		uint64_t inside = 0, beyond = 0;
		count_unallocated(v, ip, off, end, size, &inside, &beyond);
		if (inside + beyond && (rc = vol_space_for(v, 2 * inside + beyond)) != 0)
			goto out; /* nothing changed */
		if (size != ip->r.size) {
			ip->r.size = size;
			vol_touch(v, ip, VOL_CTIME);
		}
		/* Sealed and written now, not at the commit: the space is taken when fallocate returns. */
		if ((rc = allocate_range(v, ip, off, end < size ? end : size)) == 0 && inside)
			rc = vol_flush_file(v, ip);
		/* And room for as many chunks again past the pack file's end: a later write into the range seals
		 * its chunk into a new slot (the old one is freed by the commit after), and past the size no
		 * chunk can be kept at all. */
		if (!rc && inside + beyond)
			rc = reserve_past_end(v, ip, inside + beyond);
	} else if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		if (end > ip->r.size)
			end = ip->r.size;
		if (off < end) {
			uint64_t first = (off + cs - 1) / cs, last = end / cs; /* whole chunks [first, last) */
			if (first < last && (rc = drop_chunks(v, ip, first, last)) != 0)
				goto out;
			uint64_t head = off / cs, tail = end / cs;
			if (off % cs) {
				uint64_t stop = end - head * cs < cs ? end - head * cs : cs;
				rc = zero_in_chunk(v, ip, head, (uint32_t)(off % cs), (uint32_t)stop);
			}
			if (!rc && end % cs && (off % cs == 0 || tail != head))
				rc = zero_in_chunk(v, ip, tail, 0, (uint32_t)(end % cs));
			if (!rc)
				vol_touch(v, ip, VOL_MTIME | VOL_CTIME);
		}
	} else {
		rc = -EOPNOTSUPP;
	}
out:
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/* Forgets a file's unsaved data and closes its pack file (the inode is going away). */
