/* fhandle: file handles from the command line (name_to_handle_at / open_by_handle_at).
 *   fhandle get PATH HANDLEFILE       stores PATH's handle (mount id not needed) in HANDLEFILE
 *   fhandle open MOUNTPOINT HANDLEFILE  opens the handle on the file system at MOUNTPOINT and prints
 *                                      "ino N" and, for a regular file, its first 64 bytes
 * Exit 0; 2 with "errno NAME" on standard output when open_by_handle_at fails; 1 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOOL_NAME "fhandle"
#include "tests/tools/die.h"

static const char *errname(int e)
{
	switch (e) {
	case ESTALE: return "ESTALE";
	case ENOENT: return "ENOENT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4)
		die(1, "usage: fhandle get PATH HANDLEFILE | fhandle open MOUNTPOINT HANDLEFILE");
	static union {
		struct file_handle fh;
		char bytes[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} hb;
	struct file_handle *fh = &hb.fh;
	if (!strcmp(argv[1], "get")) {
		int mount_id;
		fh->handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(AT_FDCWD, argv[2], fh, &mount_id, 0) != 0)
			die(1, "name_to_handle_at %s: %s", argv[2], strerror(errno));
		FILE *f = fopen(argv[3], "wb");
		if (!f || fwrite(fh, sizeof(*fh) + fh->handle_bytes, 1, f) != 1 || fclose(f) != 0)
			die(1, "%s: %s", argv[3], strerror(errno));
		return 0;
	}
	if (strcmp(argv[1], "open"))
		die(1, "unknown command %s", argv[1]);
	FILE *f = fopen(argv[3], "rb");
	if (!f)
		die(1, "%s: %s", argv[3], strerror(errno));
	size_t n = fread(fh, 1, sizeof(*fh) + MAX_HANDLE_SZ, f);
	fclose(f);
	if (n < sizeof(*fh) || n != sizeof(*fh) + fh->handle_bytes)
		die(1, "%s: not a handle", argv[3]);
	int mfd = open(argv[2], O_RDONLY | O_DIRECTORY);
	if (mfd < 0)
		die(1, "%s: %s", argv[2], strerror(errno));
	int fd = open_by_handle_at(mfd, fh, O_RDONLY);
	if (fd < 0) {
		printf("errno %s\n", errname(errno));
		return 2;
	}
	struct stat st;
	if (fstat(fd, &st) != 0)
		die(1, "fstat: %s", strerror(errno));
	printf("ino %llu\n", (unsigned long long)st.st_ino);
	if (S_ISREG(st.st_mode)) {
		char buf[65];
		ssize_t r = read(fd, buf, 64);
		if (r < 0)
			die(1, "read: %s", strerror(errno));
		buf[r] = '\0';
		printf("%s", buf);
	}
	return 0;
}
