/* Space on the backing filesystem. A write is refused with ENOSPC as soon as the data held in memory
 * could no longer be sealed, written and committed, rather than failing later at writeback, close or
 * commit. And a reserve file (meta.db.reserve) keeps room for the commits that free space: on a store
 * filled by something else, a delete or truncate must still commit, or its pack file is never removed. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/volume/internal.h"

/* Room the next commit's metadata takes per chunk row (row, index, WAL copy of its page, roughly). */
#define META_PER_CHUNK 512
/* And for the rest of a commit: inode and entry rows, bucket digests, the volume row. */
#define META_HEADROOM (1u << 20)

int vol_space_for(fs_volume *v, uint64_t nchunks)
{
	struct statvfs st;
	if (fstatvfs(v->dirfd, &st) != 0)
		return 0; /* unknown: the write goes through and a full store shows at the commit */
	uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize, cs = v->hdr.chunk_size;
	uint64_t held = v->mem_chunks + nchunks; /* in memory: each needs a whole slot */
	uint64_t rows = v->dirty_bytes / cs + held;
	uint64_t need = held * cs + rows * META_PER_CHUNK + META_HEADROOM + (v->have_reserve ? 0 : FS_RESERVE_BYTES);
	return avail >= need ? 0 : -ENOSPC;
}

void vol_reserve_make(fs_volume *v)
{
	if (v->have_reserve || vol_readonly(v) || vol_failed(v))
		return;
	struct statvfs st;
	if (fstatvfs(v->dirfd, &st) != 0 || (uint64_t)st.f_bavail * st.f_frsize < FS_RESERVE_BYTES + META_HEADROOM)
		return; /* made once there is room again */
	int fd = vol_openat(v, FS_RESERVE_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return;
	struct stat fst;
	int ok = fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) && fallocate(fd, 0, 0, FS_RESERVE_BYTES) == 0;
	close(fd);
	if (ok)
		v->have_reserve = 1;
	else if (S_ISREG(fst.st_mode))
		unlinkat(v->dirfd, FS_RESERVE_NAME, 0); /* no half reserve; the volume works without one */
}

int vol_reserve_release(fs_volume *v)
{
	if (!v->have_reserve)
		return 0;
	v->have_reserve = 0;
	if (unlinkat(v->dirfd, FS_RESERVE_NAME, 0) != 0)
		return 0;
	fs_log(LOG_WARNING, "%s: the backing store is full: its reserve (%s, %u MiB) was released for a commit",
	       v->dir, FS_RESERVE_NAME, FS_RESERVE_BYTES >> 20);
	return 1;
}
