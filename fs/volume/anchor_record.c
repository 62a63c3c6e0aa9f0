/* anchor.uri: the URI of the trust anchor a volume is bound to, beside volume.hdr, so that info and the
 * errors can name it (the header holds only the anchor's id). It is a hint for the operator and never
 * authenticated: the binding itself is the anchor id under the header MAC, and a changed anchor.uri can
 * only mislead where to look, never make another anchor accepted. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fs/volume/internal.h"
#include "fs/volume/setup.h"
#include "meta/common/beneath.h"

int vol_anchor_record_write(int dirfd, const char *uri)
{
	size_t n = strlen(uri);
	char buf[FS_ANCHOR_URI_MAX + 1];
	if (n >= FS_ANCHOR_URI_MAX)
		return -ENAMETOOLONG;
	memcpy(buf, uri, n);
	buf[n] = '\n';
	return vol_write_file_durably(dirfd, FS_ANCHOR_RECORD, (const uint8_t *)buf, n + 1);
}

int fsv_bound_anchor_uri(const char *dir, char *out, size_t outlen)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int fd = fs_beneath_open(dfd, FS_ANCHOR_RECORD, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	close(dfd);
	if (fd < 0)
		return fd;
	char buf[FS_ANCHOR_URI_MAX + 1];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -EIO : -ENODATA;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	/* Printed to a terminal: nothing but printable ASCII passes. */
	for (char *p = buf; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	if (!buf[0] || strlen(buf) >= outlen)
		return -ENODATA;
	strcpy(out, buf);
	return 0;
}
