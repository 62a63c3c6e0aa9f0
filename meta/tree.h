/* The integrity tree (docs/FORMAT.md, "Integrity tree"). All hashes are BLAKE2b-256 keyed with the tree
 * subkey and a domain byte:
 *   chunk leaf   = H(01, ino, igen, idx, cgen, slot, len, nonce, tag)   -- the tag binds the data
 *   file digest  = H(02, ino, igen, size, count, chunk leaves by index)
 *   dirent leaf  = H(03, parent, name_mac, row length, sealed row)
 *   dir digest   = H(04, ino, igen, count, dirent leaves by name_mac)
 *   inode leaf   = H(05, ino, row length, sealed row)   -- the row carries the file or dir digest
 *   bucket       = H(06, b, count, inode leaves by ino), inode ino lives in bucket ino mod B
 *   tree node    = H(07, level, index, up to 64 children)
 *   volume root  = H(08, volume id, version, top node)
 */
#ifndef FS_TREE_H
#define FS_TREE_H
#include <stddef.h>
#include <stdint.h>

#include "meta/keys.h"

#define FS_TREE_ARITY 64

void fs_leaf_chunk(uint8_t out[32], const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t idx,
		   uint64_t cgen, uint64_t slot, uint32_t len, const uint8_t nonce[24], const uint8_t tag[16]);
void fs_leaf_dirent(uint8_t out[32], const uint8_t key[32], uint64_t parent, const uint8_t name_mac[32],
		    const uint8_t *row, size_t rowlen);
void fs_leaf_inode(uint8_t out[32], const uint8_t key[32], uint64_t ino, const uint8_t *row, size_t rowlen);

/* Streaming digests over leaves given in order. */
void fs_file_digest_begin(fs_mac *m, const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t size,
			  uint64_t count);
void fs_dir_digest_begin(fs_mac *m, const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t count);
void fs_bucket_digest_begin(fs_mac *m, const uint8_t key[32], uint64_t b, uint64_t count);

void fs_volume_root(uint8_t out[32], const uint8_t key[32], const uint8_t volid[16], uint64_t version,
		    const uint8_t top[32]);

/* The fixed-arity tree over B bucket digests, kept in memory; only dirty paths are re-hashed. */
typedef struct {
	uint8_t key[32];
	uint32_t nlevels;
	uint32_t *count;      /* nodes per level; level 0 = buckets */
	uint8_t (**node)[32]; /* node[level][i] */
	uint8_t **dirty;      /* dirty[level][i] */
} fs_tree;

int fs_tree_init(fs_tree *t, const uint8_t key[32], uint32_t buckets);
void fs_tree_free(fs_tree *t);
void fs_tree_set_bucket(fs_tree *t, uint32_t b, const uint8_t digest[32]);
const uint8_t *fs_tree_bucket(const fs_tree *t, uint32_t b);
void fs_tree_top(fs_tree *t, uint8_t top[32]);
/* Name MAC of a directory entry: H(09, parent, name) under the name subkey. */
void fs_name_mac(uint8_t out[32], const uint8_t name_key[32], uint64_t parent, const char *name, size_t len);
#endif
