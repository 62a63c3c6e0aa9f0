/* Unit tests of crypto/: the chunk AEADs (round trips, in-place use, every way to fail, known answers),
 * subkey and file key derivation, the domain-separated MAC, key files, passphrase wrapping, hex. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "meta/header.h"
#include "meta/keys.h"
#include "crypto/mac.h"
#include "tests/unit/testutil.h"

static const int algs[] = { FS_AEAD_AES256GCM, FS_AEAD_XCHACHA20POLY1305 };
#define NALGS 2
static const size_t sizes[] = { 0, 1, 4096, 65536, 1024 * 1024 };
#define NSIZES 5

/* malloc that never returns NULL for 0 bytes, so that a 0-length message still has a valid buffer. */
static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(p);
	return p;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void unhex_or_die(uint8_t *out, size_t n, const char *hex)
{
	ck_assert_int_eq(fs_unhex(out, n, hex), 0);
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	ck_assert_int_eq(close(fd), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ssize_t n = read(fd, buf, cap);
	ck_assert_int_ge(n, 0);
	close(fd);
	return (size_t)n;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* ---- algorithm table ---- */

START_TEST(aead_algorithms)
{
	ck_assert(fs_aead_alg_valid(FS_AEAD_AES256GCM));
	ck_assert(fs_aead_alg_valid(FS_AEAD_XCHACHA20POLY1305));
	ck_assert(!fs_aead_alg_valid(0));
	ck_assert(!fs_aead_alg_valid(3));
	ck_assert(!fs_aead_alg_valid(-1));
	ck_assert_str_eq(fs_aead_alg_name(FS_AEAD_AES256GCM), "aes-256-gcm");
	ck_assert_str_eq(fs_aead_alg_name(FS_AEAD_XCHACHA20POLY1305), "xchacha20-poly1305");
	ck_assert_str_eq(fs_aead_alg_name(7), "unknown");
	ck_assert_uint_eq(fs_aead_nonce_len(FS_AEAD_AES256GCM), 12);
	ck_assert_uint_eq(fs_aead_nonce_len(FS_AEAD_XCHACHA20POLY1305), 24);

	/* The default follows the CPU: AES-GCM only where it has AES instructions. */
	int def = fs_aead_default_alg();
	ck_assert(fs_aead_alg_valid(def));
	ck_assert_int_eq(def, crypto_aead_aes256gcm_is_available() ? FS_AEAD_AES256GCM : FS_AEAD_XCHACHA20POLY1305);

	uint8_t key[FS_KEY_BYTES] = { 0 };
	ck_assert_ptr_null(fs_aead_new(0, key));
	ck_assert_ptr_null(fs_aead_new(3, key));
	fs_aead_free(NULL); /* allowed, like free(NULL) */
}
END_TEST

START_TEST(aead_random_nonce)
{
	uint8_t a[FS_NONCE_BYTES], b[FS_NONCE_BYTES];
	fs_aead_random_nonce(a);
	fs_aead_random_nonce(b);
	/* 192 random bits: equal only if the generator is broken. */
	ck_assert(memcmp(a, b, FS_NONCE_BYTES) != 0);
	ck_assert(!all_zero(a, FS_NONCE_BYTES));
}
END_TEST

/* Nonces come from a per-thread pool: many in a row (more than one refill) are all distinct and none is
 * all zero (a pool slot handed out twice, or one never filled, would show). */
START_TEST(aead_nonce_pool_distinct)
{
	enum { N = 1000 };
	static uint8_t n[N][FS_NONCE_BYTES];
	for (int i = 0; i < N; i++) {
		fs_aead_random_nonce(n[i]);
		ck_assert(!all_zero(n[i], FS_NONCE_BYTES));
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			ck_assert_msg(memcmp(n[i], n[j], FS_NONCE_BYTES) != 0, "nonces %d and %d are equal", i, j);
}
END_TEST

/* A forked child never hands out the nonce its parent hands out next: the child's pool starts empty. */
START_TEST(aead_nonce_pool_fork)
{
	uint8_t first[FS_NONCE_BYTES], mine[FS_NONCE_BYTES], childs[FS_NONCE_BYTES];
	fs_aead_random_nonce(first); /* the pool is filled now */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint8_t c[FS_NONCE_BYTES];
		fs_aead_random_nonce(c);
		_exit(write(p[1], c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
	}
	close(p[1]);
	fs_aead_random_nonce(mine);
	ck_assert_int_eq(read(p[0], childs, sizeof(childs)), (ssize_t)sizeof(childs));
	close(p[0]);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_msg(memcmp(mine, childs, FS_NONCE_BYTES) != 0, "the child handed out the parent's next nonce");
}
END_TEST

/* ---- round trips: _i runs over NALGS x NSIZES ---- */

START_TEST(aead_round_trip)
{
	int alg = algs[_i % NALGS];
	size_t len = sizes[_i / NALGS];
	uint8_t key[FS_KEY_BYTES], nonce[FS_NONCE_BYTES], nonce2[FS_NONCE_BYTES], ad[56];
	uint8_t tag[FS_TAG_BYTES], tag2[FS_TAG_BYTES], tag3[FS_TAG_BYTES];
	randombytes_buf(key, sizeof(key));
	randombytes_buf(ad, sizeof(ad));
	fs_aead_random_nonce(nonce);
	memcpy(nonce2, nonce, sizeof(nonce));
	nonce2[0] ^= 1;

	uint8_t *pt = xmalloc(len), *ct = xmalloc(len), *ct2 = xmalloc(len), *back = xmalloc(len);
	randombytes_buf(pt, len);
	fs_aead *a = fs_aead_new(alg, key);
	ck_assert_ptr_nonnull(a);

	ck_assert_int_eq(fs_aead_seal(a, nonce, ad, sizeof(ad), pt, len, ct, tag), 0);
	if (len >= 16) /* shorter ciphertexts may equal the plaintext by chance */
		ck_assert(memcmp(ct, pt, len) != 0);
	memset(back, 0x5a, len ? len : 1);
	ck_assert_int_eq(fs_aead_open(a, nonce, ad, sizeof(ad), ct, len, tag, back), 0);
	if (len)
		ck_assert_mem_eq(back, pt, len);

	/* Sealing is a function of (key, nonce, ad, pt): the same inputs give the same output... */
	ck_assert_int_eq(fs_aead_seal(a, nonce, ad, sizeof(ad), pt, len, ct2, tag2), 0);
	ck_assert_mem_eq(tag2, tag, FS_TAG_BYTES);
	if (len)
		ck_assert_mem_eq(ct2, ct, len);
	/* ...and another nonce gives another tag, even for an empty message. */
	ck_assert_int_eq(fs_aead_seal(a, nonce2, ad, sizeof(ad), pt, len, ct2, tag3), 0);
	ck_assert(memcmp(tag3, tag, FS_TAG_BYTES) != 0);

	/* A second context with the same key opens what the first sealed (no hidden per-context state). */
	fs_aead *b = fs_aead_new(alg, key);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(fs_aead_open(b, nonce, ad, sizeof(ad), ct, len, tag, back), 0);
	if (len)
		ck_assert_mem_eq(back, pt, len);

	/* No associated data at all is a valid use too. */
	ck_assert_int_eq(fs_aead_seal(a, nonce, NULL, 0, pt, len, ct2, tag2), 0);
	ck_assert(memcmp(tag2, tag, FS_TAG_BYTES) != 0);
	ck_assert_int_eq(fs_aead_open(b, nonce, NULL, 0, ct2, len, tag2, back), 0);
	if (len)
		ck_assert_mem_eq(back, pt, len);

	fs_aead_free(a);
	fs_aead_free(b);
	free(pt);
	free(ct);
	free(ct2);
	free(back);
}
END_TEST

START_TEST(aead_in_place)
{
	int alg = algs[_i % NALGS];
	size_t len = sizes[_i / NALGS];
	uint8_t key[FS_KEY_BYTES], nonce[FS_NONCE_BYTES], ad[56], tag[FS_TAG_BYTES], tag_ip[FS_TAG_BYTES];
	randombytes_buf(key, sizeof(key));
	randombytes_buf(ad, sizeof(ad));
	fs_aead_random_nonce(nonce);
	uint8_t *pt = xmalloc(len), *ct = xmalloc(len), *buf = xmalloc(len);
	randombytes_buf(pt, len);
	fs_aead *a = fs_aead_new(alg, key);
	ck_assert_ptr_nonnull(a);

	ck_assert_int_eq(fs_aead_seal(a, nonce, ad, sizeof(ad), pt, len, ct, tag), 0);
	memcpy(buf, pt, len);
	ck_assert_int_eq(fs_aead_seal(a, nonce, ad, sizeof(ad), buf, len, buf, tag_ip), 0);
	/* In place gives exactly the out-of-place result. */
	ck_assert_mem_eq(tag_ip, tag, FS_TAG_BYTES);
	if (len)
		ck_assert_mem_eq(buf, ct, len);
	ck_assert_int_eq(fs_aead_open(a, nonce, ad, sizeof(ad), buf, len, tag_ip, buf), 0);
	if (len)
		ck_assert_mem_eq(buf, pt, len);

	/* A failed in-place open leaves zeros, not the ciphertext or a partial plaintext. */
	if (len) {
		memcpy(buf, ct, len);
		tag_ip[0] ^= 0x80;
		ck_assert_int_eq(fs_aead_open(a, nonce, ad, sizeof(ad), buf, len, tag_ip, buf), -1);
		ck_assert(all_zero(buf, len));
	}
	fs_aead_free(a);
	free(pt);
	free(ct);
	free(buf);
}
END_TEST

/* ---- failures: each must return -1 and leave the output zeroed ---- */

struct sealed {
	int alg;
	size_t len;
	uint8_t key[FS_KEY_BYTES], nonce[FS_NONCE_BYTES], ad[56], tag[FS_TAG_BYTES];
	uint8_t *pt, *ct;
	fs_aead *a;
};

static void seal_sample(struct sealed *s, int alg, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->alg = alg;
	s->len = len;
	randombytes_buf(s->key, sizeof(s->key));
	randombytes_buf(s->ad, sizeof(s->ad));
	fs_aead_random_nonce(s->nonce);
	s->pt = xmalloc(len + 1);
	s->ct = xmalloc(len + 1);
	randombytes_buf(s->pt, len + 1);
	s->a = fs_aead_new(alg, s->key);
	ck_assert_ptr_nonnull(s->a);
	ck_assert_int_eq(fs_aead_seal(s->a, s->nonce, s->ad, sizeof(s->ad), s->pt, len, s->ct, s->tag), 0);
}

static void free_sample(struct sealed *s)
{
	fs_aead_free(s->a);
	free(s->pt);
	free(s->ct);
}

/* Opens with the given (possibly altered) inputs into a buffer full of 0xa5; expects -1 and zeros. */
static void expect_reject(fs_aead *a, const uint8_t *nonce, const uint8_t *ad, size_t adlen, const uint8_t *ct,
			  size_t len, const uint8_t *tag, const char *what)
{
	uint8_t *out = xmalloc(len);
	memset(out, 0xa5, len ? len : 1);
	int rc = fs_aead_open(a, nonce, ad, adlen, ct, len, tag, out);
	ck_assert_msg(rc == -1, "%s: open returned %d, expected -1", what, rc);
	ck_assert_msg(all_zero(out, len), "%s: output not zeroed after a failed open", what);
	free(out);
}

static void expect_genuine_opens(const struct sealed *s)
{
	uint8_t *out = xmalloc(s->len);
	ck_assert_int_eq(fs_aead_open(s->a, s->nonce, s->ad, sizeof(s->ad), s->ct, s->len, s->tag, out), 0);
	if (s->len)
		ck_assert_mem_eq(out, s->pt, s->len);
	free(out);
}

/* _i runs over NALGS x {0, 1, 4096} bytes. */
START_TEST(aead_rejects_tampering)
{
	static const size_t lens[] = { 0, 1, 4096 };
	struct sealed s;
	seal_sample(&s, algs[_i % NALGS], lens[_i / NALGS]);
	size_t len = s.len, nl = fs_aead_nonce_len(s.alg);
	uint8_t *ct = xmalloc(len + 1), tag[FS_TAG_BYTES], nonce[FS_NONCE_BYTES], ad[56];

	/* Each ciphertext byte position class: first, middle, last; each bit matters. */
	if (len) {
		size_t pos[] = { 0, len / 2, len - 1 };
		for (int p = 0; p < 3; p++) {
			memcpy(ct, s.ct, len);
			ct[pos[p]] ^= (uint8_t)(1u << (p + 3));
			expect_reject(s.a, s.nonce, s.ad, sizeof(s.ad), ct, len, s.tag, "flipped ciphertext byte");
		}
	}
	/* Every tag byte. */
	for (int t = 0; t < FS_TAG_BYTES; t++) {
		memcpy(tag, s.tag, FS_TAG_BYTES);
		tag[t] ^= 0x01;
		expect_reject(s.a, s.nonce, s.ad, sizeof(s.ad), s.ct, len, tag, "flipped tag byte");
	}
	/* Associated data: one byte changed, one byte short, one byte long, left out. */
	memcpy(ad, s.ad, sizeof(ad));
	ad[17] ^= 0x40;
	expect_reject(s.a, s.nonce, ad, sizeof(ad), s.ct, len, s.tag, "changed AD");
	expect_reject(s.a, s.nonce, s.ad, sizeof(s.ad) - 1, s.ct, len, s.tag, "short AD");
	uint8_t ad_long[57];
	memcpy(ad_long, s.ad, 56);
	ad_long[56] = 0;
	expect_reject(s.a, s.nonce, ad_long, sizeof(ad_long), s.ct, len, s.tag, "long AD");
	expect_reject(s.a, s.nonce, NULL, 0, s.ct, len, s.tag, "missing AD");
	/* Nonce: the first and the last byte the algorithm uses. */
	size_t npos[] = { 0, nl - 1 };
	for (int p = 0; p < 2; p++) {
		memcpy(nonce, s.nonce, FS_NONCE_BYTES);
		nonce[npos[p]] ^= 0x02;
		expect_reject(s.a, nonce, s.ad, sizeof(s.ad), s.ct, len, s.tag, "changed nonce");
	}
	/* Wrong key: one bit off. */
	uint8_t key2[FS_KEY_BYTES];
	memcpy(key2, s.key, sizeof(key2));
	key2[31] ^= 0x80;
	fs_aead *wrong = fs_aead_new(s.alg, key2);
	ck_assert_ptr_nonnull(wrong);
	expect_reject(wrong, s.nonce, s.ad, sizeof(s.ad), s.ct, len, s.tag, "wrong key");
	fs_aead_free(wrong);
	/* Same key, the other algorithm. */
	fs_aead *other = fs_aead_new(s.alg == FS_AEAD_AES256GCM ? FS_AEAD_XCHACHA20POLY1305 : FS_AEAD_AES256GCM, s.key);
	ck_assert_ptr_nonnull(other);
	expect_reject(other, s.nonce, s.ad, sizeof(s.ad), s.ct, len, s.tag, "other algorithm");
	fs_aead_free(other);
	/* Length: truncated by one, truncated to nothing, extended by one byte. */
	if (len) {
		expect_reject(s.a, s.nonce, s.ad, sizeof(s.ad), s.ct, len - 1, s.tag, "truncated by one");
		expect_reject(s.a, s.nonce, s.ad, sizeof(s.ad), s.ct, 0, s.tag, "truncated to 0");
	}
	memcpy(ct, s.ct, len);
	ct[len] = 0;
	expect_reject(s.a, s.nonce, s.ad, sizeof(s.ad), ct, len + 1, s.tag, "extended by one");

	/* After all those failures the same context still opens the genuine message... */
	expect_genuine_opens(&s);
	/* ...and still seals exactly as a fresh context does. */
	uint8_t *c1 = xmalloc(len), *c2 = xmalloc(len), t1[FS_TAG_BYTES], t2[FS_TAG_BYTES];
	fs_aead *fresh = fs_aead_new(s.alg, s.key);
	ck_assert_ptr_nonnull(fresh);
	ck_assert_int_eq(fs_aead_seal(s.a, s.nonce, s.ad, sizeof(s.ad), s.pt, len, c1, t1), 0);
	ck_assert_int_eq(fs_aead_seal(fresh, s.nonce, s.ad, sizeof(s.ad), s.pt, len, c2, t2), 0);
	ck_assert_mem_eq(t1, t2, FS_TAG_BYTES);
	ck_assert_mem_eq(t1, s.tag, FS_TAG_BYTES);
	if (len)
		ck_assert_mem_eq(c1, c2, len);
	fs_aead_free(fresh);
	free(c1);
	free(c2);
	free(ct);
	free_sample(&s);
}
END_TEST

START_TEST(aead_nonce_bytes_used)
{
	/* Documented: AES-GCM uses the first 12 bytes of the stored nonce, XChaCha20 all 24. */
	for (int i = 0; i < NALGS; i++) {
		struct sealed s;
		seal_sample(&s, algs[i], 100);
		uint8_t nonce[FS_NONCE_BYTES], out[100];
		memcpy(nonce, s.nonce, sizeof(nonce));
		nonce[12] ^= 1;
		nonce[23] ^= 1;
		int rc = fs_aead_open(s.a, nonce, s.ad, sizeof(s.ad), s.ct, s.len, s.tag, out);
		if (algs[i] == FS_AEAD_AES256GCM) {
			ck_assert_int_eq(rc, 0);
			ck_assert_mem_eq(out, s.pt, 100);
		} else {
			ck_assert_int_eq(rc, -1);
		}
		free_sample(&s);
	}
}
END_TEST

START_TEST(aead_rejects_oversize)
{
	/* OpenSSL takes int lengths: anything over 1 GiB is refused before any buffer is touched. */
	uint8_t key[FS_KEY_BYTES] = { 1 }, nonce[FS_NONCE_BYTES] = { 0 }, buf[16] = { 0 }, tag[FS_TAG_BYTES];
	for (int i = 0; i < NALGS; i++) {
		fs_aead *a = fs_aead_new(algs[i], key);
		ck_assert_ptr_nonnull(a);
		ck_assert_int_eq(fs_aead_seal(a, nonce, NULL, 0, buf, (1u << 30) + 1, buf, tag), -1);
		ck_assert_int_eq(fs_aead_seal(a, nonce, buf, (1u << 30) + 1, buf, 0, buf, tag), -1);
		ck_assert_int_eq(fs_aead_open(a, nonce, NULL, 0, buf, (1u << 30) + 1, tag, buf), -1);
		fs_aead_free(a);
	}
}
END_TEST

/* ---- known answers ---- */

struct kat {
	const char *name, *key, *iv, *aad, *pt, *ct, *tag;
};

/* AES-256-GCM test cases 13-16 of McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)",
 * revised 2005, appendix B (the AES-256 cases; the same values appear in the NIST GCM validation
 * vectors). If the OpenSSL path were anything but real GCM, these would not match. */
static const struct kat gcm_kats[] = {
	{ "gcm spec test case 13", "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b" },
	{ "gcm spec test case 14", "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
	  "d0d1c8a799996bf0265b98b5d48ab919" },
	{ "gcm spec test case 15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	  "cafebabefacedbaddecaf888", "",
	  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
	  "b094dac5d93471bdec1a502270e3cc6c" },
	{ "gcm spec test case 16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	  "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	  "76fc6ece0f4e1768cddf8853bb2d551b" },
};

/* XChaCha20-Poly1305: draft-irtf-cfrg-xchacha-03, appendix A.3.1. */
static const struct kat xchacha_kat = {
	"draft-irtf-cfrg-xchacha-03 A.3.1",
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
	"404142434445464748494a4b4c4d4e4f5051525354555657",
	"50515253c0c1c2c3c4c5c6c7",
	/* "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future,
	 *  sunscreen would be it." */
	"4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
	"73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
	"6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
	"637265656e20776f756c642062652069742e",
	"bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
	"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
	"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
	"21f9664c97637da9768812f615c68b13b52e",
	"c0875924c1c7987947deafd8780acf49",
};

static void run_kat(int alg, const struct kat *k)
{
	uint8_t key[32], nonce[FS_NONCE_BYTES], tag[16], want_tag[16], out_tag[16];
	size_t adlen = strlen(k->aad) / 2, len = strlen(k->pt) / 2, nl = strlen(k->iv) / 2;
	uint8_t *ad = xmalloc(adlen), *pt = xmalloc(len), *want = xmalloc(len), *ct = xmalloc(len), *back = xmalloc(len);
	ck_assert_uint_eq(nl, fs_aead_nonce_len(alg));
	unhex_or_die(key, 32, k->key);
	/* The bytes past the algorithm's nonce length are not used: fill them with junk to show it. */
	memset(nonce, 0xee, sizeof(nonce));
	unhex_or_die(nonce, nl, k->iv);
	unhex_or_die(ad, adlen, k->aad);
	unhex_or_die(pt, len, k->pt);
	unhex_or_die(want, len, k->ct);
	unhex_or_die(want_tag, 16, k->tag);

	fs_aead *a = fs_aead_new(alg, key);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(fs_aead_seal(a, nonce, adlen ? ad : NULL, adlen, pt, len, ct, tag), 0);
	if (len)
		ck_assert_msg(memcmp(ct, want, len) == 0, "%s: ciphertext differs", k->name);
	ck_assert_msg(memcmp(tag, want_tag, 16) == 0, "%s: tag differs", k->name);
	/* And the published ciphertext opens to the published plaintext. */
	ck_assert_int_eq(fs_aead_open(a, nonce, adlen ? ad : NULL, adlen, want, len, want_tag, back), 0);
	if (len)
		ck_assert_mem_eq(back, pt, len);
	memcpy(out_tag, want_tag, 16);
	out_tag[15] ^= 1;
	expect_reject(a, nonce, adlen ? ad : NULL, adlen, want, len, out_tag, k->name);
	fs_aead_free(a);
	free(ad);
	free(pt);
	free(want);
	free(ct);
	free(back);
}

START_TEST(aead_kat_aes256gcm)
{
	for (size_t i = 0; i < sizeof(gcm_kats) / sizeof(gcm_kats[0]); i++)
		run_kat(FS_AEAD_AES256GCM, &gcm_kats[i]);
}
END_TEST

START_TEST(aead_kat_xchacha20poly1305)
{
	run_kat(FS_AEAD_XCHACHA20POLY1305, &xchacha_kat);
}
END_TEST

/* ---- key derivation and MAC ---- */

static void blake2b_keyed(uint8_t out[32], const uint8_t key[32], const uint8_t *msg, size_t n)
{
	ck_assert_int_eq(crypto_generichash(out, 32, msg, n, key, 32), 0);
}

START_TEST(subkeys_distinct_and_deterministic)
{
	enum { NP = 6 };
	static const enum fs_subkey purposes[NP] = { FS_SUBKEY_CHUNK, FS_SUBKEY_TREE,   FS_SUBKEY_NAME,
						     FS_SUBKEY_ROW,   FS_SUBKEY_HEADER, FS_SUBKEY_CHECK };
	uint8_t master[32], master2[32], vol[2][FS_VOLID_BYTES], k[2][NP][32], again[32], other[32];
	randombytes_buf(master, sizeof(master));
	memcpy(master2, master, sizeof(master2));
	master2[0] ^= 1;
	randombytes_buf(vol[0], FS_VOLID_BYTES);
	memcpy(vol[1], vol[0], FS_VOLID_BYTES);
	vol[1][15] ^= 1; /* volume ids one bit apart */

	for (int v = 0; v < 2; v++)
		for (int p = 0; p < NP; p++)
			fs_derive_subkey(k[v][p], master, purposes[p], vol[v]);
	/* All twelve differ from each other and from the master key. */
	for (int i = 0; i < 2 * NP; i++) {
		ck_assert(memcmp(k[i / NP][i % NP], master, 32) != 0);
		for (int j = i + 1; j < 2 * NP; j++)
			ck_assert_msg(memcmp(k[i / NP][i % NP], k[j / NP][j % NP], 32) != 0, "subkeys %d and %d equal",
				      i, j);
	}
	/* Deterministic, and a function of the master key. */
	for (int p = 0; p < NP; p++) {
		fs_derive_subkey(again, master, purposes[p], vol[0]);
		ck_assert_mem_eq(again, k[0][p], 32);
		fs_derive_subkey(other, master2, purposes[p], vol[0]);
		ck_assert(memcmp(other, k[0][p], 32) != 0);
	}
	/* The documented construction: BLAKE2b-256(key = master, 0x0c || purpose || volume id). Pinned,
	 * because a change would make every existing volume unreadable. */
	uint8_t msg[2 + FS_VOLID_BYTES], want[32];
	for (int p = 0; p < NP; p++) {
		msg[0] = 0x0c;
		msg[1] = (uint8_t)purposes[p];
		memcpy(msg + 2, vol[0], FS_VOLID_BYTES);
		blake2b_keyed(want, master, msg, sizeof(msg));
		ck_assert_mem_eq(k[0][p], want, 32);
	}
}
END_TEST

START_TEST(file_keys_distinct)
{
	uint8_t sub[32], sub2[32];
	randombytes_buf(sub, sizeof(sub));
	memcpy(sub2, sub, 32);
	sub2[7] ^= 4;
	static const uint64_t ig[][2] = {
		{ 1, 0 }, { 2, 0 }, { 1, 1 }, { 2, 1 }, { 1, 2 }, { 0, 0 }, { UINT64_MAX, 0 }, { 0, UINT64_MAX },
		{ 1ull << 32, 0 }, { 0, 1ull << 32 },
	};
	enum { N = sizeof(ig) / sizeof(ig[0]) };
	uint8_t k[N][32], again[32];
	for (int i = 0; i < N; i++)
		fs_derive_file_key(k[i], sub, ig[i][0], ig[i][1]);
	for (int i = 0; i < N; i++) {
		for (int j = i + 1; j < N; j++)
			ck_assert_msg(memcmp(k[i], k[j], 32) != 0, "file keys (%llu,%llu) and (%llu,%llu) equal",
				      (unsigned long long)ig[i][0], (unsigned long long)ig[i][1],
				      (unsigned long long)ig[j][0], (unsigned long long)ig[j][1]);
		fs_derive_file_key(again, sub, ig[i][0], ig[i][1]);
		ck_assert_mem_eq(again, k[i], 32);
		fs_derive_file_key(again, sub2, ig[i][0], ig[i][1]);
		ck_assert(memcmp(again, k[i], 32) != 0);
	}
	/* Documented: BLAKE2b-256(key = chunk subkey, 0x0d || le64 ino || le64 gen). */
	uint8_t msg[17], want[32];
	msg[0] = 0x0d;
	fs_put_le64(msg + 1, 0x0102030405060708ull);
	fs_put_le64(msg + 9, 42);
	blake2b_keyed(want, sub, msg, sizeof(msg));
	fs_derive_file_key(again, sub, 0x0102030405060708ull, 42);
	ck_assert_mem_eq(again, want, 32);
}
END_TEST

START_TEST(mac_domains_separate)
{
	static const uint8_t doms[] = {
		FS_DOM_CHUNK_LEAF, FS_DOM_FILE_ROOT, FS_DOM_DIRENT_LEAF, FS_DOM_DIR_ROOT, FS_DOM_INODE_LEAF,
		FS_DOM_BUCKET,     FS_DOM_TREE_NODE, FS_DOM_VOLUME_ROOT, FS_DOM_NAME,    FS_DOM_HEADER,
		FS_DOM_KEY_CHECK,  FS_DOM_SUBKEY,    FS_DOM_FILE_KEY,  FS_DOM_KEYFILE_KEK,
	};
	enum { N = sizeof(doms) };
	uint8_t key[32], data[100], out[N][32];
	randombytes_buf(key, sizeof(key));
	randombytes_buf(data, sizeof(data));
	for (int i = 0; i < N; i++) {
		fs_mac m;
		fs_mac_init(&m, key, doms[i]);
		fs_mac_update(&m, data, sizeof(data));
		fs_mac_final(&m, out[i]);
	}
	/* Same key, same data, another domain: another output. */
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			ck_assert_msg(memcmp(out[i], out[j], 32) != 0, "domains 0x%02x and 0x%02x collide", doms[i],
				      doms[j]);
	/* The domain byte is the first byte hashed, as crypto/mac.h describes. */
	uint8_t msg[1 + sizeof(data)], want[32];
	msg[0] = FS_DOM_TREE_NODE;
	memcpy(msg + 1, data, sizeof(data));
	blake2b_keyed(want, key, msg, sizeof(msg));
	ck_assert_mem_eq(out[6], want, 32); /* doms[6] is FS_DOM_TREE_NODE */
	/* Same domain and data under another key: another output. */
	uint8_t key2[32], o2[32];
	memcpy(key2, key, 32);
	key2[0] ^= 1;
	fs_mac m;
	fs_mac_init(&m, key2, FS_DOM_TREE_NODE);
	fs_mac_update(&m, data, sizeof(data));
	fs_mac_final(&m, o2);
	ck_assert(memcmp(o2, out[6], 32) != 0);
}
END_TEST

START_TEST(mac_streaming_and_integers)
{
	uint8_t key[32], data[64], whole[32], pieces[32], viau64[32], viabytes[32];
	randombytes_buf(key, sizeof(key));
	randombytes_buf(data, sizeof(data));
	fs_mac m;
	fs_mac_init(&m, key, FS_DOM_BUCKET);
	fs_mac_update(&m, data, sizeof(data));
	fs_mac_final(&m, whole);
	fs_mac_init(&m, key, FS_DOM_BUCKET);
	fs_mac_update(&m, data, 1);
	fs_mac_update(&m, data + 1, 0);
	fs_mac_update(&m, data + 1, 40);
	fs_mac_update(&m, data + 41, sizeof(data) - 41);
	fs_mac_final(&m, pieces);
	ck_assert_mem_eq(whole, pieces, 32);

	/* Integers are hashed as 8-byte little endian. */
	static const uint8_t le[8] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01 };
	fs_mac_init(&m, key, FS_DOM_INODE_LEAF);
	fs_mac_u64(&m, 0x0102030405060708ull);
	fs_mac_final(&m, viau64);
	fs_mac_init(&m, key, FS_DOM_INODE_LEAF);
	fs_mac_update(&m, le, 8);
	fs_mac_final(&m, viabytes);
	ck_assert_mem_eq(viau64, viabytes, 32);

	/* The final call wipes the state. */
	fs_mac_init(&m, key, FS_DOM_INODE_LEAF);
	fs_mac_final(&m, viau64);
	ck_assert(all_zero((const uint8_t *)&m, sizeof(m)));
}
END_TEST

START_TEST(le_helpers)
{
	uint8_t b[8];
	fs_put_le64(b, 0x0102030405060708ull);
	static const uint8_t want64[8] = { 8, 7, 6, 5, 4, 3, 2, 1 };
	ck_assert_mem_eq(b, want64, 8);
	ck_assert_uint_eq(fs_get_le64(b), 0x0102030405060708ull);
	fs_put_le64(b, UINT64_MAX);
	ck_assert_uint_eq(fs_get_le64(b), UINT64_MAX);
	fs_put_le32(b, 0xa1b2c3d4u);
	static const uint8_t want32[4] = { 0xd4, 0xc3, 0xb2, 0xa1 };
	ck_assert_mem_eq(b, want32, 4);
	ck_assert_uint_eq(fs_get_le32(b), 0xa1b2c3d4u);
}
END_TEST

START_TEST(ct_eq)
{
	uint8_t a[48], b[48];
	randombytes_buf(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	ck_assert_int_eq(fs_ct_eq(a, b, sizeof(a)), 1);
	ck_assert_int_eq(fs_ct_eq(a, b, 0), 1);
	size_t pos[] = { 0, 17, 47 };
	for (int i = 0; i < 3; i++) {
		b[pos[i]] ^= 0x10;
		ck_assert_int_eq(fs_ct_eq(a, b, sizeof(a)), 0);
		ck_assert_int_eq(fs_ct_eq(b, a, sizeof(a)), 0);
		b[pos[i]] ^= 0x10;
	}
	/* Only the first n bytes count. */
	b[47] ^= 1;
	ck_assert_int_eq(fs_ct_eq(a, b, 47), 1);
}
END_TEST

/* ---- hex ---- */

START_TEST(hex_helpers)
{
	static const uint8_t bin[5] = { 0x00, 0x01, 0xab, 0xcd, 0xff };
	char hex[11];
	memset(hex, 'x', sizeof(hex));
	fs_hex(hex, bin, 5);
	ck_assert_str_eq(hex, "0001abcdff");
	fs_hex(hex, bin, 0);
	ck_assert_str_eq(hex, "");

	uint8_t out[5];
	ck_assert_int_eq(fs_unhex(out, 5, "0001abcdff"), 0);
	ck_assert_mem_eq(out, bin, 5);
	ck_assert_int_eq(fs_unhex(out, 5, "0001ABCDFF"), 0); /* upper case is hex too */
	ck_assert_mem_eq(out, bin, 5);
	ck_assert_int_eq(fs_unhex(out, 0, ""), 0);

	/* Exactly 2n digits, nothing else. */
	ck_assert_int_eq(fs_unhex(out, 5, "0001abcdf"), -1);    /* odd, short */
	ck_assert_int_eq(fs_unhex(out, 5, "0001abcd"), -1);     /* short */
	ck_assert_int_eq(fs_unhex(out, 5, "0001abcdff00"), -1); /* long */
	ck_assert_int_eq(fs_unhex(out, 5, "0001abcdfg"), -1); /* not a digit */
	ck_assert_int_eq(fs_unhex(out, 5, "0001ab cdf"), -1); /* space */
	ck_assert_int_eq(fs_unhex(out, 5, "0001abcdf\n"), -1);
	ck_assert_int_eq(fs_unhex(out, 5, "0x01abcdff"), -1);
	ck_assert_int_eq(fs_unhex(out, 1, ""), -1);

	/* Round trip of random bytes. */
	uint8_t r[32], back[32];
	char rh[65];
	randombytes_buf(r, sizeof(r));
	fs_hex(rh, r, 32);
	ck_assert_uint_eq(strlen(rh), 64);
	ck_assert_int_eq(fs_unhex(back, 32, rh), 0);
	ck_assert_mem_eq(back, r, 32);
}
END_TEST

/* ---- key files ---- */

static const char KEY_HEX[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void expect_key_file(const char *dir, const char *name, const char *content, int want_rc,
			    const char *want_why)
{
	char *p = path_in(dir, name);
	write_file(p, content, strlen(content));
	uint8_t key[32], want[32];
	memset(key, 0x77, sizeof(key));
	const char *why = NULL;
	int rc = fs_key_read_file(p, key, &why);
	ck_assert_msg(rc == want_rc, "%s: got %d, want %d", name, rc, want_rc);
	if (want_rc == 0) {
		unhex_or_die(want, 32, KEY_HEX);
		ck_assert_mem_eq(key, want, 32);
	} else {
		ck_assert_ptr_nonnull(why);
		ck_assert_msg(strstr(why, want_why) != NULL, "%s: reason '%s' lacks '%s'", name, why, want_why);
	}
	free(p);
}

START_TEST(key_files)
{
	char *dir = test_tmpdir("keys");
	char buf[300];
	expect_key_file(dir, "plain", KEY_HEX, 0, NULL);
	snprintf(buf, sizeof(buf), "%s\n", KEY_HEX);
	expect_key_file(dir, "newline", buf, 0, NULL);
	snprintf(buf, sizeof(buf), "%s\r\n", KEY_HEX);
	expect_key_file(dir, "crlf", buf, 0, NULL);
	expect_key_file(dir, "upper", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n", 0,
			NULL);

	expect_key_file(dir, "empty", "", -EINVAL, "64 hex digits");
	expect_key_file(dir, "short", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e\n", -EINVAL,
			"64 hex digits");
	snprintf(buf, sizeof(buf), "%s00\n", KEY_HEX);
	expect_key_file(dir, "long", buf, -EINVAL, "64 hex digits");
	expect_key_file(dir, "badhex", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n", -EINVAL,
			"64 hex digits");
	snprintf(buf, sizeof(buf), " %s\n", KEY_HEX);
	expect_key_file(dir, "leading-space", buf, -EINVAL, "64 hex digits");
	snprintf(buf, sizeof(buf), "%s \n", KEY_HEX);
	expect_key_file(dir, "trailing-space", buf, -EINVAL, "64 hex digits");
	snprintf(buf, sizeof(buf), "%s\nab\n", KEY_HEX);
	expect_key_file(dir, "two-lines", buf, -EINVAL, "64 hex digits");
	memset(buf, 'a', 250);
	buf[250] = 0;
	expect_key_file(dir, "huge", buf, -EINVAL, "too long");

	/* Missing file and a directory: the system's reason. */
	uint8_t key[32];
	const char *why = NULL;
	char *missing = path_in(dir, "no-such-key");
	ck_assert_int_eq(fs_key_read_file(missing, key, &why), -ENOENT);
	ck_assert_str_eq(why, strerror(ENOENT));
	why = NULL;
	ck_assert_int_eq(fs_key_read_file(dir, key, &why), -EISDIR);
	ck_assert_str_eq(why, strerror(EISDIR));
	free(missing);
	test_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(key_generate_file)
{
	char *dir = test_tmpdir("keygen");
	char *p1 = path_in(dir, "k1"), *p2 = path_in(dir, "k2");
	mode_t old = umask(022);
	ck_assert_int_eq(fs_key_generate_file(p1), 0);
	ck_assert_int_eq(fs_key_generate_file(p2), 0);
	umask(old);

	struct stat st;
	ck_assert_int_eq(stat(p1, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, 65);

	/* 64 lower-case hex digits and a newline, readable as a key file; two keys differ. */
	char c1[100], c2[100];
	size_t n1 = read_file(p1, c1, sizeof(c1)), n2 = read_file(p2, c2, sizeof(c2));
	ck_assert_uint_eq(n1, 65);
	ck_assert_uint_eq(n2, 65);
	ck_assert_int_eq(c1[64], '\n');
	for (int i = 0; i < 64; i++)
		ck_assert_msg(strchr("0123456789abcdef", c1[i]) && c1[i], "byte %d is not a hex digit", i);
	ck_assert(memcmp(c1, c2, 64) != 0);
	uint8_t k1[32], want[32];
	const char *why = NULL;
	ck_assert_int_eq(fs_key_read_file(p1, k1, &why), 0);
	c1[64] = 0;
	unhex_or_die(want, 32, c1);
	ck_assert_mem_eq(k1, want, 32);

	/* Never overwrites: the existing key stays as it was. */
	ck_assert_int_eq(fs_key_generate_file(p1), -EEXIST);
	char again[100];
	ck_assert_uint_eq(read_file(p1, again, sizeof(again)), 65);
	ck_assert_mem_eq(again, c1, 64);
	char *other = path_in(dir, "notes");
	write_file(other, "keep me", 7);
	ck_assert_int_eq(fs_key_generate_file(other), -EEXIST);
	ck_assert_uint_eq(read_file(other, again, sizeof(again)), 7);
	ck_assert_mem_eq(again, "keep me", 7);

	/* Nor writes through a symbolic link, even a dangling one. */
	char *target = path_in(dir, "target"), *link = path_in(dir, "link");
	ck_assert_int_eq(symlink(target, link), 0);
	ck_assert_int_eq(fs_key_generate_file(link), -EEXIST);
	ck_assert_int_eq(access(target, F_OK), -1);

	/* A missing directory is an error, not a crash. */
	char *deep = path_in(dir, "no/such/dir/key");
	ck_assert_int_eq(fs_key_generate_file(deep), -ENOENT);

	free(p1);
	free(p2);
	free(other);
	free(target);
	free(link);
	free(deep);
	test_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(key_alloc)
{
	uint8_t *k = fs_key_alloc();
	ck_assert_ptr_nonnull(k);
	memset(k, 0xab, 32);
	ck_assert_uint_eq(k[31], 0xab);
	fs_key_free(k);
	fs_key_free(NULL);
}
END_TEST

/* ---- passphrases ---- */

static void fast_params(fs_kdf_params *p)
{
	fs_kdf_params_default(p);
	p->opslimit = crypto_pwhash_OPSLIMIT_MIN;
	p->memlimit = crypto_pwhash_MEMLIMIT_MIN;
}

START_TEST(passphrase_wrap_round_trip)
{
	fs_kdf_params p;
	fast_params(&p);
	uint8_t master[32], volid[FS_VOLID_BYTES], kek[32], kek_again[32], kek_wrong[32], back[32];
	uint8_t wrapped[FS_WRAPPED_BYTES], wrapped2[FS_WRAPPED_BYTES], bad[FS_WRAPPED_BYTES];
	randombytes_buf(master, sizeof(master));
	randombytes_buf(volid, sizeof(volid));
	const char *pass = "correct horse battery staple";

	ck_assert_int_eq(fs_passphrase_kek(kek, pass, strlen(pass), &p), 0);
	ck_assert_int_eq(fs_passphrase_kek(kek_again, pass, strlen(pass), &p), 0);
	ck_assert_mem_eq(kek, kek_again, 32);
	fs_key_wrap(wrapped, kek, master, volid);
	/* The master key does not appear in the wrapped form. */
	ck_assert_ptr_null(memmem(wrapped, sizeof(wrapped), master, 32));
	ck_assert_int_eq(fs_key_unwrap(back, kek_again, wrapped, volid), 0);
	ck_assert_mem_eq(back, master, 32);

	/* Wrapping twice uses a fresh nonce: different bytes, both open. */
	fs_key_wrap(wrapped2, kek, master, volid);
	ck_assert(memcmp(wrapped, wrapped2, FS_WRAPPED_BYTES) != 0);
	ck_assert_int_eq(fs_key_unwrap(back, kek, wrapped2, volid), 0);
	ck_assert_mem_eq(back, master, 32);

	/* Wrong passphrase (one character off): another kek, and unwrapping fails. */
	const char *wrong = "correct horse battery stapler";
	ck_assert_int_eq(fs_passphrase_kek(kek_wrong, wrong, strlen(wrong), &p), 0);
	ck_assert(memcmp(kek_wrong, kek, 32) != 0);
	ck_assert_int_eq(fs_key_unwrap(back, kek_wrong, wrapped, volid), -1);
	/* Same passphrase, another salt: another kek. */
	fs_kdf_params p2 = p;
	p2.salt[0] ^= 1;
	ck_assert_int_eq(fs_passphrase_kek(kek_wrong, pass, strlen(pass), &p2), 0);
	ck_assert(memcmp(kek_wrong, kek, 32) != 0);
	ck_assert_int_eq(fs_key_unwrap(back, kek_wrong, wrapped, volid), -1);
	/* The wrapped key is bound to its volume id. */
	uint8_t volid2[FS_VOLID_BYTES];
	memcpy(volid2, volid, sizeof(volid2));
	volid2[3] ^= 1;
	ck_assert_int_eq(fs_key_unwrap(back, kek, wrapped, volid2), -1);
	/* Any changed byte of nonce, ciphertext or tag is refused. */
	size_t pos[] = { 0, 23, 24, 55, 56, FS_WRAPPED_BYTES - 1 };
	for (int i = 0; i < 6; i++) {
		memcpy(bad, wrapped, sizeof(bad));
		bad[pos[i]] ^= 0x20;
		ck_assert_msg(fs_key_unwrap(back, kek, bad, volid) == -1, "changed byte %zu accepted", pos[i]);
	}
}
END_TEST

START_TEST(passphrase_params)
{
	fs_kdf_params a, b;
	fs_kdf_params_default(&a);
	fs_kdf_params_default(&b);
	ck_assert_uint_eq(a.opslimit, crypto_pwhash_OPSLIMIT_MODERATE);
	ck_assert_uint_eq(a.memlimit, crypto_pwhash_MEMLIMIT_MODERATE);
	ck_assert(memcmp(a.salt, b.salt, FS_SALT_BYTES) != 0);

	/* Out of range costs are refused, not silently clamped. */
	uint8_t kek[32];
	fs_kdf_params p;
	fast_params(&p);
	p.opslimit = crypto_pwhash_OPSLIMIT_MIN - 1;
	ck_assert_int_eq(fs_passphrase_kek(kek, "x", 1, &p), -1);
	fast_params(&p);
	p.memlimit = crypto_pwhash_MEMLIMIT_MIN - 1;
	ck_assert_int_eq(fs_passphrase_kek(kek, "x", 1, &p), -1);
	fast_params(&p);
	p.memlimit = ((uint64_t)4 << 30) + 1;
	ck_assert_int_eq(fs_passphrase_kek(kek, "x", 1, &p), -1);
}
END_TEST

/* The accepted Argon2id costs have documented bounds (docs/FORMAT.md 3.2), checked before the KDF runs. */
START_TEST(passphrase_cost_bounds)
{
	fs_kdf_params p;
	fs_kdf_params_default(&p);
	ck_assert(fs_kdf_params_ok(&p)); /* the defaults, 3 passes over 256 MiB */
	p.opslimit = 4, p.memlimit = (uint64_t)1 << 30;
	ck_assert(fs_kdf_params_ok(&p)); /* libsodium's "sensitive": the most work accepted */
	p.opslimit = FS_KDF_OPSLIMIT_MAX, p.memlimit = FS_KDF_WORK_MAX / FS_KDF_OPSLIMIT_MAX;
	ck_assert(fs_kdf_params_ok(&p));
	const struct { uint64_t ops, mem; } bad[] = {
		{ 0, 8192 },
		{ 1, 8191 },
		{ FS_KDF_OPSLIMIT_MAX + 1, 8192 },
		{ 1, FS_KDF_MEMLIMIT_MAX + 1 },
		{ 5, (uint64_t)1 << 30 },                 /* each in range, the work above 4 GiB */
		{ 0xffffffffull, (uint64_t)4 << 30 },     /* what the format allowed before */
		{ UINT64_MAX, UINT64_MAX },               /* a product that would overflow */
	};
	uint8_t kek[32];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.opslimit = bad[i].ops, p.memlimit = bad[i].mem;
		ck_assert_msg(!fs_kdf_params_ok(&p), "case %zu accepted", i);
		ck_assert_int_eq(fs_passphrase_kek(kek, "x", 1, &p), -1);
	}
}
END_TEST

/* A random master key and the header of a new XChaCha20-Poly1305 volume whose key comes from key_source. */
static void header_for(fs_header *h, uint8_t master[32], int key_source)
{
	randombytes_buf(master, 32);
	memset(h, 0, sizeof(*h));
	randombytes_buf(h->volid, sizeof(h->volid));
	h->aead_alg = FS_AEAD_XCHACHA20POLY1305;
	h->hash_alg = FS_HASH_BLAKE2B_256;
	h->key_source = key_source;
	h->chunk_size = 65536;
	h->buckets = 4096;
}

/* A planted header: a passphrase volume's header with a cost far beyond the bounds (the header MAC cannot
 * be checked before the KDF has run) is refused by the parser, at once, with a reason naming the bounds. */
START_TEST(planted_header_kdf_cost)
{
	uint8_t master[32], raw[FS_HDR_BYTES];
	fs_header h;
	header_for(&h, master, FS_KEYSRC_PASSPHRASE);
	fs_kdf_params_default(&h.kdf);
	fs_header_encode(&h, master, raw);
	fs_header back;
	char err[512];
	ck_assert_int_eq(fs_header_parse(raw, sizeof(raw), &back, err, sizeof(err)), 0);
	const uint64_t planted[][2] = { { 0xffffffffull, (uint64_t)4 << 30 }, { 3, (uint64_t)1 << 40 },
					{ 1000000, 8192 }, { 0, 0 } };
	for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++) {
		fs_put_le64(raw + 64, planted[i][0]);
		fs_put_le64(raw + 72, planted[i][1]);
		err[0] = 0;
		ck_assert_int_eq(fs_header_parse(raw, sizeof(raw), &back, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "Argon2id cost out of bounds"), "case %zu: %s", i, err);
	}
}
END_TEST

/* Key source 3 (a key file wrapping the master key): the wrapped key round-trips, Argon2id fields must
 * be zero. */
START_TEST(header_keyfile_wrapped)
{
	uint8_t master[32], raw[FS_HDR_BYTES];
	fs_header h;
	header_for(&h, master, FS_KEYSRC_KEYFILE);
	uint8_t kf[32], kek[32], back_key[32];
	randombytes_buf(kf, sizeof(kf));
	fs_keyfile_kek(kek, kf, h.volid);
	fs_key_wrap(h.wrapped, kek, master, h.volid);
	fs_header_encode(&h, master, raw);
	fs_header back;
	char err[512];
	ck_assert_msg(fs_header_parse(raw, sizeof(raw), &back, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(back.key_source, FS_KEYSRC_KEYFILE);
	ck_assert_int_eq(fs_key_unwrap(back_key, kek, back.wrapped, back.volid), 0);
	ck_assert_mem_eq(back_key, master, 32);
	ck_assert_int_eq(fs_header_authenticate(raw, &back, master), FS_HDR_AUTH_OK);
	raw[64] = 1; /* an Argon2id opslimit in a key-file header */
	ck_assert_int_eq(fs_header_parse(raw, sizeof(raw), &back, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "Argon2id fields"), "%s", err);
}
END_TEST

START_TEST(passphrase_files)
{
	char *dir = test_tmpdir("pass");
	char *p = path_in(dir, "pass");
	char *pass = NULL;
	size_t len = 0;
	const char *why = NULL;

	write_file(p, "open sesame\nsecond line\n", 24);
	ck_assert_int_eq(fs_passphrase_read_file(p, &pass, &len, &why), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert_str_eq(pass, "open sesame");
	/* The file's passphrase gives the same kek as the literal one. */
	fs_kdf_params kp;
	fast_params(&kp);
	uint8_t k1[32], k2[32];
	ck_assert_int_eq(fs_passphrase_kek(k1, pass, len, &kp), 0);
	ck_assert_int_eq(fs_passphrase_kek(k2, "open sesame", 11, &kp), 0);
	ck_assert_mem_eq(k1, k2, 32);
	fs_passphrase_free(pass, len);

	write_file(p, "with cr\r\n", 9);
	ck_assert_int_eq(fs_passphrase_read_file(p, &pass, &len, &why), 0);
	ck_assert_uint_eq(len, 7);
	ck_assert_str_eq(pass, "with cr");
	fs_passphrase_free(pass, len);

	write_file(p, "no newline", 10);
	ck_assert_int_eq(fs_passphrase_read_file(p, &pass, &len, &why), 0);
	ck_assert_str_eq(pass, "no newline");
	fs_passphrase_free(pass, len);

	write_file(p, "", 0);
	ck_assert_int_eq(fs_passphrase_read_file(p, &pass, &len, &why), -EINVAL);
	ck_assert_str_eq(why, "empty passphrase");
	write_file(p, "\nsecond", 7);
	ck_assert_int_eq(fs_passphrase_read_file(p, &pass, &len, &why), -EINVAL);
	ck_assert_str_eq(why, "empty passphrase");

	/* Readable by group or others: refused, with the fix; so is such a key file. -EPERM, not -EACCES:
	 * the file is wrong (a usage error), not unreadable (an I/O error). */
	write_file(p, "open sesame\n", 12);
	ck_assert_int_eq(chmod(p, 0640), 0);
	ck_assert_int_eq(fs_passphrase_read_file(p, &pass, &len, &why), -EPERM);
	ck_assert_int_eq(fs_secret_unreadable(-EPERM), 0);
	ck_assert_msg(strstr(why, "chmod 600 ") && strstr(why, p), "%s", why);
	char *kp2 = path_in(dir, "key");
	write_file(kp2, KEY_HEX, 64);
	ck_assert_int_eq(chmod(kp2, 0604), 0);
	uint8_t kk[32];
	ck_assert_int_eq(fs_key_read_file(kp2, kk, &why), -EPERM);
	ck_assert_msg(strstr(why, "chmod 600 "), "%s", why);
	ck_assert_int_eq(chmod(kp2, 0400), 0);
	ck_assert_int_eq(fs_key_read_file(kp2, kk, &why), 0);
	free(kp2);

	char *missing = path_in(dir, "missing");
	ck_assert_int_eq(fs_passphrase_read_file(missing, &pass, &len, &why), -ENOENT);
	ck_assert_str_eq(why, strerror(ENOENT));
	/* A file that cannot be read is an I/O error; one that holds the wrong thing is not. */
	ck_assert_int_eq(fs_secret_unreadable(-ENOENT), 1);
	ck_assert_int_eq(fs_secret_unreadable(-EACCES), 1);
	ck_assert_int_eq(fs_secret_unreadable(-EINVAL), 0);
	free(missing);
	free(p);
	test_rmrf(dir);
	free(dir);
}
END_TEST

static Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = TEST_CASE(s, "aead", NULL, 60, aead_algorithms, aead_random_nonce, aead_nonce_pool_distinct,
			      aead_nonce_pool_fork);
	tcase_add_loop_test(tc, aead_round_trip, 0, NALGS * NSIZES);
	tcase_add_loop_test(tc, aead_in_place, 0, NALGS * NSIZES);
	tcase_add_loop_test(tc, aead_rejects_tampering, 0, NALGS * 3);
	TEST_ADD(tc, aead_nonce_bytes_used, aead_rejects_oversize, aead_kat_aes256gcm, aead_kat_xchacha20poly1305);
	TEST_CASE(s, "derive", NULL, 0, subkeys_distinct_and_deterministic, file_keys_distinct, mac_domains_separate,
		  mac_streaming_and_integers, le_helpers, ct_eq, hex_helpers);
	TEST_CASE(s, "keys", "unit-crypto", 60, key_files, key_generate_file, key_alloc, passphrase_wrap_round_trip,
		  passphrase_params, passphrase_cost_bounds, planted_header_kdf_cost, header_keyfile_wrapped, passphrase_files);
	return s;
}

TEST_MAIN(crypto_suite)
