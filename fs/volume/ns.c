/* The namespace: lookup, create, link, unlink, rename, readdir, attributes, extended attributes. */
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "fs/volume/internal.h"


static int check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || strchr(name, '/'))
		return -EINVAL;
	if (n > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EEXIST;
	return 0;
}

/* An inode that may be changed: the volume is writable and the inode verified. */
static struct inode *writable_inode(fs_volume *v, uint64_t ino, int *err)
{
	if ((*err = vol_writable(v)) != 0)
		return NULL;
	return vol_iget(v, ino, err);
}

/* A directory, loaded and verified. */
static struct inode *get_dir(fs_volume *v, uint64_t ino, int *err)
{
	struct inode *dp = vol_iget(v, ino, err);
	if (!dp)
		return NULL;
	if (!S_ISDIR(dp->r.mode)) {
		*err = -ENOTDIR;
		return NULL;
	}
	if ((*err = vol_load_content(v, dp)) != 0)
		return NULL;
	return dp;
}

/* A directory that may gain an entry: the volume is writable and the directory verified and not removed
 * (an entry in a removed directory could never be reached: -ENOENT, as Linux answers). */
static struct inode *writable_dir(fs_volume *v, uint64_t ino, int *err)
{
	if ((*err = vol_writable(v)) != 0)
		return NULL;
	struct inode *dp = get_dir(v, ino, err);
	if (dp && dp->unlinked) {
		*err = -ENOENT;
		return NULL;
	}
	return dp;
}

/* The entry for name in dir, and the inode it names (verified). */
static struct dent *find_entry(fs_volume *v, struct inode *dp, const char *name, size_t *pos, struct inode **child,
			       int *err)
{
	uint8_t mac[32];
	fs_name_mac(mac, v->k_name, dp->ino, name, strlen(name));
	struct dent *d = vol_find_dent(dp, mac, pos);
	if (!d) {
		*err = -ENOENT;
		return NULL;
	}
	if (child) {
		v->lookup_dir = dp;
		v->lookup_name = name;
		*child = vol_iget(v, d->ino, err);
		v->lookup_dir = NULL;
		v->lookup_name = NULL;
		if (!*child) {
			if (*err == -ENOENT)
				*err = vol_violation(v, dp, -1, "a directory entry names an inode that does not exist");
			return NULL;
		}
		if (((*child)->r.mode & S_IFMT) != d->mode) {
			*err = vol_violation(v, dp, -1, "a directory entry's type disagrees with its inode");
			return NULL;
		}
	}
	return d;
}

int fsv_getattr(fs_volume *v, uint64_t ino, fs_attr *out)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	/* Attributes come from the verified inode row; the chunk map waits for open or read. */
	struct inode *ip = vol_iget(v, ino, &err);
	if (ip)
		vol_fill_attr(v, ip, out);
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_lookup(fs_volume *v, uint64_t parent, const char *name, fs_attr *out)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	struct inode *dp = NULL, *ip = NULL;
	size_t pos;
	/* "." of any inode: how the kernel finds an inode by its number alone (a file handle, FUSE export). */
	if (!strcmp(name, ".")) {
		ip = vol_iget(v, parent, &err);
		goto found;
	}
	if (!(dp = get_dir(v, parent, &err)))
		goto out;
	if (strlen(name) > FS_NAME_MAX) {
		err = -ENAMETOOLONG;
		goto out;
	}
	if (!strcmp(name, "..")) {
		ip = vol_iget(v, dp->r.parent, &err);
	} else if (!find_entry(v, dp, name, &pos, &ip, &err)) {
		goto out;
	}
found:
	if (!ip)
		goto out;
	ip->nlookup++;
	vol_fill_attr(v, ip, out);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

void fsv_forget(fs_volume *v, uint64_t ino, uint64_t n)
{
	pthread_mutex_lock(&v->lock);
	struct inode *ip = vol_ifind(v, ino);
	if (!ip)
		goto out;
	ip->nlookup = ip->nlookup > n ? ip->nlookup - n : 0;
	vol_maybe_free(v, ip);
out:
	pthread_mutex_unlock(&v->lock);
}

/* ip has a new entry in dp: dp changed, the caller's reply hands the kernel one more lookup of ip, and out
 * holds ip's attributes for that reply. */
static void entry_added(fs_volume *v, struct inode *dp, struct inode *ip, fs_attr *out)
{
	vol_touch(v, dp, VOL_MTIME | VOL_CTIME);
	ip->nlookup++;
	vol_fill_attr(v, ip, out);
}

/* Creates an inode of mode under name in parent. */
static int make(fs_volume *v, uint64_t parent, const char *name, uint32_t mode, uint64_t rdev, uint32_t uid,
		uint32_t gid, const char *target, fs_attr *out)
{
	int err = check_name(name);
	if (err)
		return err;
	if (target && (strlen(target) == 0 || strlen(target) > 4095))
		return strlen(target) ? -ENAMETOOLONG : -ENOENT;
	pthread_mutex_lock(&v->lock);
	struct inode *dp = writable_dir(v, parent, &err), *ip;
	if (!dp)
		goto out;
	uint8_t mac[32];
	size_t pos;
	fs_name_mac(mac, v->k_name, parent, name, strlen(name));
	if (vol_find_dent(dp, mac, &pos)) {
		err = -EEXIST;
		goto out;
	}
	if ((err = vol_alloc_inode(v, mode, uid, gid, parent, &ip)) != 0)
		goto out;
	ip->r.rdev = rdev;
	if (target) {
		free(ip->r.target);
		ip->r.target = strdup(target);
		ip->r.target_len = (uint32_t)strlen(target);
		if (!ip->r.target) {
			ip->r.target = calloc(1, 1);
			ip->r.target_len = 0;
		}
	}
	if ((err = vol_insert_dent(v, dp, mac, name, ip->ino, mode)) != 0) {
		ip->unlinked = 1;
		vol_maybe_free(v, ip);
		goto out;
	}
	if (S_ISDIR(mode))
		dp->r.nlink++;
	entry_added(v, dp, ip, out);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_mknod(fs_volume *v, uint64_t parent, const char *name, uint32_t mode, uint64_t rdev, uint32_t uid,
	      uint32_t gid, fs_attr *out)
{
	if (S_ISDIR(mode) || S_ISLNK(mode) || !(S_ISREG(mode) || S_ISCHR(mode) || S_ISBLK(mode) || S_ISFIFO(mode) ||
						S_ISSOCK(mode)))
		return -EINVAL;
	return make(v, parent, name, mode, S_ISCHR(mode) || S_ISBLK(mode) ? rdev : 0, uid, gid, NULL, out);
}

int fsv_mkdir(fs_volume *v, uint64_t parent, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
	      fs_attr *out)
{
	return make(v, parent, name, S_IFDIR | (mode & 07777), 0, uid, gid, NULL, out);
}

int fsv_symlink(fs_volume *v, uint64_t parent, const char *name, const char *target, uint32_t uid, uint32_t gid,
		fs_attr *out)
{
	return make(v, parent, name, S_IFLNK | 0777, 0, uid, gid, target, out);
}

int fsv_readlink(fs_volume *v, uint64_t ino, char *buf, size_t size)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = vol_iget(v, ino, &err);
	if (!ip)
		goto out;
	if (!S_ISLNK(ip->r.mode)) {
		err = -EINVAL;
		goto out;
	}
	memcpy(buf, ip->r.target, ip->r.target_len < size ? ip->r.target_len : size);
	err = (int)ip->r.target_len;
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_link(fs_volume *v, uint64_t ino, uint64_t newparent, const char *newname, fs_attr *out)
{
	int err = check_name(newname);
	if (err)
		return err;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = writable_inode(v, ino, &err), *dp;
	if (!ip)
		goto out;
	if (S_ISDIR(ip->r.mode)) {
		err = -EPERM;
		goto out;
	}
	if (ip->unlinked) {
		err = -ENOENT;
		goto out;
	}
	if (ip->r.nlink >= 65000) {
		err = -EMLINK;
		goto out;
	}
	if (!(dp = writable_dir(v, newparent, &err)))
		goto out;
	uint8_t mac[32];
	fs_name_mac(mac, v->k_name, newparent, newname, strlen(newname));
	if ((err = vol_insert_dent(v, dp, mac, newname, ino, ip->r.mode)) != 0)
		goto out;
	ip->r.nlink++;
	vol_touch(v, ip, VOL_CTIME);
	entry_added(v, dp, ip, out);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

/* One link of ip is gone. */
static void drop_link(fs_volume *v, struct inode *ip)
{
	if (S_ISDIR(ip->r.mode))
		ip->r.nlink = 0;
	else if (ip->r.nlink)
		ip->r.nlink--;
	vol_touch(v, ip, VOL_CTIME);
	if (ip->r.nlink == 0) {
		ip->unlinked = 1;
		vol_maybe_free(v, ip);
	}
}

static int remove_entry(fs_volume *v, uint64_t parent, const char *name, int want_dir)
{
	int err = 0;
	if (!strcmp(name, "."))
		return -EINVAL;
	if (!strcmp(name, ".."))
		return -ENOTEMPTY;
	pthread_mutex_lock(&v->lock);
	if ((err = vol_writable(v)) != 0)
		goto out;
	struct inode *dp = get_dir(v, parent, &err), *ip;
	size_t pos;
	if (!dp || !find_entry(v, dp, name, &pos, &ip, &err))
		goto out;
	if (want_dir && !S_ISDIR(ip->r.mode)) {
		err = -ENOTDIR;
		goto out;
	}
	if (!want_dir && S_ISDIR(ip->r.mode)) {
		err = -EISDIR;
		goto out;
	}
	if (want_dir) {
		if ((err = vol_load_content(v, ip)) != 0)
			goto out;
		if (ip->nents) {
			err = -ENOTEMPTY;
			goto out;
		}
	}
	if ((err = vol_remove_dent(v, dp, pos)) != 0)
		goto out;
	if (want_dir)
		dp->r.nlink--;
	vol_touch(v, dp, VOL_MTIME | VOL_CTIME);
	drop_link(v, ip);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_unlink(fs_volume *v, uint64_t parent, const char *name)
{
	return remove_entry(v, parent, name, 0);
}

int fsv_rmdir(fs_volume *v, uint64_t parent, const char *name)
{
	return remove_entry(v, parent, name, 1);
}

/* Whether dir a is b or lies under b. */
static int is_under(fs_volume *v, struct inode *a, uint64_t b)
{
	for (int depth = 0; a && depth < 4096; depth++) {
		if (a->ino == b)
			return 1;
		if (a->ino == FS_ROOT_INO)
			return 0;
		int e;
		a = vol_iget(v, a->r.parent, &e);
	}
	return 0;
}

int fsv_rename(fs_volume *v, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	       unsigned flags)
{
	int err = check_name(name);
	if (!err)
		err = check_name(newname);
	if (err)
		return err == -EEXIST ? -EINVAL : err;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	if ((err = vol_writable(v)) != 0)
		goto out;
	struct inode *sp = get_dir(v, parent, &err), *tp, *src, *dst = NULL;
	if (!sp || !(tp = writable_dir(v, newparent, &err)))
		goto out;
	size_t spos, tpos;
	struct dent *sd = find_entry(v, sp, name, &spos, &src, &err);
	if (!sd)
		goto out;
	err = 0;
	uint8_t tmac[32];
	fs_name_mac(tmac, v->k_name, newparent, newname, strlen(newname));
	struct dent *td = vol_find_dent(tp, tmac, &tpos);
	if (td && !(dst = vol_iget(v, td->ino, &err)))
		goto out;
	if (flags & RENAME_EXCHANGE && !td) {
		err = -ENOENT;
		goto out;
	}
	if (flags & RENAME_NOREPLACE && td) {
		err = -EEXIST;
		goto out;
	}
	if (dst == src)
		goto out; /* same inode: nothing to do (POSIX) */
	/* A directory may not move under itself. */
	if (S_ISDIR(src->r.mode) && tp != sp && is_under(v, tp, src->ino)) {
		err = -EINVAL;
		goto out;
	}
	if (flags & RENAME_EXCHANGE) {
		if (dst && S_ISDIR(dst->r.mode) && tp != sp && is_under(v, sp, dst->ino)) {
			err = -EINVAL;
			goto out;
		}
		/* Swap what the two entries name; entry rows are resealed at commit. */
		sd->ino = dst->ino;
		sd->mode = dst->r.mode & S_IFMT;
		td->ino = src->ino;
		td->mode = src->r.mode & S_IFMT;
		free(sd->row);
		sd->row = NULL;
		free(td->row);
		td->row = NULL;
		sp->ents_dirty = tp->ents_dirty = 1;
		if (sp != tp) {
			src->r.parent = tp->ino;
			dst->r.parent = sp->ino;
			if (S_ISDIR(src->r.mode) != S_ISDIR(dst->r.mode)) {
				if (S_ISDIR(src->r.mode)) {
					sp->r.nlink--;
					tp->r.nlink++;
				} else {
					tp->r.nlink--;
					sp->r.nlink++;
				}
			}
		}
		vol_touch(v, src, VOL_CTIME);
		vol_touch(v, dst, VOL_CTIME);
		vol_touch(v, sp, VOL_MTIME | VOL_CTIME);
		vol_touch(v, tp, VOL_MTIME | VOL_CTIME);
		goto out;
	}
	if (dst) {
		if (S_ISDIR(src->r.mode) && !S_ISDIR(dst->r.mode)) {
			err = -ENOTDIR;
			goto out;
		}
		if (!S_ISDIR(src->r.mode) && S_ISDIR(dst->r.mode)) {
			err = -EISDIR;
			goto out;
		}
		if (S_ISDIR(dst->r.mode)) {
			if ((err = vol_load_content(v, dst)) != 0)
				goto out;
			if (dst->nents) {
				err = -ENOTEMPTY;
				goto out;
			}
		}
		/* The target entry now names src. */
		td->ino = src->ino;
		td->mode = src->r.mode & S_IFMT;
		free(td->row);
		td->row = NULL;
		tp->ents_dirty = 1;
		if (S_ISDIR(dst->r.mode))
			tp->r.nlink--;
		drop_link(v, dst);
	} else {
		if ((err = vol_insert_dent(v, tp, tmac, newname, src->ino, src->r.mode)) != 0)
			goto out;
	}
	/* Remove the source entry (its position may have moved if tp == sp). */
	uint8_t smac[32];
	fs_name_mac(smac, v->k_name, parent, name, strlen(name));
	if (!vol_find_dent(sp, smac, &spos) || (err = vol_remove_dent(v, sp, spos)) != 0)
		goto out;
	if (S_ISDIR(src->r.mode) && sp != tp) {
		sp->r.nlink--;
		tp->r.nlink++;
	}
	src->r.parent = tp->ino;
	vol_touch(v, src, VOL_CTIME);
	vol_touch(v, sp, VOL_MTIME | VOL_CTIME);
	vol_touch(v, tp, VOL_MTIME | VOL_CTIME);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

/* Cookie of an entry: monotonic in the entries' order (by name MAC), above the two dot entries. */
static uint64_t cookie(const struct dent *d)
{
	uint64_t c = 0;
	for (int i = 0; i < 8; i++)
		c = c << 8 | d->mac[i];
	return (c >> 2) + 3;
}

int fsv_readdir(fs_volume *v, uint64_t ino, uint64_t off, fs_fill_fn fill, void *ctx)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	struct inode *dp = get_dir(v, ino, &err);
	if (!dp)
		goto out;
	if (off < 1 && fill(ctx, ".", dp->ino, S_IFDIR, 1))
		goto out;
	if (off < 2 && fill(ctx, "..", dp->r.parent, S_IFDIR, 2))
		goto out;
	/* First entry with a cookie above off. */
	size_t lo = 0, hi = dp->nents;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cookie(&dp->ents[mid]) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < dp->nents; i++)
		if (fill(ctx, dp->ents[i].name, dp->ents[i].ino, dp->ents[i].mode, cookie(&dp->ents[i])))
			break;
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_setattr(fs_volume *v, uint64_t ino, const fs_attr *in, int valid, fs_attr *out)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = writable_inode(v, ino, &err);
	if (!ip)
		goto out;
	if (valid & FS_SET_SIZE) {
		if (S_ISDIR(ip->r.mode)) {
			err = -EISDIR;
			goto out;
		}
		if (!S_ISREG(ip->r.mode)) {
			err = -EINVAL;
			goto out;
		}
		if ((err = vol_truncate(v, ip, in->size)) != 0)
			goto out;
	}
	if (valid & FS_SET_MODE)
		ip->r.mode = (ip->r.mode & S_IFMT) | (in->mode & 07777);
	if (valid & FS_SET_UID)
		ip->r.uid = in->uid;
	if (valid & FS_SET_GID)
		ip->r.gid = in->gid;
	struct timespec now;
	vol_now(&now);
	if (valid & (FS_SET_ATIME | FS_SET_ATIME_NOW)) {
		struct timespec t = valid & FS_SET_ATIME_NOW ? now : in->atime;
		ip->r.atime_s = t.tv_sec;
		ip->r.atime_ns = (uint32_t)t.tv_nsec;
	}
	if (valid & (FS_SET_MTIME | FS_SET_MTIME_NOW)) {
		struct timespec t = valid & FS_SET_MTIME_NOW ? now : in->mtime;
		ip->r.mtime_s = t.tv_sec;
		ip->r.mtime_ns = (uint32_t)t.tv_nsec;
	}
	if (valid & FS_SET_CTIME) {
		ip->r.ctime_s = in->ctime.tv_sec;
		ip->r.ctime_ns = (uint32_t)in->ctime.tv_nsec;
		vol_mark_dirty(v, ip);
	} else {
		vol_touch(v, ip, VOL_CTIME);
	}
	if (S_ISREG(ip->r.mode) && (err = vol_load_content(v, ip)) != 0)
		goto out;
	vol_fill_attr(v, ip, out);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

/* Whether time a is not later than b plus the tick of the kernel's coarse clock: the kernel stamps the
 * times it sets (writes through its cache) with that clock, the volume with the precise one, so a file's
 * creation time may lie a tick after its first modification. */
static int not_after(int64_t as, uint32_t ans, int64_t bs, uint32_t bns)
{
	static long tick = -1;
	if (tick < 0) {
		struct timespec r;
		tick = clock_getres(CLOCK_REALTIME_COARSE, &r) == 0 && r.tv_sec == 0 ? r.tv_nsec : 0;
	}
	int64_t d = (as - bs) * 1000000000 + ((int64_t)ans - (int64_t)bns);
	return as - bs < 2 && d <= tick;
}

/* relatime as Linux defines it (fs/inode.c, relatime_need_update). */
static int atime_due(const fs_inode_rec *r, int policy, const struct timespec *now)
{
	if (policy == FS_ATIME_NEVER)
		return 0;
	if (policy == FS_ATIME_STRICT)
		return 1;
	if (not_after(r->atime_s, r->atime_ns, r->mtime_s, r->mtime_ns) ||
	    not_after(r->atime_s, r->atime_ns, r->ctime_s, r->ctime_ns))
		return 1;
	return now->tv_sec - r->atime_s >= 24 * 3600;
}

int fsv_accessed(fs_volume *v, uint64_t ino, int policy, int update)
{
	int err = 0;
	struct timespec now;
	vol_now(&now);
	pthread_mutex_lock(&v->lock);
	if (vol_writable(v) != 0)
		goto out; /* read-only (or failed): an access changes nothing */
	struct inode *ip = vol_iget(v, ino, &err);
	if (!ip || !atime_due(&ip->r, policy, &now))
		goto out;
	err = 1;
	if (update) {
		/* Lazily: the row is marked for the next commit, but the volume does not count as changed, so
		 * reads alone never cause a commit (fsv_commit_atime writes them at the end). */
		int state = v->state;
		ip->r.atime_s = now.tv_sec;
		ip->r.atime_ns = (uint32_t)now.tv_nsec;
		vol_mark_dirty(v, ip);
		v->state = state;
	}
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_commit_atime(fs_volume *v)
{
	pthread_mutex_lock(&v->lock);
	int only = 0;
	/* A bucket still marked after the last commit holds access times (any other change marks the volume) */
	for (uint32_t b = 0; v->state == VOL_CLEAN && b < v->hdr.buckets && !only; b++)
		only = v->bk[b].dirty;
	if (only)
		vol_mark_changed(v);
	pthread_mutex_unlock(&v->lock);
	if (!only)
		return 0;
	int rc = fsv_commit(v);
	pthread_mutex_lock(&v->lock);
	if (rc < 0 && v->state == VOL_DIRTY)
		v->state = VOL_CLEAN; /* nothing but access times waited: they are given up, not the volume */
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int fsv_check_writable(fs_volume *v)
{
	pthread_mutex_lock(&v->lock);
	int rc = vol_writable(v);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int fsv_open_file(fs_volume *v, uint64_t ino)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = vol_iget(v, ino, &err);
	if (!ip)
		goto out;
	if (S_ISREG(ip->r.mode) && (err = vol_load_content(v, ip)) != 0)
		goto out;
	ip->nopen++;
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

void fsv_release(fs_volume *v, uint64_t ino)
{
	pthread_mutex_lock(&v->lock);
	struct inode *ip = vol_ifind(v, ino);
	if (!ip)
		goto out;
	if (ip->nopen)
		ip->nopen--;
	if (!ip->nopen) {
		/* The decrypted chunk kept for reads goes with the last open file. */
		free(ip->rcache);
		ip->rcache = NULL;
		ip->rcache_valid = 0;
	}
	vol_maybe_free(v, ip);
out:
	pthread_mutex_unlock(&v->lock);
}

/* Sets (value) or removes (NULL) one attribute in the inode's list. */
static int put_xattr(fs_volume *v, struct inode *ip, const char *name, const void *value, size_t size)
{
	size_t nl;
	uint8_t *n = fs_xattrs_put(ip->r.xattrs, ip->r.xattrs_len, name, value, size, &nl);
	if (!n)
		return -ENOMEM;
	if (nl > FS_XATTRS_TOTAL) {
		free(n);
		return -ENOSPC;
	}
	free(ip->r.xattrs);
	ip->r.xattrs = n;
	ip->r.xattrs_len = (uint32_t)nl;
	vol_touch(v, ip, VOL_CTIME);
	return 0;
}

/* Sets (value not NULL) or removes (value NULL) an attribute; flags as setxattr(2). */
static int change_xattr(fs_volume *v, uint64_t ino, const char *name, const void *value, size_t size, int flags)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = writable_inode(v, ino, &err);
	if (!ip)
		goto out;
	const uint8_t *val;
	size_t vlen;
	int exists = fs_xattrs_get(ip->r.xattrs, ip->r.xattrs_len, name, &val, &vlen) == 0;
	if ((flags & XATTR_CREATE) && exists) {
		err = -EEXIST;
		goto out;
	}
	if ((flags & XATTR_REPLACE) && !exists) {
		err = -ENODATA;
		goto out;
	}
	err = put_xattr(v, ip, name, value, size);
out:
	pthread_mutex_unlock(&v->lock);
	return err;
}

int fsv_setxattr(fs_volume *v, uint64_t ino, const char *name, const void *value, size_t size, int flags)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > 255)
		return nlen ? -ERANGE : -EINVAL;
	if (size > FS_XATTR_MAX)
		return -E2BIG;
	return change_xattr(v, ino, name, value ? value : "", size, flags);
}

ssize_t fsv_getxattr(fs_volume *v, uint64_t ino, const char *name, void *buf, size_t size)
{
	int err = 0;
	ssize_t ret;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = vol_iget(v, ino, &err);
	const uint8_t *val;
	size_t vlen;
	if (!ip)
		ret = err;
	else if (fs_xattrs_get(ip->r.xattrs, ip->r.xattrs_len, name, &val, &vlen) != 0)
		ret = -ENODATA;
	else if (size && vlen > size)
		ret = -ERANGE;
	else {
		if (size)
			memcpy(buf, val, vlen);
		ret = (ssize_t)vlen;
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

ssize_t fsv_listxattr(fs_volume *v, uint64_t ino, char *buf, size_t size)
{
	int err = 0;
	ssize_t ret;
	pthread_mutex_lock(&v->lock);
	struct inode *ip = vol_iget(v, ino, &err);
	size_t need = ip ? fs_xattrs_names(ip->r.xattrs, ip->r.xattrs_len, NULL, 0) : 0;
	if (!ip)
		ret = err;
	else if (size && need > size)
		ret = -ERANGE;
	else {
		if (size)
			fs_xattrs_names(ip->r.xattrs, ip->r.xattrs_len, buf, size);
		ret = (ssize_t)need;
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

int fsv_removexattr(fs_volume *v, uint64_t ino, const char *name)
{
	return change_xattr(v, ino, name, NULL, 0, XATTR_REPLACE);
}

int fsv_statfs(fs_volume *v, struct statvfs *st)
{
	int err = 0;
	pthread_mutex_lock(&v->lock);
	if (fstatvfs(v->dirfd, st) != 0)
		err = -errno;
	st->f_namemax = FS_NAME_MAX;
	pthread_mutex_unlock(&v->lock);
	return err;
}
