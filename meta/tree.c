#include "meta/tree.h"

#include <stdlib.h>
#include <string.h>

void fs_leaf_chunk(uint8_t out[32], const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t idx,
		   uint64_t cgen, uint64_t slot, uint32_t len, const uint8_t nonce[24], const uint8_t tag[16])
{
	fs_mac m;
	fs_mac_init(&m, key, FS_DOM_CHUNK_LEAF);
	fs_mac_u64(&m, ino);
	fs_mac_u64(&m, igen);
	fs_mac_u64(&m, idx);
	fs_mac_u64(&m, cgen);
	fs_mac_u64(&m, slot);
	fs_mac_u64(&m, len);
	fs_mac_update(&m, nonce, 24);
	fs_mac_update(&m, tag, 16);
	fs_mac_final(&m, out);
}

void fs_leaf_dirent(uint8_t out[32], const uint8_t key[32], uint64_t parent, const uint8_t name_mac[32],
		    const uint8_t *row, size_t rowlen)
{
	fs_mac m;
	fs_mac_init(&m, key, FS_DOM_DIRENT_LEAF);
	fs_mac_u64(&m, parent);
	fs_mac_update(&m, name_mac, 32);
	fs_mac_u64(&m, rowlen);
	fs_mac_update(&m, row, rowlen);
	fs_mac_final(&m, out);
}

void fs_leaf_inode(uint8_t out[32], const uint8_t key[32], uint64_t ino, const uint8_t *row, size_t rowlen)
{
	fs_mac m;
	fs_mac_init(&m, key, FS_DOM_INODE_LEAF);
	fs_mac_u64(&m, ino);
	fs_mac_u64(&m, rowlen);
	fs_mac_update(&m, row, rowlen);
	fs_mac_final(&m, out);
}

void fs_file_digest_begin(fs_mac *m, const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t size,
			  uint64_t count)
{
	fs_mac_init(m, key, FS_DOM_FILE_ROOT);
	fs_mac_u64(m, ino);
	fs_mac_u64(m, igen);
	fs_mac_u64(m, size);
	fs_mac_u64(m, count);
}

void fs_dir_digest_begin(fs_mac *m, const uint8_t key[32], uint64_t ino, uint64_t igen, uint64_t count)
{
	fs_mac_init(m, key, FS_DOM_DIR_ROOT);
	fs_mac_u64(m, ino);
	fs_mac_u64(m, igen);
	fs_mac_u64(m, count);
}

void fs_bucket_digest_begin(fs_mac *m, const uint8_t key[32], uint64_t b, uint64_t count)
{
	fs_mac_init(m, key, FS_DOM_BUCKET);
	fs_mac_u64(m, b);
	fs_mac_u64(m, count);
}

void fs_volume_root(uint8_t out[32], const uint8_t key[32], const uint8_t volid[16], uint64_t version,
		    const uint8_t top[32])
{
	fs_mac m;
	fs_mac_init(&m, key, FS_DOM_VOLUME_ROOT);
	fs_mac_update(&m, volid, 16);
	fs_mac_u64(&m, version);
	fs_mac_update(&m, top, 32);
	fs_mac_final(&m, out);
}

void fs_name_mac(uint8_t out[32], const uint8_t name_key[32], uint64_t parent, const char *name, size_t len)
{
	fs_mac m;
	fs_mac_init(&m, name_key, FS_DOM_NAME);
	fs_mac_u64(&m, parent);
	fs_mac_update(&m, name, len);
	fs_mac_final(&m, out);
}

int fs_tree_init(fs_tree *t, const uint8_t key[32], uint32_t buckets)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->key, key, 32);
	/* Levels until a single node; even one bucket gets one node above it, so the top is always a node. */
	uint32_t n = buckets, levels = 1;
	do {
		n = (n + FS_TREE_ARITY - 1) / FS_TREE_ARITY;
		levels++;
	} while (n > 1);
	t->nlevels = levels;
	t->count = calloc(levels, sizeof(*t->count));
	t->node = calloc(levels, sizeof(*t->node));
	t->dirty = calloc(levels, sizeof(*t->dirty));
	if (!t->count || !t->node || !t->dirty)
		goto oom;
	n = buckets;
	for (uint32_t l = 0; l < levels; l++) {
		t->count[l] = n;
		t->node[l] = calloc(n, 32);
		t->dirty[l] = calloc(n, 1);
		if (!t->node[l] || !t->dirty[l])
			goto oom;
		if (l)
			memset(t->dirty[l], 1, n);
		n = (n + FS_TREE_ARITY - 1) / FS_TREE_ARITY;
	}
	return 0;
oom:
	fs_tree_free(t);
	return -1;
}

void fs_tree_free(fs_tree *t)
{
	for (uint32_t l = 0; l < t->nlevels; l++) {
		if (t->node)
			free(t->node[l]);
		if (t->dirty)
			free(t->dirty[l]);
	}
	free(t->node);
	free(t->dirty);
	free(t->count);
	sodium_memzero(t->key, 32);
	memset(t, 0, sizeof(*t));
}

void fs_tree_set_bucket(fs_tree *t, uint32_t b, const uint8_t digest[32])
{
	memcpy(t->node[0][b], digest, 32);
	for (uint32_t l = 1; l < t->nlevels; l++) {
		b /= FS_TREE_ARITY;
		t->dirty[l][b] = 1;
	}
}

const uint8_t *fs_tree_bucket(const fs_tree *t, uint32_t b)
{
	return t->node[0][b];
}

void fs_tree_top(fs_tree *t, uint8_t top[32])
{
	for (uint32_t l = 1; l < t->nlevels; l++) {
		for (uint32_t i = 0; i < t->count[l]; i++) {
			if (!t->dirty[l][i])
				continue;
			uint32_t first = i * FS_TREE_ARITY, end = first + FS_TREE_ARITY;
			if (end > t->count[l - 1])
				end = t->count[l - 1];
			fs_mac m;
			fs_mac_init(&m, t->key, FS_DOM_TREE_NODE);
			fs_mac_u64(&m, l);
			fs_mac_u64(&m, i);
			fs_mac_update(&m, t->node[l - 1][first], (size_t)(end - first) * 32);
			fs_mac_final(&m, t->node[l][i]);
			t->dirty[l][i] = 0;
		}
	}
	memcpy(top, t->node[t->nlevels - 1][0], 32);
}
