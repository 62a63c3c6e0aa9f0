/* The pack-file cache's share of RLIMIT_NOFILE, measured once the daemon holds everything it keeps open
 * (stdio, the backing directory and its lock, the store and the trust store with their WAL and shm, the
 * state file, /dev/fuse, the control socket): what is left, less a few for the descriptors a commit or a
 * request opens for a moment, is the cache's. A limit that leaves too few is refused before the mount is
 * served, so that at any limit where the daemon serves at all, every commit can open what it needs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "meta/common/reason.h"
#include "meta/common/status.h"

/* Open for a moment at most at once: a directory of pack files to fsync, the components of a path walked
 * where openat2 is missing, the syslog socket, a remount request on the control socket. */
#define FS_FD_TRANSIENT 4

/* The descriptors this process has open (the one that counts them excluded). */
static long fds_in_use(rlim_t limit)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;
	if (d) {
		for (struct dirent *e; (e = readdir(d));)
			n += e->d_name[0] != '.';
		closedir(d);
		return n - 1;
	}
	for (rlim_t fd = 0; fd < limit && fd < 65536; fd++)
		n += fcntl((int)fd, F_GETFD) != -1;
	return n;
}

int fsv_fd_budget(fs_volume *v, unsigned later, char *err, size_t errlen)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > FS_MAX_PACK_FDS + FS_FD_RESERVE)
		return 0; /* room enough: vol_pack_fd_budget gave the cache its full size */
	long used = fds_in_use(rl.rlim_cur) + (long)later;
	long need = FS_FD_TRANSIENT + 1; /* and at least one pack file */
	long left = (long)rl.rlim_cur - used;
	if (left < need)
		return fs_reason(err, errlen, FS_ST_IO,
				 "the descriptor limit (ulimit -n) is %llu: the daemon keeps %ld open itself and needs %ld "
				 "more for pack files and commits; raise it to at least %ld",
				 (unsigned long long)rl.rlim_cur, used, need, used + need);
	size_t cache = (size_t)(left - FS_FD_TRANSIENT);
	pthread_mutex_lock(&v->lock);
	v->max_fds = cache < FS_MAX_PACK_FDS ? cache : FS_MAX_PACK_FDS;
	pthread_mutex_unlock(&v->lock);
	return 0;
}
