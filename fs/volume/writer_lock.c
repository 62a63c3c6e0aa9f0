/* volume.lock: the advisory lock a read-write opener holds (docs/FORMAT.md section 1). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "fs/volume/setup.h"
#include "meta/common/beneath.h"
#include "meta/common/reason.h"

int vol_lock_writer(fs_volume *v, const char *busy, char *err, size_t errlen)
{
	v->lockfd = fs_beneath_open(v->dirfd, FS_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	struct stat lst;
	if (v->lockfd >= 0 && (fstat(v->lockfd, &lst) != 0 || !S_ISREG(lst.st_mode))) {
		close(v->lockfd);
		v->lockfd = -ELOOP;
	}
	if (v->lockfd < 0) {
		int e = -v->lockfd;
		v->lockfd = -1;
		return fs_reason(err, errlen, e == ELOOP ? FS_ST_TAMPER : FS_ST_IO, "%s/%s: %s", v->dir, FS_LOCK_NAME,
				 e == ELOOP ? "tamper detected: not a regular file (a planted symbolic link or device)"
					    : strerror(e));
	}
	if (flock(v->lockfd, LOCK_EX | LOCK_NB) != 0)
		return fs_reason(err, errlen, FS_ST_BUSY, busy, v->dir);
	return 0;
}
