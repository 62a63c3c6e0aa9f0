/* Writing a small file of the backing directory whole: a crash leaves the old file or the new one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fs/volume/setup.h"
#include "meta/common/beneath.h"

int vol_write_file_checked(int dirfd, const char *name, const uint8_t *buf, size_t len,
			   int (*check)(void *ctx, int dirfd, const char *tmp), void *ctx)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fs_beneath_unlink(dirfd, tmp, 0); /* left by an interrupted write: never read */
	int fd = fs_beneath_open(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	int rc = 0;
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	if (close(fd) != 0 && !rc)
		rc = -errno;
	if (!rc && check)
		rc = check(ctx, dirfd, tmp);
	if (!rc)
		rc = fs_beneath_rename(dirfd, tmp, name);
	if (rc)
		fs_beneath_unlink(dirfd, tmp, 0);
	return rc ? rc : (fsync(dirfd) == 0 ? 0 : -errno);
}

int vol_write_file_durably(int dirfd, const char *name, const uint8_t *buf, size_t len)
{
	return vol_write_file_checked(dirfd, name, buf, len, NULL, NULL);
}
