/* Offline verification of a backing directory: every check the daemon makes, on every row and chunk,
 * listing every finding instead of stopping at the first. Never modifies the directory or the anchor. */
#ifndef FS_VERIFY_H
#define FS_VERIFY_H
#include <stdint.h>

#include "fs/volume/volume.h"
#include "meta/common/progress.h"

typedef struct {
	const char *kind;  /* modified truncated missing metadata header unreferenced | rollback fork pending wrong-key anchor busy io */
	int status;        /* fs_status this finding stands for (0 for a note) */
	const char *path;  /* path in the volume, "[inode N]", or NULL for the volume as a whole */
	uint64_t ino;      /* 0 when none */
	int64_t chunk;     /* -1 when none */
	uint64_t byte_a, byte_b; /* inclusive, when chunk >= 0 */
	const char *message;     /* the line printed for it */
} fs_finding;

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
