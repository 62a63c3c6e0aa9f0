/* meta.db: the SQLite metadata store of a volume (schema in docs/FORMAT.md). WAL, synchronous=FULL, no
 * ATTACH, one connection per volume, used under the volume's lock. Functions return 0 or -errno (-EIO
 * for SQLite errors, -EBADMSG for a page SQLite finds corrupt, -ENOSPC for a full disk, -ENOMEM);
 * fs_store_errmsg says what SQLite said. Rows come back through callbacks as raw bytes: whoever reads
 * them checks them against the integrity tree. Whatever a read returns other than 0 (and -ENOMEM) the
 * caller treats as an integrity violation of the store: it is the attacker's file. */
#ifndef FS_STORE_H
#define FS_STORE_H
#include <stddef.h>
#include <stdint.h>

#define FS_META_NAME "meta.db"

enum fs_vol_state { FS_STATE_COMMITTED = 0, FS_STATE_PREPARED = 1 };

typedef struct fs_store fs_store;

typedef struct {
	uint64_t version;
	uint8_t root[32], parent[32];
	int state;
} fs_volume_row;

typedef struct {
	uint64_t idx, cgen, slot;
	uint32_t len;
	uint8_t nonce[24], tag[16];
} fs_chunk_row;

/* The largest value the store holds (a sealed row); SQLite refuses longer strings and blobs. */
#define FS_STORE_MAX_VALUE (4 << 20)

/* Creates DIR/meta.db (must not exist), mode 0600. */
int fs_store_create(int dirfd, fs_store **out);
/* Opens DIR/meta.db. readonly: the caller promises not to write (verify opens a private copy).
 * meta.db and its -wal, -shm and -journal files must be regular files of DIR with one name each, never
 * symbolic links, and the schema must be exactly the format's: otherwise -EBADMSG, and
 * fs_store_errmsg says "tamper detected: ...". -ENOENT when meta.db is missing. */
int fs_store_open(int dirfd, int readonly, fs_store **out);
void fs_store_close(fs_store *s);
const char *fs_store_errmsg(fs_store *s);

int fs_store_begin(fs_store *s);
int fs_store_commit(fs_store *s);
void fs_store_rollback(fs_store *s);

/* -ENOENT if there is no volume row; -EBADMSG if it is malformed. */
int fs_store_get_volume(fs_store *s, fs_volume_row *out);
int fs_store_put_volume(fs_store *s, const fs_volume_row *v);
int fs_store_set_state(fs_store *s, int state);

/* Reads all n bucket digests; -EBADMSG unless exactly buckets 0..n-1 exist with 32-byte digests. */
int fs_store_get_buckets(fs_store *s, uint32_t n, uint8_t (*out)[32]);
int fs_store_put_bucket(fs_store *s, uint32_t b, const uint8_t digest[32]);

typedef int (*fs_row_cb)(void *ctx, uint64_t key, const uint8_t *k2, size_t k2len, const uint8_t *row, size_t len);
/* Inode rows of bucket b (key = ino, k2 unused). A malformed row is passed with row NULL. */
int fs_store_inodes_in_bucket(fs_store *s, uint32_t b, fs_row_cb cb, void *ctx);
/* Every inode row (key = ino, k2 = 8-byte bucket number as stored). */
int fs_store_all_inodes(fs_store *s, fs_row_cb cb, void *ctx);
int fs_store_put_inode(fs_store *s, uint64_t ino, uint32_t bucket, const uint8_t *row, size_t len);
int fs_store_del_inode(fs_store *s, uint64_t ino);

/* Entries of a directory (key = parent, k2 = name MAC). */
int fs_store_dirents_of(fs_store *s, uint64_t parent, fs_row_cb cb, void *ctx);
int fs_store_all_dirents(fs_store *s, fs_row_cb cb, void *ctx);
int fs_store_put_dirent(fs_store *s, uint64_t parent, const uint8_t mac[32], const uint8_t *row, size_t len);
int fs_store_del_dirent(fs_store *s, uint64_t parent, const uint8_t mac[32]);
/* Every entry row of a directory (the directory is gone). */
int fs_store_del_dirents_of(fs_store *s, uint64_t parent);

typedef int (*fs_chunk_cb)(void *ctx, uint64_t ino, const fs_chunk_row *c, int malformed);
/* Chunks of a file in index order. */
int fs_store_chunks_of(fs_store *s, uint64_t ino, fs_chunk_cb cb, void *ctx);
int fs_store_all_chunks(fs_store *s, fs_chunk_cb cb, void *ctx);
int fs_store_put_chunk(fs_store *s, uint64_t ino, const fs_chunk_row *c);
int fs_store_del_chunk(fs_store *s, uint64_t ino, uint64_t idx);
int fs_store_del_chunks_of(fs_store *s, uint64_t ino);
/* Pack files to remove once the anchor acknowledged version `after` (files deleted from the volume).
 * Not part of the integrity tree: whoever acts on a row first checks that the file is really gone. */
int fs_store_put_gc(fs_store *s, uint64_t ino, uint64_t gen, uint64_t after);
int fs_store_del_gc(fs_store *s, uint64_t ino, uint64_t gen);
typedef int (*fs_gc_cb)(void *ctx, uint64_t ino, uint64_t gen, uint64_t after);
int fs_store_gc_list(fs_store *s, fs_gc_cb cb, void *ctx);

/* Row counts, for information. */
int fs_store_counts(fs_store *s, uint64_t *inodes, uint64_t *chunks);
#endif
