/* Replacing volume.hdr of an existing volume (a new key wrapping, a new trust anchor binding): the new
 * header is written whole beside the old one, read back and opened with the key that must open it, and
 * only then renamed over it. A crash leaves the old header or the new one, never a mix. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "fs/volume/setup.h"
#include "meta/common/beneath.h"
#include "meta/common/reason.h"

struct written {
	fs_volume *v;
	const fs_volume_opts *check;
	char *err;
	size_t errlen;
};

/* Reads the written copy back and checks that the key options of check open it to the same master key. */
static int check_written(void *ctx, int dirfd, const char *tmp)
{
	struct written *w = ctx;
	fs_volume *v = w->v;
	uint8_t raw[FS_HDR_BYTES + 1];
	int fd = fs_beneath_open(dirfd, tmp, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fs_reason(w->err, w->errlen, FS_ST_IO, "%s/%s: %s", v->dir, tmp, strerror(-fd));
	ssize_t n = read(fd, raw, sizeof(raw));
	int e = errno;
	close(fd);
	fs_volume *t = vol_new();
	if (!t || !(t->keys = t->k_master = fs_key_alloc())) {
		vol_destroy(t);
		return fs_reason(w->err, w->errlen, FS_ST_IO, "out of memory");
	}
	char why[200];
	int st = 0;
	if (n < 0 || fs_header_parse(raw, (size_t)n, &t->hdr, why, sizeof(why)) != 0)
		st = fs_reason(w->err, w->errlen, FS_ST_IO, "the new header does not read back: %s", n < 0 ? strerror(e) : why);
	else if ((st = vol_get_master(t, w->check, 0, w->err, w->errlen)) != 0)
		;
	else if (fs_header_authenticate(raw, &t->hdr, t->k_master) != FS_HDR_AUTH_OK ||
		 !fs_ct_eq(t->k_master, v->k_master, 32))
		st = fs_reason(w->err, w->errlen, FS_ST_IO, "the new header does not open with the new key");
	vol_destroy(t);
	return st;
}

int vol_header_replace(fs_volume *v, const fs_volume_opts *check, char *err, size_t errlen)
{
	uint8_t buf[FS_HDR_BYTES];
	fs_header_encode(&v->hdr, v->k_master, buf);
	struct written w = { v, check, err, errlen };
	int rc = vol_write_file_checked(v->dirfd, FS_HDR_NAME, buf, sizeof(buf), check_written, &w);
	if (rc < 0)
		return fs_reason(err, errlen, FS_ST_IO, "%s/%s: %s", v->dir, FS_HDR_NAME, strerror(-rc));
	return rc;
}
