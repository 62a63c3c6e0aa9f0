/* Rows of the metadata store as bytes: the sealed inode and directory-entry records, their plaintext
 * encodings, and the extended-attribute list kept inside an inode. Every decoder here reads bytes an
 * attacker controls (after authentication, but written by an older or buggy writer too): it bounds every
 * length and never trusts a count. Layouts are in docs/FORMAT.md. */
#ifndef FS_ROWS_H
#define FS_ROWS_H
#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"

#define FS_ROW_VERSION 1
#define FS_ROW_OVERHEAD (FS_NONCE_BYTES + FS_TAG_BYTES)

enum fs_row_kind { FS_ROW_INODE = 1, FS_ROW_DIRENT = 2 };

typedef struct {
	uint64_t ino, gen, parent;
	uint32_t mode, uid, gid, nlink;
	uint64_t size, rdev, wseq;
	int64_t atime_s, mtime_s, ctime_s;
	uint32_t atime_ns, mtime_ns, ctime_ns;
	uint64_t count;      /* chunks of a file, entries of a directory */
	uint8_t content[32]; /* the file's or directory's digest */
	char *target;        /* symlink target (not NUL-terminated in the row) */
	uint32_t target_len;
	uint8_t *xattrs;     /* xattr list, see below */
	uint32_t xattrs_len;
} fs_inode_rec;

typedef struct {
	uint64_t ino;
	uint32_t mode; /* file type bits only */
	uint16_t name_len;
	char name[256]; /* NUL-terminated */
} fs_dirent_rec;

/* Plaintext encodings. encode returns a malloc'd buffer; decode returns 0 or -1 (malformed). */
uint8_t *fs_inode_encode(const fs_inode_rec *r, size_t *len);
int fs_inode_decode(const uint8_t *p, size_t len, fs_inode_rec *r); /* r owns copies; free below */
void fs_inode_rec_free(fs_inode_rec *r);
uint8_t *fs_dirent_encode(const fs_dirent_rec *r, size_t *len);
int fs_dirent_decode(const uint8_t *p, size_t len, fs_dirent_rec *r);

/* Sealed row = nonce(24) || tag(16) || ciphertext, AD = volume id || kind || key bytes. */
uint8_t *fs_row_seal(fs_aead *a, const uint8_t volid[16], int kind, const uint8_t *key, size_t keylen,
		     const uint8_t *pt, size_t ptlen, size_t *rowlen);
/* Returns the malloc'd plaintext, or NULL when the row is short or fails authentication. */
uint8_t *fs_row_open(fs_aead *a, const uint8_t volid[16], int kind, const uint8_t *key, size_t keylen,
		     const uint8_t *row, size_t rowlen, size_t *ptlen);
/* The key bytes of each kind of row. */
void fs_inode_key(uint8_t out[8], uint64_t ino);
void fs_dirent_key(uint8_t out[40], uint64_t parent, const uint8_t name_mac[32]);

/* Extended attributes: a list of (u16 name_len, name, u32 value_len, value), sorted by name, names
 * unique and non-empty. validate returns 0 for a well-formed list. */
int fs_xattrs_validate(const uint8_t *p, size_t len);
/* Finds name; sets val and vlen. 0 found, -1 not. */
int fs_xattrs_get(const uint8_t *p, size_t len, const char *name, const uint8_t **val, size_t *vlen);
/* Returns a new malloc'd list with name set (value != NULL) or removed (value == NULL). */
uint8_t *fs_xattrs_put(const uint8_t *p, size_t len, const char *name, const void *value, size_t vlen,
		       size_t *newlen);
/* Writes "name\0name\0..." into buf (if size allows); returns the bytes needed. */
size_t fs_xattrs_names(const uint8_t *p, size_t len, char *buf, size_t size);
#endif
