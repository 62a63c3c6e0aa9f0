/* A minimal plain FUSE passthrough on the libfuse3 low-level API: the baseline that bench/fs-bench.sh
 * compares fshield with. It adds nothing but the FUSE round trips: every request goes to the same call
 * on the source directory.
 *
 *     passthrough_ll [--threads N] [--single] SOURCE MOUNTPOINT
 *
 * Stays in the foreground until unmounted (fusermount3 -u MOUNTPOINT, or SIGINT/SIGTERM).
 *
 * Design (as libfuse's passthrough_ll example): each inode the kernel knows is an O_PATH descriptor of
 * the source file, found again by (st_dev, st_ino) so that hard links share one, with a lookup count the
 * kernel's forgets bring down. The FUSE inode number is the address of that record. The kernel cache
 * settings are those fshield's daemon asks for (fs/fuse/ops.c), so that a comparison measures the work
 * behind the requests rather than a different caching policy: writeback cache, cached entries,
 * attributes and negative entries (60 s), pages kept across opens, cached listings. Runs multithreaded
 * (fuse_session_loop_mt) unless --single. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define FUSE_USE_VERSION 314
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TIMEOUT 60.0
#define NBUCKETS (1u << 16)

struct pt_inode {
	struct pt_inode *hnext;
	int fd; /* O_PATH */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;
};

struct pt {
	pthread_mutex_t mu;
	struct pt_inode root;
	struct pt_inode **table;
};

static struct pt *pt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct pt_inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &pt_of(req)->root;
	return (struct pt_inode *)(uintptr_t)ino;
}

static int fd_of(fuse_req_t req, fuse_ino_t ino)
{
	return inode_of(req, ino)->fd;
}

static size_t bucket(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
	return (size_t)(h >> 32) & (NBUCKETS - 1);
}

/* /proc/self/fd/N: how an O_PATH descriptor is reopened or changed by calls that take no descriptor. */
static void proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

static void reply_errno(fuse_req_t req, int ok)
{
	fuse_reply_err(req, ok ? 0 : errno);
}

/* Looks name up in parent; fills e and takes one lookup reference on the inode. Returns 0 or an errno. */
static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct pt *pt = pt_of(req);
	memset(e, 0, sizeof(*e));
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	int fd = openat(fd_of(req, parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
		int err = errno;
		close(fd);
		return err;
	}
	size_t b = bucket(e->attr.st_dev, e->attr.st_ino);
	pthread_mutex_lock(&pt->mu);
	struct pt_inode *ip;
	for (ip = pt->table[b]; ip; ip = ip->hnext)
		if (ip->ino == e->attr.st_ino && ip->dev == e->attr.st_dev)
			break;
	if (ip) {
		close(fd);
	} else {
		ip = calloc(1, sizeof(*ip));
		if (!ip) {
			pthread_mutex_unlock(&pt->mu);
			close(fd);
			return ENOMEM;
		}
		ip->fd = fd;
		ip->dev = e->attr.st_dev;
		ip->ino = e->attr.st_ino;
		ip->hnext = pt->table[b];
		pt->table[b] = ip;
	}
	ip->nlookup++;
	pthread_mutex_unlock(&pt->mu);
	e->ino = (fuse_ino_t)(uintptr_t)ip;
	return 0;
}

static void forget_one(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	struct pt *pt = pt_of(req);
	struct pt_inode *ip = inode_of(req, ino);
	if (ip == &pt->root)
		return;
	pthread_mutex_lock(&pt->mu);
	ip->nlookup = ip->nlookup > n ? ip->nlookup - n : 0;
	if (ip->nlookup == 0) {
		struct pt_inode **pp = &pt->table[bucket(ip->dev, ip->ino)];
		while (*pp && *pp != ip)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = ip->hnext;
		close(ip->fd);
		free(ip);
	}
	pthread_mutex_unlock(&pt->mu);
}

static void pt_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->want &= ~(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_HANDLE_KILLPRIV);
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	conn->time_gran = 1;
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = do_lookup(req, parent, name, &e);
	if (err == ENOENT) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = TIMEOUT; /* a negative entry the kernel may cache */
		fuse_reply_entry(req, &e);
	} else if (err) {
		fuse_reply_err(req, err);
	} else if (fuse_reply_entry(req, &e) != 0) {
		forget_one(req, e.ino, 1);
	}
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(req, ino, nlookup);
	fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(req, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	if (fstatat(fd_of(req, ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void pt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid, struct fuse_file_info *fi)
{
	struct pt_inode *ip = inode_of(req, ino);
	char path[64];
	int rc = 0;
	proc_path(path, sizeof(path), ip->fd);
	if (valid & FUSE_SET_ATTR_MODE)
		rc = fi ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
	if (!rc && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		rc = fchownat(ip->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (!rc && (valid & FUSE_SET_ATTR_SIZE))
		rc = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
	if (!rc && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (fi)
			rc = futimens((int)fi->fh, tv);
		else
			rc = utimensat(ip->fd, "", tv, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (rc != 0) {
		fuse_reply_err(req, errno);
		return;
	}
	pt_getattr(req, ino, fi);
}

static void pt_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(fd_of(req, ino), "", buf, sizeof(buf));
	if (n < 0) {
		fuse_reply_err(req, errno);
	} else if ((size_t)n >= sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
	} else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/* After a call that made name in parent: reply with its entry. */
static void reply_made(fuse_req_t req, fuse_ino_t parent, const char *name, int made)
{
	struct fuse_entry_param e;
	int err = made ? do_lookup(req, parent, name, &e) : errno;
	if (err)
		fuse_reply_err(req, err);
	else if (fuse_reply_entry(req, &e) != 0)
		forget_one(req, e.ino, 1);
}

static void pt_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	reply_made(req, parent, name, mknodat(fd_of(req, parent), name, mode, rdev) == 0);
}

static void pt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	reply_made(req, parent, name, mkdirat(fd_of(req, parent), name, mode) == 0);
}

static void pt_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	reply_made(req, parent, name, symlinkat(link, fd_of(req, parent), name) == 0);
}

static void pt_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	char path[64];
	proc_path(path, sizeof(path), fd_of(req, ino));
	reply_made(req, parent, name, linkat(AT_FDCWD, path, fd_of(req, parent), name, AT_SYMLINK_FOLLOW) == 0);
}

static void pt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_errno(req, unlinkat(fd_of(req, parent), name, 0) == 0);
}

static void pt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_errno(req, unlinkat(fd_of(req, parent), name, AT_REMOVEDIR) == 0);
}

static void pt_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	reply_errno(req, renameat2(fd_of(req, parent), name, fd_of(req, newparent), newname, flags) == 0);
}

/* With the writeback cache the kernel reads pages of files opened for writing only, and appends itself. */
static int open_flags(int flags)
{
	flags &= ~(O_NOFOLLOW | O_APPEND);
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags | O_CLOEXEC;
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char path[64];
	proc_path(path, sizeof(path), fd_of(req, ino));
	int fd = open(path, open_flags(fi->flags & ~O_CREAT));
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		close(fd);
}

static void pt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(fd_of(req, parent), name, open_flags(fi->flags) | O_CREAT, mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	struct fuse_entry_param e;
	int err = do_lookup(req, parent, name, &e);
	if (err) {
		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) != 0) {
		close(fd);
		forget_one(req, e.ino, 1);
	}
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void pt_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	(void)ino;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	ssize_t n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void pt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* close(2) of a duplicate: what a close of the caller's descriptor would report. */
	reply_errno(req, close(dup((int)fi->fh)) == 0);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void pt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	int fd = (int)fi->fh;
	reply_errno(req, (datasync ? fdatasync(fd) : fsync(fd)) == 0);
}

struct pt_dir {
	DIR *dp;
	off_t pos;
	struct dirent *pending; /* read but not yet returned (the reply buffer was full) */
};

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pt_dir *d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int fd = openat(fd_of(req, ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0) {
		closedir(d->dp);
		free(d);
	}
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->pos) {
		seekdir(d->dp, off);
		d->pending = NULL;
		d->pos = off;
	}
	for (;;) {
		struct dirent *de = d->pending;
		if (!de) {
			errno = 0;
			de = readdir(d->dp);
			if (!de) {
				if (errno && used == 0) {
					free(buf);
					fuse_reply_err(req, errno);
					return;
				}
				break;
			}
		}
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)de->d_type << 12;
		size_t n = fuse_add_direntry(req, buf + used, size - used, de->d_name, &st, de->d_off);
		if (n > size - used) {
			d->pending = de;
			break;
		}
		d->pending = NULL;
		used += n;
		d->pos = de->d_off;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void pt_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	int fd = dirfd(((struct pt_dir *)(uintptr_t)fi->fh)->dp);
	reply_errno(req, (datasync ? fdatasync(fd) : fsync(fd)) == 0);
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	if (fstatvfs(fd_of(req, ino), &st) != 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static void pt_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)ino;
	reply_errno(req, fallocate((int)fi->fh, mode, off, len) == 0);
}

/* Extended attributes through /proc/self/fd (an O_PATH descriptor takes no f*xattr call). Symlinks and
 * special files have none here. */
static int xattr_path(fuse_req_t req, fuse_ino_t ino, char *path, size_t size)
{
	struct pt_inode *ip = inode_of(req, ino);
	struct stat st;
	if (fstatat(ip->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return EOPNOTSUPP;
	proc_path(path, size, ip->fd);
	return 0;
}

static void reply_xattr(fuse_req_t req, size_t size, ssize_t n, char *buf)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char path[64], *buf = NULL;
	int err = xattr_path(req, ino, path, sizeof(path));
	if (err) {
		fuse_reply_err(req, err == EOPNOTSUPP ? ENODATA : err);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr(req, size, getxattr(path, name, buf, size), buf);
}

static void pt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char path[64], *buf = NULL;
	int err = xattr_path(req, ino, path, sizeof(path));
	if (err) {
		if (err == EOPNOTSUPP)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_err(req, err);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr(req, size, listxattr(path, buf, size), buf);
}

static void pt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	char path[64];
	int err = xattr_path(req, ino, path, sizeof(path));
	if (err)
		fuse_reply_err(req, err);
	else
		reply_errno(req, setxattr(path, name, value, size, flags) == 0);
}

static void pt_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[64];
	int err = xattr_path(req, ino, path, sizeof(path));
	if (err)
		fuse_reply_err(req, err);
	else
		reply_errno(req, removexattr(path, name) == 0);
}

static const struct fuse_lowlevel_ops pt_ops = {
	.init = pt_init,
	.lookup = pt_lookup,
	.forget = pt_forget,
	.forget_multi = pt_forget_multi,
	.getattr = pt_getattr,
	.setattr = pt_setattr,
	.readlink = pt_readlink,
	.mknod = pt_mknod,
	.mkdir = pt_mkdir,
	.symlink = pt_symlink,
	.link = pt_link,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.rename = pt_rename,
	.open = pt_open,
	.create = pt_create,
	.read = pt_read,
	.write_buf = pt_write_buf,
	.flush = pt_flush,
	.release = pt_release,
	.fsync = pt_fsync,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.releasedir = pt_releasedir,
	.fsyncdir = pt_fsyncdir,
	.statfs = pt_statfs,
	.fallocate = pt_fallocate,
	.getxattr = pt_getxattr,
	.listxattr = pt_listxattr,
	.setxattr = pt_setxattr,
	.removexattr = pt_removexattr,
};

static int usage(void)
{
	fprintf(stderr, "usage: passthrough_ll [--threads N] [--single] SOURCE MOUNTPOINT\n");
	return 64;
}

int main(int argc, char **argv)
{
	int single = 0, threads = 16, i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--single")) {
			single = 1;
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			threads = atoi(argv[++i]);
			if (threads < 1)
				return usage();
		} else {
			return usage();
		}
	}
	if (argc - i != 2)
		return usage();
	const char *source = argv[i], *mountpoint = argv[i + 1];

	static struct pt pt;
	pthread_mutex_init(&pt.mu, NULL);
	pt.table = calloc(NBUCKETS, sizeof(*pt.table));
	pt.root.fd = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	pt.root.nlookup = 2;
	if (!pt.table || pt.root.fd < 0) {
		fprintf(stderr, "passthrough_ll: %s: %s\n", source, strerror(errno));
		return 74;
	}

	char opts[PATH_MAX + 64];
	snprintf(opts, sizeof(opts), "fsname=passthrough,subtype=passthrough_ll,default_permissions");
	char *fargv[] = { argv[0], "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &pt_ops, sizeof(pt_ops), &pt);
	if (!se)
		return 74;
	int rc = 74;
	if (fuse_set_signal_handlers(se) != 0)
		goto destroy;
	if (fuse_session_mount(se, mountpoint) != 0)
		goto remove_handlers;
	if (single) {
		rc = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		if (!lc)
			goto unmount;
		fuse_loop_cfg_set_max_threads(lc, (unsigned)threads);
		fuse_loop_cfg_set_idle_threads(lc, (unsigned)(threads / 2 ? threads / 2 : 1));
		rc = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	rc = rc ? 74 : 0;
unmount:
	fuse_session_unmount(se);
remove_handlers:
	fuse_remove_signal_handlers(se);
destroy:
	fuse_session_destroy(se);
	return rc;
}
