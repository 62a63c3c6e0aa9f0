/* Chunk framing as the volume reads it (fs/volume/data.c, read_chunk): a chunk row gives the nonce, the tag
 * and the stored length; the pack file gives that many bytes of ciphertext; fs_aead_open checks them under
 * the per-file key with the associated data (volume id, ino, inode generation, index, chunk generation,
 * length). Both ciphers get every input, through one long-lived context each, as in the volume.
 *
 * Input: flags(1) nonce(24) tag(16) len(4, LE) ino igen idx cgen (8 each, LE) flip(2) ciphertext...
 *   The stored length is clamped to the ciphertext present (a shorter pack file is "truncated" before any
 *   decryption). flags bit 0: decrypt in place; bit 1: also run the seal/open round trip below.
 *
 * Properties checked besides "no crash":
 *  - open fails for anything the key holder did not seal: when it succeeds, sealing the plaintext again
 *    under the same nonce and associated data must give back exactly the ciphertext and tag;
 *  - a failed open leaves the output zeroed (never unauthenticated plaintext), in place or not;
 *  - round trip: a sealed chunk opens to its plaintext, and fails once any one bit of the ciphertext, the
 *    tag, the used part of the nonce or the associated data changes; a failed open does not spoil the
 *    context for the next one. */
#define FUZZ_NAME "fuzz_chunk"
#define FUZZ_SETUP setup
#include "fuzz.h"

#include "crypto/aead.h"
#include "crypto/mac.h"

#define CHUNK_MAX (64 * 1024)

static fs_aead *aead[2];
static const int algs[2] = { FS_AEAD_AES256GCM, FS_AEAD_XCHACHA20POLY1305 };
static const uint8_t volid[16] = { 0x63, 0x68, 0x75, 0x6e, 0x6b, 0x2d, 0x66, 0x75,
				   0x7a, 0x7a, 0x2d, 0x76, 0x6f, 0x6c, 0x69, 0x64 };

static void setup(void)
{
	uint8_t key[32];
	fuzz_key(key, 0x80, 3);
	for (int i = 0; i < 2; i++)
		if (!(aead[i] = fs_aead_new(algs[i], key)))
			fail("aead");
}

static uint64_t rd64(cur *c)
{
	uint8_t b[8];
	rd(c, b, 8);
	return fs_get_le64(b);
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* One open as read_chunk does it; checks the result either way. */
static void open_one(fs_aead *a, const uint8_t nonce[24], const uint8_t *ad, const uint8_t *ct, size_t len,
		     const uint8_t tag[16], int in_place)
{
	/* Exact-size buffers: a write past the length is an ASan error. */
	uint8_t *buf = malloc(len ? len : 1), *pt;
	if (!buf)
		fail("oom");
	if (in_place) {
		memcpy(buf, ct, len);
		pt = buf;
	} else {
		pt = buf;
		memset(pt, 0xee, len);
	}
	int rc = fs_aead_open(a, nonce, ad, 56, in_place ? buf : ct, len, tag, pt);
	if (rc != 0) {
		if (rc != -1)
			fail("open returned neither 0 nor -1");
		if (!all_zero(pt, len))
			fail("a failed open left plaintext behind");
	} else {
		uint8_t *again = malloc(len ? len : 1), t2[16];
		if (!again || fs_aead_seal(a, nonce, ad, 56, pt, len, again, t2) != 0)
			fail("seal");
		if (memcmp(again, ct, len) || memcmp(t2, tag, 16))
			fail("open accepted a chunk the key holder did not seal");
		free(again);
	}
	free(buf);
}

static void roundtrip(fs_aead *a, int alg, const uint8_t nonce[24], const uint8_t ad[56], const uint8_t *pt,
		      size_t len, size_t flip)
{
	uint8_t *ct = malloc(len ? len : 1), *out = malloc(len ? len : 1), tag[16], n2[24], ad2[56];
	if (!ct || !out)
		fail("oom");
	if (fs_aead_seal(a, nonce, ad, 56, pt, len, ct, tag) != 0)
		fail("seal");
	if (fs_aead_open(a, nonce, ad, 56, ct, len, tag, out) != 0 || memcmp(out, pt, len))
		fail("a sealed chunk does not open to its plaintext");
	/* One bit changed somewhere in what read_chunk authenticates. */
	size_t nlen = fs_aead_nonce_len(alg);
	size_t span = len + 16 + nlen + 56;
	size_t at = flip % span;
	uint8_t bit = (uint8_t)(1u << (flip / span % 8));
	memcpy(n2, nonce, 24);
	memcpy(ad2, ad, 56);
	if (at < len)
		ct[at] ^= bit;
	else if ((at -= len) < 16)
		tag[at] ^= bit;
	else if ((at -= 16) < nlen)
		n2[at] ^= bit;
	else
		ad2[at - nlen] ^= bit;
	if (fs_aead_open(a, n2, ad2, 56, ct, len, tag, out) == 0)
		fail("a changed chunk still opens");
	if (!all_zero(out, len))
		fail("a failed open left plaintext behind");
	free(ct);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cur c = { data, size, 0 };
	uint8_t flags, nonce[24], tag[16], lenb[4], ad[56];
	rd(&c, &flags, 1);
	rd(&c, nonce, 24);
	rd(&c, tag, 16);
	rd(&c, lenb, 4);
	memcpy(ad, volid, 16);
	for (int i = 0; i < 4; i++)
		fs_put_le64(ad + 16 + 8 * i, rd64(&c));
	uint8_t fl[2];
	rd(&c, fl, 2);
	size_t avail = c.n - c.off;
	if (avail > CHUNK_MAX)
		avail = CHUNK_MAX;
	size_t len = fs_get_le32(lenb);
	if (len > avail)
		len = avail;
	fs_put_le64(ad + 48, len);
	uint8_t *ct = malloc(len ? len : 1);
	if (!ct)
		fail("oom");
	memcpy(ct, c.p + c.off, len);
	for (int i = 0; i < 2; i++) {
		open_one(aead[i], nonce, ad, ct, len, tag, flags & 1);
		if (flags & 2)
			roundtrip(aead[i], algs[i], nonce, ad, ct, len, (size_t)fl[0] << 8 | fl[1]);
	}
	free(ct);
	return 0;
}
