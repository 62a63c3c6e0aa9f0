/* A file: trust store must live outside the backing directory: inside it, the adversary who owns the
 * directory could put back an older store together with an older volume, and no rollback would show. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "meta/common/reason.h"

/* The real directory that holds (or would hold) the store at path: its nearest existing ancestor. */
static int store_dir(const char *path)
{
	char d[PATH_MAX];
	if (strlen(path) >= sizeof(d))
		return -ENAMETOOLONG;
	char *r = realpath(path, NULL); /* an existing store may itself be a link: judge where it really is */
	snprintf(d, sizeof(d), "%s", r ? r : path);
	free(r);
	for (;;) {
		char *s = strrchr(d, '/');
		if (!s)
			return -EINVAL;
		if (s == d) {
			d[1] = 0;
		} else {
			*s = 0;
		}
		int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || s == d)
			return fd >= 0 ? fd : -errno;
	}
}

int vol_trust_outside(int dirfd, const char *dir, const char *uri, char *err, size_t errlen)
{
	if (strncmp(uri, "file:", 5))
		return 0;
	const char *path = uri + 5;
	if (!strncmp(path, "///", 3))
		path += 2;
	if (path[0] != '/')
		return 0; /* the anchor itself refuses it */
	struct stat back, st, up;
	if (fstat(dirfd, &back) != 0)
		return 0;
	int fd = store_dir(path);
	if (fd < 0)
		return 0; /* the anchor reports why it cannot be opened */
	int inside = 0;
	/* Up through ".." to the root: the backing directory must not be among the store's ancestors. */
	while (fstat(fd, &st) == 0) {
		if (st.st_dev == back.st_dev && st.st_ino == back.st_ino) {
			inside = 1;
			break;
		}
		int p = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (p < 0 || fstat(p, &up) != 0 || (up.st_dev == st.st_dev && up.st_ino == st.st_ino)) {
			if (p >= 0)
				close(p);
			break;
		}
		close(fd);
		fd = p;
	}
	close(fd);
	if (inside)
		return fs_reason(err, errlen, FS_ST_ANCHOR,
				 "trust store %s is inside the backing directory %s, where whoever controls the directory could "
				 "roll it back with the volume; keep the trust store elsewhere (the default is %s)",
				 path, dir, fs_anchor_default_uri(NULL));
	return 0;
}
