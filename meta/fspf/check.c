/* Checking a protected tree against its manifest: opening its files without following links, and the
 * offline check of every entry and chunk (fshield fspf verify). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/common/beneath.h"
#include "meta/common/status.h"
#include "meta/fspf/internal.h"

int fspf_open_beneath(int rootfd, const char *path, int flags)
{
	const char *rel = path;
	while (*rel == '/')
		rel++;
	if (!*rel) {
		int fd = openat(rootfd, ".", flags | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	return fs_beneath_open(rootfd, rel, flags | O_CLOEXEC, 0);
}

int fspf_open_data(int rootfd, const fspf_entry *e, struct stat *st, enum fspf_data_fault *fault)
{
	int fd = fspf_open_beneath(rootfd, e->path, O_RDONLY);
	if (fd == -ENOENT) {
		*fault = FSPF_DATA_MISSING;
		return fd;
	}
	if (fd == -ELOOP || fd == -EXDEV || fd == -ENOTDIR) {
		*fault = FSPF_DATA_LINK;
		return -ELOOP;
	}
	if (fd < 0) {
		*fault = FSPF_DATA_IO;
		return fd;
	}
	*fault = FSPF_DATA_OK;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode))
		*fault = FSPF_DATA_TYPE;
	else if (fspf_protected(e) && (uint64_t)st->st_size != e->size)
		*fault = FSPF_DATA_SIZE;
	if (*fault == FSPF_DATA_OK)
		return fd;
	close(fd);
	return -EIO;
}

struct vctx {
	fspf_finding_fn cb;
	void *ctx;
	int status;
};

static void finding(struct vctx *v, int status, const char *kind, const char *path, int64_t chunk, uint64_t a,
		    uint64_t b, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void finding(struct vctx *v, int status, const char *kind, const char *path, int64_t chunk, uint64_t a,
		    uint64_t b, const char *fmt, ...)
{
	char msg[FSPF_PATH_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fspf_finding f = { kind, path, chunk, a, b, msg };
	v->status = fs_status_worse(v->status, status);
	if (v->cb)
		v->cb(v->ctx, &f);
}

static void verify_file(const fspf *m, const fspf_entry *e, int rootfd, struct vctx *v, fspf_verify_result *res,
			uint8_t *buf)
{
	struct stat st;
	enum fspf_data_fault fault;
	res->files++;
	int fd = fspf_open_data(rootfd, e, &st, &fault);
	if (fd < 0) {
		switch (fault) {
		case FSPF_DATA_MISSING:
			finding(v, FS_ST_TAMPER, "missing", e->path, -1, 0, 0, "integrity violation: %s: missing", e->path);
			break;
		case FSPF_DATA_LINK:
			finding(v, FS_ST_TAMPER, "type", e->path, -1, 0, 0,
				"integrity violation: %s: not a regular file below the root (a symbolic link on the way?)",
				e->path);
			break;
		case FSPF_DATA_TYPE:
			finding(v, FS_ST_TAMPER, "type", e->path, -1, 0, 0, "integrity violation: %s: not a regular file",
				e->path);
			break;
		case FSPF_DATA_SIZE:
			finding(v, FS_ST_TAMPER, "truncated", e->path, -1, 0, 0,
				"integrity violation: %s: %llu bytes, the fspf says %llu", e->path,
				(unsigned long long)st.st_size, (unsigned long long)e->size);
			break;
		default:
			finding(v, FS_ST_IO, "io", e->path, -1, 0, 0, "%s: %s", e->path, strerror(-fd));
			break;
		}
		return;
	}
	if (!fspf_protected(e)) {
		close(fd);
		return;
	}
	fs_aead *a = fspf_file_aead(m, e);
	if (!a) {
		finding(v, FS_ST_IO, "io", e->path, -1, 0, 0, "%s: out of memory", e->path);
		close(fd);
		return;
	}
	uint64_t nc = fspf_nchunks(e);
	for (uint64_t i = 0; i < nc; i++) {
		size_t len = fspf_chunk_len(e, i);
		uint64_t off = i * e->chunk_size;
		ssize_t r = pread(fd, buf, len, (off_t)off);
		res->chunks++;
		if (r < 0) {
			finding(v, FS_ST_IO, "io", e->path, (int64_t)i, off, off + len - 1, "%s chunk %llu: %s", e->path,
				(unsigned long long)i, strerror(errno));
			continue;
		}
		if ((size_t)r != len || fspf_chunk_open(a, e, i, buf, len) != 0)
			finding(v, FS_ST_TAMPER, (size_t)r != len ? "truncated" : "modified", e->path, (int64_t)i, off,
				off + len - 1,
				"integrity violation: %s chunk %llu (bytes %llu-%llu): chunk fails authentication (changed, "
				"swapped or replaced data)",
				e->path, (unsigned long long)i, (unsigned long long)off, (unsigned long long)(off + len - 1));
		else
			res->bytes += len;
	}
	fs_aead_free(a);
	close(fd);
}

static void verify_dir(const fspf *m, uint32_t di, int rootfd, struct vctx *v, fspf_verify_result *res)
{
	const fspf_entry *d = &m->entries[di];
	res->dirs++;
	int fd = fspf_open_beneath(rootfd, d->path, O_RDONLY | O_DIRECTORY);
	if (fd == -ENOENT)
		return; /* served from the manifest; only files need their data */
	if (fd < 0) {
		finding(v, fd == -EACCES ? FS_ST_IO : FS_ST_TAMPER, fd == -EACCES ? "io" : "type", d->path, -1, 0, 0,
			"integrity violation: %s: not a directory below the root", d->path);
		return;
	}
	DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fspf_child(m, di, de->d_name, strlen(de->d_name)) < 0) {
			char p[FSPF_PATH_MAX + 300];
			snprintf(p, sizeof(p), "%s%s%s", d->path, di ? "/" : "", de->d_name);
			finding(v, FS_ST_TAMPER, "unexpected", p, -1, 0, 0,
				"integrity violation: %s: not in the fspf (added to the protected tree)", p);
		}
	}
	closedir(dir);
}

int fspf_verify_tree(const fspf *m, const char *root, fspf_finding_fn cb, void *ctx, fspf_verify_result *res)
{
	struct vctx v = { cb, ctx, FS_OK };
	fspf_verify_result dummy;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		finding(&v, FS_ST_IO, "io", NULL, -1, 0, 0, "%s: %s", root, strerror(errno));
		return v.status;
	}
	uint32_t maxcs = 4096;
	for (uint32_t i = 0; i < m->nregions; i++)
		if (m->regions[i].chunk_size > maxcs)
			maxcs = m->regions[i].chunk_size;
	uint8_t *buf = malloc(maxcs);
	if (!buf) {
		close(rootfd);
		finding(&v, FS_ST_IO, "io", NULL, -1, 0, 0, "out of memory");
		return v.status;
	}
	for (uint32_t i = 0; i < m->nentries; i++) {
		const fspf_entry *e = &m->entries[i];
		if (S_ISDIR(e->mode))
			verify_dir(m, i, rootfd, &v, res);
		else if (S_ISREG(e->mode))
			verify_file(m, e, rootfd, &v, res, buf);
		else
			res->links++;
	}
	free(buf);
	close(rootfd);
	return v.status;
}
