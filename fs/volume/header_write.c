/* Replacing volume.hdr of an existing volume (a new key wrapping, a new trust anchor binding): the new
 * header is written whole beside the old one, read back and opened with the key that must open it, and
 * only then renamed over it. A crash leaves the old header or the new one, never a mix. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "fs/volume/setup.h"
#include "meta/common/reason.h"

#define TMP_NAME FS_HDR_NAME ".tmp"

/* Reads TMP_NAME back and checks that the key options of check open it to the same master key. */
static int check_written(fs_volume *v, const fs_volume_opts *check, char *err, size_t errlen)
{
	uint8_t raw[FS_HDR_BYTES + 1];
	int fd = openat(v->dirfd, TMP_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", v->dir, TMP_NAME, strerror(errno));
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	fs_volume *t = vol_new();
	if (!t || !(t->keys = t->k_master = fs_key_alloc())) {
		vol_destroy(t);
		return fs_reason(err, errlen, FS_ST_IO, "out of memory");
	}
	char why[200];
	int st = 0;
	if (n < 0 || fs_header_parse(raw, (size_t)n, &t->hdr, why, sizeof(why)) != 0)
		st = fs_reason(err, errlen, FS_ST_IO, "the new header does not read back: %s", n < 0 ? strerror(errno) : why);
	else if ((st = vol_get_master(t, check, 0, err, errlen)) != 0)
		;
	else if (fs_header_authenticate(raw, &t->hdr, t->k_master) != FS_HDR_AUTH_OK ||
		 !fs_ct_eq(t->k_master, v->k_master, 32))
		st = fs_reason(err, errlen, FS_ST_IO, "the new header does not open with the new key");
	vol_destroy(t);
	return st;
}

int vol_header_replace(fs_volume *v, const fs_volume_opts *check, char *err, size_t errlen)
{
	uint8_t buf[FS_HDR_BYTES];
	fs_header_encode(&v->hdr, v->k_master, buf);
	unlinkat(v->dirfd, TMP_NAME, 0); /* left by an interrupted replacement: never read */
	int fd = openat(v->dirfd, TMP_NAME, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", v->dir, TMP_NAME, strerror(errno));
	int bad = write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) != 0;
	int e = errno ? errno : EIO;
	bad = close(fd) != 0 || bad;
	int st = bad ? fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", v->dir, TMP_NAME, strerror(e))
		     : check_written(v, check, err, errlen);
	if (!st && renameat(v->dirfd, TMP_NAME, v->dirfd, FS_HDR_NAME) != 0)
		st = fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", v->dir, FS_HDR_NAME, strerror(errno));
	if (st)
		unlinkat(v->dirfd, TMP_NAME, 0);
	if (fsync(v->dirfd) != 0 && !st)
		st = fs_reason(err, errlen, FS_ST_IO, "%s: fsync: %s", v->dir, strerror(errno));
	return st;
}

int vol_lock_writer(fs_volume *v, char *err, size_t errlen)
{
	v->lockfd = openat(v->dirfd, FS_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (v->lockfd < 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", v->dir, FS_LOCK_NAME, strerror(errno));
	if (flock(v->lockfd, LOCK_EX | LOCK_NB) != 0)
		return fs_reason(err, errlen, FS_ST_BUSY, "the volume in %s is mounted read-write: unmount it first", v->dir);
	return 0;
}
