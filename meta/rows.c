#include "meta/rows.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/mac.h"

/* A bounded reader over attacker-supplied bytes: any overrun sets bad and yields zeros. */
typedef struct {
	const uint8_t *p;
	size_t len, off;
	int bad;
} rd;

static const uint8_t *take(rd *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}
static uint64_t u64(rd *r) { const uint8_t *p = take(r, 8); return p ? fs_get_le64(p) : 0; }
static uint32_t u32(rd *r) { const uint8_t *p = take(r, 4); return p ? fs_get_le32(p) : 0; }
static uint16_t u16(rd *r) { const uint8_t *p = take(r, 2); return p ? (uint16_t)(p[0] | p[1] << 8) : 0; }
static uint8_t u8(rd *r) { const uint8_t *p = take(r, 1); return p ? p[0] : 0; }

typedef struct {
	uint8_t *p;
	size_t len, cap;
	int oom;
} wr;

static void put(wr *w, const void *d, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = (w->len + n) * 2 + 64;
		uint8_t *np = realloc(w->p, cap);
		if (!np) {
			w->oom = 1;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	if (n)
		memcpy(w->p + w->len, d, n);
	w->len += n;
}
static void p64(wr *w, uint64_t v) { uint8_t b[8]; fs_put_le64(b, v); put(w, b, 8); }
static void p32(wr *w, uint32_t v) { uint8_t b[4]; fs_put_le32(b, v); put(w, b, 4); }
static void p16(wr *w, uint16_t v) { uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; put(w, b, 2); }
static void p8(wr *w, uint8_t v) { put(w, &v, 1); }

static uint8_t *finish(wr *w, size_t *len)
{
	if (w->oom) {
		free(w->p);
		return NULL;
	}
	*len = w->len;
	return w->p ? w->p : malloc(1);
}

uint8_t *fs_inode_encode(const fs_inode_rec *r, size_t *len)
{
	wr w = { 0 };
	p8(&w, FS_ROW_VERSION);
	p64(&w, r->ino); p64(&w, r->gen); p64(&w, r->parent);
	p32(&w, r->mode); p32(&w, r->uid); p32(&w, r->gid); p32(&w, r->nlink);
	p64(&w, r->size); p64(&w, r->rdev); p64(&w, r->wseq);
	p64(&w, (uint64_t)r->atime_s); p32(&w, r->atime_ns);
	p64(&w, (uint64_t)r->mtime_s); p32(&w, r->mtime_ns);
	p64(&w, (uint64_t)r->ctime_s); p32(&w, r->ctime_ns);
	p64(&w, r->count);
	put(&w, r->content, 32);
	p32(&w, r->target_len); put(&w, r->target, r->target_len);
	p32(&w, r->xattrs_len); put(&w, r->xattrs, r->xattrs_len);
	return finish(&w, len);
}

int fs_inode_decode(const uint8_t *p, size_t len, fs_inode_rec *o)
{
	rd r = { p, len, 0, 0 };
	memset(o, 0, sizeof(*o));
	if (u8(&r) != FS_ROW_VERSION)
		return -1;
	o->ino = u64(&r); o->gen = u64(&r); o->parent = u64(&r);
	o->mode = u32(&r); o->uid = u32(&r); o->gid = u32(&r); o->nlink = u32(&r);
	o->size = u64(&r); o->rdev = u64(&r); o->wseq = u64(&r);
	o->atime_s = (int64_t)u64(&r); o->atime_ns = u32(&r);
	o->mtime_s = (int64_t)u64(&r); o->mtime_ns = u32(&r);
	o->ctime_s = (int64_t)u64(&r); o->ctime_ns = u32(&r);
	o->count = u64(&r);
	const uint8_t *c = take(&r, 32);
	if (c)
		memcpy(o->content, c, 32);
	o->target_len = u32(&r);
	const uint8_t *t = take(&r, o->target_len);
	o->xattrs_len = u32(&r);
	const uint8_t *x = take(&r, o->xattrs_len);
	if (r.bad || r.off != len || o->target_len > 4096 || o->atime_ns >= 1000000000u ||
	    o->mtime_ns >= 1000000000u || o->ctime_ns >= 1000000000u || (int64_t)o->size < 0 ||
	    fs_xattrs_validate(x, o->xattrs_len) != 0)
		return -1;
	o->target = malloc(o->target_len + 1);
	o->xattrs = malloc(o->xattrs_len + 1);
	if (!o->target || !o->xattrs) {
		fs_inode_rec_free(o);
		return -1;
	}
	if (o->target_len)
		memcpy(o->target, t, o->target_len);
	o->target[o->target_len] = 0;
	if (o->xattrs_len)
		memcpy(o->xattrs, x, o->xattrs_len);
	return 0;
}

void fs_inode_rec_free(fs_inode_rec *r)
{
	free(r->target);
	free(r->xattrs);
	r->target = NULL;
	r->xattrs = NULL;
	r->target_len = r->xattrs_len = 0;
}

uint8_t *fs_dirent_encode(const fs_dirent_rec *r, size_t *len)
{
	wr w = { 0 };
	p8(&w, FS_ROW_VERSION);
	p64(&w, r->ino);
	p32(&w, r->mode);
	p16(&w, r->name_len);
	put(&w, r->name, r->name_len);
	return finish(&w, len);
}

int fs_dirent_decode(const uint8_t *p, size_t len, fs_dirent_rec *o)
{
	rd r = { p, len, 0, 0 };
	memset(o, 0, sizeof(*o));
	if (u8(&r) != FS_ROW_VERSION)
		return -1;
	o->ino = u64(&r);
	o->mode = u32(&r);
	o->name_len = u16(&r);
	const uint8_t *n = take(&r, o->name_len);
	if (r.bad || r.off != len || o->name_len == 0 || o->name_len > 255 || memchr(n, 0, o->name_len) ||
	    memchr(n, '/', o->name_len))
		return -1;
	memcpy(o->name, n, o->name_len);
	o->name[o->name_len] = 0;
	return 0;
}

static size_t row_ad(uint8_t *ad, const uint8_t volid[16], int kind, const uint8_t *key, size_t keylen)
{
	memcpy(ad, volid, 16);
	ad[16] = (uint8_t)kind;
	memcpy(ad + 17, key, keylen);
	return 17 + keylen;
}

uint8_t *fs_row_seal(fs_aead *a, const uint8_t volid[16], int kind, const uint8_t *key, size_t keylen,
		     const uint8_t *pt, size_t ptlen, size_t *rowlen)
{
	uint8_t ad[64];
	if (keylen > 40)
		return NULL;
	size_t adlen = row_ad(ad, volid, kind, key, keylen);
	uint8_t *row = malloc(FS_ROW_OVERHEAD + ptlen + 1);
	if (!row)
		return NULL;
	fs_aead_random_nonce(row);
	if (fs_aead_seal(a, row, ad, adlen, pt, ptlen, row + FS_ROW_OVERHEAD, row + FS_NONCE_BYTES) != 0) {
		free(row);
		return NULL;
	}
	*rowlen = FS_ROW_OVERHEAD + ptlen;
	return row;
}

uint8_t *fs_row_open(fs_aead *a, const uint8_t volid[16], int kind, const uint8_t *key, size_t keylen,
		     const uint8_t *row, size_t rowlen, size_t *ptlen)
{
	uint8_t ad[64];
	if (keylen > 40 || rowlen < FS_ROW_OVERHEAD || rowlen > FS_ROW_OVERHEAD + (1u << 20))
		return NULL;
	size_t adlen = row_ad(ad, volid, kind, key, keylen);
	size_t n = rowlen - FS_ROW_OVERHEAD;
	uint8_t *pt = malloc(n + 1);
	if (!pt)
		return NULL;
	if (fs_aead_open(a, row, ad, adlen, row + FS_ROW_OVERHEAD, n, row + FS_NONCE_BYTES, pt) != 0) {
		free(pt);
		return NULL;
	}
	*ptlen = n;
	return pt;
}

void fs_inode_key(uint8_t out[8], uint64_t ino)
{
	fs_put_le64(out, ino);
}

void fs_dirent_key(uint8_t out[40], uint64_t parent, const uint8_t name_mac[32])
{
	fs_put_le64(out, parent);
	memcpy(out + 8, name_mac, 32);
}

/* One xattr entry at r's position; returns 0 and the parts, or -1. */
static int xattr_next(rd *r, const uint8_t **name, size_t *nlen, const uint8_t **val, size_t *vlen)
{
	*nlen = u16(r);
	*name = take(r, *nlen);
	*vlen = u32(r);
	*val = take(r, *vlen);
	return r->bad ? -1 : 0;
}

static int name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al < bl ? -1 : al > bl);
}

int fs_xattrs_validate(const uint8_t *p, size_t len)
{
	rd r = { p, len, 0, 0 };
	const uint8_t *prev = NULL;
	size_t prevlen = 0;
	while (r.off < len) {
		const uint8_t *n, *v;
		size_t nl, vl;
		if (xattr_next(&r, &n, &nl, &v, &vl) != 0 || nl == 0 || nl > 255 || memchr(n, 0, nl) ||
		    vl > 65536)
			return -1;
		if (prev && name_cmp(prev, prevlen, n, nl) >= 0)
			return -1;
		prev = n;
		prevlen = nl;
	}
	return 0;
}

int fs_xattrs_get(const uint8_t *p, size_t len, const char *name, const uint8_t **val, size_t *vlen)
{
	rd r = { p, len, 0, 0 };
	size_t want = strlen(name);
	while (r.off < len) {
		const uint8_t *n;
		size_t nl;
		if (xattr_next(&r, &n, &nl, val, vlen) != 0)
			return -1;
		if (nl == want && memcmp(n, name, nl) == 0)
			return 0;
	}
	return -1;
}

uint8_t *fs_xattrs_put(const uint8_t *p, size_t len, const char *name, const void *value, size_t vlen,
		       size_t *newlen)
{
	rd r = { p, len, 0, 0 };
	wr w = { 0 };
	size_t nlen = strlen(name);
	int done = 0;
	while (r.off < len) {
		const uint8_t *n, *v;
		size_t nl, vl;
		if (xattr_next(&r, &n, &nl, &v, &vl) != 0) {
			free(w.p);
			return NULL;
		}
		int c = name_cmp(n, nl, (const uint8_t *)name, nlen);
		if (c > 0 && !done && value) {
			p16(&w, (uint16_t)nlen); put(&w, name, nlen); p32(&w, (uint32_t)vlen); put(&w, value, vlen);
			done = 1;
		}
		if (c == 0) {
			if (value) {
				p16(&w, (uint16_t)nlen); put(&w, name, nlen); p32(&w, (uint32_t)vlen); put(&w, value, vlen);
			}
			done = 1;
			continue;
		}
		p16(&w, (uint16_t)nl); put(&w, n, nl); p32(&w, (uint32_t)vl); put(&w, v, vl);
	}
	if (!done && value) {
		p16(&w, (uint16_t)nlen); put(&w, name, nlen); p32(&w, (uint32_t)vlen); put(&w, value, vlen);
	}
	return finish(&w, newlen);
}

size_t fs_xattrs_names(const uint8_t *p, size_t len, char *buf, size_t size)
{
	rd r = { p, len, 0, 0 };
	size_t need = 0;
	while (r.off < len) {
		const uint8_t *n, *v;
		size_t nl, vl;
		if (xattr_next(&r, &n, &nl, &v, &vl) != 0)
			break;
		if (buf && need + nl + 1 <= size) {
			memcpy(buf + need, n, nl);
			buf[need + nl] = 0;
		}
		need += nl + 1;
	}
	return need;
}
