/* The checks of stored rows and chunks against the keys and the integrity tree, one function per thing
 * checked. The daemon's read paths and the offline verify both call these, so a rule and its finding
 * exist once. Checkers return a finding code, never print; fs_check_msg gives its text. */
#ifndef FS_META_CHECK_H
#define FS_META_CHECK_H
#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"
#include "meta/rows.h"
#include "meta/store.h"

/* A file has at most 2^27 chunks (512 GiB at 4 KiB chunks, 8 TiB at 64 KiB), so its pack file never
 * needs a slot number of 2^28 or more: the slot bitmap stays below 32 MiB, and a larger slot in a row is
 * malformed whatever its MAC says. */
#define FS_MAX_CHUNKS ((uint64_t)1 << 27)
#define FS_MAX_SLOT ((uint64_t)1 << 28)

enum fs_check {
	FS_CHECK_OK = 0,
	FS_CHECK_INODE_MALFORMED,
	FS_CHECK_INODE_AUTH,
	FS_CHECK_INODE_BUCKET,
	FS_CHECK_BUCKET,
	FS_CHECK_BUCKET_EMPTY,
	FS_CHECK_DIRENT_MALFORMED,
	FS_CHECK_DIRENT_AUTH,
	FS_CHECK_DIRENT_NAME,
	FS_CHECK_DIRENT_ORDER,
	FS_CHECK_DIR,
	FS_CHECK_DIR_EMPTY,
	FS_CHECK_CHUNK_ROW,
	FS_CHECK_FILE,
	FS_CHECK_FILE_EMPTY,
	FS_CHECK_PACK_MISSING,
	FS_CHECK_PACK_NOT_REGULAR,
	FS_CHECK_PACK_OPEN,
	FS_CHECK_CHUNK_READ,
	FS_CHECK_CHUNK_TRUNCATED,
	FS_CHECK_CHUNK_AUTH,
	FS_CHECK_NOMEM,
	FS_CHECK_COUNT
};

/* How a finding is written, by the daemon's log and by verify alike (format strings, so the compiler
 * checks every use): a chunk (path, chunk, first byte, last byte, what), anything else (path, what), and a
 * volume older than its anchor (volume version, trusted version). */
#define FS_MSG_CHUNK_VIOLATION "integrity violation: %s chunk %lld (bytes %llu-%llu): %s"
#define FS_MSG_VIOLATION "integrity violation: %s: %s"
#define FS_MSG_ROLLBACK "rollback detected: volume version %llu < trusted version %llu"

/* The finding's text, and its kind and status as verify lists it. */
const char *fs_check_msg(enum fs_check c);
const char *fs_check_kind(enum fs_check c);
int fs_check_status(enum fs_check c);

/* What the checks need of a volume. */
typedef struct {
	fs_aead *row_aead;
	const uint8_t *volid; /* FS_VOLID_BYTES */
	const uint8_t *k_tree, *k_name;
	uint32_t buckets, chunk_size;
} fs_check_keys;

/* Leaves in order: n of them, 32 bytes each, stride bytes apart (a field of an array of records). */
typedef struct {
	const uint8_t *first;
	size_t stride, n;
} fs_leaves;
#define FS_LEAVES(arr, count, field) \
	((fs_leaves){ (count) ? (const uint8_t *)(arr)[0].field : NULL, sizeof((arr)[0]), (count) })

/* Bucket leaves come from a list: next returns each in ino order, then NULL. */
typedef const uint8_t *(*fs_leaf_next)(void *ctx);

/* Inode row of ino as stored in bucket (row NULL: the store found it malformed). On FS_CHECK_OK, r holds
 * the decoded record (free with fs_inode_rec_free). leaf is set whenever row is not NULL. */
enum fs_check fs_check_inode(const fs_check_keys *k, uint64_t ino, uint64_t bucket, const uint8_t *row,
			     size_t len, fs_inode_rec *r, uint8_t leaf[32]);
/* Entry row filed under (parent, mac); prev is the entry before it in the directory, or NULL. On
 * FS_CHECK_OK, rec and leaf are set. */
enum fs_check fs_check_dirent(const fs_check_keys *k, uint64_t parent, const uint8_t *mac, size_t maclen,
			      const uint8_t *prev, const uint8_t *row, size_t len, fs_dirent_rec *rec,
			      uint8_t leaf[32]);
/* Chunk row of file (ino, r); on FS_CHECK_OK, leaf is set. */
enum fs_check fs_check_chunk_row(const fs_check_keys *k, uint64_t ino, const fs_inode_rec *r,
				 const fs_chunk_row *c, int malformed, uint8_t leaf[32]);

/* AEAD associated data of a chunk: volume id, ino, inode generation, index, chunk generation, length. */
void fs_chunk_ad(const uint8_t *volid, uint64_t ino, uint64_t igen, uint64_t idx, uint64_t cgen, uint32_t len,
		 uint8_t ad[56]);
/* Reads chunk c's c->len sealed bytes from its slot of the pack file, whatever interrupts or short reads
 * it takes; FS_CHECK_CHUNK_TRUNCATED only when the file ends before them, FS_CHECK_CHUNK_READ (with *err
 * set to the errno) when reading fails. */
enum fs_check fs_read_chunk(int fd, uint32_t chunk_size, const fs_chunk_row *c, uint8_t *ct, int *err);
/* Opens the sealed chunk ct of file (ino, igen) with the file's key into pt. */
enum fs_check fs_check_chunk(fs_aead *file_aead, const uint8_t *volid, uint64_t ino, uint64_t igen,
			     const fs_chunk_row *c, const uint8_t *ct, uint8_t *pt);

/* Digests over leaves, and their checks against what the inode row or the tree holds. */
void fs_file_digest(uint8_t out[32], const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t size,
		    fs_leaves l);
void fs_dir_digest(uint8_t out[32], const uint8_t key[32], uint64_t ino, uint64_t igen, fs_leaves l);
void fs_bucket_digest(uint8_t out[32], const uint8_t key[32], uint32_t b, uint64_t count, fs_leaf_next next,
		      void *ctx);
/* FS_CHECK_OK, or FS_CHECK_FILE (FS_CHECK_FILE_EMPTY when there are no chunk rows at all). */
enum fs_check fs_check_file(const uint8_t key[32], const fs_inode_rec *r, fs_leaves l);
/* FS_CHECK_OK, or FS_CHECK_DIR (FS_CHECK_DIR_EMPTY when there are no entry rows at all). */
enum fs_check fs_check_dir(const uint8_t key[32], const fs_inode_rec *r, fs_leaves l);
/* FS_CHECK_OK, or FS_CHECK_BUCKET (FS_CHECK_BUCKET_EMPTY when the bucket has no rows at all). */
enum fs_check fs_check_bucket(const uint8_t key[32], uint32_t b, uint64_t count, fs_leaf_next next, void *ctx,
			      const uint8_t want[32]);
#endif
