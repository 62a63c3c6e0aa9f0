/* Checks of stored rows and chunks (meta/check.h): every rule of a well-formed, authentic row or chunk
 * and every digest comparison, with the one table of finding texts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "meta/check.h"
#include "meta/common/status.h"
#include "meta/keys.h"
#include "meta/tree.h"

static const struct {
	const char *kind; /* as verify lists it */
	int status;
	const char *msg;
} findings[FS_CHECK_COUNT] = {
	[FS_CHECK_OK] = { "ok", FS_OK, "ok" },
	[FS_CHECK_INODE_MALFORMED] = { "metadata", FS_ST_TAMPER, "inode row is malformed" },
	[FS_CHECK_INODE_AUTH] = { "metadata", FS_ST_TAMPER, "inode row fails authentication" },
	[FS_CHECK_INODE_BUCKET] = { "metadata", FS_ST_TAMPER, "inode row is filed in the wrong bucket" },
	[FS_CHECK_BUCKET] = { "metadata", FS_ST_TAMPER,
			      "inode rows do not match the committed tree (a row changed, deleted, added or replayed)" },
	[FS_CHECK_BUCKET_EMPTY] = { "metadata", FS_ST_TAMPER, "inode rows missing (deleted files or directories)" },
	[FS_CHECK_DIRENT_MALFORMED] = { "metadata", FS_ST_TAMPER, "directory entry row is malformed" },
	[FS_CHECK_DIRENT_AUTH] = { "metadata", FS_ST_TAMPER, "directory entry row fails authentication" },
	[FS_CHECK_DIRENT_NAME] = { "metadata", FS_ST_TAMPER, "directory entry is filed under another name" },
	[FS_CHECK_DIRENT_ORDER] = { "metadata", FS_ST_TAMPER, "directory entries out of order" },
	[FS_CHECK_DIR] = { "metadata", FS_ST_TAMPER,
			   "directory entries do not match the committed tree (an entry changed, deleted, added, "
			   "renamed or replayed)" },
	[FS_CHECK_DIR_EMPTY] = { "metadata", FS_ST_TAMPER, "directory entries missing (deleted from the store)" },
	[FS_CHECK_CHUNK_ROW] = { "metadata", FS_ST_TAMPER, "malformed chunk row" },
	[FS_CHECK_FILE] = { "metadata", FS_ST_TAMPER,
			    "chunk map does not match the committed tree (a chunk row changed, deleted, added or "
			    "replayed)" },
	[FS_CHECK_FILE_EMPTY] = { "metadata", FS_ST_TAMPER, "chunk rows missing (deleted from the store)" },
	[FS_CHECK_PACK_MISSING] = { "missing", FS_ST_TAMPER, "chunk data missing (pack file deleted)" },
	[FS_CHECK_PACK_NOT_REGULAR] = { "missing", FS_ST_TAMPER, "chunk data replaced by something not a regular file" },
	[FS_CHECK_PACK_OPEN] = { "missing", FS_ST_TAMPER, "chunk data cannot be opened" },
	[FS_CHECK_CHUNK_READ] = { "io", FS_ST_IO, "chunk data cannot be read" },
	[FS_CHECK_CHUNK_TRUNCATED] = { "truncated", FS_ST_TAMPER, "chunk data truncated" },
	[FS_CHECK_CHUNK_AUTH] = { "modified", FS_ST_TAMPER,
				  "chunk fails authentication (changed, zeroed, swapped or replayed data)" },
	[FS_CHECK_NOMEM] = { "io", FS_ST_IO, "out of memory" },
};

static int known(enum fs_check c)
{
	return (unsigned)c < FS_CHECK_COUNT;
}

const char *fs_check_msg(enum fs_check c)
{
	return known(c) ? findings[c].msg : "unknown finding";
}

const char *fs_check_kind(enum fs_check c)
{
	return known(c) ? findings[c].kind : "io";
}

int fs_check_status(enum fs_check c)
{
	return known(c) ? findings[c].status : FS_ST_IO;
}

enum fs_check fs_check_inode(const fs_check_keys *k, uint64_t ino, uint64_t bucket, const uint8_t *row,
			     size_t len, fs_inode_rec *r, uint8_t leaf[32])
{
	memset(r, 0, sizeof(*r));
	if (!row)
		return FS_CHECK_INODE_MALFORMED;
	fs_leaf_inode(leaf, k->k_tree, ino, row, len);
	uint8_t key[8];
	size_t ptlen;
	fs_inode_key(key, ino);
	uint8_t *pt = fs_row_open(k->row_aead, k->volid, FS_ROW_INODE, key, sizeof(key), row, len, &ptlen);
	if (!pt)
		return FS_CHECK_INODE_AUTH;
	enum fs_check rc = FS_CHECK_OK;
	if (fs_inode_decode(pt, ptlen, r) != 0 || r->ino != ino || ino == 0)
		rc = FS_CHECK_INODE_MALFORMED;
	else if (bucket != (ino & (k->buckets - 1)))
		rc = FS_CHECK_INODE_BUCKET;
	free(pt);
	if (rc) {
		fs_inode_rec_free(r);
		memset(r, 0, sizeof(*r));
	}
	return rc;
}

enum fs_check fs_check_dirent(const fs_check_keys *k, uint64_t parent, const uint8_t *mac, size_t maclen,
			      const uint8_t *prev, const uint8_t *row, size_t len, fs_dirent_rec *rec,
			      uint8_t leaf[32])
{
	if (!row || maclen != 32)
		return FS_CHECK_DIRENT_MALFORMED;
	uint8_t key[40], want[32];
	size_t ptlen;
	fs_dirent_key(key, parent, mac);
	uint8_t *pt = fs_row_open(k->row_aead, k->volid, FS_ROW_DIRENT, key, sizeof(key), row, len, &ptlen);
	if (!pt)
		return FS_CHECK_DIRENT_AUTH;
	int bad = fs_dirent_decode(pt, ptlen, rec) != 0;
	free(pt);
	if (bad)
		return FS_CHECK_DIRENT_MALFORMED;
	fs_name_mac(want, k->k_name, parent, rec->name, rec->name_len);
	if (!fs_ct_eq(want, mac, 32))
		return FS_CHECK_DIRENT_NAME;
	if (prev && memcmp(prev, mac, 32) >= 0)
		return FS_CHECK_DIRENT_ORDER;
	fs_leaf_dirent(leaf, k->k_tree, parent, mac, row, len);
	return FS_CHECK_OK;
}

enum fs_check fs_check_chunk_row(const fs_check_keys *k, uint64_t ino, const fs_inode_rec *r,
				 const fs_chunk_row *c, int malformed, uint8_t leaf[32])
{
	uint32_t cs = k->chunk_size;
	if (malformed || c->len == 0 || c->len > cs || c->idx >= (r->size + cs - 1) / cs || c->slot >= FS_MAX_SLOT)
		return FS_CHECK_CHUNK_ROW;
	fs_leaf_chunk(leaf, k->k_tree, ino, r->gen, c->idx, c->cgen, c->slot, c->len, c->nonce, c->tag);
	return FS_CHECK_OK;
}

void fs_chunk_ad(const uint8_t *volid, uint64_t ino, uint64_t igen, uint64_t idx, uint64_t cgen, uint32_t len,
		 uint8_t ad[56])
{
	memcpy(ad, volid, FS_VOLID_BYTES);
	fs_put_le64(ad + 16, ino);
	fs_put_le64(ad + 24, igen);
	fs_put_le64(ad + 32, idx);
	fs_put_le64(ad + 40, cgen);
	fs_put_le64(ad + 48, len);
}

enum fs_check fs_read_chunk(int fd, uint32_t chunk_size, const fs_chunk_row *c, uint8_t *ct, int *err)
{
	off_t base = (off_t)(c->slot * chunk_size);
	size_t got = 0;
	while (got < c->len) {
		ssize_t n = pread(fd, ct + got, c->len - got, base + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = errno;
			return FS_CHECK_CHUNK_READ;
		}
		if (n == 0) /* end of file: a short read alone proves nothing */
			return FS_CHECK_CHUNK_TRUNCATED;
		got += (size_t)n;
	}
	return FS_CHECK_OK;
}

enum fs_check fs_check_chunk(fs_aead *file_aead, const uint8_t *volid, uint64_t ino, uint64_t igen,
			     const fs_chunk_row *c, const uint8_t *ct, uint8_t *pt)
{
	uint8_t ad[56];
	fs_chunk_ad(volid, ino, igen, c->idx, c->cgen, c->len, ad);
	if (fs_aead_open(file_aead, c->nonce, ad, sizeof(ad), ct, c->len, c->tag, pt) != 0)
		return FS_CHECK_CHUNK_AUTH;
	return FS_CHECK_OK;
}

static void add_leaves(fs_mac *m, fs_leaves l)
{
	for (size_t i = 0; i < l.n; i++)
		fs_mac_update(m, l.first + i * l.stride, 32);
}

void fs_file_digest(uint8_t out[32], const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t size,
		    fs_leaves l)
{
	fs_mac m;
	fs_file_digest_begin(&m, key, ino, igen, size, l.n);
	add_leaves(&m, l);
	fs_mac_final(&m, out);
}

void fs_dir_digest(uint8_t out[32], const uint8_t key[32], uint64_t ino, uint64_t igen, fs_leaves l)
{
	fs_mac m;
	fs_dir_digest_begin(&m, key, ino, igen, l.n);
	add_leaves(&m, l);
	fs_mac_final(&m, out);
}

void fs_bucket_digest(uint8_t out[32], const uint8_t key[32], uint32_t b, uint64_t count, fs_leaf_next next,
		      void *ctx)
{
	fs_mac m;
	fs_bucket_digest_begin(&m, key, b, count);
	for (const uint8_t *leaf; count && (leaf = next(ctx)) != NULL; count--)
		fs_mac_update(&m, leaf, 32);
	fs_mac_final(&m, out);
}

enum fs_check fs_check_file(const uint8_t key[32], const fs_inode_rec *r, fs_leaves l)
{
	uint8_t d[32];
	fs_file_digest(d, key, r->ino, r->gen, r->size, l);
	if (l.n == r->count && fs_ct_eq(d, r->content, 32))
		return FS_CHECK_OK;
	return l.n ? FS_CHECK_FILE : FS_CHECK_FILE_EMPTY;
}

enum fs_check fs_check_dir(const uint8_t key[32], const fs_inode_rec *r, fs_leaves l)
{
	uint8_t d[32];
	fs_dir_digest(d, key, r->ino, r->gen, l);
	if (l.n == r->count && fs_ct_eq(d, r->content, 32))
		return FS_CHECK_OK;
	return l.n ? FS_CHECK_DIR : FS_CHECK_DIR_EMPTY;
}

enum fs_check fs_check_bucket(const uint8_t key[32], uint32_t b, uint64_t count, fs_leaf_next next, void *ctx,
			      const uint8_t want[32])
{
	uint8_t d[32];
	fs_bucket_digest(d, key, b, count, next, ctx);
	if (fs_ct_eq(d, want, 32))
		return FS_CHECK_OK;
	return count ? FS_CHECK_BUCKET : FS_CHECK_BUCKET_EMPTY;
}
