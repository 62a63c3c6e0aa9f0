/* Rows of the metadata store as bytes (meta/rows.h). The first input byte picks the target, the rest is
 * its input:
 *   0  fs_inode_decode                        (plaintext of an inode row)
 *   1  fs_dirent_decode                       (plaintext of a directory entry row)
 *   2  fs_xattrs_validate/get/names/put       (name, value, then the xattr list)
 *   3  fs_row_open under a fixed key          (kind, key bytes, then a sealed row)
 *   4  fs_row_seal then fs_row_open           (kind, key bytes, flip position, then plaintext)
 *
 * Properties checked besides "no crash, no leak":
 *  - whatever decodes re-encodes to exactly the input, and that decodes to the same record;
 *  - a decoded record keeps the documented bounds (name and target lengths, nanoseconds, xattr list);
 *  - on a well-formed xattr list, put keeps the list well formed, sets or removes just the one name,
 *    and names/get agree with it; names never writes past the buffer it is given;
 *  - fs_row_open accepts only rows the key holder sealed (re-sealing the plaintext under the same nonce
 *    and associated data gives back the row), and refuses short rows and over-long keys;
 *  - a sealed row opens to its plaintext, and not after any one bit of it changes. */
#define FUZZ_NAME "fuzz_rows"
#define FUZZ_SETUP setup
#include "fuzz.h"

#include "crypto/aead.h"
#include "meta/rows.h"

static fs_aead *row_aead;
static const uint8_t volid[16] = { 0x76, 0x6f, 0x6c, 0x69, 0x64, 0x2d, 0x66, 0x75,
				   0x7a, 0x7a, 0x2d, 0x72, 0x6f, 0x77, 0x73, 0x21 };

static void setup(void)
{
	uint8_t key[32];
	fuzz_key(key, 0x40, 1);
	/* Rows are always sealed with XChaCha20-Poly1305 (the row subkey), whatever the chunk cipher. */
	row_aead = fs_aead_new(FS_AEAD_XCHACHA20POLY1305, key);
	if (!row_aead)
		fail("aead");
}

/* ---- inode rows ---- */

static int inode_eq(const fs_inode_rec *a, const fs_inode_rec *b)
{
	return a->ino == b->ino && a->gen == b->gen && a->parent == b->parent && a->mode == b->mode &&
	       a->uid == b->uid && a->gid == b->gid && a->nlink == b->nlink && a->size == b->size &&
	       a->rdev == b->rdev && a->wseq == b->wseq && a->atime_s == b->atime_s && a->mtime_s == b->mtime_s &&
	       a->ctime_s == b->ctime_s && a->atime_ns == b->atime_ns && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns && a->count == b->count && !memcmp(a->content, b->content, 32) &&
	       a->target_len == b->target_len && !memcmp(a->target, b->target, a->target_len) &&
	       a->xattrs_len == b->xattrs_len && !memcmp(a->xattrs, b->xattrs, a->xattrs_len);
}

static void check_xattr_list(const uint8_t *p, size_t len, const char *name, const uint8_t *val, size_t vlen);

/* A decoded row must encode again (else fail with no_enc), to exactly the n bytes it came from (else differs). */
static void same_encoding(const uint8_t *enc, size_t len, const uint8_t *p, size_t n, const char *no_enc,
			  const char *differs)
{
	if (!enc)
		fail(no_enc);
	if (len != n || memcmp(enc, p, n) != 0)
		fail(differs);
}

static void fuzz_inode(const uint8_t *p, size_t n)
{
	fs_inode_rec r;
	if (fs_inode_decode(p, n, &r) != 0) {
		fs_inode_rec_free(&r);
		return;
	}
	if (!r.target || !r.xattrs || r.target_len > 4096 || r.target[r.target_len] != 0 ||
	    r.atime_ns >= 1000000000u || r.mtime_ns >= 1000000000u || r.ctime_ns >= 1000000000u ||
	    (int64_t)r.size < 0 || fs_xattrs_validate(r.xattrs, r.xattrs_len) != 0)
		fail("decoded inode breaks a documented bound");
	size_t len;
	uint8_t *enc = fs_inode_encode(&r, &len);
	same_encoding(enc, len, p, n, "inode encode", "inode row does not re-encode to its own bytes");
	fs_inode_rec r2;
	if (fs_inode_decode(enc, len, &r2) != 0 || !inode_eq(&r, &r2))
		fail("re-encoded inode row decodes differently");
	fs_inode_rec_free(&r2);
	if (n && fs_inode_decode(p, n - 1, &r2) == 0)
		fail("a proper prefix of an inode row decodes");
	fs_inode_rec_free(&r2);
	/* The xattr list inside is well formed: exercise it as the volume does. */
	check_xattr_list(r.xattrs, r.xattrs_len, "user.fuzz", (const uint8_t *)"v", 1);
	free(enc);
	fs_inode_rec_free(&r);
}

/* ---- directory entry rows ---- */

static void fuzz_dirent(const uint8_t *p, size_t n)
{
	fs_dirent_rec r, r2;
	if (fs_dirent_decode(p, n, &r) != 0)
		return;
	if (r.name_len == 0 || r.name_len > 255 || r.name[r.name_len] != 0 || strlen(r.name) != r.name_len ||
	    strchr(r.name, '/'))
		fail("decoded entry has a bad name");
	size_t len;
	uint8_t *enc = fs_dirent_encode(&r, &len);
	same_encoding(enc, len, p, n, "dirent encode", "entry row does not re-encode to its own bytes");
	if (fs_dirent_decode(enc, len, &r2) != 0 || r2.ino != r.ino || r2.mode != r.mode || r2.name_len != r.name_len ||
	    memcmp(r2.name, r.name, r.name_len + 1) != 0)
		fail("re-encoded entry row decodes differently");
	if (fs_dirent_decode(p, n - 1, &r2) == 0)
		fail("a proper prefix of an entry row decodes");
	free(enc);
}

/* ---- xattr lists ---- */

/* Counts the names of a list through fs_xattrs_names into a buffer of exactly the size it asks for, and
 * once into one a byte short (which must not be overrun). */
static size_t count_names(const uint8_t *p, size_t len)
{
	size_t need = fs_xattrs_names(p, len, NULL, 0);
	char *buf = malloc(need + 1);
	if (!buf)
		fail("oom");
	if (fs_xattrs_names(p, len, buf, need) != need)
		fail("names: size changed between calls");
	size_t count = 0;
	for (size_t i = 0; i < need; i++)
		count += buf[i] == 0;
	if (need && buf[need - 1] != 0)
		fail("names: list not terminated");
	free(buf);
	if (need) {
		char *small = malloc(need - 1 ? need - 1 : 1);
		if (!small)
			fail("oom");
		if (fs_xattrs_names(p, len, small, need - 1) != need)
			fail("names: size changed with a small buffer");
		free(small);
	}
	return count;
}

static void check_get(const uint8_t *p, size_t len, const char *name)
{
	const uint8_t *v;
	size_t vl;
	if (fs_xattrs_get(p, len, name, &v, &vl) == 0 && (v < p || vl > len || v + vl > p + len))
		fail("get points outside the list");
}

/* All of the xattr API on one list; the checks that need a well-formed list only apply to one. */
static void check_xattr_list(const uint8_t *p, size_t len, const char *name, const uint8_t *val, size_t vlen)
{
	int valid = fs_xattrs_validate(p, len) == 0;
	size_t count = count_names(p, len);
	check_get(p, len, name);
	const uint8_t *old;
	size_t oldlen;
	int had = valid && fs_xattrs_get(p, len, name, &old, &oldlen) == 0;
	size_t nlen = strlen(name);
	int name_ok = nlen > 0 && nlen <= 255;

	/* Set. */
	size_t newlen;
	uint8_t *set = fs_xattrs_put(p, len, name, val, vlen, &newlen);
	if (valid && name_ok) {
		const uint8_t *got;
		size_t gotlen;
		if (!set || fs_xattrs_validate(set, newlen) != 0)
			fail("put on a valid list made an invalid one");
		if (fs_xattrs_get(set, newlen, name, &got, &gotlen) != 0 || gotlen != vlen || memcmp(got, val, vlen))
			fail("put: the value set is not the value read back");
		if (count_names(set, newlen) != count + !had)
			fail("put: wrong number of names after setting one");
		/* Every other name keeps its value. */
		size_t need = fs_xattrs_names(p, len, NULL, 0);
		char *names = malloc(need + 1);
		if (!names)
			fail("oom");
		fs_xattrs_names(p, len, names, need);
		for (size_t i = 0; i < need; i += strlen(names + i) + 1) {
			const uint8_t *a, *b;
			size_t al, bl;
			if (strcmp(names + i, name) == 0)
				continue;
			if (fs_xattrs_get(p, len, names + i, &a, &al) != 0 ||
			    fs_xattrs_get(set, newlen, names + i, &b, &bl) != 0 || al != bl || memcmp(a, b, al))
				fail("put changed another attribute");
		}
		free(names);
	}
	if (set)
		check_get(set, newlen, name);
	free(set);

	/* Remove. */
	uint8_t *rm = fs_xattrs_put(p, len, name, NULL, 0, &newlen);
	if (valid && name_ok) {
		const uint8_t *got;
		size_t gotlen;
		if (!rm || fs_xattrs_validate(rm, newlen) != 0)
			fail("remove on a valid list made an invalid one");
		if (fs_xattrs_get(rm, newlen, name, &got, &gotlen) == 0)
			fail("remove: the name is still there");
		if (count_names(rm, newlen) != count - had)
			fail("remove: wrong number of names");
	}
	free(rm);
}

static void fuzz_xattrs(cur *c)
{
	char name[257];
	uint8_t val[256];
	size_t nl = rd8(c), vl = rd8(c);
	const uint8_t *np = take(c, &nl);
	memcpy(name, np, nl);
	name[nl] = 0; /* an embedded NUL just shortens it, as for a C caller */
	const uint8_t *vp = take(c, &vl);
	memcpy(val, vp, vl);
	size_t len = c->n - c->off;
	/* An exact-size copy so that any overread is caught. */
	uint8_t *list = malloc(len ? len : 1);
	if (!list)
		fail("oom");
	memcpy(list, c->p + c->off, len);
	check_xattr_list(list, len, name, val, vl);
	free(list);
}

/* ---- sealed rows ---- */

static size_t make_ad(uint8_t *ad, int kind, const uint8_t *key, size_t keylen)
{
	memcpy(ad, volid, 16);
	ad[16] = (uint8_t)kind;
	memcpy(ad + 17, key, keylen);
	return 17 + keylen;
}

static void fuzz_row_open(cur *c)
{
	int kind = rd8(c);
	size_t keylen = rd8(c) % 64;
	uint8_t key[64] = { 0 };
	size_t got = keylen;
	memcpy(key, take(c, &got), got);
	size_t rowlen = c->n - c->off;
	uint8_t *row = malloc(rowlen ? rowlen : 1);
	if (!row)
		fail("oom");
	memcpy(row, c->p + c->off, rowlen);
	size_t ptlen = 0;
	uint8_t *pt = fs_row_open(row_aead, volid, kind, key, keylen, row, rowlen, &ptlen);
	if (pt) {
		if (keylen > 40 || rowlen < FS_ROW_OVERHEAD || ptlen != rowlen - FS_ROW_OVERHEAD)
			fail("opened a row it must refuse");
		/* Genuine only if the key holder's seal of this plaintext gives these bytes. */
		uint8_t ad[64], tag[FS_TAG_BYTES];
		size_t adlen = make_ad(ad, kind, key, keylen);
		uint8_t *ct = malloc(ptlen ? ptlen : 1);
		if (!ct || fs_aead_seal(row_aead, row, ad, adlen, pt, ptlen, ct, tag) != 0)
			fail("seal");
		if (memcmp(tag, row + FS_NONCE_BYTES, FS_TAG_BYTES) || memcmp(ct, row + FS_ROW_OVERHEAD, ptlen))
			fail("fs_row_open accepted a forged row");
		free(ct);
		if (kind == FS_ROW_INODE)
			fuzz_inode(pt, ptlen);
		else if (kind == FS_ROW_DIRENT)
			fuzz_dirent(pt, ptlen);
		free(pt);
	}
	free(row);
}

static void fuzz_row_roundtrip(cur *c)
{
	int kind = rd8(c) % 2 ? FS_ROW_DIRENT : FS_ROW_INODE;
	size_t keylen = rd8(c) % 41;
	uint8_t key[40] = { 0 };
	size_t got = keylen;
	memcpy(key, take(c, &got), got);
	size_t flip = (size_t)rd8(c) << 8 | rd8(c);
	uint8_t bit = (uint8_t)(1u << (rd8(c) % 8));
	size_t ptlen = c->n - c->off, rowlen, outlen;
	uint8_t *row = fs_row_seal(row_aead, volid, kind, key, keylen, c->p + c->off, ptlen, &rowlen);
	if (!row || rowlen != ptlen + FS_ROW_OVERHEAD)
		fail("seal failed");
	uint8_t *pt = fs_row_open(row_aead, volid, kind, key, keylen, row, rowlen, &outlen);
	if (!pt || outlen != ptlen || memcmp(pt, c->p + c->off, ptlen))
		fail("a sealed row does not open to its plaintext");
	free(pt);
	if (fs_row_open(row_aead, volid, kind == FS_ROW_INODE ? FS_ROW_DIRENT : FS_ROW_INODE, key, keylen, row,
			rowlen, &outlen))
		fail("a row opened as the other kind");
	if (keylen && fs_row_open(row_aead, volid, kind, key, keylen - 1, row, rowlen, &outlen))
		fail("a row opened under a shorter key");
	row[flip % rowlen] ^= bit;
	if ((pt = fs_row_open(row_aead, volid, kind, key, keylen, row, rowlen, &outlen)) != NULL)
		fail("a changed row still opens");
	free(row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	cur c = { data + 1, size - 1, 0 };
	/* Exact-size copies so that a read past the end is an ASan error, not a read of the next byte. */
	uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		fail("oom");
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 5) {
	case 0:
		fuzz_inode(copy, size - 1);
		break;
	case 1:
		fuzz_dirent(copy, size - 1);
		break;
	case 2:
		fuzz_xattrs(&c);
		break;
	case 3:
		fuzz_row_open(&c);
		break;
	case 4:
		fuzz_row_roundtrip(&c);
		break;
	}
	free(copy);
	return 0;
}
