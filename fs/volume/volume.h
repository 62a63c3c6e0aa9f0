/* The protected volume as a library: open a backing directory, look up, read and write files, commit.
 * Every call is safe for concurrent callers (one lock per volume). Calls return 0 or a count on success
 * and -errno on failure; an integrity failure is -EIO, is logged with the file's path in the volume, and
 * turns the volume read-only (-EROFS for later changes) until it is opened again. */
#ifndef FS_VOLUME_H
#define FS_VOLUME_H
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "meta/cas/client.h"
#include "meta/common/log.h"
#include "meta/common/status.h"

#define FS_ROOT_INO 1
#define FS_NAME_MAX 255
#define FS_XATTR_MAX (64 * 1024)      /* one value */
#define FS_XATTRS_TOTAL (256 * 1024)  /* all of one inode's names and values */

typedef struct fs_volume fs_volume;

typedef struct {
	uint64_t ino, gen;
	uint32_t mode, nlink, uid, gid;
	uint64_t size, rdev, blocks; /* blocks: 512-byte units held by the file's chunks */
	struct timespec atime, mtime, ctime;
} fs_attr;

typedef struct {
	const char *dir;             /* backing directory */
	const char *key_file;        /* 64 hex digits; or: */
	const char *passphrase_file; /* first line; Argon2id */
	const uint8_t *key;          /* or a 32-byte key, read already (as from a key file); or: */
	const char *passphrase;      /* a passphrase read already (prompt, program, stdin) and its length */
	size_t passphrase_len;       /* none of the four with a cas:// trust_uri: the CAS releases the key
	                                (docs/CAS.md) */
	const char *trust_uri;       /* NULL: the default local trust store (FS_DEFAULT_TRUST) */
	cas_tls tls;                 /* a cas:// trust_uri: TLS files and time per request */
	int readonly;                /* open without changing anything, not even a pending commit */
	/* init only */
	uint32_t chunk_size;         /* 0: default (FS_DEFAULT_CHUNK) */
	int aead_alg;                /* 0: AES-256-GCM where the CPU has AES instructions */
	uint32_t buckets;            /* 0: default (FS_DEFAULT_BUCKETS) */
	uint64_t kdf_ops, kdf_mem;   /* Argon2id cost for a passphrase; 0: libsodium's "moderate" (3, 256 MiB) */
	/* open only */
	uint64_t dirty_limit;        /* commit once this many bytes are waiting; 0: default 64 MiB */
	const char *crash_at;        /* test builds (FS_TEST_HOOKS) only: the commit step at which the
	                                process kills itself; ignored otherwise */
	uint64_t seal_limit;         /* test builds only: chunk seals allowed per file key, instead of the
	                                cipher's bound (so a test can reach it); 0 or release: the bound */
	unsigned lease_seconds;      /* the writer lease's time at the anchor; 0: FS_LEASE_SECONDS (tests
	                                shorten it) */
} fs_volume_opts;

#define FS_DEFAULT_CHUNK (64 * 1024)
#define FS_MIN_CHUNK 4096
#define FS_MAX_CHUNK (1024 * 1024)
#define FS_DEFAULT_BUCKETS 4096

/* Call fs_crypto_init() (crypto/keys.h) once before any of these. */

/* Creates a volume in an empty backing directory and registers version 0 with the trust anchor.
 * Returns an fs_status; err gets a one-line reason. */
int fsv_create(const fs_volume_opts *o, char *err, size_t errlen);
/* Opens a volume, applying the recovery rules of docs/FORMAT.md. Returns an fs_status. */
int fsv_open(const fs_volume_opts *o, fs_volume **out, char *err, size_t errlen);
/* Commits what is pending (read-write volumes), releases everything. 0 or -errno: -ENOTCONN when the last
 * commit is prepared but the trust anchor did not answer (the next open completes it). */
int fsv_close(fs_volume *v);
/* Sizes the pack-file cache from what RLIMIT_NOFILE leaves once the caller holds everything it keeps
 * open (later: descriptors it opens after this call and keeps); FS_ST_IO with a reason naming the limit
 * needed when too few are left for commits to work. An fs_status. */
int fsv_fd_budget(fs_volume *v, unsigned later, char *err, size_t errlen);

/* Namespace. Calls that return an inode (lookup, mknod, mkdir, symlink, link) count a lookup
 * reference, which the caller gives back with fsv_forget (the FUSE lookup count). */
int fsv_getattr(fs_volume *v, uint64_t ino, fs_attr *out);
int fsv_lookup(fs_volume *v, uint64_t parent, const char *name, fs_attr *out);
void fsv_forget(fs_volume *v, uint64_t ino, uint64_t nlookup);
int fsv_mknod(fs_volume *v, uint64_t parent, const char *name, uint32_t mode, uint64_t rdev, uint32_t uid,
	      uint32_t gid, fs_attr *out);
int fsv_mkdir(fs_volume *v, uint64_t parent, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
	      fs_attr *out);
int fsv_symlink(fs_volume *v, uint64_t parent, const char *name, const char *target, uint32_t uid, uint32_t gid,
		fs_attr *out);
/* Copies at most size bytes (no NUL); returns the target's length. */
int fsv_readlink(fs_volume *v, uint64_t ino, char *buf, size_t size);
int fsv_link(fs_volume *v, uint64_t ino, uint64_t newparent, const char *newname, fs_attr *out);
int fsv_unlink(fs_volume *v, uint64_t parent, const char *name);
int fsv_rmdir(fs_volume *v, uint64_t parent, const char *name);
/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (linux/fs.h values). */
int fsv_rename(fs_volume *v, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	       unsigned flags);

/* Directory listing with stable cookies: fill gets each entry (".", ".." first) and the offset to resume
 * after it; it returns nonzero to stop (buffer full). Entries added or removed meanwhile do not make
 * others be skipped or repeated. */
typedef int (*fs_fill_fn)(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next_off);
int fsv_readdir(fs_volume *v, uint64_t ino, uint64_t off, fs_fill_fn fill, void *ctx);

/* setattr: which fields of in to apply. */
enum {
	FS_SET_MODE = 1 << 0,
	FS_SET_UID = 1 << 1,
	FS_SET_GID = 1 << 2,
	FS_SET_SIZE = 1 << 3,
	FS_SET_ATIME = 1 << 4,
	FS_SET_MTIME = 1 << 5,
	FS_SET_ATIME_NOW = 1 << 6,
	FS_SET_MTIME_NOW = 1 << 7,
	FS_SET_CTIME = 1 << 8,
};
int fsv_setattr(fs_volume *v, uint64_t ino, const fs_attr *in, int valid, fs_attr *out);

/* Access times (the mount options atime, relatime, strictatime, noatime). */
enum { FS_ATIME_RELATIME = 0, FS_ATIME_STRICT = 1, FS_ATIME_NEVER = 2 };
/* Whether a read of ino now changes its access time under the policy (relatime: the access time is not
 * later than the last change or modification, or a day old). update: also set it to now (no ctime change;
 * it goes with the next commit of a change, or fsv_commit_atime). 1 due (and updated), 0 not, or -errno;
 * never due on a read-only volume. */
int fsv_accessed(fs_volume *v, uint64_t ino, int policy, int update);
/* Access times wait for the next commit of a change (reads alone never commit). When nothing else waits,
 * this commits them (at unmount); a failure (e.g. a full backing store) gives up only the access times.
 * Call with no other caller active. 0 or -errno. */
int fsv_commit_atime(fs_volume *v);

/* File data. open/release keep an unlinked but open file alive. */
int fsv_open_file(fs_volume *v, uint64_t ino);
/* 0, or -EROFS when the volume is read-only (opened so, or after an integrity violation): for opens
 * that intend to write, which the kernel's page cache would otherwise accept. */
int fsv_check_writable(fs_volume *v);
void fsv_release(fs_volume *v, uint64_t ino);
/* At close (writer: opened for writing): -EIO when the volume failed for a reason other than an
 * integrity violation and the file, or for a writer the volume, has changes that will never be committed
 * (docs/THREAT-MODEL.md); else 0. */
int fsv_flush(fs_volume *v, uint64_t ino, int writer);
/* Returns bytes read (short only at end of file) or -errno. */
ssize_t fsv_read(fs_volume *v, uint64_t ino, void *buf, size_t size, uint64_t off);
/* Returns size or -errno. Grows the file as needed. */
ssize_t fsv_write(fs_volume *v, uint64_t ino, const void *buf, size_t size, uint64_t off);
/* mode: 0 (allocate, may grow size), FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE. */
int fsv_fallocate(fs_volume *v, uint64_t ino, int mode, uint64_t off, uint64_t len);

/* Makes everything written so far durable and commits it to the trust anchor (group commit: callers that
 * arrive while a commit runs share the next one). */
int fsv_commit(fs_volume *v);
/* Whether anything waits for a commit (for the daemon's timer). */
int fsv_dirty(fs_volume *v);

/* The trust anchor re-checked (docs/THREAT-MODEL.md, "Stale copies"): a read-write volume renews its
 * writer lease; every volume compares the anchor's state with the one it serves. Once the anchor has moved
 * past it (another copy of the volume committed), the volume is stale: logged, read-only, and every
 * request fails with EIO. Returns 0, FS_ST_ROLLBACK (stale), FS_ST_BUSY (the lease was lost: read-only) or
 * FS_ST_ANCHOR (no answer; the next check tries again). The daemon calls it every fsv_anchor_interval
 * seconds: a third of the lease time. */
int fsv_check_anchor(fs_volume *v);
unsigned fsv_anchor_interval(fs_volume *v);
/* The inodes the kernel may hold (looked up or open, and the root), so that a stale volume can have
 * their cached pages and attributes dropped. *out is malloc'd. 0 or -ENOMEM. */
int fsv_known_inodes(fs_volume *v, uint64_t **out, size_t *n);

/* Extended attributes: opaque names and values. getxattr/listxattr with size 0 return the size needed. */
int fsv_setxattr(fs_volume *v, uint64_t ino, const char *name, const void *value, size_t size, int flags);
ssize_t fsv_getxattr(fs_volume *v, uint64_t ino, const char *name, void *buf, size_t size);
ssize_t fsv_listxattr(fs_volume *v, uint64_t ino, char *buf, size_t size);
int fsv_removexattr(fs_volume *v, uint64_t ino, const char *name);

int fsv_statfs(fs_volume *v, struct statvfs *st);

/* State for tools and the daemon. */
typedef struct {
	uint8_t volid[16];
	uint64_t version;
	uint8_t root[32];
	uint32_t chunk_size;
	int aead_alg;
	int failed;      /* 0, or the fs_status of what made the volume read-only until reopened:
	                    FS_ST_TAMPER (an integrity violation) or FS_ST_FORK (the anchor refused a commit) */
	int anchor_none; /* no rollback protection */
	int stale;       /* the anchor moved past the version served (fsv_check_anchor) */
	uint64_t inodes, chunks; /* rows in the store */
	char anchor_desc[400];   /* what identifies the anchor beyond its URI (fs_anchor_describe), or "" */
} fs_volume_info;
void fsv_info(fs_volume *v, fs_volume_info *out);

/* The URI of the trust anchor the volume in dir was bound to, as recorded at init or trust adopt
 * (anchor.uri; a hint, not authenticated: the header's anchor id is the binding). 0, or -errno
 * (-ENOENT for a volume made before it was recorded). */
#define FS_ANCHOR_URI_MAX 1024
int fsv_bound_anchor_uri(const char *dir, char *out, size_t outlen);

/* For tests only: replaces the clock used for file times. */
#ifdef FS_TEST_HOOKS
void fs_test_set_clock(void (*fn)(struct timespec *ts));
#endif
#endif
