/* Internals of the volume library, shared by the files of fs/volume only.
 *
 * Invariants (all under v->lock):
 *  - A bucket is either not loaded, or loaded whole: every inode row of it is in memory, verified
 *    against the bucket's digest in v->tree. Inodes are never evicted.
 *  - An inode's content (chunk map of a file, entries of a directory) is loaded whole and verified
 *    against the digest in its row before any use (ip->loaded).
 *  - A chunk's slot in the file's pack file is never overwritten while a state that recovery may
 *    return to references it (the anchor's state, or a prepared one in the store): a new version of a
 *    chunk goes to a free slot; the old slot is freed only after the trust anchor acknowledged the
 *    first version that no longer references it (ip->retire[].after).
 */
#ifndef FS_VOL_INTERNAL_H
#define FS_VOL_INTERNAL_H
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "meta/keys.h"
#include "fs/volume/state.h"
#include "fs/volume/volume.h"
#include "meta/common/vec.h"
#include "meta/anchor/anchor.h"
#include "meta/check.h"
#include "meta/header.h"
#include "meta/rows.h"
#include "meta/store.h"
#include "meta/tree.h"

#define FS_DATA_DIR "d"
#define FS_LOCK_NAME "volume.lock"
#define FS_ANCHOR_RECORD "anchor.uri" /* the bound anchor's URI, unauthenticated (anchor_record.c) */
#define FS_INIT_MARK "init.incomplete" /* exists while init runs: a crash there is not tamper */
#define FS_MAX_DIRTY_CHUNKS 64 /* per file, before they are sealed and written out */
/* FS_MAX_CHUNKS and FS_MAX_SLOT (meta/check.h) bound a file. */
#define FS_MAX_FILE_SIZE_FOR(cs) (FS_MAX_CHUNKS * (uint64_t)(cs))

struct chunk {
	uint64_t idx, cgen, slot;
	uint32_t len;
	uint8_t nonce[24], tag[16], leaf[32];
	uint8_t fresh; /* slot written since the store's last transaction: no stored state references it */
	uint8_t dirty; /* row to write at the next commit */
};

struct dent {
	uint8_t mac[32];
	uint64_t ino;
	uint32_t mode;
	char *name;
	uint8_t *row; /* sealed row as stored; NULL while dirty */
	size_t rowlen;
	uint8_t leaf[32];
	uint8_t newrow; /* sealed at this commit: write it */
};

struct dirty_chunk {
	uint64_t idx;
	uint32_t len;
	uint8_t *buf; /* chunk_size bytes of plaintext */
};

struct inode {
	uint64_t ino;
	fs_inode_rec r;
	uint8_t *row; /* sealed row as last written (NULL for a new inode) */
	size_t rowlen;
	uint8_t leaf[32];
	int dirty;    /* r changed: reseal at commit */
	int unlinked; /* nlink reached 0: row leaves the tree at the next commit */
	int row_gone; /* the store no longer holds its row (committed removal or never written) */
	uint64_t nlookup, nopen;
	struct inode *bnext; /* bucket list, sorted by ino */

	int loaded;
	struct chunk *chunks; /* files, sorted by idx */
	size_t nchunks, capchunks;
	struct dent *ents; /* directories, sorted by mac */
	size_t nents, capents;
	uint64_t *rm_idx; /* chunk rows to delete at commit */
	size_t nrm, caprm;
	struct name_mac {
		uint8_t mac[32];
	} *rm_macs; /* entry rows to delete at commit */
	size_t nrmm, caprmm;
	int ents_dirty; /* entries changed: write rows at commit */

	fs_aead *aead; /* per-file chunk key */
	int fd;        /* pack file or -1 */
	int fd_unsynced;
	uint8_t *slots; /* bitmap: 1 = in use */
	uint64_t nslots;
	struct retired *retire; /* old slots, each freed once the anchor acknowledged the version named */
	size_t nretire, capretire;
	struct dirty_chunk dc[FS_MAX_DIRTY_CHUNKS];
	size_t ndc;
	int seals_logged; /* the refusal at the seal bound was logged */
	uint8_t *rcache; /* one decrypted chunk */
	uint64_t rcache_idx;
	int rcache_valid;
	uint64_t reserved; /* chunks fallocate took room for past the pack file's end (until unmount) */
};

struct bucket {
	struct inode *head;
	uint8_t loaded, dirty;
	uint8_t retire; /* holds inodes whose old slots wait for the anchor's acknowledgement */
};

struct dead_file {
	uint64_t ino, gen;
	uint64_t after; /* removed once the anchor acknowledged this version */
	int stored;     /* its gc row is in the store, so a crash does not leak the file */
};

struct retired {
	uint64_t slot;
	uint64_t after; /* the first version that no longer references the slot */
};

struct fs_volume {
	pthread_mutex_t lock;
	char *dir;
	int dirfd, lockfd;
	fs_header hdr;
	uint8_t *keys; /* locked: master | chunk | tree | name | row subkeys, 32 bytes each */
	uint8_t *k_master, *k_chunk, *k_tree, *k_name, *k_row;
	fs_aead *row_aead;
	fs_store *store;
	fs_anchor *anchor;
	fs_tree tree;
	struct bucket *bk;
	uint64_t version;
	uint8_t root[32];
	enum vol_state state; /* fs/volume/state.h */
	int fail_status;      /* in VOL_FAILED: the fs_status that made the volume read-only */
	fs_volume_row pending_row; /* in VOL_PREPARED*: the version the anchor has not acknowledged */
	uint64_t dirty_bytes, dirty_limit;
	struct dead_file *dead;
	size_t ndead, capdead;
	uint64_t *rm_inodes; /* inode rows to delete at commit */
	size_t nrmi, caprmi;
	uint8_t *scratch; /* chunk_size + 16 bytes for sealing and reading */
	const char *crash_at;
	uint64_t seal_limit; /* chunk seals allowed per file key (fs_aead_max_seals of the header's cipher) */
	int naming; /* vol_path is loading a directory to name a file */
	/* The entry being looked up, to name the file when its inode row fails verification. */
	struct inode *lookup_dir;
	const char *lookup_name;
	uint8_t new_packs[32]; /* d/XX directories with new pack files since the last commit */
	int new_data_dir;      /* ... and d/ a new d/XX */
	size_t nfds;           /* open pack files */
	size_t max_fds;        /* ... at most (vol_pack_fd_budget) */
	int need_syncfs;       /* written pack files were closed before being synced */
	uint64_t mem_chunks;   /* dirty chunk buffers of all files, not yet sealed */
	int have_reserve;      /* FS_RESERVE_NAME is there, allocated */
	/* lease.c: the writer lease held at the anchor (read-write opens), and staleness */
	uint8_t lease_holder[16];
	int have_lease;
	unsigned lease_ttl;
	int stale; /* the anchor moved past the version served: every request fails with EIO */
	int init_mark; /* init.incomplete present at open; VOL_MARK_STRAY: the anchor records the volume */
	enum vol_state fail_from; /* in VOL_FAILED: the state it failed from (salvage.c) */
};
#define VOL_MARK_STRAY 2

/* State queries and the transitions of fs/volume/state.h that are not a whole commit. */
static inline int vol_readonly(const fs_volume *v) { return v->state == VOL_READONLY; }
static inline int vol_failed(const fs_volume *v) { return v->state == VOL_FAILED; }
static inline int vol_prepared(const fs_volume *v)
{
	return v->state == VOL_PREPARED || v->state == VOL_PREPARED_DIRTY;
}
static inline int vol_changed(const fs_volume *v) { return v->state == VOL_DIRTY || v->state == VOL_PREPARED_DIRTY; }
static inline void vol_mark_changed(fs_volume *v)
{
	if (v->state == VOL_CLEAN)
		v->state = VOL_DIRTY;
	else if (v->state == VOL_PREPARED)
		v->state = VOL_PREPARED_DIRTY;
}
/* The store holds a version the anchor has not acknowledged; changes in memory stay changes. */
static inline void vol_set_prepared(fs_volume *v)
{
	v->state = v->state == VOL_DIRTY || v->state == VOL_PREPARED_DIRTY ? VOL_PREPARED_DIRTY : VOL_PREPARED;
}
/* The anchor acknowledged the prepared version. */
static inline void vol_set_acknowledged(fs_volume *v)
{
	v->state = v->state == VOL_PREPARED_DIRTY ? VOL_DIRTY : VOL_CLEAN;
}
/* Read-only until opened again; the first reason stays. */
static inline void vol_fail(fs_volume *v, int status)
{
	if (v->state != VOL_FAILED) {
		v->fail_status = status;
		v->fail_from = v->state;
	}
	v->state = VOL_FAILED;
}

/* The changes acknowledged before a failure (docs/THREAT-MODEL.md 7.1). commit.c: vol_commit_failed is
 * vol_commit_locked in VOL_FAILED: after an integrity violation it commits the verified in-memory state
 * (0, or the commit's error), after any other failure -EIO. salvage.c: vol_uncommitted counts the files
 * and directories with changes not in the store. */
int vol_salvageable(const fs_volume *v);
int vol_salvage_pending(const fs_volume *v);
int vol_commit_failed(fs_volume *v);
uint64_t vol_uncommitted(const fs_volume *v);

/* orphans.c: at a read-write open, after verification, removes the pack files the verified tree does not
 * own (unless the last writer left the clean hint); vol_clean_hint records in volume.lock whether a
 * writer closed leaving nothing behind (1) or is at work (0). */
void vol_collect_orphans(fs_volume *v);
void vol_clean_hint(fs_volume *v, int clean);

/* vol_pack_open: the pack file exists but is not a regular file. */
#define EFTYPE_PACK EMEDIUMTYPE

/* hooks.c */
void vol_now(struct timespec *ts);
void vol_crash_point(fs_volume *v, const char *name);
uint64_t vol_seal_limit(const fs_volume *v, const fs_volume_opts *o);
enum { VOL_SYNC_DATA, VOL_SYNC_DIR, VOL_SYNC_FS };
int vol_data_sync(int fd, int how); /* fdatasync, fsync or syncfs; -1 and errno */

/* pack.c */
#define FS_MAX_PACK_FDS 256 /* the cache's size when the descriptor limit allows */
/* Descriptors left to everything else under a low RLIMIT_NOFILE: stdio, /dev/fuse, the backing directory
 * and its lock, SQLite's meta.db with its journal, WAL and shm, the trust store's (the same), the log,
 * directories opened for an fsync or a path resolution, a reserve file, and slack. */
#define FS_FD_RESERVE 40
#define FS_MIN_PACK_FDS 4
/* The pack-file cache's size from RLIMIT_NOFILE. */
size_t vol_pack_fd_budget(void);
/* Opens path beneath the backing directory with no symbolic link in any component (fs_beneath_open);
 * out of descriptors, empties the cache and tries once more. Returns the fd or -errno. */
int vol_openat(fs_volume *v, const char *path, int flags, mode_t mode);
void vol_pack_close(fs_volume *v, struct inode *ip);
int vol_pack_path(fs_volume *v, uint64_t ino, uint64_t gen, char *buf, size_t size);
/* Opens the file's pack file (create: make it if missing). */
int vol_pack_open(fs_volume *v, struct inode *ip, int create);
/* FS_ST_ANCHOR with a reason when uri is a file: trust store inside the backing directory dirfd. */
int vol_trust_outside(int dirfd, const char *dir, const char *uri, char *err, size_t errlen);
/* Closes cached pack file descriptors down to limit open ones (synced ones of closed files first). */
void vol_fd_reclaim(fs_volume *v, size_t limit);
void vol_drop_file_data(fs_volume *v, struct inode *ip);

/* inode.c */
/* Reports an integrity violation in ip (chunk -1: not a chunk), naming the file: fail closed (log, turn
 * read-only, -EIO). */
int vol_path(fs_volume *v, struct inode *ip, char *buf, size_t size);
int vol_violation(fs_volume *v, struct inode *ip, int64_t chunk, const char *kind);
/* The same for the entry name in directory dir (its inode could not be loaded). */
int vol_violation_at(fs_volume *v, struct inode *dir, const char *name, const char *kind);
/* A store read that failed with rc (what names the table or row): -ENOMEM passes through; anything else
 * is the attacker's store failing us, a violation like any other (vol_violation about ip, or about the
 * entry being looked up when ip is NULL). */
int vol_store_violation(fs_volume *v, struct inode *ip, int rc, const char *what);
struct inode *vol_iget(fs_volume *v, uint64_t ino, int *err);
struct inode *vol_ifind(fs_volume *v, uint64_t ino); /* only if its bucket is loaded; no I/O */
int vol_load_content(fs_volume *v, struct inode *ip);
int vol_alloc_inode(fs_volume *v, uint32_t mode, uint32_t uid, uint32_t gid, uint64_t parent, struct inode **out);
/* The times vol_touch sets to now. */
enum vol_times { VOL_MTIME = 1, VOL_CTIME = 2, VOL_ATIME = 4 };
void vol_touch(fs_volume *v, struct inode *ip, int what);
void vol_fill_attr(fs_volume *v, struct inode *ip, fs_attr *a);
void vol_maybe_free(fs_volume *v, struct inode *ip);
void vol_mark_dirty(fs_volume *v, struct inode *ip);
void vol_free_inode(fs_volume *v, struct inode *ip);
int vol_writable(fs_volume *v);
struct dent *vol_find_dent(struct inode *dir, const uint8_t mac[32], size_t *pos);
int vol_insert_dent(fs_volume *v, struct inode *dir, const uint8_t mac[32], const char *name, uint64_t ino, uint32_t mode);
int vol_remove_dent(fs_volume *v, struct inode *dir, size_t pos);
void vol_dent_leaf(fs_volume *v, struct inode *dir, struct dent *d);

/* data.c */
ssize_t vol_write_locked(fs_volume *v, uint64_t ino, const void *buf, size_t size, uint64_t off);
int vol_truncate(fs_volume *v, struct inode *ip, uint64_t size);
int vol_slot_mark(struct inode *ip, uint64_t slot, int used);
int vol_flush_file(fs_volume *v, struct inode *ip);
void vol_chunk_leaf(fs_volume *v, struct inode *ip, struct chunk *c);

/* space.c. The reserve file, made at read-write opens once the root is verified, and after commits. */
#define FS_RESERVE_NAME "meta.db.reserve"
#define FS_RESERVE_BYTES (4u << 20)
/* 0 if nchunks more dirty chunks (and what is held already) can still be written and committed, with room
 * left for the reserve; -ENOSPC if not. */
int vol_space_for(fs_volume *v, uint64_t nchunks);
void vol_reserve_make(fs_volume *v);
/* Frees the reserve's space for a commit: 1 if there was one to free. */
int vol_reserve_release(fs_volume *v);

/* commit.c */
int vol_commit_locked(fs_volume *v);
/* A sync of chunk data (or of a directory of pack files) failed with err (> 0): what was written may not be
 * on disk and the kernel will not say so again, so nothing after the trusted version may be acknowledged:
 * log what is lost and how to recover, turn the volume read-only (FS_ST_IO); -EIO. */
int vol_sync_failed(fs_volume *v, struct inode *ip, const char *what, int err);

/* lease.c. Takes the writer lease for ttl seconds (0: FS_LEASE_SECONDS): 0, FS_ST_BUSY while another
 * open of the volume holds it, FS_ST_ANCHOR. Release gives it up (teardown). */
int vol_lease_take(fs_volume *v, unsigned ttl, char *err, size_t errlen);
void vol_lease_release(fs_volume *v);

/* Digests of what is in memory (unlinked inodes have left their bucket). */
static inline void vol_file_digest(fs_volume *v, struct inode *ip, uint8_t out[32])
{
	fs_file_digest(out, v->k_tree, ip->ino, ip->r.gen, ip->r.size, FS_LEAVES(ip->chunks, ip->nchunks, leaf));
}
static inline void vol_dir_digest(fs_volume *v, struct inode *ip, uint8_t out[32])
{
	fs_dir_digest(out, v->k_tree, ip->ino, ip->r.gen, FS_LEAVES(ip->ents, ip->nents, leaf));
}
void vol_bucket_digest(fs_volume *v, uint32_t b, uint8_t out[32]);

/* What the shared checks need of this volume. */
static inline fs_check_keys vol_check_keys(fs_volume *v)
{
	return (fs_check_keys){ v->row_aead, v->hdr.volid, v->k_tree, v->k_name, v->hdr.buckets, v->hdr.chunk_size };
}
#endif
