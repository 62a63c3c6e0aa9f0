/* The volume's key hierarchy and hash domains (docs/FORMAT.md): every subkey is derived from the master
 * key for one named purpose and bound to the volume id; every keyed hash names its domain. The byte values
 * are part of the on-disk format: never renumber them. */
#ifndef FS_META_KEYS_H
#define FS_META_KEYS_H
#include <stdint.h>

#include "crypto/keys.h"
#include "crypto/mac.h"

#define FS_VOLID_BYTES 16
_Static_assert(FS_VOLID_BYTES == FS_WRAP_AD_BYTES, "a wrapped volume key is bound to the volume id");

/* Subkey purposes; never one key for two jobs. */
enum fs_subkey {
	FS_SUBKEY_CHUNK = 1,  /* parent of the per-file chunk AEAD keys */
	FS_SUBKEY_TREE = 2,   /* leaf, bucket, node and root hashes */
	FS_SUBKEY_NAME = 3,   /* keyed MAC of directory entry names (lookup index) */
	FS_SUBKEY_ROW = 4,    /* AEAD of inode and directory entry rows */
	FS_SUBKEY_HEADER = 5, /* MAC of volume.hdr */
	FS_SUBKEY_CHECK = 6,  /* key check value in volume.hdr (tells a wrong key from a tampered header) */
};

enum fs_mac_domain {
	FS_DOM_CHUNK_LEAF = 0x01,
	FS_DOM_FILE_ROOT = 0x02,
	FS_DOM_DIRENT_LEAF = 0x03,
	FS_DOM_DIR_ROOT = 0x04,
	FS_DOM_INODE_LEAF = 0x05,
	FS_DOM_BUCKET = 0x06,
	FS_DOM_TREE_NODE = 0x07,
	FS_DOM_VOLUME_ROOT = 0x08,
	FS_DOM_NAME = 0x09,
	FS_DOM_HEADER = 0x0a,
	FS_DOM_KEY_CHECK = 0x0b,
	FS_DOM_SUBKEY = 0x0c,
	FS_DOM_FILE_KEY = 0x0d,
	FS_DOM_KEYFILE_KEK = 0x0e,
};

/* subkey = BLAKE2b-256(key = master, 0x0c || purpose || volume id). */
void fs_derive_subkey(uint8_t out[32], const uint8_t master[32], enum fs_subkey purpose,
		      const uint8_t volid[FS_VOLID_BYTES]);
/* Per-file chunk key = BLAKE2b-256(key = chunk subkey, 0x0d || ino || inode generation). */
void fs_derive_file_key(uint8_t out[32], const uint8_t chunk_subkey[32], uint64_t ino, uint64_t gen);
/* The key that wraps the master key of a key-file-wrapped volume: H_keyfile(0x0e, volume id). */
void fs_keyfile_kek(uint8_t out[32], const uint8_t keyfile[32], const uint8_t volid[FS_VOLID_BYTES]);
#endif
