/* Low-level FUSE operations over the volume library. Every handler maps its request onto one or a few
 * fsv_* calls and replies with their result; the library returns -errno, which goes to fuse_reply_err
 * unchanged (a failed volume answers EIO on reads and EROFS on changes by itself).
 *
 * Caching: this daemon is the only way into the volume while it is mounted, so the kernel may cache
 * entries, attributes, directory listings, symlinks and file pages for long (keep_cache); writes go
 * through (no writeback cache), so that their errors reach the program that wrote; what the daemon
 * itself changes behind the cache (direct writes, access times) it invalidates.
 * Locks (POSIX and flock) are left to the kernel's local handling. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/fuse/tbuf.h"
#include "fs/fuse/ops.h"
#include "meta/common/vec.h"

static struct fsd_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void attr_to_stat(const struct fsd_fs *fs, const fs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_rdev = a->rdev;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = fs->blksize;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

static void fill_entry(const struct fsd_fs *fs, const fs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = a->gen;
	attr_to_stat(fs, a, &e->attr);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
}

/* Replies with a new lookup reference; gives it back if the kernel never got it (interrupted request). */
static void reply_entry(fuse_req_t req, const fs_attr *a)
{
	struct fsd_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	fill_entry(fs, a, &e);
	if (fuse_reply_entry(req, &e) != 0)
		fsv_forget(fs->v, a->ino, 1);
}

static void reply_status(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static int bad_name(const char *name)
{
	return strlen(name) > FS_NAME_MAX;
}

/* Owner and mode of a new inode: the caller's ids, but the group of a set-group-ID parent directory,
 * whose new subdirectories inherit the bit (as on local filesystems). */
static void new_owner(fuse_req_t req, uint64_t parent, int is_dir, uint32_t *mode, uint32_t *uid, uint32_t *gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	fs_attr pa;
	*uid = ctx->uid;
	*gid = ctx->gid;
	if (fsv_getattr(fs_of(req)->v, parent, &pa) == 0 && (pa.mode & S_ISGID)) {
		*gid = pa.gid;
		if (is_dir)
			*mode |= S_ISGID;
	}
}


static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fsd_fs *fs = userdata;
	/* No writeback cache: with it write(2) only fills the kernel's cache, and an error of the volume (a
	 * full backing store: ENOSPC) would come at writeback, seen by no program. Every write reaches the
	 * volume, which holds it in memory until it is sealed. */
	(void)fs;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Nothing changes a file behind the kernel's back, so cached pages need no revalidation; and the
	 * kernel, not the volume, clears set-user-ID bits on write and chown. */
	conn->want &= ~(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_HANDLE_KILLPRIV);
	/* POSIX and flock locks stay local to this kernel (no getlk/setlk/flock handlers). */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	conn->time_gran = 1;
	/* File handles (name_to_handle_at, NFS export): node ids are the volume's inode numbers, stable across
	 * mounts, with their generation; the kernel finds a forgotten inode by looking up "." and "..". */
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fsd_fs *fs = fs_of(req);
	fs_attr a;
	if (bad_name(name)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	int rc = fsv_lookup(fs->v, parent, name, &a);
	if (rc == -ENOENT) {
		/* A negative entry the kernel may cache: names appear only through this mount. */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0) {
		reply_status(req, rc);
		return;
	}
	reply_entry(req, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fsv_forget(fs_of(req)->v, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fsd_fs *fs = fs_of(req);
	for (size_t i = 0; i < count; i++)
		fsv_forget(fs->v, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct fsd_fs *fs = fs_of(req);
	fs_attr a;
	struct stat st;
	int rc = fsv_getattr(fs->v, ino, &a);
	if (rc < 0) {
		reply_status(req, rc);
		return;
	}
	attr_to_stat(fs, &a, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	(void)fi;
	struct fsd_fs *fs = fs_of(req);
	fs_attr in, out;
	struct timespec now;
	int valid = 0;
	memset(&in, 0, sizeof(in));
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE) {
		in.mode = attr->st_mode;
		valid |= FS_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		in.uid = attr->st_uid;
		valid |= FS_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		in.gid = attr->st_gid;
		valid |= FS_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		in.size = (uint64_t)attr->st_size;
		valid |= FS_SET_SIZE;
	}
	/* UTIME_NOW is resolved here, with the same clock as everything else the kernel stamps. */
	if (to_set & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_ATIME)) {
		in.atime = to_set & FUSE_SET_ATTR_ATIME_NOW ? now : attr->st_atim;
		valid |= FS_SET_ATIME;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_MTIME)) {
		in.mtime = to_set & FUSE_SET_ATTR_MTIME_NOW ? now : attr->st_mtim;
		valid |= FS_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		in.ctime = attr->st_ctim;
		valid |= FS_SET_CTIME;
	}
	int rc = fsv_setattr(fs->v, ino, &in, valid, &out);
	if (rc < 0) {
		reply_status(req, rc);
		return;
	}
	struct stat st;
	attr_to_stat(fs, &out, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fsd_fs *fs = fs_of(req);
	char small[PATH_MAX + 1], *buf = small;
	size_t cap = PATH_MAX;
	int rc = fsv_readlink(fs->v, ino, buf, cap);
	if (rc > (int)cap) { /* longer than any path the kernel would have stored; read it whole anyway */
		cap = (size_t)rc;
		buf = malloc(cap + 1);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		rc = fsv_readlink(fs->v, ino, buf, cap);
		if (rc > (int)cap)
			rc = -EIO;
	}
	if (rc < 0) {
		reply_status(req, rc);
	} else {
		buf[rc] = '\0';
		fuse_reply_readlink(req, buf);
	}
	if (buf != small)
		free(buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fsd_fs *fs = fs_of(req);
	uint32_t m = mode, uid, gid;
	fs_attr a;
	if (bad_name(name)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	new_owner(req, parent, 0, &m, &uid, &gid);
	int rc = fsv_mknod(fs->v, parent, name, m, rdev, uid, gid, &a);
	if (rc < 0)
		reply_status(req, rc);
	else
		reply_entry(req, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fsd_fs *fs = fs_of(req);
	uint32_t m = (mode & 07777) | S_IFDIR, uid, gid;
	fs_attr a;
	if (bad_name(name)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	new_owner(req, parent, 1, &m, &uid, &gid);
	int rc = fsv_mkdir(fs->v, parent, name, m, uid, gid, &a);
	if (rc < 0)
		reply_status(req, rc);
	else
		reply_entry(req, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fsd_fs *fs = fs_of(req);
	uint32_t m = 0, uid, gid;
	fs_attr a;
	if (bad_name(name)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	new_owner(req, parent, 0, &m, &uid, &gid);
	int rc = fsv_symlink(fs->v, parent, name, link, uid, gid, &a);
	if (rc < 0)
		reply_status(req, rc);
	else
		reply_entry(req, &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, fsv_unlink(fs_of(req)->v, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, fsv_rmdir(fs_of(req)->v, parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (bad_name(newname)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	reply_status(req, fsv_rename(fs_of(req)->v, parent, name, newparent, newname, flags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fs_attr a;
	if (bad_name(newname)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	int rc = fsv_link(fs_of(req)->v, ino, newparent, newname, &a);
	if (rc < 0)
		reply_status(req, rc);
	else
		reply_entry(req, &a);
}

/* Access times, as the mount's atime option says (fsv_accessed); never on a read-only mount. */
static int atime_due(struct fsd_fs *fs, fuse_ino_t ino, int update)
{
	if (fs->ro || __atomic_load_n(&fs->remount_ro, __ATOMIC_ACQUIRE))
		return 0;
	return fsv_accessed(fs->v, ino, __atomic_load_n(&fs->atime, __ATOMIC_RELAXED), update);
}

/* A read that changed the access time: the kernel's cached attributes must show it. */
static void accessed(struct fsd_fs *fs, fuse_ino_t ino)
{
	if (atime_due(fs, ino, 1) == 1 && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

/* Opens ino for fi; truncates it when asked (atomic O_TRUNC). On failure nothing stays open. */
static int open_file(struct fsd_fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	/* With the writeback cache a write(2) only fills the kernel's cache and would fail later, at writeback,
	 * unseen by most programs: on a read-only volume (after a violation) opening for writing fails at once,
	 * as on any read-only file system. */
	int rc = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) ? fsv_check_writable(fs->v) : 0;
	if (rc < 0)
		return rc;
	rc = fsv_open_file(fs->v, ino);
	if (rc < 0)
		return rc;
	if (fi->flags & O_TRUNC) { /* Linux truncates even when opened for reading only */
		fs_attr in, out;
		memset(&in, 0, sizeof(in));
		rc = fsv_setattr(fs->v, ino, &in, FS_SET_SIZE, &out);
		if (rc < 0) {
			fsv_release(fs->v, ino);
			return rc;
		}
	}
	fi->fh = (fi->flags & O_ACCMODE) != O_RDONLY; /* a writer: its close reports changes lost (op_flush) */
	/* Pages cached by an earlier open are still valid: only this mount writes, and what a direct write
	 * replaces is dropped from the cache before it returns (op_write). */
	fi->keep_cache = 1;
	/* Reads served from the kernel's cache never reach the daemon: when a read is due to change the access
	 * time, the cache goes, so that the first read comes here (op_read). */
	if ((fi->flags & O_ACCMODE) != O_WRONLY && atime_due(fs, ino, 0) == 1)
		fi->keep_cache = 0;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsd_fs *fs = fs_of(req);
	int rc = open_file(fs, ino, fi);
	if (rc < 0) {
		reply_status(req, rc);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		fsv_release(fs->v, ino); /* interrupted: no release will come */
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct fsd_fs *fs = fs_of(req);
	uint32_t m = (mode & 07777) | S_IFREG, uid, gid;
	fs_attr a;
	if (bad_name(name)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	new_owner(req, parent, 0, &m, &uid, &gid);
	int rc = fsv_mknod(fs->v, parent, name, m, 0, uid, gid, &a);
	if (rc == -EEXIST && !(fi->flags & O_EXCL)) {
		/* Created meanwhile by someone else: open what is there, as open(2) with O_CREAT would. */
		rc = fsv_lookup(fs->v, parent, name, &a);
		if (rc == 0 && !S_ISREG(a.mode)) {
			fsv_forget(fs->v, a.ino, 1);
			rc = S_ISDIR(a.mode) ? -EISDIR : -EEXIST;
		}
	} else {
		fi->flags &= ~O_TRUNC; /* new and empty */
	}
	if (rc < 0) {
		reply_status(req, rc);
		return;
	}
	rc = open_file(fs, a.ino, fi);
	if (rc < 0) {
		fsv_forget(fs->v, a.ino, 1);
		reply_status(req, rc);
		return;
	}
	if (fi->flags & O_TRUNC)
		(void)fsv_getattr(fs->v, a.ino, &a);
	struct fuse_entry_param e;
	fill_entry(fs, &a, &e);
	if (fuse_reply_create(req, &e, fi) != 0) {
		fsv_release(fs->v, a.ino);
		fsv_forget(fs->v, a.ino, 1);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	char *buf = fuse_thread_buf(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct fsd_fs *fs = fs_of(req);
	ssize_t n = fsv_read(fs->v, ino, buf, size, (uint64_t)off);
	if (n >= 0)
		accessed(fs, ino);
	if (n < 0)
		reply_status(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* A direct (O_DIRECT) write bypasses the kernel's page cache, and the kernel drops the pages it replaced
 * only for synchronous ones: after an asynchronous one, and after a buffered read that raced with it, old
 * pages would stay cached (keep_cache) and be served. So the written range is invalidated here, after the
 * volume has the new data and before the write is answered: once it returns, no read sees the old data. */
static void invalidate_direct(struct fsd_fs *fs, fuse_ino_t ino, off_t off, size_t n)
{
	if (!fs->se || n == 0)
		return;
	/* Widened to 2 MiB boundaries, the largest folio the page cache keeps file pages in: a folio that
	 * straddles the written range's edge was seen to survive an invalidation of the range alone. */
	const off_t big = 2 << 20;
	off_t from = off & ~(big - 1), to = ((off + (off_t)n + big - 1) & ~(big - 1));
	int rc, tries = 0;
	do /* the kernel's answer to the notification may be interrupted: the pages must still go */
		rc = fuse_lowlevel_notify_inval_inode(fs->se, ino, from, to - from);
	while ((rc == -EINTR || rc == -EAGAIN) && ++tries < 5);
	if (rc < 0 && rc != -ENOENT) /* -ENOENT: the kernel holds no such inode, nothing cached */
		fs_log(LOG_WARNING, "inode %llu: cannot drop cached pages after a direct write: %s",
		       (unsigned long long)ino, strerror(-rc));
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fsd_fs *fs = fs_of(req);
	ssize_t n = fsv_write(fs->v, ino, buf, size, (uint64_t)off);
	if (n > 0 && !fi->writepage && (fi->flags & O_DIRECT))
		invalidate_direct(fs, ino, off, (size_t)n);
	if (n < 0)
		reply_status(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsd_fs *fs = fs_of(req);
	reply_status(req, fs->ro || !fs->v ? 0 : fsv_flush(fs->v, ino, fi->fh == 1));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	fsv_release(fs_of(req)->v, ino);
	fuse_reply_err(req, 0);
}

/* fsync, fdatasync and fsyncdir: everything written so far becomes durable and committed. */
static void commit_reply(fuse_req_t req)
{
	struct fsd_fs *fs = fs_of(req);
	reply_status(req, fs->ro ? 0 : fsv_commit(fs->v));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	commit_reply(req);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* Listings may stay cached: the kernel drops them itself when it changes the directory. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

struct dir_fill {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int dir_fill(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next_off)
{
	struct dir_fill *d = ctx;
	struct stat st;
	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = mode;
	size_t n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st, (off_t)next_off);
	if (n > d->size - d->used)
		return 1;
	d->used += n;
	return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct dir_fill d = { req, malloc(size ? size : 1), size, 0 };
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = fsv_readdir(fs_of(req)->v, ino, (uint64_t)off, dir_fill, &d);
	if (rc < 0 && d.used == 0)
		reply_status(req, rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

/* readdirplus: the listing is gathered first (fsv_readdir holds the volume lock while it calls back),
 * then each entry is looked up, which counts the lookup reference the kernel will forget. */
struct plus_ent {
	uint64_t ino, next_off;
	uint32_t mode;
	char name[FS_NAME_MAX + 1];
};
struct plus_fill {
	fuse_req_t req;
	struct plus_ent *ents;
	size_t n, cap, size, used;
};

static int plus_fill(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next_off)
{
	struct plus_fill *p = ctx;
	size_t len = strlen(name);
	size_t need = fuse_add_direntry_plus(p->req, NULL, 0, name, NULL, 0);
	if (len > FS_NAME_MAX || p->used + need > p->size)
		return 1;
	struct plus_ent e = { .ino = ino, .next_off = next_off, .mode = mode };
	memcpy(e.name, name, len + 1);
	if (VEC_PUSH(p->ents, p->n, p->cap, e) != 0)
		return 1;
	p->used += need;
	return 0;
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct fsd_fs *fs = fs_of(req);
	struct plus_fill p = { req, NULL, 0, 0, size, 0 };
	char *buf = malloc(size ? size : 1);
	size_t used = 0;
	int rc = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Repeats only when every gathered entry vanished before its lookup: an empty reply means the end. */
	while (used == 0) {
		p.n = 0;
		p.used = 0;
		rc = fsv_readdir(fs->v, ino, (uint64_t)off, plus_fill, &p);
		if (rc < 0 || p.n == 0)
			break;
		for (size_t i = 0; i < p.n; i++) {
			struct plus_ent *pe = &p.ents[i];
			struct fuse_entry_param e;
			fs_attr a;
			int counted = 0;
			off = (off_t)pe->next_off;
			if (!strcmp(pe->name, ".") || !strcmp(pe->name, "..")) {
				/* The kernel takes no reference for these; ino 0 sends no attributes. */
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = pe->ino;
				e.attr.st_mode = pe->mode;
			} else if (fsv_lookup(fs->v, ino, pe->name, &a) == 0) {
				fill_entry(fs, &a, &e);
				counted = 1;
			} else {
				continue;
			}
			size_t n = fuse_add_direntry_plus(req, buf + used, size - used, pe->name, &e, (off_t)pe->next_off);
			if (n > size - used) {
				if (counted)
					fsv_forget(fs->v, a.ino, 1);
				break;
			}
			used += n;
		}
	}
	if (rc < 0 && used == 0)
		reply_status(req, rc);
	else
		fuse_reply_buf(req, buf, used);
	free(p.ents);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	commit_reply(req);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs st;
	memset(&st, 0, sizeof(st));
	int rc = fsv_statfs(fs_of(req)->v, &st);
	if (rc < 0)
		reply_status(req, rc);
	else
		fuse_reply_statfs(req, &st);
}

/* POSIX ACLs are not supported: the kernel would not enforce them (no FUSE_CAP_POSIX_ACL). */
static int is_acl(const char *name)
{
	return !strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default");
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	if (is_acl(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	reply_status(req, fsv_setxattr(fs_of(req)->v, ino, name, value, size, flags));
}

static void reply_xattr_data(fuse_req_t req, size_t size, ssize_t (*get)(fuse_req_t, void *, size_t, const void *),
			     const void *arg)
{
	if (size == 0) {
		ssize_t n = get(req, NULL, 0, arg);
		if (n < 0)
			reply_status(req, (int)n);
		else
			fuse_reply_xattr(req, (size_t)n);
		return;
	}
	if (size > FS_XATTRS_TOTAL)
		size = FS_XATTRS_TOTAL;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = get(req, buf, size, arg);
	if (n < 0)
		reply_status(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

struct xattr_arg {
	fuse_ino_t ino;
	const char *name;
};

static ssize_t get_value(fuse_req_t req, void *buf, size_t size, const void *arg)
{
	const struct xattr_arg *x = arg;
	return fsv_getxattr(fs_of(req)->v, x->ino, x->name, buf, size);
}

static ssize_t get_list(fuse_req_t req, void *buf, size_t size, const void *arg)
{
	const struct xattr_arg *x = arg;
	return fsv_listxattr(fs_of(req)->v, x->ino, buf, size);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (is_acl(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	struct xattr_arg x = { ino, name };
	reply_xattr_data(req, size, get_value, &x);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct xattr_arg x = { ino, NULL };
	reply_xattr_data(req, size, get_list, &x);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (is_acl(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	reply_status(req, fsv_removexattr(fs_of(req)->v, ino, name));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	reply_status(req, fsv_fallocate(fs_of(req)->v, ino, mode, (uint64_t)off, (uint64_t)len));
}

const struct fuse_lowlevel_ops fsd_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
};
