/* Pack files: one per regular file (d/XX/INO.GEN), opened beneath the backing directory, and the cache of
 * their descriptors, bounded by FS_MAX_PACK_FDS. The lowest layer of the volume's data path: it knows
 * nothing of chunks, inodes' contents or commits. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
	if (v->nfds >= FS_MAX_PACK_FDS)
		vol_fd_reclaim(v, FS_MAX_PACK_FDS / 2);
	/* Beneath the backing directory, no link in any component: a planted d/ or d/XX link must not
	 * make us create or write files elsewhere. */
	int fd = fs_beneath_open(v->dirfd, path, flags, 0);
	if (fd == -ENOENT && create) {
		char sub[8];
		snprintf(sub, sizeof(sub), FS_DATA_DIR "/%02x", (unsigned)(ip->ino & 0xff));
		if (fs_beneath_mkdir(v->dirfd, sub, 0700) == 0) {
			/* A new directory entry in d/ must be durable too: fsync d/ now. */
			int d = fs_beneath_open(v->dirfd, FS_DATA_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
			int rc = d < 0 ? d : fsync(d) != 0 ? -errno : 0;
			if (d >= 0)
				close(d);
			if (rc)
				return rc;
		}
		fd = fs_beneath_open(v->dirfd, path, flags | O_CREAT | O_EXCL, 0600);
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

void vol_fd_reclaim(fs_volume *v, size_t limit)
{
	for (uint32_t b = 0; b < v->hdr.buckets && v->nfds > limit; b++)
		for (struct inode *ip = v->bk[b].head; ip && v->nfds > limit; ip = ip->bnext)
			if (ip->fd >= 0 && !ip->fd_unsynced && ip->nopen == 0) {
				close(ip->fd);
				ip->fd = -1;
				v->nfds--;
			}
	/* Still too many: close written files too; the next commit makes them durable with one syncfs. */
	for (uint32_t b = 0; b < v->hdr.buckets && v->nfds > limit; b++)
		for (struct inode *ip = v->bk[b].head; ip && v->nfds > limit; ip = ip->bnext)
			if (ip->fd >= 0 && ip->nopen == 0) {
				if (ip->fd_unsynced)
					v->need_syncfs = 1;
				ip->fd_unsynced = 0;
				close(ip->fd);
				ip->fd = -1;
				v->nfds--;
			}
}

/* Releases what an inode holds of its file data: dirty chunk buffers and the pack file descriptor. */
void vol_drop_file_data(fs_volume *v, struct inode *ip)
{
	for (size_t i = 0; i < ip->ndc; i++)
		free(ip->dc[i].buf);
	ip->ndc = 0;
	if (ip->fd >= 0) {
		close(ip->fd);
		ip->fd = -1;
		v->nfds--;
	}
}
