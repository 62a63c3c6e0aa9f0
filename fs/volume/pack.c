/* Pack files: one per regular file (d/XX/INO.GEN), opened beneath the backing directory, and the cache of
 * their descriptors, sized from the process's descriptor limit. The lowest layer of the volume's data
 * path: it knows nothing of chunks, inodes' contents or commits. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "meta/common/beneath.h"

int vol_pack_path(fs_volume *v, uint64_t ino, uint64_t gen, char *buf, size_t size)
{
	(void)v;
	return snprintf(buf, size, FS_DATA_DIR "/%02x/%016llx.%llx", (unsigned)(ino & 0xff), (unsigned long long)ino,
			(unsigned long long)gen) >= (int)size ? -ENAMETOOLONG : 0;
}

size_t vol_pack_fd_budget(void)
{
	struct rlimit rl;
	rlim_t cur = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	if (cur == RLIM_INFINITY || cur > FS_MAX_PACK_FDS + FS_FD_RESERVE)
		return FS_MAX_PACK_FDS;
	/* Below the reserve the cache still gets a few; running out is then handled by vol_openat. */
	return cur > FS_FD_RESERVE + FS_MIN_PACK_FDS ? (size_t)(cur - FS_FD_RESERVE) : FS_MIN_PACK_FDS;
}

int vol_openat(fs_volume *v, const char *path, int flags, mode_t mode)
{
	int fd = fs_beneath_open(v->dirfd, path, flags, mode);
	/* Out of descriptors (ours or the system's): the cache gives all it can and we try once more. */
	if ((fd == -EMFILE || fd == -ENFILE) && v->nfds) {
		vol_fd_reclaim(v, 0);
		fd = fs_beneath_open(v->dirfd, path, flags, mode);
	}
	return fd;
}

/* Opens the pack file; create: make it (and its directory) if missing. */
int vol_pack_open(fs_volume *v, struct inode *ip, int create)
{
	if (ip->fd >= 0)
		return 0;
	char path[64];
	int rc = vol_pack_path(v, ip->ino, ip->r.gen, path, sizeof(path));
	if (rc)
		return rc;
	/* O_NONBLOCK: a FIFO planted as a pack file must not hang us; it is refused below. */
	int flags = (vol_readonly(v) || vol_failed(v) ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	if (v->nfds >= v->max_fds)
		vol_fd_reclaim(v, v->max_fds / 2);
	/* Beneath the backing directory, no link in any component: a planted d/ or d/XX link must not
	 * make us create or write files elsewhere. */
	int fd = vol_openat(v, path, flags, 0);
	if (fd == -ENOENT && create) {
		char sub[8];
		snprintf(sub, sizeof(sub), FS_DATA_DIR "/%02x", (unsigned)(ip->ino & 0xff));
		/* The new entry in d/ must be durable too: the commit syncs d/ (sync_data). */
		if (fs_beneath_mkdir(v->dirfd, sub, 0700) == 0)
			v->new_data_dir = 1;
		fd = vol_openat(v, path, flags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0)
			v->new_packs[(ip->ino & 0xff) / 8] |= (uint8_t)(1u << (ip->ino & 7));
	}
	if (fd == -ELOOP)
		fd = -EFTYPE_PACK; /* a symbolic link where a pack file or its directory should be */
	if (fd < 0)
		return fd;
	ip->fd = fd;
	struct stat st;
	/* A second name could be a hard link to a file elsewhere on the same file system: never write it. */
	if (fstat(ip->fd, &st) != 0 || !S_ISREG(st.st_mode) || ((flags & O_ACCMODE) == O_RDWR && st.st_nlink > 1)) {
		close(ip->fd);
		ip->fd = -1;
		return -EFTYPE_PACK;
	}
	fcntl(ip->fd, F_SETFL, fcntl(ip->fd, F_GETFL) & ~O_NONBLOCK);
	v->nfds++;
	return 0;
}

/* A descriptor is only a cache of a path: any may be closed, those of files held open by programs and
 * those with unsynced writes last (the next commit then makes everything durable with one syncfs). */
void vol_fd_reclaim(fs_volume *v, size_t limit)
{
	for (int pass = 0; pass < 3; pass++)
		for (uint32_t b = 0; b < v->hdr.buckets && v->nfds > limit; b++)
			for (struct inode *ip = v->bk[b].head; ip && v->nfds > limit; ip = ip->bnext)
				if (ip->fd >= 0 && (pass == 2 || (ip->nopen == 0 && (pass == 1 || !ip->fd_unsynced))))
					vol_pack_close(v, ip);
}

/* Closes one cached pack file descriptor. */
void vol_pack_close(fs_volume *v, struct inode *ip)
{
	if (ip->fd < 0)
		return;
	if (ip->fd_unsynced)
		v->need_syncfs = 1;
	ip->fd_unsynced = 0;
	close(ip->fd);
	ip->fd = -1;
	v->nfds--;
}

/* Releases what an inode holds of its file data: dirty chunk buffers and the pack file descriptor. */
void vol_drop_file_data(fs_volume *v, struct inode *ip)
{
	for (size_t i = 0; i < ip->ndc; i++)
		free(ip->dc[i].buf);
	v->mem_chunks -= ip->ndc;
	ip->ndc = 0;
	if (ip->fd >= 0) {
		close(ip->fd);
		ip->fd = -1;
		v->nfds--;
	}
}
