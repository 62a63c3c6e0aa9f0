/* Building a manifest from a tree (fshield fspf addf): every file is checked before anything is written,
 * then protected files are sealed chunk by chunk (and written to the output tree), then the manifest takes
 * the new entries. On failure the manifest is unchanged and the output is removed again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/common/status.h"
#include "meta/common/vec.h"
#include "meta/fspf/internal.h"

struct item {
	char *ipath;  /* path in the tree */
	char *rel;    /* relative to the source ("" for the top) */
	struct stat st;
	char *target; /* symlinks */
	uint8_t kind;
	uint32_t chunk_size;
	uint8_t salt[FSPF_SALT_BYTES];
	uint8_t (*tags)[FS_TAG_BYTES];
};

struct walk {
	struct item *items;
	size_t n, cap;
	const fspf *m;
	const char *top;       /* PATH */
	const char *src;       /* SOURCE_DIR as given, for messages */
	const char *out;
	fspf_add_opts *o;
	char *err;
	size_t errlen;
	int status;
	uint64_t p_items, p_bytes, p_bytes_total; /* progress of pass 2 */
};

static void progress(struct walk *w)
{
	if (w->o && w->o->progress)
		w->o->progress(w->o->progress_ctx, w->p_items, w->n, w->p_bytes, w->p_bytes_total);
}

static void items_free(struct item *it, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(it[i].ipath);
		free(it[i].rel);
		free(it[i].target);
		free(it[i].tags);
	}
	free(it);
}

static int walk_fail(struct walk *w, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int walk_fail(struct walk *w, int status, const char *fmt, ...)
{
	if (w->status == FS_OK) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err, w->errlen, fmt, ap);
		va_end(ap);
		w->status = status;
	}
	return status == FS_ST_USAGE ? -EINVAL : -EIO;
}

static const char *type_name(mode_t m)
{
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	return "of an unknown type";
}

/* Resolves a link target lexically against the link's directory in the tree. -1 when it climbs above "/". */
static int resolve_target(const char *linkpath, const char *target, char *out, size_t outlen)
{
	char buf[2 * FSPF_PATH_MAX + 8];
	if (target[0] == '/') {
		snprintf(buf, sizeof(buf), "%s", target);
	} else {
		const char *slash = strrchr(linkpath, '/');
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - linkpath), linkpath, target);
	}
	/* components, with "." dropped and ".." popping */
	size_t o = 0;
	char *save = NULL;
	out[0] = '\0';
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			if (o == 0)
				return -1;
			while (o > 0 && out[o - 1] != '/')
				o--;
			o = o ? o - 1 : 0;
			out[o] = '\0';
			continue;
		}
		size_t len = strlen(c);
		if (o + 1 + len + 1 > outlen)
			return -1;
		out[o++] = '/';
		memcpy(out + o, c, len);
		o += len;
		out[o] = '\0';
	}
	if (o == 0)
		snprintf(out, outlen, "/");
	return 0;
}

static int add_item(struct walk *w, const char *ipath, const char *rel, const struct stat *st)
{
	struct item it = { .st = *st, .ipath = strdup(ipath), .rel = strdup(rel) };
	if (!it.ipath || !it.rel || VEC_PUSH(w->items, w->n, w->cap, it) != 0) {
		free(it.ipath);
		free(it.rel);
		return walk_fail(w, FS_ST_IO, "out of memory");
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects dirfd's tree (already added as ipath/rel) into w, checking everything that can be checked
 * before writing. Takes dirfd. */
static int walk_dir(struct walk *w, int dirfd, const char *ipath, const char *rel, int depth)
{
	char **names = NULL;
	size_t nn = 0, cap = 0;
	int rc = 0;
	if (depth > 256) {
		close(dirfd);
		return walk_fail(w, FS_ST_USAGE, "%s/%s: directories nested too deeply", w->src, rel);
	}
	DIR *d = fdopendir(dirfd);
	if (!d) {
		int e = errno;
		close(dirfd);
		return walk_fail(w, FS_ST_IO, "%s/%s: cannot list the directory: %s", w->src, rel, strerror(e));
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *name = strdup(de->d_name);
		if (!name || VEC_PUSH(names, nn, cap, name) != 0) {
			free(name);
			rc = walk_fail(w, FS_ST_IO, "out of memory");
			goto out;
		}
		errno = 0;
	}
	if (errno) {
		rc = walk_fail(w, FS_ST_IO, "%s/%s: cannot list the directory: %s", w->src, rel, strerror(errno));
		goto out;
	}
	qsort(names, nn, sizeof(*names), name_cmp);
	for (size_t i = 0; i < nn && rc == 0; i++) {
		char cip[FSPF_PATH_MAX + 300], crel[FSPF_PATH_MAX + 300];
		const char *name = names[i];
		snprintf(cip, sizeof(cip), "%s%s%s", ipath, strcmp(ipath, "/") ? "/" : "", name);
		snprintf(crel, sizeof(crel), "%s%s%s", rel, *rel ? "/" : "", name);
		if (strlen(cip) > FSPF_PATH_MAX || strlen(name) > FSPF_NAME_MAX) {
			rc = walk_fail(w, FS_ST_USAGE, "%s/%s: path too long for the fspf", w->src, crel);
			break;
		}
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = walk_fail(w, FS_ST_IO, "%s/%s: %s", w->src, crel, strerror(errno));
			break;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
			rc = walk_fail(w, FS_ST_USAGE, "%s/%s is %s: only directories, regular files and symbolic links "
				       "can be protected", w->src, crel, type_name(st.st_mode));
			break;
		}
		if ((rc = add_item(w, cip, crel, &st)) != 0)
			break;
		struct item *it = &w->items[w->n - 1];
		if (S_ISREG(st.st_mode)) {
			const fspf_region *r = fspf_region_of(w->m, cip);
			if (!r) {
				rc = walk_fail(w, FS_ST_USAGE, "no region covers %s (from %s/%s): add one with 'fshield fspf "
					       "addr'", cip, w->src, crel);
				break;
			}
			if (r->kind == FSPF_ENCRYPTED && !w->out) {
				rc = walk_fail(w, FS_ST_USAGE, "%s is in the encrypted region %s: give an OUTPUT_DIR for "
					       "its ciphertext", cip, r->path);
				break;
			}
			if ((uint64_t)st.st_size > FSPF_MAX_SIZE) {
				rc = walk_fail(w, FS_ST_USAGE, "%s/%s: too large", w->src, crel);
				break;
			}
			it->kind = r->kind;
			it->chunk_size = r->chunk_size;
			/* readable? (checked now, so that nothing is written for a tree that cannot be added) */
			if (r->kind != FSPF_NOT_PROTECTED || w->out) {
				int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
				if (fd < 0) {
					rc = walk_fail(w, FS_ST_IO, "%s/%s: cannot read it: %s", w->src, crel,
						       strerror(errno));
					break;
				}
				close(fd);
			}
		} else if (S_ISLNK(st.st_mode)) {
			char t[FSPF_TARGET_MAX + 2], res[FSPF_PATH_MAX + 2];
			ssize_t tl = readlinkat(dirfd, name, t, sizeof(t));
			if (tl < 0) {
				rc = walk_fail(w, FS_ST_IO, "%s/%s: %s", w->src, crel, strerror(errno));
				break;
			}
			if (tl == 0 || tl > FSPF_TARGET_MAX) {
				rc = walk_fail(w, FS_ST_USAGE, "%s/%s: link target empty or too long", w->src, crel);
				break;
			}
			t[tl] = '\0';
			int inside = resolve_target(cip, t, res, sizeof(res)) == 0 && fspf_path_under(res, w->top);
			for (size_t k = 0; !inside && w->o && k < w->o->nlink_roots; k++)
				inside = resolve_target(cip, t, res, sizeof(res)) == 0 &&
					 fspf_path_under(res, w->o->link_roots[k]);
			if (!inside) {
				rc = walk_fail(w, FS_ST_USAGE, "%s/%s -> %s: the symbolic link points outside the protected "
					       "tree %s (protect its target too, or remove the link)", w->src, crel, t,
					       w->top);
				break;
			}
			if (!(it->target = strdup(t))) {
				rc = walk_fail(w, FS_ST_IO, "out of memory");
				break;
			}
		} else {
			int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				rc = walk_fail(w, FS_ST_IO, "%s/%s: cannot open the directory: %s", w->src, crel,
					       strerror(errno));
				break;
			}
			rc = walk_dir(w, fd, cip, crel, depth + 1);
		}
	}
out:
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* Removes everything below dirfd (not dirfd itself). */
static void remove_contents(int dirfd)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			continue;
		int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			remove_contents(sub);
			close(sub);
		}
		unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* Reads the file, seals its chunks, writes the output; fills it->tags and it->salt. */
static int seal_file(struct walk *w, const fspf *m, int srcfd, int outfd, struct item *it, uint8_t *buf,
		     size_t bufcap)
{
	int fd = openat(srcfd, it->rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ofd = -1, rc = -EIO;
	fs_aead *a = NULL;
	struct stat st;
	if (fd < 0)
		return walk_fail(w, FS_ST_IO, "%s/%s: cannot read it: %s", w->src, it->rel, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != it->st.st_size ||
	    st.st_mtim.tv_sec != it->st.st_mtim.tv_sec || st.st_mtim.tv_nsec != it->st.st_mtim.tv_nsec) {
		walk_fail(w, FS_ST_IO, "%s/%s changed while it was being added", w->src, it->rel);
		goto out;
	}
	fspf_entry e = { .path = it->ipath, .kind = it->kind, .chunk_size = it->chunk_size,
			 .size = (uint64_t)st.st_size };
	uint64_t nc = fspf_nchunks(&e);
	if (it->kind != FSPF_NOT_PROTECTED) {
		randombytes_buf(it->salt, sizeof(it->salt));
		memcpy(e.salt, it->salt, sizeof(e.salt));
		it->tags = malloc(nc ? nc * FS_TAG_BYTES : 1);
		a = fspf_file_aead(m, &e);
		if (!it->tags || !a) {
			walk_fail(w, FS_ST_IO, "out of memory");
			goto out;
		}
	}
	if (outfd >= 0) {
		ofd = openat(outfd, it->rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (ofd < 0) {
			walk_fail(w, FS_ST_IO, "%s/%s: %s", w->out, it->rel, strerror(errno));
			goto out;
		}
	}
	if (it->kind == FSPF_NOT_PROTECTED && ofd < 0) {
		rc = 0;
		goto out;
	}
	size_t per = bufcap / it->chunk_size * it->chunk_size;
	uint64_t off = 0, idx = 0;
	for (;;) {
		size_t got = 0;
		while (got < per) {
			ssize_t r = read(fd, buf + got, per - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				walk_fail(w, FS_ST_IO, "%s/%s: read: %s", w->src, it->rel, strerror(errno));
				goto out;
			}
			if (r == 0)
				break;
			got += (size_t)r;
		}
		if (off + got > e.size) {
			walk_fail(w, FS_ST_IO, "%s/%s grew while it was being added", w->src, it->rel);
			goto out;
		}
		if (got == 0)
			break;
		if (a) {
			for (size_t c = 0; c < got; c += it->chunk_size, idx++) {
				size_t len = got - c < it->chunk_size ? got - c : it->chunk_size;
				if (fspf_chunk_seal(a, &e, idx, buf + c, len, it->tags[idx]) != 0) {
					walk_fail(w, FS_ST_IO, "%s: sealing failed", it->ipath);
					goto out;
				}
			}
		}
		int wr = ofd >= 0 ? fspf_full_write(ofd, buf, got) : 0;
		if (wr < 0) {
			walk_fail(w, FS_ST_IO, "%s/%s: write: %s", w->out, it->rel, strerror(-wr));
			goto out;
		}
		off += got;
		w->p_bytes += got;
		progress(w);
		if (got < per)
			break;
	}
	if (off != e.size) {
		walk_fail(w, FS_ST_IO, "%s/%s shrank while it was being added", w->src, it->rel);
		goto out;
	}
	rc = 0;
out:
	fs_aead_free(a);
	if (ofd >= 0 && close(ofd) != 0 && rc == 0)
		rc = walk_fail(w, FS_ST_IO, "%s/%s: %s", w->out, it->rel, strerror(errno));
	close(fd);
	return rc;
}

/* Creates dir and missing parents (mode 0755); *created gets the topmost directory made, or "". */
static int mkdir_parents(const char *dir, char *created, size_t cap)
{
	char buf[4200];
	created[0] = '\0';
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0755) == 0) {
				if (!created[0])
					snprintf(created, cap, "%s", buf);
			} else if (errno != EEXIST) {
				return -errno;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return fspf_path_cmp(((const fspf_entry *)a)->path, ((const fspf_entry *)b)->path);
}

int fspf_add_tree(fspf *m, const char *path, const char *src, const char *out, fspf_add_opts *o, char *err,
		  size_t errlen)
{
	char top[FSPF_PATH_MAX + 2];
	struct walk w = { .m = m, .top = top, .src = src, .out = out, .o = o, .err = err, .errlen = errlen };
	int srcfd = -1, outfd = -1, made_out = 0;
	char created[4200] = "";
	uint8_t *buf = NULL;
	if (fspf_path_normalize(path, top, sizeof(top)) != 0) {
		fspf_seterr(err, errlen, "%s: PATH is an absolute path without '.' or '..' components", path);
		return FS_ST_USAGE;
	}
	if (m->sealed) {
		fspf_seterr(err, errlen, "the fspf is already encrypted; files are added before 'fshield fspf encrypt'");
		return FS_ST_USAGE;
	}
	/* Overlaps with what the manifest holds already. */
	long at = fspf_find(m, top);
	if (at >= 0 && !S_ISDIR(m->entries[at].mode)) {
		fspf_seterr(err, errlen, "%s is already in the fspf as a file", top);
		return FS_ST_USAGE;
	}
	for (uint32_t i = 0; i < m->nentries; i++)
		if (strcmp(m->entries[i].path, top) && fspf_path_under(m->entries[i].path, top)) {
			fspf_seterr(err, errlen, "%s overlaps what was added before (%s is already in the fspf)", top,
			       m->entries[i].path);
			return FS_ST_USAGE;
		}
	for (char anc[FSPF_PATH_MAX + 2], *s = strcpy(anc, top); (s = strrchr(anc, '/')) && s != anc;) {
		*s = '\0';
		long p = fspf_find(m, anc);
		if (p >= 0 && !S_ISDIR(m->entries[p].mode)) {
			fspf_seterr(err, errlen, "%s: %s is a file in the fspf, not a directory", top, anc);
			return FS_ST_USAGE;
		}
	}
	srcfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat sst;
	if (srcfd < 0 || fstat(srcfd, &sst) != 0) {
		fspf_seterr(err, errlen, "%s: %s", src, strerror(errno));
		if (srcfd >= 0)
			close(srcfd);
		return FS_ST_IO;
	}
	if (out) {
		char rs[4200], ro[4200];
		struct stat ost;
		if (lstat(out, &ost) == 0) {
			int ofd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			DIR *d = ofd >= 0 ? fdopendir(ofd) : NULL;
			int empty = d != NULL;
			struct dirent *de;
			while (d && (de = readdir(d)))
				if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
					empty = 0;
			if (d)
				closedir(d);
			else if (ofd >= 0)
				close(ofd);
			if (!empty) {
				fspf_seterr(err, errlen, "%s: OUTPUT_DIR must be missing or an empty directory", out);
				close(srcfd);
				return FS_ST_USAGE;
			}
		}
		if (realpath(src, rs) && realpath(out, ro) && (fspf_path_under(ro, rs) || fspf_path_under(rs, ro))) {
			fspf_seterr(err, errlen, "%s and %s: OUTPUT_DIR and SOURCE_DIR must not contain each other", src, out);
			close(srcfd);
			return FS_ST_USAGE;
		}
	}
	/* Pass 1: collect and check everything. */
	if (add_item(&w, top, "", &sst) == 0) {
		int dfd = dup(srcfd);
		if (dfd < 0)
			walk_fail(&w, FS_ST_IO, "%s: %s", src, strerror(errno));
		else
			walk_dir(&w, dfd, top, "", 0);
	}
	if (w.status != FS_OK)
		goto fail;
	if (m->nentries + w.n + 512 > FSPF_MAX_ENTRIES) {
		walk_fail(&w, FS_ST_USAGE, "too many entries for one fspf");
		goto fail;
	}
	/* Pass 2: seal and write. */
	if (out) {
		int rc = mkdir_parents(out, created, sizeof(created));
		if (rc < 0) {
			walk_fail(&w, FS_ST_IO, "%s: %s", out, strerror(-rc));
			goto fail;
		}
		made_out = 1;
		outfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (outfd < 0) {
			walk_fail(&w, FS_ST_IO, "%s: %s", out, strerror(errno));
			goto fail;
		}
	}
	size_t bufcap = 1u << 20;
	if (!(buf = malloc(bufcap))) {
		walk_fail(&w, FS_ST_IO, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < w.n; i++)
		if (S_ISREG(w.items[i].st.st_mode))
			w.p_bytes_total += (uint64_t)w.items[i].st.st_size;
	progress(&w);
	for (size_t i = 0; i < w.n; i++) {
		struct item *it = &w.items[i];
		if (i) {
			w.p_items = i;
			progress(&w);
		}
		if (S_ISDIR(it->st.st_mode)) {
			if (outfd >= 0 && *it->rel && mkdirat(outfd, it->rel, 0755) != 0) {
				walk_fail(&w, FS_ST_IO, "%s/%s: %s", out, it->rel, strerror(errno));
				goto fail;
			}
			if (o)
				o->dirs++;
		} else if (S_ISREG(it->st.st_mode)) {
			uint64_t before = w.p_bytes;
			if (seal_file(&w, m, srcfd, outfd, it, buf, bufcap) != 0)
				goto fail;
			w.p_bytes = before + (uint64_t)it->st.st_size; /* also when nothing was read */
			if (o) {
				o->files++;
				o->bytes += (uint64_t)it->st.st_size;
			}
		} else if (o) {
			o->links++;
		}
	}
	w.p_items = w.n;
	progress(&w);
	if (outfd >= 0 && syncfs(outfd) != 0) {
		walk_fail(&w, FS_ST_IO, "%s: sync: %s", out, strerror(errno));
		goto fail;
	}
	/* Merge: new entries, implicit parent directories, then sort and index. */
	size_t extra = 0;
	char anc[FSPF_PATH_MAX + 2];
	for (char *s = strcpy(anc, top); (s = strrchr(anc, '/')) && s != anc;) {
		*s = '\0';
		if (fspf_find(m, anc) < 0)
			extra++;
	}
	size_t need = m->nentries + w.n + extra;
	if (need > m->cap) {
		fspf_entry *ne = realloc(m->entries, need * sizeof(*ne));
		if (!ne) {
			walk_fail(&w, FS_ST_IO, "out of memory");
			goto fail;
		}
		m->entries = ne;
		m->cap = (uint32_t)need;
	}
	for (char *s = strcpy(anc, top); (s = strrchr(anc, '/')) && s != anc;) {
		*s = '\0';
		if (fspf_find(m, anc) >= 0)
			continue;
		fspf_entry *e = &m->entries[m->nentries + w.n + --extra];
		memset(e, 0, sizeof(*e));
		e->path = strdup(anc);
		e->mode = S_IFDIR | 0755;
		e->mtime_s = sst.st_mtim.tv_sec;
		e->mtime_ns = (uint32_t)sst.st_mtim.tv_nsec;
	}
	uint32_t n0 = m->nentries, added = 0;
	for (size_t i = 0; i < w.n; i++) {
		struct item *it = &w.items[i];
		fspf_entry *e;
		if (i == 0 && at >= 0) {
			e = &m->entries[at]; /* an existing (empty or implicit) directory takes the source's attributes */
		} else {
			e = &m->entries[n0 + added++];
			memset(e, 0, sizeof(*e));
			e->path = it->ipath;
			it->ipath = NULL;
		}
		e->mode = it->st.st_mode;
		e->uid = it->st.st_uid;
		e->gid = it->st.st_gid;
		e->mtime_s = it->st.st_mtim.tv_sec;
		e->mtime_ns = (uint32_t)it->st.st_mtim.tv_nsec;
		if (S_ISREG(e->mode)) {
			e->kind = it->kind;
			e->chunk_size = it->chunk_size;
			e->size = (uint64_t)it->st.st_size;
			memcpy(e->salt, it->salt, sizeof(e->salt));
			e->tags = it->tags;
			it->tags = NULL;
		} else if (S_ISLNK(e->mode)) {
			e->target = it->target;
			it->target = NULL;
		}
	}
	/* the implicit directories were placed after the new entries */
	size_t nimpl = need - n0 - w.n;
	if (added != w.n && nimpl)
		memmove(&m->entries[n0 + added], &m->entries[n0 + w.n], nimpl * sizeof(fspf_entry));
	m->nentries = n0 + added + (uint32_t)nimpl;
	for (uint32_t i = n0; i < m->nentries; i++)
		if (!m->entries[i].path) {
			/* strdup failed for an implicit directory: drop it; fspf_index reports the gap */
			memmove(&m->entries[i], &m->entries[i + 1], (m->nentries - i - 1) * sizeof(fspf_entry));
			m->nentries--;
			i--;
		}
	qsort(m->entries, m->nentries, sizeof(fspf_entry), entry_cmp);
	int irc = fspf_index(m);
	free(buf);
	items_free(w.items, w.n);
	close(srcfd);
	if (outfd >= 0)
		close(outfd);
	if (irc != 0) {
		fspf_seterr(err, errlen, "out of memory");
		return FS_ST_IO;
	}
	return FS_OK;
fail:
	free(buf);
	items_free(w.items, w.n);
	close(srcfd);
	if (outfd >= 0) {
		remove_contents(outfd);
		close(outfd);
	}
	if (made_out && created[0]) {
		/* remove the directories this call made, deepest first */
		char d[4200];
		snprintf(d, sizeof(d), "%s", out);
		for (;;) {
			rmdir(d);
			if (!strcmp(d, created))
				break;
			char *s = strrchr(d, '/');
			if (!s || s == d)
				break;
			*s = '\0';
		}
	}
	return w.status ? w.status : FS_ST_IO;
}
