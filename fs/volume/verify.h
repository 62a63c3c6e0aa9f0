/* Offline verification of a backing directory: every check the daemon makes, on every row and chunk,
 * listing every finding instead of stopping at the first. Never modifies the directory or the anchor. */
#ifndef FS_VERIFY_H
#define FS_VERIFY_H
#include <stdint.h>

#include "fs/volume/volume.h"
#include "meta/common/progress.h"

/* What a finding is about in the backing directory: the file, and within it the rows of a table of the
 * store or the slot of a pack file. An auditor restores exactly these from a backup (docs/CLI.md). */
typedef struct {
	const char *file;  /* relative to the backing directory: volume.hdr, meta.db, d/XX/INO.GEN, ... */
	const char *table; /* a table of meta.db, or NULL: the file as a whole */
	const char *row;   /* the table's rows meant, as an SQL condition ("ino=12", "b IN (3, 7)"); NULL: all */
	int64_t slot;      /* the slot of a pack file, -1 when none */
	uint64_t offset;   /* the slot's first byte in the pack file, when slot >= 0 */
} fs_backing;
#define FS_MAX_BACKING 4

typedef struct {
	const char *kind;  /* modified truncated missing metadata header unreferenced | rollback fork pending wrong-key anchor busy io */
	int status;        /* fs_status this finding stands for (0 for a note) */
	const char *path;  /* path in the volume, "[inode N]", or NULL for the volume as a whole */
	uint64_t ino;      /* 0 when none */
	int64_t chunk;     /* -1 when none */
	uint64_t byte_a, byte_b; /* inclusive, when chunk >= 0 */
	const char *message;     /* the line printed for it */
	size_t nbacking;         /* what in the backing directory it is about (0: nothing there, e.g. the key) */
	fs_backing backing[FS_MAX_BACKING];
} fs_finding;

/* The backing of f as one line: "FILE slot S (byte O); meta.db table T rows COND; ..." (empty if none). */
void fsv_backing_text(const fs_finding *f, char *buf, size_t size);

typedef struct {
	int use_expect;            /* check against expect_* instead of the trust anchor */
	uint64_t expect_version;
	uint8_t expect_root[32];
	int skip_anchor;           /* no freshness check at all: the anchor is neither opened nor compared
	                              (trust adopt, which binds the state found to a new anchor) */
	const char *scratch_dir;   /* where the private copy of the store is made; NULL: /tmp */
	fs_progress_fn progress;   /* NULL: none; told chunks and bytes checked of the files' totals */
	void *progress_ctx;
} fs_verify_opts;

typedef struct {
	uint8_t volid[16];
	uint64_t version, trusted_version;
	uint8_t root[32], trusted_root[32];
	int have_version, have_trusted;
	uint64_t files, dirs, others, chunks, bytes;
} fs_verify_result;

typedef void (*fs_finding_fn)(void *ctx, const fs_finding *f);

/* Returns the most severe status of all findings (0 when there are none, or only notes). */
int fsv_verify(const fs_volume_opts *o, const fs_verify_opts *vo, fs_finding_fn cb, void *ctx,
	       fs_verify_result *res);
#endif
