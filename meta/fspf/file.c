/* The protection file on disk: reading it whole (bounded), loading it, and replacing it atomically. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/common/status.h"
#include "meta/fspf/internal.h"

int fspf_read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	int st = FS_ST_IO;
	uint8_t *b = NULL;
	size_t n = 0, got = 0;
	struct stat sb;
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		fspf_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > FSPF_MAX_BODY + FSPF_SEAL_HDR + 16) {
		fspf_seterr(err, errlen, "%s: not an fspf (not a regular file, or too large)", path);
		st = FS_ST_TAMPER;
		goto out;
	}
	n = (size_t)sb.st_size;
	if (!(b = malloc(n ? n : 1))) {
		fspf_seterr(err, errlen, "out of memory");
		goto out;
	}
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != n) {
		fspf_seterr(err, errlen, "%s: cannot read it whole", path);
		free(b);
		goto out;
	}
	*out = b;
	*len = n;
	st = FS_OK;
out:
	if (fd >= 0)
		close(fd);
	return st;
}

int fspf_load(const char *path, const uint8_t *key, const uint8_t *tag, fspf **out, char *err, size_t errlen)
{
	uint8_t *b;
	size_t n;
	*out = NULL;
	int rc = fspf_read_file(path, &b, &n, err, errlen);
	if (rc != FS_OK)
		return rc;
	rc = fspf_parse_file(b, n, key, tag, out, err, errlen);
	sodium_memzero(b, n);
	free(b);
	if (rc != FS_OK && err && errlen) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		snprintf(err, errlen, "%s", tmp);
	}
	return rc;
}

int fspf_full_write(int fd, const void *buf, size_t n)
{
	const uint8_t *b = buf;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int fspf_write_file(const char *path, const uint8_t *b, size_t n, char *err, size_t errlen)
{
	char tmp[4200], dir[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		fspf_seterr(err, errlen, "%s: path too long", path);
		return FS_ST_USAGE;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fspf_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		return FS_ST_IO;
	}
	int e = -fspf_full_write(fd, b, n);
	if (!e && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e) {
		unlink(tmp);
		fspf_seterr(err, errlen, "%s: %s", path, strerror(e));
		return FS_ST_IO;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return FS_OK;
}
