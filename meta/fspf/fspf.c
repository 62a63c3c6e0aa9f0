/* The file system protection file: format, keys, chunk sealing, building a protected tree, and the offline
 * check of one (meta/fspf/fspf.h, docs/FORMAT.md "File system protection file"). */
#include "meta/fspf/fspf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/common/status.h"

static const uint8_t magic[8] = { 'F', 'S', 'H', 'F', 'S', 'P', 'F', 0 };

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *fspf_kind_name(int kind)
{
	switch (kind) {
	case FSPF_ENCRYPTED: return "encrypted";
	case FSPF_AUTHENTICATED: return "authenticated";
	case FSPF_NOT_PROTECTED: return "not-protected";
	default: return "unknown";
	}
}

/* ---- paths ---- */

int fspf_path_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	for (;; x++, y++) {
		unsigned cx = *x == '/' ? 1 : *x ? (unsigned)*x + 1 : 0;
		unsigned cy = *y == '/' ? 1 : *y ? (unsigned)*y + 1 : 0;
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (!cx)
			return 0;
	}
}

int fspf_path_normalize(const char *in, char *out, size_t outlen)
{
	if (!in || in[0] != '/' || outlen < 2)
		return -1;
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len > FSPF_NAME_MAX || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return -1;
		if (o + 1 + len + 1 > outlen || o + 1 + len > FSPF_PATH_MAX)
			return -1;
		out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

int fspf_path_under(const char *path, const char *prefix)
{
	if (!strcmp(prefix, "/"))
		return path[0] == '/';
	size_t n = strlen(prefix);
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

static int is_normal(const char *p, size_t len)
{
	char tmp[FSPF_PATH_MAX + 2];
	if (len == 0 || len > FSPF_PATH_MAX || memchr(p, 0, len))
		return 0;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	char norm[FSPF_PATH_MAX + 2];
	return fspf_path_normalize(tmp, norm, sizeof(norm)) == 0 && !strcmp(norm, tmp);
}

static int pow2_chunk(uint32_t cs)
{
	return cs >= 4096 && cs <= (1u << 20) && !(cs & (cs - 1));
}

/* ---- keys ---- */

static void subkey(uint8_t out[32], const uint8_t key[32], const uint8_t id[FSPF_ID_BYTES], uint8_t p)
{
	fs_mac m;
	fs_mac_init(&m, key, FSPF_DOM_SUBKEY);
	fs_mac_update(&m, &p, 1);
	fs_mac_update(&m, id, FSPF_ID_BYTES);
	fs_mac_final(&m, out);
}

static int set_key(fspf *m, const uint8_t key[32])
{
	if (!m->key && !(m->key = fs_key_alloc()))
		return -1;
	if (!m->files_key && !(m->files_key = fs_key_alloc()))
		return -1;
	memcpy(m->key, key, 32);
	subkey(m->files_key, key, m->id, FSPF_SUB_FILES);
	return 0;
}

/* ---- manifest in memory ---- */

static fspf *alloc_empty(void)
{
	fspf *m = calloc(1, sizeof(*m));
	return m;
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
	fspf *m = alloc_empty();
	uint8_t key[32];
	if (!m)
		return NULL;
	m->data_aead = data_aead ? data_aead : fs_aead_default_alg();
	randombytes_buf(m->id, sizeof(m->id));
	randombytes_buf(key, sizeof(key));
	int rc = set_key(m, key);
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
		seterr(err, errlen, "%s: a region is an absolute path without '.' or '..' components", path);
		return FS_ST_USAGE;
	}
	if (kind < FSPF_ENCRYPTED || kind > FSPF_NOT_PROTECTED) {
		seterr(err, errlen, "unknown region kind %d", kind);
		return FS_ST_USAGE;
	}
	if (!chunk_size)
		chunk_size = FSPF_DEFAULT_CHUNK;
	if (!pow2_chunk(chunk_size)) {
		seterr(err, errlen, "chunk size %u: a power of two from 4096 to 1048576", chunk_size);
		return FS_ST_USAGE;
	}
	/* Refuse a change that would alter how files already added are protected. */
	fspf tmp = *m;
	fspf_region *regs = malloc(((size_t)m->nregions + 1) * sizeof(*regs));
	if (!regs) {
		seterr(err, errlen, "out of memory");
		return FS_ST_IO;
	}
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
			seterr(err, errlen, "region %s would change the protection of %s, already added as %s", norm,
			       e->path, fspf_kind_name(e->kind));
			free(regs);
			return FS_ST_USAGE;
		}
	}
	if (n > FSPF_MAX_REGIONS) {
		seterr(err, errlen, "too many regions (at most %u)", FSPF_MAX_REGIONS);
		free(regs);
		return FS_ST_USAGE;
	}
	char *dup = strdup(norm);
	if (!dup) {
		free(regs);
		seterr(err, errlen, "out of memory");
		return FS_ST_IO;
	}
	if (at >= 0) {
		free(m->regions[at].path);
		regs[at].path = dup;
	} else {
		regs[n - 1].path = dup;
	}
	qsort(regs, n, sizeof(*regs), region_cmp);
	free(m->regions);
	m->regions = regs;
	m->nregions = n;
	return FS_OK;
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
		return -2;
	uint32_t *count = calloc(m->nentries, sizeof(uint32_t));
	uint32_t *store = malloc((m->nentries ? m->nentries : 1) * sizeof(uint32_t));
	if (!count || !store) {
		free(count);
		free(store);
		return -1;
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
			return -2;
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

struct wbuf {
	uint8_t *p;
	size_t n, cap;
	int oom;
};

static void put(struct wbuf *w, const void *d, size_t n)
{
	if (w->oom)
		return;
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->n + n)
			cap *= 2;
		uint8_t *p = realloc(w->p, cap);
		if (!p) {
			w->oom = 1;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->n, d, n);
	w->n += n;
}
static void put_u8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}
static void put_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	put(w, b, 2);
}
static void put_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];
	fs_put_le32(b, v);
	put(w, b, 4);
}
static void put_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];
	fs_put_le64(b, v);
	put(w, b, 8);
}

static void encode_body(const fspf *m, struct wbuf *w)
{
	put_u8(w, (uint8_t)m->data_aead);
	put_u8(w, 0);
	put_u8(w, 0);
	put_u8(w, 0);
	put_u32(w, m->nregions);
	for (uint32_t i = 0; i < m->nregions; i++) {
		const fspf_region *r = &m->regions[i];
		put_u16(w, (uint16_t)strlen(r->path));
		put(w, r->path, strlen(r->path));
		put_u8(w, r->kind);
		put_u8(w, 0);
		put_u8(w, 0);
		put_u8(w, 0);
		put_u32(w, r->chunk_size);
	}
	put_u32(w, m->nentries);
	for (uint32_t i = 0; i < m->nentries; i++) {
		const fspf_entry *e = &m->entries[i];
		put_u16(w, (uint16_t)strlen(e->path));
		put(w, e->path, strlen(e->path));
		put_u32(w, e->mode);
		put_u32(w, e->uid);
		put_u32(w, e->gid);
		put_u64(w, (uint64_t)e->mtime_s);
		put_u32(w, e->mtime_ns);
		if (S_ISREG(e->mode)) {
			put_u8(w, e->kind);
			put_u8(w, 0);
			put_u8(w, 0);
			put_u8(w, 0);
			put_u32(w, e->chunk_size);
			put_u64(w, e->size);
			if (fspf_protected(e)) {
				put(w, e->salt, FSPF_SALT_BYTES);
				put(w, e->tags, fspf_nchunks(e) * FS_TAG_BYTES);
			}
		} else if (S_ISLNK(e->mode)) {
			put_u16(w, (uint16_t)strlen(e->target));
			put(w, e->target, strlen(e->target));
		}
	}
}

uint8_t *fspf_encode_body(const fspf *m, size_t *len)
{
	struct wbuf w = { 0 };
	encode_body(m, &w);
	if (w.oom) {
		free(w.p);
		return NULL;
	}
	*len = w.n;
	return w.p ? w.p : calloc(1, 1);
}

struct rbuf {
	const uint8_t *p;
	size_t n, off;
};
static int take(struct rbuf *r, void *d, size_t n)
{
	if (r->n - r->off < n)
		return -1;
	if (d)
		memcpy(d, r->p + r->off, n);
	r->off += n;
	return 0;
}
static int get_u8(struct rbuf *r, uint8_t *v)
{
	return take(r, v, 1);
}
static int get_u16(struct rbuf *r, uint16_t *v)
{
	uint8_t b[2];
	if (take(r, b, 2))
		return -1;
	*v = (uint16_t)(b[0] | b[1] << 8);
	return 0;
}
static int get_u32(struct rbuf *r, uint32_t *v)
{
	uint8_t b[4];
	if (take(r, b, 4))
		return -1;
	*v = fs_get_le32(b);
	return 0;
}
static int get_u64(struct rbuf *r, uint64_t *v)
{
	uint8_t b[8];
	if (take(r, b, 8))
		return -1;
	*v = fs_get_le64(b);
	return 0;
}
static int get_zero3(struct rbuf *r)
{
	uint8_t b[3];
	return take(r, b, 3) || b[0] || b[1] || b[2] ? -1 : 0;
}
/* A length-prefixed string (u16), 1 ... max bytes, no NUL; malloc'd. */
static char *get_str(struct rbuf *r, size_t max)
{
	uint16_t len;
	if (get_u16(r, &len) || len == 0 || len > max || r->n - r->off < len ||
	    memchr(r->p + r->off, 0, len))
		return NULL;
	char *s = malloc((size_t)len + 1);
	if (!s)
		return NULL;
	memcpy(s, r->p + r->off, len);
	s[len] = '\0';
	r->off += len;
	return s;
}

#define MIN_ENTRY_BYTES 27 /* u16 length, one path byte, mode, uid, gid, mtime */

int fspf_parse_body(fspf *m, const uint8_t *b, size_t n, char *err, size_t errlen)
{
	struct rbuf r = { b, n, 0 };
	uint8_t aead;
	uint32_t nreg, nent;
	if (get_u8(&r, &aead) || !fs_aead_alg_valid(aead) || get_zero3(&r)) {
		seterr(err, errlen, "fspf body: unknown data cipher or reserved bytes set");
		return -1;
	}
	m->data_aead = aead;
	if (get_u32(&r, &nreg) || nreg > FSPF_MAX_REGIONS || nreg > (n - r.off) / 10) {
		seterr(err, errlen, "fspf body: bad region count");
		return -1;
	}
	m->regions = calloc(nreg ? nreg : 1, sizeof(fspf_region));
	if (!m->regions) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < nreg; i++) {
		fspf_region *rg = &m->regions[i];
		char *p = get_str(&r, FSPF_PATH_MAX);
		uint8_t kind;
		if (!p) {
			seterr(err, errlen, "fspf body: region %u: bad path", i);
			return -1;
		}
		rg->path = p;
		m->nregions = i + 1;
		if (!is_normal(p, strlen(p)) || get_u8(&r, &kind) || kind < FSPF_ENCRYPTED ||
		    kind > FSPF_NOT_PROTECTED || get_zero3(&r) || get_u32(&r, &rg->chunk_size) ||
		    !pow2_chunk(rg->chunk_size)) {
			seterr(err, errlen, "fspf body: region %u: malformed", i);
			return -1;
		}
		rg->kind = kind;
		if (i && fspf_path_cmp(m->regions[i - 1].path, p) >= 0) {
			seterr(err, errlen, "fspf body: regions not in order");
			return -1;
		}
	}
	if (get_u32(&r, &nent) || nent == 0 || nent > FSPF_MAX_ENTRIES || nent > (n - r.off) / MIN_ENTRY_BYTES) {
		seterr(err, errlen, "fspf body: bad entry count");
		return -1;
	}
	m->entries = calloc(nent, sizeof(fspf_entry));
	if (!m->entries) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	m->cap = nent;
	for (uint32_t i = 0; i < nent; i++) {
		fspf_entry *e = &m->entries[i];
		uint64_t mt;
		char *p = get_str(&r, FSPF_PATH_MAX);
		if (!p) {
			seterr(err, errlen, "fspf body: entry %u: bad path", i);
			return -1;
		}
		e->path = p;
		m->nentries = i + 1;
		if (!is_normal(p, strlen(p)) || (i == 0) != !strcmp(p, "/") ||
		    (i && fspf_path_cmp(m->entries[i - 1].path, p) >= 0)) {
			seterr(err, errlen, "fspf body: entry %u: path not normalised, out of order or repeated", i);
			return -1;
		}
		if (get_u32(&r, &e->mode) || get_u32(&r, &e->uid) || get_u32(&r, &e->gid) || get_u64(&r, &mt) ||
		    get_u32(&r, &e->mtime_ns) || e->mtime_ns >= 1000000000u || (e->mode & ~(uint32_t)(S_IFMT | 07777)) ||
		    !(S_ISDIR(e->mode) || S_ISREG(e->mode) || S_ISLNK(e->mode)) || (i == 0 && !S_ISDIR(e->mode))) {
			seterr(err, errlen, "fspf body: %s: bad attributes", p);
			return -1;
		}
		e->mtime_s = (int64_t)mt;
		if (S_ISREG(e->mode)) {
			uint8_t kind;
			if (get_u8(&r, &kind) || get_zero3(&r) || get_u32(&r, &e->chunk_size) || get_u64(&r, &e->size) ||
			    kind < FSPF_ENCRYPTED || kind > FSPF_NOT_PROTECTED || !pow2_chunk(e->chunk_size) ||
			    e->size > FSPF_MAX_SIZE) {
				seterr(err, errlen, "fspf body: %s: bad file record", p);
				return -1;
			}
			e->kind = kind;
			const fspf_region *rg = fspf_region_of(m, p);
			if (!rg || rg->kind != kind || rg->chunk_size != e->chunk_size) {
				seterr(err, errlen, "fspf body: %s: protection differs from its region", p);
				return -1;
			}
			if (fspf_protected(e)) {
				uint64_t nc = fspf_nchunks(e);
				if (take(&r, e->salt, FSPF_SALT_BYTES) || nc > (r.n - r.off) / FS_TAG_BYTES) {
					seterr(err, errlen, "fspf body: %s: chunk tags cut short", p);
					return -1;
				}
				e->tags = malloc(nc ? nc * FS_TAG_BYTES : 1);
				if (!e->tags) {
					seterr(err, errlen, "out of memory");
					return -1;
				}
				take(&r, e->tags, nc * FS_TAG_BYTES);
			}
		} else if (S_ISLNK(e->mode)) {
			if (!(e->target = get_str(&r, FSPF_TARGET_MAX))) {
				seterr(err, errlen, "fspf body: %s: bad link target", p);
				return -1;
			}
		}
	}
	if (r.off != n) {
		seterr(err, errlen, "fspf body: %zu bytes after the last entry", n - r.off);
		return -1;
	}
	int rc = fspf_index(m);
	if (rc != 0) {
		seterr(err, errlen, rc == -1 ? "out of memory" : "fspf body: an entry's parent is not a directory of the fspf");
		return -1;
	}
	return 0;
}

uint8_t *fspf_encode_working(const fspf *m, size_t *len)
{
	struct wbuf w = { 0 };
	put(&w, magic, 8);
	put_u32(&w, FSPF_VERSION);
	put_u8(&w, 0);
	put_u8(&w, 0);
	put_u8(&w, 0);
	put_u8(&w, 0);
	put(&w, m->id, FSPF_ID_BYTES);
	put(&w, m->key, FSPF_KEY_BYTES);
	encode_body(m, &w);
	if (w.oom) {
		if (w.p)
			sodium_memzero(w.p, w.cap);
		free(w.p);
		return NULL;
	}
	*len = w.n;
	return w.p;
}

int fspf_tag_of(const uint8_t *file, size_t n, const uint8_t key[FSPF_KEY_BYTES], uint8_t tag[FSPF_TAG_BYTES])
{
	uint8_t k[32];
	if (n < 32)
		return -1;
	subkey(k, key, file + 16, FSPF_SUB_TAG);
	fs_mac m;
	fs_mac_init(&m, k, FSPF_DOM_TAG);
	fs_mac_u64(&m, n);
	fs_mac_update(&m, file, n);
	fs_mac_final(&m, tag);
	sodium_memzero(k, sizeof(k));
	return 0;
}

uint8_t *fspf_encode_sealed(const fspf *m, size_t *len, uint8_t tag[FSPF_TAG_BYTES])
{
	size_t blen;
	uint8_t *body = fspf_encode_body(m, &blen);
	if (!body)
		return NULL;
	size_t total = FSPF_SEAL_HDR + blen + 16;
	uint8_t *f = malloc(total), k[32];
	if (!f) {
		free(body);
		return NULL;
	}
	memset(f, 0, FSPF_SEAL_HDR);
	memcpy(f, magic, 8);
	fs_put_le32(f + 8, FSPF_VERSION);
	f[12] = 1;                          /* sealed */
	f[13] = FS_AEAD_XCHACHA20POLY1305;  /* of the body */
	memcpy(f + 16, m->id, FSPF_ID_BYTES);
	subkey(f + 32, m->key, m->id, FSPF_SUB_CHECK);
	randombytes_buf(f + 64, 24);
	fs_put_le64(f + 88, blen);
	subkey(k, m->key, m->id, FSPF_SUB_MANIFEST);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(f + FSPF_SEAL_HDR, f + FSPF_SEAL_HDR + blen, NULL, body,
							   blen, f, FSPF_SEAL_HDR, NULL, f + 64, k);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(body, blen);
	free(body);
	fspf_tag_of(f, total, m->key, tag);
	*len = total;
	return f;
}

int fspf_parse_file(const uint8_t *file, size_t n, const uint8_t *key, const uint8_t *tag, fspf **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	if (n < 16 || memcmp(file, magic, 8) != 0) {
		seterr(err, errlen, "not an fspf (bad magic)");
		return FS_ST_TAMPER;
	}
	uint32_t ver = fs_get_le32(file + 8);
	if (ver != FSPF_VERSION) {
		seterr(err, errlen, "unsupported fspf format version %u", ver);
		return FS_ST_TAMPER;
	}
	fspf *m = alloc_empty();
	if (!m) {
		seterr(err, errlen, "out of memory");
		return FS_ST_IO;
	}
	int st = FS_ST_TAMPER;
	if (file[12] == 0) {
		if (n < FSPF_WORK_HDR || file[13] || file[14] || file[15]) {
			seterr(err, errlen, "fspf: truncated or malformed header");
			goto fail;
		}
		memcpy(m->id, file + 16, FSPF_ID_BYTES);
		if (set_key(m, file + 32) != 0) {
			seterr(err, errlen, "out of memory");
			st = FS_ST_IO;
			goto fail;
		}
		if (fspf_parse_body(m, file + FSPF_WORK_HDR, n - FSPF_WORK_HDR, err, errlen) != 0)
			goto fail;
		*out = m;
		return FS_OK;
	}
	if (file[12] != 1 || n < FSPF_SEAL_HDR + 16 || file[13] != FS_AEAD_XCHACHA20POLY1305 || file[14] || file[15]) {
		seterr(err, errlen, "fspf: truncated or malformed header");
		goto fail;
	}
	uint64_t blen = fs_get_le64(file + 88);
	if (blen > FSPF_MAX_BODY || blen != n - FSPF_SEAL_HDR - 16) {
		seterr(err, errlen, "fspf: length field does not match the file (truncated or extended)");
		goto fail;
	}
	if (!key) {
		seterr(err, errlen, "the fspf is encrypted: its key is needed");
		st = FS_ST_USAGE;
		goto fail;
	}
	memcpy(m->id, file + 16, FSPF_ID_BYTES);
	uint8_t kcv[32], k[32];
	subkey(kcv, key, m->id, FSPF_SUB_CHECK);
	if (!fs_ct_eq(kcv, file + 32, 32)) {
		seterr(err, errlen, "wrong key: the fspf key does not open this fspf");
		st = FS_ST_WRONG_KEY;
		goto fail;
	}
	if (tag) {
		uint8_t t[FSPF_TAG_BYTES];
		fspf_tag_of(file, n, key, t);
		if (!fs_ct_eq(t, tag, FSPF_TAG_BYTES)) {
			seterr(err, errlen, "fspf tag mismatch: the fspf is not the one the tag names (changed, or an "
					    "older or newer version)");
			goto fail;
		}
	}
	uint8_t *body = malloc(blen ? blen : 1);
	if (!body) {
		seterr(err, errlen, "out of memory");
		st = FS_ST_IO;
		goto fail;
	}
	subkey(k, key, m->id, FSPF_SUB_MANIFEST);
	int ok = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(body, NULL, file + FSPF_SEAL_HDR, blen,
								     file + FSPF_SEAL_HDR + blen, file, FSPF_SEAL_HDR,
								     file + 64, k) == 0;
	sodium_memzero(k, sizeof(k));
	if (!ok) {
		free(body);
		seterr(err, errlen, "fspf: the manifest fails authentication");
		goto fail;
	}
	if (set_key(m, key) != 0) {
		free(body);
		seterr(err, errlen, "out of memory");
		st = FS_ST_IO;
		goto fail;
	}
	m->sealed = 1;
	int rc = fspf_parse_body(m, body, blen, err, errlen);
	sodium_memzero(body, blen);
	free(body);
	if (rc != 0)
		goto fail;
	*out = m;
	return FS_OK;
fail:
	fspf_free(m);
	return st;
}

int fspf_load(const char *path, const uint8_t *key, const uint8_t *tag, fspf **out, char *err, size_t errlen)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return FS_ST_IO;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FSPF_MAX_BODY + FSPF_SEAL_HDR + 16) {
		close(fd);
		seterr(err, errlen, "%s: not an fspf (not a regular file, or too large)", path);
		return FS_ST_TAMPER;
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *b = malloc(n ? n : 1);
	if (!b) {
		close(fd);
		seterr(err, errlen, "out of memory");
		return FS_ST_IO;
	}
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != n) {
		free(b);
		seterr(err, errlen, "%s: cannot read it whole", path);
		return FS_ST_IO;
	}
	int rc = fspf_parse_file(b, n, key, tag, out, err, errlen);
	sodium_memzero(b, n);
	free(b);
	if (rc != FS_OK && err && errlen) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		snprintf(err, errlen, "%s", tmp);
	}
	return rc;
}

int fspf_write_file(const char *path, const uint8_t *b, size_t n, char *err, size_t errlen)
{
	char tmp[4200], dir[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		seterr(err, errlen, "%s: path too long", path);
		return FS_ST_USAGE;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		return FS_ST_IO;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, b + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	int e = done == n && fsync(fd) == 0 ? 0 : errno ? errno : EIO;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e) {
		unlink(tmp);
		seterr(err, errlen, "%s: %s", path, strerror(e));
		return FS_ST_IO;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return FS_OK;
}

/* ---- chunks ---- */

fs_aead *fspf_file_aead(const fspf *m, const fspf_entry *e)
{
	uint8_t k[32];
	fs_mac h;
	fs_mac_init(&h, m->files_key, FSPF_DOM_FILE_KEY);
	fs_mac_update(&h, &e->kind, 1);
	fs_mac_update(&h, e->salt, FSPF_SALT_BYTES);
	fs_mac_u64(&h, strlen(e->path));
	fs_mac_update(&h, e->path, strlen(e->path));
	fs_mac_final(&h, k);
	fs_aead *a = fs_aead_new(m->data_aead, k);
	sodium_memzero(k, sizeof(k));
	return a;
}

size_t fspf_chunk_len(const fspf_entry *e, uint64_t idx)
{
	uint64_t start = idx * e->chunk_size;
	if (start >= e->size)
		return 0;
	uint64_t left = e->size - start;
	return left < e->chunk_size ? (size_t)left : e->chunk_size;
}

static void chunk_nonce(uint8_t nonce[FS_NONCE_BYTES], uint64_t idx)
{
	memset(nonce, 0, FS_NONCE_BYTES);
	fs_put_le64(nonce, idx);
}

int fspf_chunk_seal(fs_aead *a, const fspf_entry *e, uint64_t idx, uint8_t *buf, size_t len,
		    uint8_t tag[FS_TAG_BYTES])
{
	uint8_t nonce[FS_NONCE_BYTES], ad[16], dummy[1] = { 0 };
	chunk_nonce(nonce, idx);
	if (e->kind == FSPF_ENCRYPTED) {
		fs_put_le64(ad, idx);
		fs_put_le64(ad + 8, e->size);
		return fs_aead_seal(a, nonce, ad, sizeof(ad), buf, len, buf, tag);
	}
	return fs_aead_seal(a, nonce, buf, len, dummy, 0, dummy, tag);
}

int fspf_chunk_open(fs_aead *a, const fspf_entry *e, uint64_t idx, uint8_t *buf, size_t len)
{
	uint8_t nonce[FS_NONCE_BYTES], ad[16], dummy[1] = { 0 };
	if (!e->tags || idx >= fspf_nchunks(e) || len != fspf_chunk_len(e, idx)) {
		sodium_memzero(buf, len);
		return -1;
	}
	chunk_nonce(nonce, idx);
	if (e->kind == FSPF_ENCRYPTED) {
		fs_put_le64(ad, idx);
		fs_put_le64(ad + 8, e->size);
		return fs_aead_open(a, nonce, ad, sizeof(ad), buf, len, e->tags[idx], buf);
	}
	if (fs_aead_open(a, nonce, buf, len, dummy, 0, e->tags[idx], dummy) != 0) {
		sodium_memzero(buf, len);
		return -1;
	}
	return 0;
}

int fspf_open_beneath(int rootfd, const char *path, int flags)
{
	const char *rel = path;
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(rootfd, rel, flags | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : (int)fd;
}

/* ---- building: fshield fspf addf ---- */

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
};

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
	return -1;
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
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 256;
		struct item *it = realloc(w->items, cap * sizeof(*it));
		if (!it)
			return walk_fail(w, FS_ST_IO, "out of memory");
		w->items = it;
		w->cap = cap;
	}
	struct item *it = &w->items[w->n];
	memset(it, 0, sizeof(*it));
	it->st = *st;
	it->ipath = strdup(ipath);
	it->rel = strdup(rel);
	w->n++;
	if (!it->ipath || !it->rel)
		return walk_fail(w, FS_ST_IO, "out of memory");
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
		if (nn == cap) {
			cap = cap ? 2 * cap : 64;
			char **nb = realloc(names, cap * sizeof(*nb));
			if (!nb) {
				rc = walk_fail(w, FS_ST_IO, "out of memory");
				goto out;
			}
			names = nb;
		}
		if (!(names[nn] = strdup(de->d_name))) {
			rc = walk_fail(w, FS_ST_IO, "out of memory");
			goto out;
		}
		nn++;
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
		if (add_item(w, cip, crel, &st) != 0) {
			rc = -1;
			break;
		}
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

static int full_write(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the file, seals its chunks, writes the output; fills it->tags and it->salt. */
static int seal_file(struct walk *w, const fspf *m, int srcfd, int outfd, struct item *it, uint8_t *buf,
		     size_t bufcap)
{
	int fd = openat(srcfd, it->rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ofd = -1, rc = -1;
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
		if (ofd >= 0 && full_write(ofd, buf, got) != 0) {
			walk_fail(w, FS_ST_IO, "%s/%s: write: %s", w->out, it->rel, strerror(errno));
			goto out;
		}
		off += got;
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
		seterr(err, errlen, "%s: PATH is an absolute path without '.' or '..' components", path);
		return FS_ST_USAGE;
	}
	if (m->sealed) {
		seterr(err, errlen, "the fspf is already encrypted; files are added before 'fshield fspf encrypt'");
		return FS_ST_USAGE;
	}
	/* Overlaps with what the manifest holds already. */
	long at = fspf_find(m, top);
	if (at >= 0 && !S_ISDIR(m->entries[at].mode)) {
		seterr(err, errlen, "%s is already in the fspf as a file", top);
		return FS_ST_USAGE;
	}
	for (uint32_t i = 0; i < m->nentries; i++)
		if (strcmp(m->entries[i].path, top) && fspf_path_under(m->entries[i].path, top)) {
			seterr(err, errlen, "%s overlaps what was added before (%s is already in the fspf)", top,
			       m->entries[i].path);
			return FS_ST_USAGE;
		}
	for (char anc[FSPF_PATH_MAX + 2], *s = strcpy(anc, top); (s = strrchr(anc, '/')) && s != anc;) {
		*s = '\0';
		long p = fspf_find(m, anc);
		if (p >= 0 && !S_ISDIR(m->entries[p].mode)) {
			seterr(err, errlen, "%s: %s is a file in the fspf, not a directory", top, anc);
			return FS_ST_USAGE;
		}
	}
	srcfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat sst;
	if (srcfd < 0 || fstat(srcfd, &sst) != 0) {
		seterr(err, errlen, "%s: %s", src, strerror(errno));
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
				seterr(err, errlen, "%s: OUTPUT_DIR must be missing or an empty directory", out);
				close(srcfd);
				return FS_ST_USAGE;
			}
		}
		if (realpath(src, rs) && realpath(out, ro) && (fspf_path_under(ro, rs) || fspf_path_under(rs, ro))) {
			seterr(err, errlen, "%s and %s: OUTPUT_DIR and SOURCE_DIR must not contain each other", src, out);
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
	for (size_t i = 0; i < w.n; i++) {
		struct item *it = &w.items[i];
		if (S_ISDIR(it->st.st_mode)) {
			if (outfd >= 0 && *it->rel && mkdirat(outfd, it->rel, 0755) != 0) {
				walk_fail(&w, FS_ST_IO, "%s/%s: %s", out, it->rel, strerror(errno));
				goto fail;
			}
			if (o)
				o->dirs++;
		} else if (S_ISREG(it->st.st_mode)) {
			if (seal_file(&w, m, srcfd, outfd, it, buf, bufcap) != 0)
				goto fail;
			if (o) {
				o->files++;
				o->bytes += (uint64_t)it->st.st_size;
			}
		} else if (o) {
			o->links++;
		}
	}
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
		seterr(err, errlen, "out of memory");
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

/* ---- offline check ---- */

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
	int fd = fspf_open_beneath(rootfd, e->path, O_RDONLY);
	struct stat st;
	res->files++;
	if (fd == -ENOENT) {
		finding(v, FS_ST_TAMPER, "missing", e->path, -1, 0, 0, "integrity violation: %s: missing", e->path);
		return;
	}
	if (fd == -ELOOP || fd == -EXDEV || fd == -ENOTDIR) {
		finding(v, FS_ST_TAMPER, "type", e->path, -1, 0, 0,
			"integrity violation: %s: not a regular file below the root (a symbolic link on the way?)", e->path);
		return;
	}
	if (fd < 0) {
		finding(v, FS_ST_IO, "io", e->path, -1, 0, 0, "%s: %s", e->path, strerror(-fd));
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		finding(v, FS_ST_TAMPER, "type", e->path, -1, 0, 0, "integrity violation: %s: not a regular file", e->path);
		close(fd);
		return;
	}
	if (!fspf_protected(e)) {
		close(fd);
		return;
	}
	if ((uint64_t)st.st_size != e->size) {
		finding(v, FS_ST_TAMPER, "truncated", e->path, -1, 0, 0,
			"integrity violation: %s: %llu bytes, the fspf says %llu", e->path, (unsigned long long)st.st_size,
			(unsigned long long)e->size);
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
