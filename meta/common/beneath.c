#include "meta/common/beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* 0: try openat2; 1: the kernel has none (ENOSYS once), or a test asked for the walk. */
static atomic_int use_walk;

void fs_beneath_force_walk(int on)
{
	atomic_store(&use_walk, on);
}

#ifdef FS_TEST_HOOKS
/* Test builds: FSHIELD_TEST_NO_OPENAT2=1 makes a whole program take the walk, as on an old kernel. */
__attribute__((constructor)) static void walk_from_env(void)
{
	const char *e = getenv("FSHIELD_TEST_NO_OPENAT2");
	if (e && !strcmp(e, "1"))
		atomic_store(&use_walk, 1);
}
#endif

/* 0, or -EINVAL for a path that is not plain names, -EXDEV for one that climbs out with "..". */
static int check_rel(const char *rel)
{
	if (!rel || !*rel || *rel == '/')
		return -EINVAL;
	if (strlen(rel) >= PATH_MAX)
		return -ENAMETOOLONG;
	for (const char *p = rel; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EXDEV;
		if (n == 0 || (n == 1 && p[0] == '.'))
			return -EINVAL;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return -EINVAL; /* trailing '/' */
	}
	return 0;
}

static int walk_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	char comp[NAME_MAX + 1];
	int cur = dirfd;
	const char *p = rel;
	for (;;) {
		const char *e = strchr(p, '/');
		if (!e)
			break;
		size_t n = (size_t)(e - p);
		if (n > NAME_MAX) {
			if (cur != dirfd)
				close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int err = errno;
		if (cur != dirfd)
			close(cur);
		if (next < 0)
			return -err;
		cur = next;
		p = e + 1;
	}
	int fd = openat(cur, p, flags | O_NOFOLLOW, mode);
	int err = errno;
	if (cur != dirfd)
		close(cur);
	return fd >= 0 ? fd : -err;
}

/* A directory open of a link fails with ENOTDIR: say ELOOP when a component is a link, so that every
 * planted link reads the same. Only looks (each prefix was already found to be no link). */
static int link_or_notdir(int dirfd, const char *rel)
{
	char pre[PATH_MAX];
	size_t len = strlen(rel);
	memcpy(pre, rel, len + 1);
	for (size_t i = 0; i <= len; i++) {
		if (pre[i] != '/' && pre[i] != 0)
			continue;
		char c = pre[i];
		pre[i] = 0;
		struct stat st;
		int r = fstatat(dirfd, pre, &st, AT_SYMLINK_NOFOLLOW);
		pre[i] = c;
		if (r != 0)
			break;
		if (S_ISLNK(st.st_mode))
			return -ELOOP;
		if (!S_ISDIR(st.st_mode))
			break;
	}
	return -ENOTDIR;
}

int fs_beneath_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	int bad = check_rel(rel);
	if (bad)
		return bad;
	int fd = -ENOSYS;
	if (!atomic_load(&use_walk)) {
		struct open_how how = { .flags = (unsigned long long)(flags | O_NOFOLLOW),
					.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
					.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
		long r = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		fd = r >= 0 ? (int)r : -errno;
		if (fd == -ENOSYS)
			atomic_store(&use_walk, 1);
	}
	if (fd == -ENOSYS)
		fd = walk_open(dirfd, rel, flags, mode);
	if (fd == -ENOTDIR)
		return link_or_notdir(dirfd, rel);
	struct stat st;
	if (fd >= 0 && (flags & O_PATH) && (fstat(fd, &st) != 0 || S_ISLNK(st.st_mode))) {
		close(fd); /* O_PATH | O_NOFOLLOW gives the link itself: refused like any other link */
		return -ELOOP;
	}
	return fd;
}

int fs_beneath_parent(int dirfd, const char *rel, const char **last)
{
	int bad = check_rel(rel);
	if (bad)
		return bad;
	const char *s = strrchr(rel, '/');
	if (!s) {
		*last = rel;
		return dirfd;
	}
	char dir[PATH_MAX];
	memcpy(dir, rel, (size_t)(s - rel));
	dir[s - rel] = 0;
	*last = s + 1;
	return fs_beneath_open(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
}

void fs_beneath_close(int dirfd, int fd)
{
	if (fd >= 0 && fd != dirfd)
		close(fd);
}

int fs_beneath_mkdir(int dirfd, const char *rel, mode_t mode)
{
	const char *last;
	int p = fs_beneath_parent(dirfd, rel, &last);
	if (p < 0)
		return p;
	int rc = mkdirat(p, last, mode) == 0 ? 0 : -errno;
	fs_beneath_close(dirfd, p);
	return rc;
}

int fs_beneath_unlink(int dirfd, const char *rel, int flags)
{
	const char *last;
	int p = fs_beneath_parent(dirfd, rel, &last);
	if (p < 0)
		return p;
	int rc = unlinkat(p, last, flags) == 0 ? 0 : -errno;
	fs_beneath_close(dirfd, p);
	return rc;
}

int fs_beneath_rename(int dirfd, const char *from, const char *to)
{
	const char *lf, *lt;
	int pf = fs_beneath_parent(dirfd, from, &lf);
	if (pf < 0)
		return pf;
	int pt = fs_beneath_parent(dirfd, to, &lt);
	if (pt < 0) {
		fs_beneath_close(dirfd, pf);
		return pt;
	}
	int rc = renameat(pf, lf, pt, lt) == 0 ? 0 : -errno;
	fs_beneath_close(dirfd, pf);
	fs_beneath_close(dirfd, pt);
	return rc;
}

int fs_beneath_stat(int dirfd, const char *rel, struct stat *st)
{
	const char *last;
	int p = fs_beneath_parent(dirfd, rel, &last);
	if (p < 0)
		return p;
	int rc = fstatat(p, last, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
	fs_beneath_close(dirfd, p);
	return rc;
}

int fs_beneath_check_plain(int dirfd, const char *rel)
{
	struct stat st;
	int rc = fs_beneath_stat(dirfd, rel, &st);
	if (rc)
		return rc;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	return st.st_nlink == 1 ? 0 : -EMLINK;
}
