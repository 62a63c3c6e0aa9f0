/* Read-only FUSE operations over a protected image tree and its fspf (fs/fuse/image.h).
 *
 * Inode numbers are manifest indices + 1 (the root, index 0, is FUSE_ROOT_ID); the manifest never changes
 * while mounted, so the kernel may cache entries, attributes, listings and pages for long. Data: encrypted
 * and authenticated files are read whole chunks at a time from the tree and opened with their per-file key
 * against the manifest's tags; a chunk that fails is never handed out (EIO, a log line naming the file and
 * chunk). Not-protected files are passed through. A name that the manifest does not list is refused: if the
 * tree holds such a file (added behind the manifest's back) the lookup fails with EIO and is logged. */
#include "fs/fuse/tbuf.h"
#include "fs/fuse/image.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include "meta/common/status.h"
#include "fs/volume/volume.h"
#include "meta/fspf/fspf.h"

#define IMAGE_CACHE_SECONDS 3600.0

struct fsi_image {
	fspf *m;
	int rootfd;
	atomic_int failed;
	uint32_t *nlink; /* per directory entry: 2 + subdirectories */
};

struct handle {
	uint32_t idx;
	int fd;
	fs_aead *a;
	pthread_mutex_t mu; /* an fs_aead is not safe for concurrent use */
};

static struct fsi_image *img_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Entry index of a FUSE inode number, or -1. */
static long idx_of(const struct fsi_image *img, fuse_ino_t ino)
{
	return ino >= 1 && ino <= img->m->nentries ? (long)(ino - 1) : -1;
}

/* Entry types an operation accepts (entry_of). */
enum { T_DIR = 1, T_REG = 2, T_LNK = 4, T_ANY = T_DIR | T_REG | T_LNK };

/* Entry index of inode ino when its type is one of accept; otherwise replies ENOENT (no such inode) or
 * wrong (another type) and returns -1. */
static long entry_of(fuse_req_t req, fuse_ino_t ino, int accept, int wrong)
{
	const struct fsi_image *img = img_of(req);
	long i = idx_of(img, ino);
	if (i < 0) {
		fuse_reply_err(req, ENOENT);
		return -1;
	}
	mode_t mode = img->m->entries[i].mode;
	int type = S_ISDIR(mode) ? T_DIR : S_ISLNK(mode) ? T_LNK : T_REG;
	if (!(type & accept)) {
		fuse_reply_err(req, wrong);
		return -1;
	}
	return i;
}

static void violation(struct fsi_image *img)
{
	atomic_store(&img->failed, 1);
}

int fsi_open(const char *root, const char *path, const uint8_t key[32], const uint8_t tag[32],
	     struct fsi_image **out, char *err, size_t errlen)
{
	*out = NULL;
	fspf *m;
	int st = fspf_load(path, key, tag, &m, err, errlen);
	if (st != FS_OK)
		return st;
	if (!m->sealed) {
		snprintf(err, errlen, "%s is not encrypted: run 'fshield fspf encrypt' and mount with its key and tag", path);
		fspf_free(m);
		return FS_ST_USAGE;
	}
	struct fsi_image *img = calloc(1, sizeof(*img));
	if (!img || !(img->nlink = calloc(m->nentries, sizeof(uint32_t)))) {
		free(img);
		fspf_free(m);
		snprintf(err, errlen, "out of memory");
		return FS_ST_IO;
	}
	img->m = m;
	img->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->rootfd < 0) {
		snprintf(err, errlen, "%s: %s", root, strerror(errno));
		free(img->nlink);
		free(img);
		fspf_free(m);
		return FS_ST_IO;
	}
	for (uint32_t i = 0; i < m->nentries; i++)
		if (S_ISDIR(m->entries[i].mode)) {
			img->nlink[i] += 2;
			if (i)
				img->nlink[m->entries[i].parent]++;
		} else {
			img->nlink[i] = 1;
		}
	*out = img;
	return FS_OK;
}

uint32_t fsi_entries(const struct fsi_image *img)
{
	return img->m->nentries;
}

int fsi_close(struct fsi_image *img)
{
	if (!img)
		return 0;
	int failed = atomic_load(&img->failed);
	close(img->rootfd);
	free(img->nlink);
	fspf_free(img->m);
	free(img);
	return failed ? FS_ST_TAMPER : 0;
}

/* Size of a not-protected file: what the tree holds now (it is passed through). */
static uint64_t plain_size(struct fsi_image *img, const fspf_entry *e)
{
	int fd = fspf_open_beneath(img->rootfd, e->path, O_PATH);
	struct stat st;
	uint64_t size = e->size;
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			size = (uint64_t)st.st_size;
		close(fd);
	}
	return size;
}

static void fill_stat(struct fsi_image *img, uint32_t i, struct stat *st)
{
	const fspf_entry *e = &img->m->entries[i];
	memset(st, 0, sizeof(*st));
	st->st_ino = i + 1;
	st->st_mode = e->mode;
	st->st_nlink = img->nlink[i];
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	if (S_ISREG(e->mode))
		st->st_size = (off_t)(e->kind == FSPF_NOT_PROTECTED ? plain_size(img, e) : e->size);
	else if (S_ISLNK(e->mode))
		st->st_size = (off_t)strlen(e->target);
	st->st_blksize = S_ISREG(e->mode) ? e->chunk_size : 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim.tv_sec = e->mtime_s;
	st->st_mtim.tv_nsec = e->mtime_ns;
	st->st_atim = st->st_ctim = st->st_mtim;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_POSIX_LOCKS |
			FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_HANDLE_KILLPRIV);
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fsi_image *img = img_of(req);
	long p = entry_of(req, parent, T_DIR, ENOTDIR);
	size_t len = strlen(name);
	if (p < 0)
		return;
	if (len > FSPF_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	long c = fspf_child(img->m, (uint32_t)p, name, len);
	if (c < 0) {
		/* Not in the manifest. If the tree holds it, someone added it behind the manifest's back. */
		char path[FSPF_PATH_MAX + FSPF_NAME_MAX + 2];
		const char *pp = img->m->entries[p].path;
		snprintf(path, sizeof(path), "%s%s%s", pp, p ? "/" : "", name);
		int fd = fspf_open_beneath(img->rootfd, path, O_PATH);
		if (fd >= 0 || fd == -ELOOP) {
			if (fd >= 0)
				close(fd);
			fs_log(LOG_ERR, "integrity violation: %s: not in the fspf (added to the protected tree); refused",
			       path);
			violation(img);
			fuse_reply_err(req, EIO);
			return;
		}
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = IMAGE_CACHE_SECONDS;
		fuse_reply_entry(req, &e);
		return;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = (fuse_ino_t)c + 1;
	e.generation = 1;
	fill_stat(img, (uint32_t)c, &e.attr);
	e.attr_timeout = IMAGE_CACHE_SECONDS;
	e.entry_timeout = IMAGE_CACHE_SECONDS;
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct fsi_image *img = img_of(req);
	long i = entry_of(req, ino, T_ANY, 0);
	struct stat st;
	if (i < 0)
		return;
	fill_stat(img, (uint32_t)i, &st);
	fuse_reply_attr(req, &st, IMAGE_CACHE_SECONDS);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fsi_image *img = img_of(req);
	long i = entry_of(req, ino, T_LNK, EINVAL);
	if (i < 0)
		return;
	fuse_reply_readlink(req, img->m->entries[i].target);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsi_image *img = img_of(req);
	long i = entry_of(req, ino, T_REG | T_LNK, EISDIR);
	if (i < 0)
		return;
	const fspf_entry *e = &img->m->entries[i];
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	struct stat st;
	enum fspf_data_fault fault;
	int fd = fspf_open_data(img->rootfd, e, &st, &fault);
	if (fd < 0) {
		switch (fault) {
		case FSPF_DATA_MISSING:
			fs_log(LOG_ERR, "integrity violation: %s: missing from the protected tree", e->path);
			break;
		case FSPF_DATA_LINK:
			fs_log(LOG_ERR, "integrity violation: %s: not a regular file below the root (a symbolic link on "
			       "the way?)", e->path);
			break;
		case FSPF_DATA_TYPE:
			fs_log(LOG_ERR, "integrity violation: %s: not a regular file in the protected tree", e->path);
			break;
		case FSPF_DATA_SIZE:
			fs_log(LOG_ERR, "integrity violation: %s: %llu bytes in the protected tree, the fspf says %llu",
			       e->path, (unsigned long long)st.st_size, (unsigned long long)e->size);
			break;
		default:
			fs_log(LOG_ERR, "%s: cannot open it in the protected tree: %s", e->path, strerror(-fd));
			break;
		}
		/* an open that merely failed is no sign of tampering */
		if (fault != FSPF_DATA_IO)
			violation(img);
		fuse_reply_err(req, EIO);
		return;
	}
	struct handle *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->idx = (uint32_t)i;
	h->fd = fd;
	pthread_mutex_init(&h->mu, NULL);
	if (fspf_protected(e) && !(h->a = fspf_file_aead(img->m, e))) {
		close(fd);
		pthread_mutex_destroy(&h->mu);
		free(h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Verified pages stay valid: the manifest is fixed. Passed-through files are read afresh. */
	fi->keep_cache = fspf_protected(e);
	if (fuse_reply_open(req, fi) != 0) {
		fs_aead_free(h->a);
		close(fd);
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	struct fsi_image *img = img_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const fspf_entry *e = &img->m->entries[h->idx];
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!fspf_protected(e)) {
		uint8_t *buf = fuse_thread_buf(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		ssize_t n = pread(h->fd, buf, size, off);
		if (n < 0)
			fuse_reply_err(req, errno);
		else
			fuse_reply_buf(req, (const char *)buf, (size_t)n);
		return;
	}
	uint64_t o = (uint64_t)off;
	if (o >= e->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	uint64_t end = o + size < e->size ? o + size : e->size;
	uint64_t cs = e->chunk_size, first = o / cs, last = (end - 1) / cs;
	uint64_t start = first * cs, stop = last * cs + fspf_chunk_len(e, last);
	size_t span = (size_t)(stop - start);
	uint8_t *buf = fuse_thread_buf(span);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t got = 0;
	while (got < span) {
		ssize_t n = pread(h->fd, buf + got, span - got, (off_t)(start + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fs_log(LOG_ERR, "%s: read from the protected tree: %s", e->path, strerror(errno));
			fuse_reply_err(req, EIO);
			return;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	pthread_mutex_lock(&h->mu);
	for (uint64_t i = first; i <= last; i++) {
		uint64_t cstart = i * cs;
		size_t clen = fspf_chunk_len(e, i), at = (size_t)(cstart - start);
		int bad = at + clen > got || fspf_chunk_open(h->a, e, i, buf + at, clen) != 0;
		if (bad) {
			pthread_mutex_unlock(&h->mu);
			fs_log(LOG_ERR, "integrity violation: %s chunk %llu (bytes %llu-%llu): %s", e->path,
			       (unsigned long long)i, (unsigned long long)cstart, (unsigned long long)(cstart + clen - 1),
			       at + clen > got ? "chunk data truncated"
					       : "chunk fails authentication (changed, swapped or replaced data)");
			violation(img);
			fuse_reply_err(req, EIO);
			return;
		}
	}
	pthread_mutex_unlock(&h->mu);
	fuse_reply_buf(req, (const char *)buf + (o - start), (size_t)(end - o));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	fs_aead_free(h->a);
	close(h->fd);
	pthread_mutex_destroy(&h->mu);
	free(h);
	fuse_reply_err(req, 0);
}

/* flush and releasedir: nothing to write back or free. */
static void op_nothing(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (entry_of(req, ino, T_DIR, ENOTDIR) < 0)
		return;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct fsi_image *img = img_of(req);
	long di = entry_of(req, ino, T_ANY, 0);
	if (di < 0)
		return;
	const fspf_entry *d = &img->m->entries[di];
	char *buf = malloc(size ? size : 1);
	size_t used = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (uint64_t k = off < 0 ? 0 : (uint64_t)off; k < (uint64_t)d->nchild + 2; k++) {
		struct stat st;
		const char *name;
		memset(&st, 0, sizeof(st));
		if (k == 0) {
			name = ".";
			st.st_ino = (ino_t)di + 1;
			st.st_mode = S_IFDIR;
		} else if (k == 1) {
			name = "..";
			st.st_ino = (ino_t)d->parent + 1;
			st.st_mode = S_IFDIR;
		} else {
			uint32_t c = d->child[k - 2];
			name = img->m->entries[c].name;
			st.st_ino = c + 1;
			st.st_mode = img->m->entries[c].mode & S_IFMT;
		}
		size_t n = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)(k + 1));
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs st;
	if (fstatvfs(img_of(req)->rootfd, &st) != 0)
		memset(&st, 0, sizeof(st));
	st.f_files = img_of(req)->m->nentries;
	st.f_ffree = 0;
	st.f_favail = 0;
	st.f_namemax = FSPF_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

const struct fuse_lowlevel_ops fsi_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.open = op_open,
	.read = op_read,
	.flush = op_nothing,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_nothing,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
};
