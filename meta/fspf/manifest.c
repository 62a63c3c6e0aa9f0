/* The manifest in memory: its regions and entries, lookups by path and the directory index
 * (meta/fspf/fspf.h). */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto/keys.h"
#include "meta/common/status.h"
#include "meta/fspf/internal.h"

const char *fspf_kind_name(int kind)
{
	switch (kind) {
	case FSPF_ENCRYPTED: return "encrypted";
	case FSPF_AUTHENTICATED: return "authenticated";
	case FSPF_NOT_PROTECTED: return "not-protected";
	default: return "unknown";
	}
}

static void free_entry(fspf_entry *e)
{
	free(e->path);
	free(e->tags);
	free(e->target);
}

void fspf_free(fspf *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nregions; i++)
		free(m->regions[i].path);
	free(m->regions);
	for (uint32_t i = 0; i < m->nentries; i++)
		free_entry(&m->entries[i]);
	free(m->entries);
	free(m->child_store);
	if (m->key)
		fs_key_free(m->key);
	if (m->files_key)
		fs_key_free(m->files_key);
	free(m);
}

fspf *fspf_new(int data_aead)
{
	fspf *m = calloc(1, sizeof(*m));
	uint8_t key[32];
	if (!m)
		return NULL;
	m->data_aead = data_aead ? data_aead : fs_aead_default_alg();
	randombytes_buf(m->id, sizeof(m->id));
	randombytes_buf(key, sizeof(key));
	int rc = fspf_set_key(m, key);
	sodium_memzero(key, sizeof(key));
	m->entries = calloc(1, sizeof(fspf_entry));
	if (rc || !m->entries || !(m->entries[0].path = strdup("/")))
		goto fail;
	m->nentries = m->cap = 1;
	m->entries[0].mode = S_IFDIR | 0755;
	m->entries[0].mtime_s = (int64_t)time(NULL);
	if (fspf_index(m) != 0)
		goto fail;
	return m;
fail:
	fspf_free(m);
	return NULL;
}

const fspf_region *fspf_region_of(const fspf *m, const char *path)
{
	const fspf_region *best = NULL;
	for (uint32_t i = 0; i < m->nregions; i++)
		if (fspf_path_under(path, m->regions[i].path) &&
		    (!best || strlen(m->regions[i].path) > strlen(best->path)))
			best = &m->regions[i];
	return best;
}

static int region_cmp(const void *a, const void *b)
{
	return fspf_path_cmp(((const fspf_region *)a)->path, ((const fspf_region *)b)->path);
}

int fspf_add_region(fspf *m, const char *path, int kind, uint32_t chunk_size, char *err, size_t errlen)
{
	char norm[FSPF_PATH_MAX + 2];
	if (fspf_path_normalize(path, norm, sizeof(norm)) != 0) {
		fspf_seterr(err, errlen, "%s: a region is an absolute path without '.' or '..' components", path);
		return FS_ST_USAGE;
	}
	if (!fspf_kind_ok(kind)) {
		fspf_seterr(err, errlen, "unknown region kind %d", kind);
		return FS_ST_USAGE;
	}
	if (!chunk_size)
		chunk_size = FSPF_DEFAULT_CHUNK;
	if (!fspf_chunk_size_ok(chunk_size)) {
		fspf_seterr(err, errlen, "chunk size %u: a power of two from 4096 to 1048576", chunk_size);
		return FS_ST_USAGE;
	}
	/* Refuse a change that would alter how files already added are protected: try it on a copy. */
	int st = FS_ST_IO;
	fspf tmp = *m;
	fspf_region *regs = malloc(((size_t)m->nregions + 1) * sizeof(*regs));
	if (!regs)
		goto oom;
	if (m->nregions)
		memcpy(regs, m->regions, m->nregions * sizeof(*regs));
	uint32_t n = m->nregions;
	long at = -1;
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(regs[i].path, norm))
			at = i;
	fspf_region nr = { norm, (uint8_t)kind, chunk_size };
	if (at >= 0)
		regs[at] = nr;
	else
		regs[n++] = nr;
	tmp.regions = regs;
	tmp.nregions = n;
	for (uint32_t i = 0; i < m->nentries; i++) {
		const fspf_entry *e = &m->entries[i];
		if (!S_ISREG(e->mode))
			continue;
		const fspf_region *r = fspf_region_of(&tmp, e->path);
		if (!r || r->kind != e->kind || r->chunk_size != e->chunk_size) {
			fspf_seterr(err, errlen, "region %s would change the protection of %s, already added as %s",
				    norm, e->path, fspf_kind_name(e->kind));
			st = FS_ST_USAGE;
			goto out;
		}
	}
	if (n > FSPF_MAX_REGIONS) {
		fspf_seterr(err, errlen, "too many regions (at most %u)", FSPF_MAX_REGIONS);
		st = FS_ST_USAGE;
		goto out;
	}
	char *dup = strdup(norm);
	if (!dup)
		goto oom;
	if (at >= 0)
		free(m->regions[at].path);
	regs[at >= 0 ? (uint32_t)at : n - 1].path = dup;
	qsort(regs, n, sizeof(*regs), region_cmp);
	free(m->regions);
	m->regions = regs;
	m->nregions = n;
	return FS_OK;
oom:
	fspf_seterr(err, errlen, "out of memory");
out:
	free(regs);
	return st;
}

long fspf_find(const fspf *m, const char *path)
{
	size_t lo = 0, hi = m->nentries;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = fspf_path_cmp(m->entries[mid].path, path);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int fspf_index(fspf *m)
{
	free(m->child_store);
	m->child_store = NULL;
	if (m->nentries == 0 || strcmp(m->entries[0].path, "/") || !S_ISDIR(m->entries[0].mode))
		return -EINVAL;
	uint32_t *count = calloc(m->nentries, sizeof(uint32_t));
	uint32_t *store = malloc((m->nentries ? m->nentries : 1) * sizeof(uint32_t));
	if (!count || !store) {
		free(count);
		free(store);
		return -ENOMEM;
	}
	m->entries[0].parent = 0;
	m->entries[0].name = m->entries[0].path + 1;
	char buf[FSPF_PATH_MAX + 2];
	for (uint32_t i = 1; i < m->nentries; i++) {
		fspf_entry *e = &m->entries[i];
		const char *slash = strrchr(e->path, '/');
		size_t plen = (size_t)(slash - e->path);
		e->name = slash + 1;
		long p;
		if (plen == 0) {
			p = 0;
		} else {
			memcpy(buf, e->path, plen);
			buf[plen] = '\0';
			p = fspf_find(m, buf);
		}
		if (p < 0 || (uint32_t)p >= i || !S_ISDIR(m->entries[p].mode)) {
			free(count);
			free(store);
			return -EINVAL;
		}
		e->parent = (uint32_t)p;
		count[p]++;
	}
	uint32_t off = 0;
	for (uint32_t i = 0; i < m->nentries; i++) {
		m->entries[i].child = store + off;
		m->entries[i].nchild = 0;
		off += count[i];
	}
	for (uint32_t i = 1; i < m->nentries; i++) {
		fspf_entry *p = &m->entries[m->entries[i].parent];
		p->child[p->nchild++] = i;
	}
	free(count);
	m->child_store = store;
	return 0;
}

long fspf_child(const fspf *m, uint32_t dir, const char *name, size_t len)
{
	const fspf_entry *d = &m->entries[dir];
	size_t lo = 0, hi = d->nchild;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *n = m->entries[d->child[mid]].name;
		size_t nl = strlen(n);
		int c = memcmp(n, name, nl < len ? nl : len);
		if (c == 0)
			c = nl < len ? -1 : nl > len ? 1 : 0;
		if (c == 0)
			return d->child[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- encoding ---- */
