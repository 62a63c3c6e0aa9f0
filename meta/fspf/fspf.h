/* The file system protection file (fspf): one manifest that protects a read-only file tree, such as the
 * code and libraries of a container image (docs/FORMAT.md, "File system protection file").
 *
 * A manifest lists regions (path prefixes: encrypted, authenticated or not protected; the longest prefix
 * wins) and every directory, regular file and symbolic link of the tree with its mode, owner, mtime and
 * size, and for protected files one 16-byte AEAD tag per chunk. Encrypted files are stored as ciphertext of
 * the same length; chunk keys are per file, derived from the fspf key, a random per-file salt and the path,
 * and the chunk index is the nonce, so a chunk moved to another index or file fails to open.
 *
 * Two forms on disk:
 *   working  made by create, changed by addr/addf; holds the fspf key in clear (mode 0600);
 *   sealed   made by seal (fshield fspf encrypt): the body under XChaCha20-Poly1305, no key; its tag (a keyed
 *            BLAKE2b of every byte of the file) and the key go into a deployment policy.
 * Parsers take attacker bytes and are bounded: every count and length is checked against what is left of
 * the input before anything is allocated. */
#ifndef FS_FSPF_H
#define FS_FSPF_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/aead.h"
#include "meta/common/progress.h"

#define FSPF_VERSION 1
#define FSPF_KEY_BYTES 32
#define FSPF_TAG_BYTES 32
#define FSPF_ID_BYTES 16
#define FSPF_SALT_BYTES 16
#define FSPF_WORK_HDR 64      /* magic, version, state, aead, id, key */
#define FSPF_SEAL_HDR 96      /* magic, version, state, id, key check, nonce, body length */
#define FSPF_PATH_MAX 4095    /* bytes of an absolute path in the tree */
#define FSPF_NAME_MAX 255
#define FSPF_TARGET_MAX 4095  /* symlink target */
#define FSPF_MAX_REGIONS 4096
#define FSPF_MAX_ENTRIES (1u << 24)
#define FSPF_MAX_BODY (1ull << 30)
#define FSPF_MAX_SIZE (1ull << 50) /* largest file */
#define FSPF_DEFAULT_CHUNK (64 * 1024)

/* Hash domains of the fspf (keyed BLAKE2b, crypto/mac.h); distinct from the volume's 0x01 ... 0x0d. */
enum {
	FSPF_DOM_SUBKEY = 0x20,   /* K_p = H_K(0x20, u8 p, fspf id) */
	FSPF_DOM_FILE_KEY = 0x21, /* K_file = H_Kfiles(0x21, u8 kind, salt, u64 len, path) */
	FSPF_DOM_TAG = 0x22,      /* tag = H_Ktag(0x22, u64 len, sealed file bytes) */
};
enum {
	FSPF_SUB_MANIFEST = 1, /* XChaCha20-Poly1305 of the body */
	FSPF_SUB_TAG = 2,      /* the tag */
	FSPF_SUB_FILES = 3,    /* parent of the per-file keys */
	FSPF_SUB_CHECK = 4,    /* key check value (never used as a key) */
};

enum fspf_kind { FSPF_ENCRYPTED = 1, FSPF_AUTHENTICATED = 2, FSPF_NOT_PROTECTED = 3 };

typedef struct {
	char *path;
	uint8_t kind;
	uint32_t chunk_size;
} fspf_region;

typedef struct {
	char *path;           /* absolute, normalised; "/" for the root */
	uint32_t mode;        /* st_mode: S_IFDIR, S_IFREG or S_IFLNK and the permission bits */
	uint32_t uid, gid;
	int64_t mtime_s;
	uint32_t mtime_ns;
	/* regular files */
	uint8_t kind;         /* enum fspf_kind */
	uint32_t chunk_size;
	uint64_t size;
	uint8_t salt[FSPF_SALT_BYTES];
	uint8_t (*tags)[FS_TAG_BYTES]; /* nchunks tags for protected files, else NULL */
	/* symbolic links */
	char *target;
	/* filled by fspf_index: */
	uint32_t parent;      /* index of the parent directory (0 for the root) */
	uint32_t nchild, *child; /* directories: children in name order */
	const char *name;     /* last component ("" for the root) */
} fspf_entry;

typedef struct fspf {
	uint8_t id[FSPF_ID_BYTES];
	uint8_t *key;         /* FSPF_KEY_BYTES, guarded memory */
	uint8_t *files_key;   /* K_files, guarded memory */
	int data_aead;        /* chunk AEAD of the files: FS_AEAD_AES256GCM or FS_AEAD_XCHACHA20POLY1305 */
	int sealed;           /* loaded from the sealed form */
	uint32_t nregions;
	fspf_region *regions;
	uint32_t nentries, cap;
	fspf_entry *entries;  /* sorted by fspf_path_cmp; entries[0] is "/" */
	uint32_t *child_store; /* the child arrays of fspf_index */
} fspf;

static inline uint64_t fspf_nchunks(const fspf_entry *e)
{
	return e->size ? (e->size - 1) / e->chunk_size + 1 : 0;
}
static inline int fspf_protected(const fspf_entry *e)
{
	return e->kind == FSPF_ENCRYPTED || e->kind == FSPF_AUTHENTICATED;
}
const char *fspf_kind_name(int kind);

/* Path order: bytewise, with '/' below every other byte, so that a directory's subtree is contiguous and
 * follows the directory. */
int fspf_path_cmp(const char *a, const char *b);
/* Normalises an absolute path in place-free form into out (collapses "//", drops a trailing "/"); refuses
 * relative paths, "." and ".." components, components over 255 bytes, paths over 4095 bytes. 0 or -1. */
int fspf_path_normalize(const char *in, char *out, size_t outlen);
/* Whether prefix is path or a directory above it ("/" is above everything). */
int fspf_path_under(const char *path, const char *prefix);

/* A new, empty manifest with a fresh random key and id, its root directory and no regions. */
fspf *fspf_new(int data_aead);
void fspf_free(fspf *m);

/* The region that covers path (longest prefix), or NULL. */
const fspf_region *fspf_region_of(const fspf *m, const char *path);
/* Adds or changes a region; refused when it would change the protection of files already added. */
int fspf_add_region(fspf *m, const char *path, int kind, uint32_t chunk_size, char *err, size_t errlen);

/* Entry lookup by path (binary search), or -1. */
long fspf_find(const fspf *m, const char *path);
/* Builds parent, child and name for every entry; the parser calls it. 0, -ENOMEM, or -EINVAL when the
 * first entry is not the root directory or an entry's parent is not a directory of the manifest. */
int fspf_index(fspf *m);
/* Child of directory entry dir called name, or -1. */
long fspf_child(const fspf *m, uint32_t dir, const char *name, size_t len);

/* Adds the tree SRC as PATH (fshield fspf addf). Every file must be covered by a region. With out, files
 * are written there (encrypted regions: ciphertext; others: copies), and out must be missing or empty;
 * without it, encrypted regions are refused and the other files stay where they are. Symbolic links must
 * point inside PATH or inside one of link_roots (NULL: PATH only). Everything is checked before anything is
 * written; on failure m is unchanged and whatever was written to out is removed. Returns an fs_status. */
typedef struct {
	const char *const *link_roots;
	size_t nlink_roots;
	uint64_t files, dirs, links, bytes; /* counted on success */
	fs_progress_fn progress;            /* NULL: none; told entries and bytes written of the tree's totals */
	void *progress_ctx;
} fspf_add_opts;
int fspf_add_tree(fspf *m, const char *path, const char *src, const char *out, fspf_add_opts *o, char *err,
		  size_t errlen);

/* Body encoding (the plaintext of both forms). Returns a malloc'd buffer. */
uint8_t *fspf_encode_body(const fspf *m, size_t *len);
/* Parses and checks a body into m (whose regions and entries must be empty). 0 or -1 with err. */
int fspf_parse_body(fspf *m, const uint8_t *b, size_t n, char *err, size_t errlen);

/* Whole files. */
uint8_t *fspf_encode_working(const fspf *m, size_t *len);
uint8_t *fspf_encode_sealed(const fspf *m, size_t *len, uint8_t tag[FSPF_TAG_BYTES]);
/* The tag of sealed bytes under key (also for bytes that do not open). */
int fspf_tag_of(const uint8_t *file, size_t n, const uint8_t key[FSPF_KEY_BYTES], uint8_t tag[FSPF_TAG_BYTES]);
/* Parses a file of either form. Sealed: key is required; tag may be NULL (then it is not compared).
 * Returns an fs_status: FS_OK, FS_ST_WRONG_KEY (the key check fails), FS_ST_TAMPER (tag mismatch, the
 * body does not open, malformed), FS_ST_USAGE (a sealed file without a key). */
int fspf_parse_file(const uint8_t *file, size_t n, const uint8_t *key, const uint8_t *tag, fspf **out, char *err,
		    size_t errlen);
/* What a sealed fspf shows without its key: its id, body AEAD, length and the unkeyed BLAKE2b-256 of the
 * whole file (b2sum -l 256), to tell copies apart. The tag is keyed (docs/FORMAT.md 19.1) and is not here.
 * FS_OK, or FS_ST_TAMPER (malformed header, length mismatch), FS_ST_USAGE (a working fspf, not sealed). */
typedef struct {
	uint8_t id[FSPF_ID_BYTES];
	int body_aead;
	uint64_t size;
	uint8_t blake2b[32];
} fspf_outline;
int fspf_outline_of(const uint8_t *file, size_t n, fspf_outline *o, char *err, size_t errlen);
/* Reads a protection file whole into a malloc'd buffer (at most FSPF_MAX_BODY + headers). Returns an
 * fs_status: FS_ST_IO when unreadable, FS_ST_TAMPER when not a regular file or too large. */
int fspf_read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen);
/* Reads and parses FSPF from disk (at most FSPF_MAX_BODY + headers). FS_ST_IO when unreadable. */
int fspf_load(const char *path, const uint8_t *key, const uint8_t *tag, fspf **out, char *err, size_t errlen);
/* Writes bytes to path atomically (path.tmp, fsync, rename, fsync of the directory), mode 0600. */
int fspf_write_file(const char *path, const uint8_t *b, size_t n, char *err, size_t errlen);

/* Chunks of protected files. fspf_file_aead makes the AEAD context of one file (per-file key). */
fs_aead *fspf_file_aead(const fspf *m, const fspf_entry *e);
/* Length of chunk idx of e. */
size_t fspf_chunk_len(const fspf_entry *e, uint64_t idx);
/* Seals chunk idx (encrypted: in place; authenticated: buf unchanged) and returns its tag. 0 or -1. */
int fspf_chunk_seal(fs_aead *a, const fspf_entry *e, uint64_t idx, uint8_t *buf, size_t len,
		    uint8_t tag[FS_TAG_BYTES]);
/* Checks chunk idx against the manifest's tag; encrypted chunks are decrypted in place. 0, or -1 (buf is
 * then zeroed: nothing unauthenticated is ever handed out). */
int fspf_chunk_open(fs_aead *a, const fspf_entry *e, uint64_t idx, uint8_t *buf, size_t len);

/* Opens PATH below the root directory descriptor without following any symbolic link (openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS). flags as for open. Returns a descriptor or -errno. */
int fspf_open_beneath(int rootfd, const char *path, int flags);

/* Opens the data of regular file e in the tree and checks that it is a regular file and, when protected,
 * of the manifest's size. Returns a descriptor, or a negative errno with *fault saying what is wrong:
 * MISSING (-ENOENT), LINK (-ELOOP: not reached below the root without a symbolic link), TYPE or SIZE
 * (-EIO; st is filled for SIZE), IO (the errno of the open). */
enum fspf_data_fault { FSPF_DATA_OK, FSPF_DATA_MISSING, FSPF_DATA_LINK, FSPF_DATA_TYPE, FSPF_DATA_SIZE, FSPF_DATA_IO };
struct stat;
int fspf_open_data(int rootfd, const fspf_entry *e, struct stat *st, enum fspf_data_fault *fault);

/* Offline check of a protected tree against a manifest (fshield fspf verify): every entry, every chunk,
 * and entries in ROOT that the manifest does not list. Calls cb for each finding. Returns an fs_status. */
typedef struct {
	const char *kind;    /* missing truncated modified type unexpected io */
	const char *path;
	int64_t chunk;       /* -1 when none */
	uint64_t byte_a, byte_b;
	const char *message;
} fspf_finding;
typedef void (*fspf_finding_fn)(void *ctx, const fspf_finding *f);
typedef struct {
	uint64_t files, dirs, links, chunks, bytes;
} fspf_verify_result;
int fspf_verify_tree(const fspf *m, const char *root, fspf_finding_fn cb, void *ctx, fspf_verify_result *res);
#endif
