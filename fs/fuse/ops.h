/* The low-level FUSE operations over the fsv_* volume API (fs/fuse/ops.c). */
#ifndef FS_FUSE_OPS_H
#define FS_FUSE_OPS_H
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdint.h>

#include "fs/volume/volume.h"

/* The session's user data. */
struct fsd_fs {
	fs_volume *v;
	int ro;          /* mounted read-only: no writeback cache, fsync has nothing to commit */
	double timeout;  /* entry and attribute cache lifetime in the kernel, seconds */
	uint32_t blksize; /* st_blksize: the volume's chunk size */
	struct fuse_session *se; /* for cache invalidations sent to the kernel */
	/* Changed on a live mount (remount): read and written with __atomic builtins. */
	int atime;       /* FS_ATIME_*: when a read changes the access time */
	int remount_ro;  /* remounted read-only: nothing changes, not even access times */
};

extern const struct fuse_lowlevel_ops fsd_ops;
#endif
