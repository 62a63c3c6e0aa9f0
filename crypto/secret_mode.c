#include "crypto/secret_mode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static __thread char msg[4352];

int fs_secret_mode_check(int fd, const char *path, const char **why)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & (S_IRWXG | S_IRWXO)))
		return 0;
	snprintf(msg, sizeof(msg),
		 "permissions %04o are too open: group or others may read this secret; run chmod 600 %s "
		 "(and replace the secret if others may have read it)",
		 (unsigned)(st.st_mode & 07777), path);
	*why = msg;
	return -EPERM; /* not -EACCES: the file was readable, and is refused (a usage error, not an I/O one) */
}

int fs_secret_mode_check_path(const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	int rc = fs_secret_mode_check(fd, path, why);
	close(fd);
	return rc;
}
