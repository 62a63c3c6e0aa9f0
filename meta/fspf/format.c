/* The protection file's bytes: the body (regions and entries), the working and the sealed form, and the
 * tag of a sealed file (docs/FORMAT.md, "File system protection file"). Parsing takes attacker bytes: every
 * count is checked against what is left of the input before anything is allocated. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/keys.h"
#include "crypto/mac.h"
#include "meta/common/status.h"
#include "meta/common/vec.h"
#include "meta/fspf/internal.h"

static const uint8_t magic[8] = { 'F', 'S', 'H', 'F', 'S', 'P', 'F', 0 };

/* ---- writing ---- */

/* A growing output; after a failed allocation every put is a no-op and oom stays set. */
struct wbuf {
	uint8_t *p;
	size_t n, cap;
	int oom;
};

static void put(struct wbuf *w, const void *d, size_t n)
{
	const uint8_t *b = d;
	for (size_t i = 0; i < n && !w->oom; i++)
		if (VEC_PUSH(w->p, w->n, w->cap, b[i]) != 0)
			w->oom = 1;
}
static void put_u8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}
static void put_zero(struct wbuf *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_u8(w, 0);
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
/* u16 length, then the bytes */
static void put_str(struct wbuf *w, const char *s)
{
	put_u16(w, (uint16_t)strlen(s));
	put(w, s, strlen(s));
}
/* u8 kind, three reserved bytes, u32 chunk size: of a region and of a file */
static void put_protection(struct wbuf *w, uint8_t kind, uint32_t chunk_size)
{
	put_u8(w, kind);
	put_zero(w, 3);
	put_u32(w, chunk_size);
}

static void encode_body(const fspf *m, struct wbuf *w)
{
	put_u8(w, (uint8_t)m->data_aead);
	put_zero(w, 3);
	put_u32(w, m->nregions);
	for (uint32_t i = 0; i < m->nregions; i++) {
		put_str(w, m->regions[i].path);
		put_protection(w, m->regions[i].kind, m->regions[i].chunk_size);
	}
	put_u32(w, m->nentries);
	for (uint32_t i = 0; i < m->nentries; i++) {
		const fspf_entry *e = &m->entries[i];
		put_str(w, e->path);
		put_u32(w, e->mode);
		put_u32(w, e->uid);
		put_u32(w, e->gid);
		put_u64(w, (uint64_t)e->mtime_s);
		put_u32(w, e->mtime_ns);
		if (S_ISREG(e->mode)) {
			put_protection(w, e->kind, e->chunk_size);
			put_u64(w, e->size);
			if (fspf_protected(e)) {
				put(w, e->salt, FSPF_SALT_BYTES);
				put(w, e->tags, fspf_nchunks(e) * FS_TAG_BYTES);
			}
		} else if (S_ISLNK(e->mode)) {
			put_str(w, e->target);
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

/* ---- reading ---- */

struct rbuf {
	const uint8_t *p;
	size_t n, off;
};
static int take(struct rbuf *r, void *d, size_t n)
{
	if (r->n - r->off < n)
		return -EBADMSG;
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
		return -EBADMSG;
	*v = (uint16_t)(b[0] | b[1] << 8);
	return 0;
}
static int get_u32(struct rbuf *r, uint32_t *v)
{
	uint8_t b[4];
	if (take(r, b, 4))
		return -EBADMSG;
	*v = fs_get_le32(b);
	return 0;
}
static int get_u64(struct rbuf *r, uint64_t *v)
{
	uint8_t b[8];
	if (take(r, b, 8))
		return -EBADMSG;
	*v = fs_get_le64(b);
	return 0;
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
static int get_zero(struct rbuf *r, size_t n)
{
	for (uint8_t b; n; n--)
		if (get_u8(r, &b) || b)
			return -EBADMSG;
	return 0;
}
/* What put_protection wrote: a known kind, zero reserved bytes and an allowed chunk size. */
static int get_protection(struct rbuf *r, uint8_t *kind, uint32_t *chunk_size)
{
	if (get_u8(r, kind) || get_zero(r, 3) || get_u32(r, chunk_size) ||
	    !fspf_kind_ok(*kind) || !fspf_chunk_size_ok(*chunk_size))
		return -EBADMSG;
	return 0;
}

#define MIN_ENTRY_BYTES 27 /* u16 length, one path byte, mode, uid, gid, mtime */

int fspf_parse_body(fspf *m, const uint8_t *b, size_t n, char *err, size_t errlen)
{
	struct rbuf r = { b, n, 0 };
	uint8_t aead;
	uint32_t nreg, nent;
	if (get_u8(&r, &aead) || !fs_aead_alg_valid(aead) || get_zero(&r, 3)) {
		fspf_seterr(err, errlen, "fspf body: unknown data cipher or reserved bytes set");
		return -1;
	}
	m->data_aead = aead;
	if (get_u32(&r, &nreg) || nreg > FSPF_MAX_REGIONS || nreg > (n - r.off) / 10) {
		fspf_seterr(err, errlen, "fspf body: bad region count");
		return -1;
	}
	m->regions = calloc(nreg ? nreg : 1, sizeof(fspf_region));
	if (!m->regions) {
		fspf_seterr(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < nreg; i++) {
		fspf_region *rg = &m->regions[i];
		char *p = get_str(&r, FSPF_PATH_MAX);
		uint8_t kind;
		if (!p) {
			fspf_seterr(err, errlen, "fspf body: region %u: bad path", i);
			return -1;
		}
		rg->path = p;
		m->nregions = i + 1;
		if (!fspf_path_is_normal(p, strlen(p)) || get_protection(&r, &kind, &rg->chunk_size)) {
			fspf_seterr(err, errlen, "fspf body: region %u: malformed", i);
			return -1;
		}
		rg->kind = kind;
		if (i && fspf_path_cmp(m->regions[i - 1].path, p) >= 0) {
			fspf_seterr(err, errlen, "fspf body: regions not in order");
			return -1;
		}
	}
	if (get_u32(&r, &nent) || nent == 0 || nent > FSPF_MAX_ENTRIES || nent > (n - r.off) / MIN_ENTRY_BYTES) {
		fspf_seterr(err, errlen, "fspf body: bad entry count");
		return -1;
	}
	m->entries = calloc(nent, sizeof(fspf_entry));
	if (!m->entries) {
		fspf_seterr(err, errlen, "out of memory");
		return -1;
	}
	m->cap = nent;
	for (uint32_t i = 0; i < nent; i++) {
		fspf_entry *e = &m->entries[i];
		uint64_t mt;
		char *p = get_str(&r, FSPF_PATH_MAX);
		if (!p) {
			fspf_seterr(err, errlen, "fspf body: entry %u: bad path", i);
			return -1;
		}
		e->path = p;
		m->nentries = i + 1;
		if (!fspf_path_is_normal(p, strlen(p)) || (i == 0) != !strcmp(p, "/") ||
		    (i && fspf_path_cmp(m->entries[i - 1].path, p) >= 0)) {
			fspf_seterr(err, errlen, "fspf body: entry %u: path not normalised, out of order or repeated", i);
			return -1;
		}
		if (get_u32(&r, &e->mode) || get_u32(&r, &e->uid) || get_u32(&r, &e->gid) || get_u64(&r, &mt) ||
		    get_u32(&r, &e->mtime_ns) || e->mtime_ns >= 1000000000u || (e->mode & ~(uint32_t)(S_IFMT | 07777)) ||
		    !(S_ISDIR(e->mode) || S_ISREG(e->mode) || S_ISLNK(e->mode)) || (i == 0 && !S_ISDIR(e->mode))) {
			fspf_seterr(err, errlen, "fspf body: %s: bad attributes", p);
			return -1;
		}
		e->mtime_s = (int64_t)mt;
		if (S_ISREG(e->mode)) {
			uint8_t kind;
			if (get_protection(&r, &kind, &e->chunk_size) || get_u64(&r, &e->size) || e->size > FSPF_MAX_SIZE) {
				fspf_seterr(err, errlen, "fspf body: %s: bad file record", p);
				return -1;
			}
			e->kind = kind;
			const fspf_region *rg = fspf_region_of(m, p);
			if (!rg || rg->kind != kind || rg->chunk_size != e->chunk_size) {
				fspf_seterr(err, errlen, "fspf body: %s: protection differs from its region", p);
				return -1;
			}
			if (fspf_protected(e)) {
				uint64_t nc = fspf_nchunks(e);
				if (take(&r, e->salt, FSPF_SALT_BYTES) || nc > (r.n - r.off) / FS_TAG_BYTES) {
					fspf_seterr(err, errlen, "fspf body: %s: chunk tags cut short", p);
					return -1;
				}
				e->tags = malloc(nc ? nc * FS_TAG_BYTES : 1);
				if (!e->tags) {
					fspf_seterr(err, errlen, "out of memory");
					return -1;
				}
				take(&r, e->tags, nc * FS_TAG_BYTES);
			}
		} else if (S_ISLNK(e->mode)) {
			if (!(e->target = get_str(&r, FSPF_TARGET_MAX))) {
				fspf_seterr(err, errlen, "fspf body: %s: bad link target", p);
				return -1;
			}
		}
	}
	if (r.off != n) {
		fspf_seterr(err, errlen, "fspf body: %zu bytes after the last entry", n - r.off);
		return -1;
	}
	int rc = fspf_index(m);
	if (rc != 0) {
		fspf_seterr(err, errlen, rc == -ENOMEM ? "out of memory" : "fspf body: an entry's parent is not a directory of the fspf");
		return -1;
	}
	return 0;
}

uint8_t *fspf_encode_working(const fspf *m, size_t *len)
{
	struct wbuf w = { 0 };
	put(&w, magic, 8);
	put_u32(&w, FSPF_VERSION);
	put_zero(&w, 4); /* state 0: working */
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
	fspf_subkey(k, key, file + 16, FSPF_SUB_TAG);
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
	fspf_subkey(f + 32, m->key, m->id, FSPF_SUB_CHECK);
	randombytes_buf(f + 64, 24);
	fs_put_le64(f + 88, blen);
	fspf_subkey(k, m->key, m->id, FSPF_SUB_MANIFEST);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(f + FSPF_SEAL_HDR, f + FSPF_SEAL_HDR + blen, NULL, body,
							   blen, f, FSPF_SEAL_HDR, NULL, f + 64, k);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(body, blen);
	free(body);
	fspf_tag_of(f, total, m->key, tag);
	*len = total;
	return f;
}

/* The checks of a sealed header that need no key (after magic and version): 0, or -1 with err set. */
static int sealed_header_check(const uint8_t *file, size_t n, char *err, size_t errlen)
{
	if (file[12] != 1 || n < FSPF_SEAL_HDR + 16 || file[13] != FS_AEAD_XCHACHA20POLY1305 || file[14] || file[15]) {
		fspf_seterr(err, errlen, "fspf: truncated or malformed header");
		return -1;
	}
	uint64_t blen = fs_get_le64(file + 88);
	if (blen > FSPF_MAX_BODY || blen != n - FSPF_SEAL_HDR - 16) {
		fspf_seterr(err, errlen, "fspf: length field does not match the file (truncated or extended)");
		return -1;
	}
	return 0;
}

int fspf_outline_of(const uint8_t *file, size_t n, fspf_outline *o, char *err, size_t errlen)
{
	if (n < 16 || memcmp(file, magic, 8) != 0) {
		fspf_seterr(err, errlen, "not an fspf (bad magic)");
		return FS_ST_TAMPER;
	}
	if (fs_get_le32(file + 8) != FSPF_VERSION) {
		fspf_seterr(err, errlen, "unsupported fspf format version %u", fs_get_le32(file + 8));
		return FS_ST_TAMPER;
	}
	if (file[12] == 0) {
		fspf_seterr(err, errlen, "the fspf is not encrypted yet");
		return FS_ST_USAGE;
	}
	if (sealed_header_check(file, n, err, errlen) != 0)
		return FS_ST_TAMPER;
	memcpy(o->id, file + 16, FSPF_ID_BYTES);
	o->body_aead = file[13];
	o->size = n;
	crypto_generichash(o->blake2b, sizeof(o->blake2b), file, n, NULL, 0);
	return FS_OK;
}

int fspf_parse_file(const uint8_t *file, size_t n, const uint8_t *key, const uint8_t *tag, fspf **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	if (n < 16 || memcmp(file, magic, 8) != 0) {
		fspf_seterr(err, errlen, "not an fspf (bad magic)");
		return FS_ST_TAMPER;
	}
	uint32_t ver = fs_get_le32(file + 8);
	if (ver != FSPF_VERSION) {
		fspf_seterr(err, errlen, "unsupported fspf format version %u", ver);
		return FS_ST_TAMPER;
	}
	fspf *m = calloc(1, sizeof(*m));
	if (!m) {
		fspf_seterr(err, errlen, "out of memory");
		return FS_ST_IO;
	}
	int st = FS_ST_TAMPER;
	if (file[12] == 0) {
		if (n < FSPF_WORK_HDR || file[13] || file[14] || file[15]) {
			fspf_seterr(err, errlen, "fspf: truncated or malformed header");
			goto fail;
		}
		memcpy(m->id, file + 16, FSPF_ID_BYTES);
		if (fspf_set_key(m, file + 32) != 0) {
			fspf_seterr(err, errlen, "out of memory");
			st = FS_ST_IO;
			goto fail;
		}
		if (fspf_parse_body(m, file + FSPF_WORK_HDR, n - FSPF_WORK_HDR, err, errlen) != 0)
			goto fail;
		*out = m;
		return FS_OK;
	}
	if (sealed_header_check(file, n, err, errlen) != 0)
		goto fail;
	uint64_t blen = fs_get_le64(file + 88);
	if (!key) {
		fspf_seterr(err, errlen, "the fspf is encrypted: its key is needed");
		st = FS_ST_USAGE;
		goto fail;
	}
	memcpy(m->id, file + 16, FSPF_ID_BYTES);
	uint8_t kcv[32], k[32];
	fspf_subkey(kcv, key, m->id, FSPF_SUB_CHECK);
	if (!fs_ct_eq(kcv, file + 32, 32)) {
		fspf_seterr(err, errlen, "wrong key: the fspf key does not open this fspf");
		st = FS_ST_WRONG_KEY;
		goto fail;
	}
	if (tag) {
		uint8_t t[FSPF_TAG_BYTES];
		fspf_tag_of(file, n, key, t);
		if (!fs_ct_eq(t, tag, FSPF_TAG_BYTES)) {
			fspf_seterr(err, errlen, "fspf tag mismatch: the fspf is not the one the tag names (changed, or an "
					    "older or newer version)");
			goto fail;
		}
	}
	uint8_t *body = malloc(blen ? blen : 1);
	if (!body) {
		fspf_seterr(err, errlen, "out of memory");
		st = FS_ST_IO;
		goto fail;
	}
	fspf_subkey(k, key, m->id, FSPF_SUB_MANIFEST);
	int ok = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(body, NULL, file + FSPF_SEAL_HDR, blen,
								     file + FSPF_SEAL_HDR + blen, file, FSPF_SEAL_HDR,
								     file + 64, k) == 0;
	sodium_memzero(k, sizeof(k));
	if (!ok) {
		free(body);
		fspf_seterr(err, errlen, "fspf: the manifest fails authentication");
		goto fail;
	}
	if (fspf_set_key(m, key) != 0) {
		free(body);
		fspf_seterr(err, errlen, "out of memory");
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
